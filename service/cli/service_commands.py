"""``gaitid serve``, ``gaitid db``, ``gaitid keys`` and ``gaitid events prune``: running and administering GaitID."""

import argparse
import sys

from sqlalchemy import select

from cli_common.errors import CliInputError
from cli_common.tables import format_table
from service.auth import ROLES, issue_key, revoke_key
from service.db import audit
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import current_revision, downgrade, head_revision, require_migrated, upgrade
from service.db.tables import ApiKey
from service.settings import load_settings


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from models.registry import resolve
    from service.api.app import create_app
    from service.api.server import StoppingServer

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = load_settings().model_copy(update=overrides)
    if args.migrate:
        upgrade(settings.database_url)
    require_migrated(settings.database_url)  # one clear line now rather than a traceback from the server's start-up
    resolve(settings.model)
    print(f"gaitid: serving on http://{settings.host}:{settings.port} (docs at /docs)", file=sys.stderr, flush=True)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
    )
    StoppingServer(config, app.state.stopping).run()
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from service.jobs.celery_jobs import celery_app, settings

    require_migrated(settings.database_url)
    argv = [
        "worker",
        "--loglevel",
        args.loglevel,
        "--concurrency",
        str(args.concurrency),
        "--queues",
        settings.celery_queue,
    ]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    celery_app.worker_main(argv)
    return 0


def _cmd_db(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    if args.action == "upgrade":
        upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        if not args.revision:
            raise CliInputError("downgrade needs a revision (e.g. base, or -1)", code="bad_option")
        downgrade(url, args.revision)
    print(f"database at revision {current_revision(url) or 'none'} (code expects {head_revision(url)})")
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    require_migrated(url)
    with make_session_factory(make_engine(url))() as session:
        if args.action == "create":
            row, plaintext = issue_key(session, args.role, args.name)
            session.commit()
            print(f"created {args.role} key {row.id} ({args.name or 'unnamed'}); store it now, it is not shown again:")
            print(plaintext)
        elif args.action == "list":
            rows = session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all()
            table = [
                [r.id, r.name, r.role, r.prefix, f"{r.created_at:%Y-%m-%d}", "revoked" if r.revoked_at else ""]
                for r in rows
            ]
            print(format_table(["id", "name", "role", "prefix", "created", "state"], table))
        else:
            if not revoke_key(session, args.key_id):
                raise CliInputError(f"no active key {args.key_id}", code="key_not_found")
            audit.record(session, None, "key.revoke", f"key:{args.key_id}", via="cli")
            session.commit()
            print(f"revoked key {args.key_id}")
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from service.db.tables import utcnow
    from service.streams.retention import count_prunable, prune_events

    if args.older_than < 0:
        raise CliInputError("--older-than must be 0 or more days", code="bad_option")
    url = load_settings().database_url
    require_migrated(url)
    before = utcnow() - timedelta(days=args.older_than)
    sessions = make_session_factory(make_engine(url))
    result = count_prunable(sessions, before) if args.dry_run else prune_events(sessions, before)
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {result.events} events created before {before:%Y-%m-%d %H:%M} UTC, "
        f"{result.deliveries} webhook deliveries and {result.snapshots} snapshots"
    )
    return 0


def configure_serve(serve: argparse.ArgumentParser) -> None:
    serve.description = "Run the GaitID REST API (settings from GAITID_* variables; see deploy/.env.example)."
    serve.epilog = (
        "examples:\n  gaitid serve\n  gaitid serve --host 0.0.0.0 --port 8080 --migrate\n"
        "  GAITID_DATABASE_URL=postgresql+psycopg://gaitid@db/gaitid gaitid serve"
    )
    serve.add_argument("--host", help="bind address (default $GAITID_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default $GAITID_PORT or 8000)")
    serve.add_argument("--migrate", action="store_true", help="run `gaitid db upgrade` first")
    serve.set_defaults(handler=_cmd_serve)


def configure_worker(worker: argparse.ArgumentParser) -> None:
    worker.description = (
        "Process enroll/identify jobs from Redis (GAITID_REDIS_URL); loads the model once per process.\n"
        "Run one per GPU (or a few on a CPU host); the API must run with GAITID_JOBS=celery."
    )
    worker.epilog = "examples:\n  GAITID_JOBS=celery gaitid worker\n  gaitid worker --concurrency 2 --hostname gpu0@%h"
    worker.add_argument("--concurrency", type=int, default=1, help="worker processes (default 1: one per GPU)")
    worker.add_argument("--loglevel", default="info", choices=("debug", "info", "warning", "error"))
    worker.add_argument("--hostname", help="Celery node name (default celery@HOST)")
    worker.set_defaults(handler=_cmd_worker)


def configure_db(db: argparse.ArgumentParser) -> None:
    db.description = "Migrate the database named by GAITID_DATABASE_URL (default sqlite:///var/gaitid.db)."
    db.epilog = "examples:\n  gaitid db upgrade\n  gaitid db current\n  gaitid db downgrade base"
    db.add_argument("action", choices=("upgrade", "downgrade", "current"))
    db.add_argument("revision", nargs="?", help="target revision (upgrade: default head)")
    db.set_defaults(handler=_cmd_db)


def configure_keys(keys: argparse.ArgumentParser) -> None:
    keys.description = "Manage API keys directly in the database (how the first admin key is made)."
    keys.epilog = (
        "examples:\n  gaitid keys create --role admin --name ops\n  gaitid keys list\n  gaitid keys revoke KEY_ID"
    )
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="make a key and print it once")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--name", default="", help="what the key is for")
    actions.add_parser("list", help="list keys (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    keys.set_defaults(handler=_cmd_keys)


def configure_prune(prune: argparse.ArgumentParser) -> None:
    """``gaitid events prune`` (``service.cli.event_commands`` groups it with the client's ``events list``)."""
    prune.description = (
        "Delete stream events older than a number of days, with their webhook deliveries and\n"
        "snapshot files (GAITID_EVENT_RETENTION_DAYS does the same hourly inside the service)."
    )
    prune.epilog = "examples:\n  gaitid events prune --older-than 30 --dry-run\n  gaitid events prune --older-than 30"
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="age in days (e.g. 30, 0.5)")
    prune.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    prune.set_defaults(handler=_cmd_events)
