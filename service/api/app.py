"""The FastAPI application: routes, error shape, middleware, and the start-up sequence.

Start-up refuses to serve a database that is not migrated (the app never creates tables),
rebuilds the gallery index from the database, loads the gait model, and re-queues jobs that a
previous run left unfinished.
"""

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import (
    routes_enrollments,
    routes_events,
    routes_jobs,
    routes_keys,
    routes_ops,
    routes_streams,
    routes_subjects,
    routes_webhooks,
)
from service.api.docs import install_docs
from service.api.errors import install_error_handlers
from service.api.middleware import BodySizeLimit, RequestContext
from service.console import install_console
from service.context import ServiceContext
from service.db.migrate import require_migrated
from service.jobs.retention import job_retention
from service.jobs.runner import InProcessRunner, JobRunner
from service.logs import configure_logging
from service.settings import Settings, load_settings
from service.streams.services import StreamServices

DESCRIPTION = """Gait recognition as a service: enroll people from videos of them walking, then ask who walks
in a new video. Every answer per person is `match` (with the subject and score), `unknown`, or
`insufficient` (not enough good frames). Authenticate with `X-API-Key: gid_...`. Errors always have
the shape `{"error": {"code", "message", "details"}}`."""


def _job_runner(ctx: ServiceContext) -> JobRunner:
    if ctx.settings.jobs == "celery":
        from service.jobs.celery_jobs import CeleryQueue

        return CeleryQueue(ctx)
    return InProcessRunner(ctx, ctx.settings.job_workers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level, settings.log_json)
        require_migrated(settings.database_url)
        ctx = ServiceContext.create(settings)
        ctx.load()
        runner = _job_runner(ctx)
        app.state.ctx, app.state.jobs = ctx, runner
        runner.start()
        # with Celery the workers read the streams; the API only serves their definitions and events
        streams = StreamServices(ctx) if settings.streams and settings.jobs == "inprocess" else None
        if streams:
            streams.start()
        days = settings.job_retention_days
        retention = job_retention(ctx.sessions, settings.data_dir, days) if days > 0 else None
        if retention:
            retention.start()
        try:
            yield
        finally:
            if retention:
                retention.stop()
            if streams:
                streams.stop()
            runner.stop()
            ctx.close()

    app = FastAPI(
        title="GaitID",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by service.api.docs, with local assets
        redoc_url=None,
        openapi_tags=[
            {"name": "subjects", "description": "people and their enrolled walks"},
            {"name": "identify", "description": "who walks in a video"},
            {"name": "jobs", "description": "long work: status, progress, result, cancel"},
            {"name": "streams", "description": "live camera streams and the identification events they produce"},
            {"name": "webhooks", "description": "stream events pushed to HTTP endpoints, signed (admin)"},
            {"name": "keys", "description": "API keys (admin)"},
            {"name": "operations", "description": "health, readiness, metrics"},
        ],
    )
    app.state.stopping = threading.Event()  # set as the server begins to stop: see service.api.server
    install_error_handlers(app)
    install_docs(app)
    install_console(app)
    for module in (
        routes_subjects,
        routes_enrollments,
        routes_jobs,
        routes_streams,
        routes_events,
        routes_webhooks,
        routes_keys,
        routes_ops,
    ):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=int(settings.max_upload_mb * 1e6))
    app.add_middleware(RequestContext)
    return app
