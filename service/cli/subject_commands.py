"""``gaitid subjects list|show|rename|delete``: the enrolled people on a GaitID server.

Tables by default, the server's JSON with ``--json``. Deleting a subject removes its enrolled
walks (biometric data) for good, so ``delete`` names what it would remove and asks for ``--yes``.
"""

import argparse
import json

from cli_common.errors import CliInputError
from cli_common.tables import format_table
from service.cli.http_client import add_client_action, add_page_options, client_from_args
from service.cli.result_tables import fields, number, page_note, subject_label, when


def _cmd_list(args: argparse.Namespace) -> int:
    params = {"limit": args.limit, "offset": args.offset, "name": args.name, "external_id": args.external_id}
    page = client_from_args(args).call("GET", "/v1/subjects", params={k: v for k, v in params.items() if v is not None})
    if args.json:
        print(json.dumps(page, indent=1))
        return 0
    rows = [
        [s["id"], s["external_id"] or "-", s["name"] or "-", s["sequences"], when(s["created_at"])]
        for s in page["items"]
    ]
    if rows:
        print(format_table(["id", "external id", "name", "sequences", "created (UTC)"], rows))
    print(page_note(page, "subjects"))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    subject = client.call("GET", f"/v1/subjects/{args.subject_id}")
    if args.json:
        print(json.dumps(subject, indent=1))
        return 0
    print(
        fields(
            [
                ("id", subject["id"]),
                ("external id", subject["external_id"]),
                ("name", subject["name"] or None),
                ("metadata", json.dumps(subject["metadata"]) if subject["metadata"] else None),
                ("sequences", subject["sequences"]),
                ("created", when(subject["created_at"])),
                ("updated", when(subject["updated_at"])),
            ]
        )
    )
    sequences = client.call("GET", f"/v1/subjects/{args.subject_id}/sequences", params={"limit": 50})
    rows = [
        [
            s["id"],
            s["model"],
            s["frames"],
            number(s["quality"], 2),
            s["source"],
            "-" if s["track_id"] is None else s["track_id"],
            when(s["created_at"]),
        ]
        for s in sequences["items"]
    ]
    if rows:
        print()
        print(format_table(["sequence", "model", "frames", "quality", "source", "track", "enrolled (UTC)"], rows))
        print(page_note(sequences, "sequences"))
    return 0


def _cmd_rename(args: argparse.Namespace) -> int:
    subject = client_from_args(args).call("PATCH", f"/v1/subjects/{args.subject_id}", json={"name": args.name})
    print(json.dumps(subject, indent=1) if args.json else f"subject {subject['id']} is now named {subject['name']!r}")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    subject = client.call("GET", f"/v1/subjects/{args.subject_id}")
    walks = subject["sequences"]
    what = f"subject {subject['id']} ({subject_label(subject)}) with {walks} enrolled walk{'' if walks == 1 else 's'}"
    if not args.yes:
        raise CliInputError(f"this deletes {what} for good; add --yes to do it", code="confirmation_needed")
    client.call("DELETE", f"/v1/subjects/{args.subject_id}")
    print(json.dumps(subject, indent=1) if args.json else f"deleted {what}")
    return 0


def configure_subjects(subjects: argparse.ArgumentParser) -> None:
    subjects.description = (
        "The subjects (enrolled people) of a GaitID server: list, show with their enrolled walks, rename\n"
        "or delete them. Server and key from --server/--api-key or GAITID_SERVER/GAITID_API_KEY."
    )
    subjects.epilog = (
        "examples:\n  gaitid subjects list --external-id emp-42\n  gaitid subjects show 3f2c...e1\n"
        "  gaitid subjects rename 3f2c...e1 'Jane Doe'\n  gaitid subjects delete 3f2c...e1 --yes\n"
        "  gaitid subjects list --limit 500 --json"
    )
    actions = subjects.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = add_client_action(
        actions, "list", "list subjects, the oldest first", "gaitid subjects list --name jane", _cmd_list
    )
    listing.add_argument("--name", help="only subjects whose name contains this (any case)")
    listing.add_argument("--external-id", help="only the subject with this id of yours")
    add_page_options(listing)
    show = add_client_action(
        actions, "show", "show a subject and its enrolled walks", "gaitid subjects show 3f2c...e1", _cmd_show
    )
    show.add_argument("subject_id")
    rename = add_client_action(
        actions,
        "rename",
        "give a subject a new display name",
        "gaitid subjects rename 3f2c...e1 'Jane Doe'",
        _cmd_rename,
    )
    rename.add_argument("subject_id")
    rename.add_argument("name", help="the new name")
    delete = add_client_action(
        actions,
        "delete",
        "delete a subject and all its enrolled walks",
        "gaitid subjects delete 3f2c...e1 --yes",
        _cmd_delete,
    )
    delete.add_argument("subject_id")
    delete.add_argument("--yes", action="store_true", help="yes, delete it: the walks cannot be restored")
