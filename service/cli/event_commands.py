"""``gaitid events list|prune``: the identifications made on live streams.

``list`` is a client of a running server (``GET /v1/events``, with its filters); ``prune`` works
on the database directly, as the other administration commands do. Each action's module is
imported only when it runs, so listing events loads no SQLAlchemy.
"""

import argparse
import json
from datetime import UTC, datetime

from cli_common.errors import CliInputError
from cli_common.tables import format_table
from service.cli.http_client import add_client_options, add_page_options, client_from_args
from service.cli.lazy import Command, add_commands
from service.cli.result_tables import number, page_note, subject_label, when

ACTIONS = (
    Command("list", "list stream events from a running server", "service.cli.event_commands:configure_list"),
    Command("prune", "delete events older than --older-than days", "service.cli.service_commands:configure_prune"),
)


def _moment(value: str | None, option: str) -> str | None:
    """``--since``/``--until`` as the server takes it: ISO 8601, a time without a zone read as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CliInputError(
            f"{option} {value!r} is not an ISO 8601 time, e.g. 2025-01-31 or 2025-01-31T08:00+01:00", code="bad_option"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _cmd_list(args: argparse.Namespace) -> int:
    filters = {
        "stream_id": args.stream,
        "subject_id": args.subject,
        "decision": args.decision,
        "since": _moment(args.since, "--since"),
        "until": _moment(args.until, "--until"),
    }
    params = {"limit": args.limit, "offset": args.offset, **{k: v for k, v in filters.items() if v is not None}}
    page = client_from_args(args).call("GET", "/v1/events", params=params)
    if args.json:
        print(json.dumps(page, indent=1))
        return 0
    rows = [
        [
            e["id"],
            when(e["started_at"]),
            e["stream"]["name"] or e["stream"]["id"],
            e["track_id"],
            e["decision"],
            subject_label(e["subject"]),
            number(e["confidence"], 3),
            number(e["score"], 4),
        ]
        for e in page["items"]
    ]
    if rows:
        headers = ["event", "seen (UTC)", "stream", "track", "decision", "subject", "confidence", "similarity"]
        print(format_table(headers, rows))
    print(page_note(page, "events"))
    return 0


def configure_list(listing: argparse.ArgumentParser) -> None:
    listing.description = (
        "List the identifications made on live streams, the newest first, from a running server\n"
        "(server and key from --server/--api-key or GAITID_SERVER/GAITID_API_KEY)."
    )
    listing.epilog = (
        "examples:\n  gaitid events list --decision match --since 2025-01-31T08:00\n"
        "  gaitid events list --stream 5b0c...77 --limit 200 --json"
    )
    listing.add_argument("--decision", choices=("match", "unknown"), help="only this decision")
    listing.add_argument("--stream", help="only this stream's events (its id)")
    listing.add_argument("--subject", help="only events that matched this subject (its id)")
    listing.add_argument("--since", help="created at or after this time (ISO 8601; UTC if no zone)")
    listing.add_argument("--until", help="created before this time (ISO 8601; UTC if no zone)")
    add_page_options(listing)
    add_client_options(listing, _cmd_list)


def configure_events(events: argparse.ArgumentParser) -> None:
    events.description = "Stream events: list them from a running server, or prune old ones from the database."
    events.epilog = (
        "examples:\n  gaitid events list --decision unknown --limit 20\n  gaitid events prune --older-than 30 --dry-run"
    )
    add_commands(events, ACTIONS, dest="action", metavar="ACTION")
