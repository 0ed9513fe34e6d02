"""Background sweeps that keep stored data within its retention: at start, then every hour.

Events (``GAITID_EVENT_RETENTION_DAYS``) and finished jobs (``GAITID_JOB_RETENTION_DAYS``) each
get one; a failed sweep (the database briefly away) is logged and tried again at the next one.
"""

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600.0


class PeriodicSweep:
    """Calls ``sweep`` at start and every ``interval_s`` on a daemon thread; ``sweep`` returns what it
    did in words (logged), or None when there was nothing to do."""

    def __init__(self, name: str, sweep: Callable[[], str | None], interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._name = name
        self._sweep = sweep
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self._sweep()
                if done:
                    log.info("%s: %s", self._name, done)
            except Exception:  # the database may be briefly unreachable; the next sweep tries again
                log.exception("%s: the sweep failed", self._name)
            self._stop.wait(self._interval_s)
