"""The background services of a process that runs streams: the stream manager, webhook deliveries and,
when configured, event retention.

The API process runs them with in-process jobs; with Celery, each worker process does (and the
API, with ``GAITID_STREAMS=false``, only serves streams' definitions and events).
"""

from service.context import ServiceContext
from service.streams.manager import StreamManager, process_owner_id
from service.streams.retention import event_retention
from service.streams.webhooks import WebhookDispatcher


class StreamServices:
    def __init__(self, ctx: ServiceContext) -> None:
        owner = process_owner_id()
        self.manager = StreamManager(ctx, owner)
        self.webhooks = WebhookDispatcher(ctx.sessions, ctx.settings, owner=owner)
        days = ctx.settings.event_retention_days
        self.retention = event_retention(ctx.sessions, days) if days > 0 else None

    def start(self) -> None:
        self.manager.start()
        self.webhooks.start()
        if self.retention is not None:
            self.retention.start()

    def stop(self) -> None:
        self.manager.stop()
        self.webhooks.stop()
        if self.retention is not None:
            self.retention.stop()
