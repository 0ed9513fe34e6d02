"""``gaitid jobs list|show|cancel``: the enrollments, identifications and previews a GaitID server runs.

Every upload becomes a job; ``gaitid enroll`` and ``gaitid identify`` follow theirs, and name it
when they stop waiting (Ctrl-C, ``--wait``) so that it can be followed or cancelled here.
"""

import argparse
import json
from typing import Any

from cli_common.tables import format_table
from service.cli.http_client import add_client_action, add_page_options, client_from_args
from service.cli.result_tables import enroll_line, fields, identify_lines, page_note, truncated_warning, when

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def _cmd_list(args: argparse.Namespace) -> int:
    params = {"limit": args.limit, "offset": args.offset, **({"status": args.status} if args.status else {})}
    page = client_from_args(args).call("GET", "/v1/jobs", params=params)
    if args.json:
        print(json.dumps(page, indent=1))
        return 0
    rows = [
        [
            j["id"],
            j["kind"],
            j["status"],
            j["stage"],
            f"{100 * j['progress']:.0f}%",
            j["subject_id"] or "-",
            when(j["created_at"]),
            (j["error"] or {}).get("code", "-"),
        ]
        for j in page["items"]
    ]
    if rows:
        print(format_table(["id", "kind", "status", "stage", "progress", "subject", "created (UTC)", "error"], rows))
    print(page_note(page, "jobs"))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    job = client_from_args(args).call("GET", f"/v1/jobs/{args.job_id}")
    if args.json:
        print(json.dumps(job, indent=1))
        return 0
    print(_summary(job))
    result = job["result"]
    if result is None:
        return 0
    print()
    if job["kind"] == "identify":
        if warning := truncated_warning(result):
            print(warning)
        print(identify_lines(result))
    elif job["kind"] == "enroll":
        print(enroll_line(result))
    else:  # a preview's tracks and a group enrollment's subjects: pictures and lists, read best as JSON
        print(f"result: see `gaitid jobs show {job['id']} --json`")
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    job = client_from_args(args).call("DELETE", f"/v1/jobs/{args.job_id}")
    print(json.dumps(job, indent=1) if args.json else f"cancelled {job['kind']} job {job['id']}")
    return 0


def _summary(job: dict[str, Any]) -> str:
    error = job["error"] or {}
    return fields(
        [
            ("id", job["id"]),
            ("kind", job["kind"]),
            ("status", job["status"]),
            ("stage", f"{job['stage']} ({100 * job['progress']:.0f}%)"),
            ("subject", job["subject_id"]),
            ("created", when(job["created_at"])),
            ("started", when(job["started_at"])),
            ("finished", when(job["finished_at"])),
            ("error", f"[{error['code']}] {error['message']}" if error else None),
        ]
    )


def configure_jobs(jobs: argparse.ArgumentParser) -> None:
    jobs.description = (
        "The jobs of a GaitID server (enrollments, identifications, previews): list them, show one with\n"
        "its result, or cancel one that is queued or running. Server and key from --server/--api-key\n"
        "or GAITID_SERVER/GAITID_API_KEY."
    )
    jobs.epilog = (
        "examples:\n  gaitid jobs list --status running\n  gaitid jobs show 7d1e...90\n"
        "  gaitid jobs cancel 7d1e...90\n  gaitid jobs list --status failed --limit 10 --json"
    )
    actions = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = add_client_action(
        actions, "list", "list jobs, the newest first", "gaitid jobs list --status failed", _cmd_list
    )
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this state")
    add_page_options(listing)
    show = add_client_action(
        actions, "show", "show a job: its state, its error or its result", "gaitid jobs show 7d1e...90", _cmd_show
    )
    show.add_argument("job_id")
    cancel = add_client_action(
        actions, "cancel", "cancel a queued or running job", "gaitid jobs cancel 7d1e...90", _cmd_cancel
    )
    cancel.add_argument("job_id")
