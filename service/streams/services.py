"""The background services of a process that runs streams: the stream manager and webhook deliveries.

The API process runs them with in-process jobs; with Celery, each worker process does (and the
API, with ``GAITID_STREAMS=false``, only serves streams' definitions and events).
"""

from service.context import ServiceContext
from service.streams.manager import StreamManager, process_owner_id
from service.streams.webhooks import WebhookDispatcher


class StreamServices:
    def __init__(self, ctx: ServiceContext) -> None:
        owner = process_owner_id()
        self.manager = StreamManager(ctx, owner)
        self.webhooks = WebhookDispatcher(ctx.sessions, ctx.settings, owner=owner)

    def start(self) -> None:
        self.manager.start()
        self.webhooks.start()

    def stop(self) -> None:
        self.manager.stop()
        self.webhooks.stop()
