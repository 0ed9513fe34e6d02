"""The HTTP server of ``gaitid serve``: uvicorn, told to end endless responses when it begins to stop.

On SIGTERM uvicorn stops accepting connections and waits for the open ones to close, up to the grace
period, before the application's own shutdown runs. An event stream (``/v1/events/stream``, which a
console tab keeps open) never closes by itself, so every stop or rolling restart waited the whole
grace period and then cut it. The server sets the app's ``stopping`` event as the signal arrives;
event streams end at their next poll, and browsers reconnect with ``Last-Event-ID`` (to another
replica, or to this one once it is back) without missing an event.
"""

import threading
from types import FrameType

import uvicorn


class StoppingServer(uvicorn.Server):
    """A uvicorn server that sets ``stopping`` when asked to exit, before it waits for connections."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self.stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stopping.set()
        super().handle_exit(sig, frame)
