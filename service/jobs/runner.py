"""The in-process job runner: worker threads fed from a queue of job ids.

The queue holds only ids; the job itself lives in the database, so a restart loses nothing —
:func:`service.jobs.store.recover` re-queues what was interrupted. A job the database kept from
starting or from recording its end (unreachable or full for longer than :data:`service.db.faults.RETRY_S`)
is queued again after the job lease, when :func:`service.jobs.store.claim` may take it again.
"""

import logging
import queue
import threading
from typing import Protocol

from service.context import ServiceContext
from service.db.faults import database_fault
from service.jobs.store import recover
from service.jobs.work import process_job

log = logging.getLogger(__name__)


class JobRunner(Protocol):
    """Where the API hands jobs: in-process threads, or Celery workers."""

    def start(self) -> None: ...
    def submit(self, job_id: str) -> None: ...
    def stop(self) -> None: ...


class InProcessRunner:
    def __init__(self, ctx: ServiceContext, workers: int) -> None:
        self.ctx = ctx
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True) for i in range(workers)
        ]

    def start(self) -> None:
        """Re-queue jobs a previous run left behind, then start the workers."""
        for job_id in recover(self.ctx.sessions, self.ctx.settings.job_max_attempts):
            log.info("re-queued job %s after restart", job_id)
            self._queue.put(job_id)
        for thread in self._threads:
            thread.start()

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=5)

    def _work(self) -> None:
        while (job_id := self._queue.get()) is not None:
            try:
                process_job(self.ctx, job_id)
            except Exception as error:  # process_job records failures itself; this keeps the worker alive regardless
                if database_fault(error):
                    self._retry_later(job_id)
                else:
                    log.exception("job %s: worker error", job_id)

    def _retry_later(self, job_id: str) -> None:
        """Queue the job again once its lease has run out (a claim before that would be refused)."""
        delay_s = self.ctx.settings.job_lease_seconds + 1
        log.warning("job %s: the database is unreachable or full; trying the job again in %.0f s", job_id, delay_s)
        timer = threading.Timer(delay_s, self._queue.put, (job_id,))
        timer.daemon = True
        timer.start()
