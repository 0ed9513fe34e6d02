"""``gaitid enroll`` and ``gaitid identify``: send a video to a running GaitID server and print the answer.

They upload a video (or send a URL), follow the job with progress (``service.cli.job_progress``)
and print the answer as a table (``--json`` for the job as the server returned it). Ctrl-C while
waiting leaves the job running and prints how to follow or cancel it (exit status 130).

``enroll --external-id`` creates the subject when no subject has that id, and deletes the subject
it created if the enrollment then fails, so that a refused video leaves no empty subject behind.
The enrollment API needs the subject first (``POST /v1/subjects/{id}/enrollments``), so creating it
afterwards is not possible. A job still running when the command stops (Ctrl-C, ``--wait`` ran
out) keeps its subject: it may yet enroll the walk.
"""

import argparse
import json
import sys
from typing import Any

from cli_common.errors import CliInputError
from service.cli.http_client import Client, add_server_options, client_from_args
from service.cli.job_progress import JobFailedError, Progress, finished, submit
from service.cli.result_tables import enroll_line, identify_lines, truncated_warning


def _subject_for(client: Client, args: argparse.Namespace) -> tuple[str, bool]:
    """The subject to enroll into, and whether this run created it (and must remove it if the enrollment fails)."""
    if args.subject:
        return args.subject, False
    found = client.call("GET", "/v1/subjects", params={"external_id": args.external_id})
    if found["items"]:
        return found["items"][0]["id"], False
    body = {"external_id": args.external_id, "name": args.name or args.external_id}
    created = client.call("POST", "/v1/subjects", json=body)
    print(f"created subject {created['id']} ({args.external_id})", file=sys.stderr)
    return created["id"], True


def _remove_created(client: Client, subject_id: str) -> None:
    """Delete the subject this run created for an enrollment that failed; the enrollment's error stays the one shown."""
    try:
        client.call("DELETE", f"/v1/subjects/{subject_id}")
    except CliInputError as error:
        print(f"gaitid: could not remove subject {subject_id}, created for this enrollment: {error}", file=sys.stderr)
    else:
        print(f"removed subject {subject_id} again: the enrollment failed", file=sys.stderr)


def _cmd_enroll(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    progress = Progress(sys.stderr)
    subject_id, created = _subject_for(client, args)
    path = f"/v1/subjects/{subject_id}/enrollments"
    try:
        job = submit(client, path, args.video, progress, {}, args.track_id)
    except (CliInputError, KeyboardInterrupt):  # refused or interrupted upload: no job holds the subject
        if created:
            _remove_created(client, subject_id)
        raise
    try:
        job = finished(client, job, args.wait, progress)
    except JobFailedError:
        if created:
            _remove_created(client, subject_id)
        raise
    print(json.dumps(job, indent=1) if args.json else enroll_line(job["result"]))
    return 0


def _cmd_identify(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    progress = Progress(sys.stderr)
    params: dict[str, Any] = {} if args.threshold is None else {"threshold": args.threshold}
    job = submit(client, "/v1/identify", args.video, progress, params)
    job = finished(client, job, args.wait, progress)
    if warning := truncated_warning(job["result"]):
        print(warning, file=sys.stderr)
    print(json.dumps(job, indent=1) if args.json else identify_lines(job["result"]))
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file, or http(s) URL the server should fetch (cameras: /v1/streams)")
    add_server_options(parser)
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for the result (default 900)")
    parser.add_argument("--json", action="store_true", help="print the job as JSON")


_WAITING = (
    "Progress goes to stderr: one line redrawn on a terminal, one line per stage in a pipe or log.\n"
    "Ctrl-C while waiting stops the command (exit status 130) but not the job: it prints the job's id\n"
    "with `gaitid jobs show ID` to follow it and `gaitid jobs cancel ID` to cancel it."
)


def configure_enroll(enroll: argparse.ArgumentParser) -> None:
    enroll.description = (
        "Upload a video of one person walking (or pick a track with --track-id) and enroll it.\n"
        "With --external-id the subject is found, or created, by your own id; a subject created here is\n"
        f"deleted again if the enrollment fails.\n{_WAITING}"
    )
    enroll.epilog = (
        "examples:\n  gaitid enroll walk.mp4 --external-id emp-42 --name 'Jane Doe'\n"
        "  gaitid enroll group.mp4 --subject 3f2c...e1 --track-id 2 --server http://gaitid:8000"
    )
    _add_common(enroll)
    who = enroll.add_mutually_exclusive_group(required=True)
    who.add_argument("--subject", help="the subject's id")
    who.add_argument("--external-id", help="your id for the subject (created if new)")
    enroll.add_argument("--name", help="name for a subject created by --external-id")
    enroll.add_argument("--track-id", type=int, help="which walking person, when the video shows several")
    enroll.set_defaults(handler=_cmd_enroll)


def configure_identify(identify: argparse.ArgumentParser) -> None:
    identify.description = (
        "Upload a video (or send a URL) and print, per person: match (subject, confidence), unknown\n"
        "(with the closest subject) or insufficient (too few good frames). The confidence is the model's\n"
        "calibrated probability of the same person; the similarity is the raw mean per-part cosine.\n"
        f"A video that ends early (damaged, cut off) gets a warning above the table.\n{_WAITING}"
    )
    identify.epilog = "examples:\n  gaitid identify probe.mp4\n  gaitid identify https://cams.local/clip.mp4 --json"
    _add_common(identify)
    identify.add_argument(
        "--threshold",
        type=float,
        help="confidence needed for a match, 0..1 (default: the model card's; the similarity for models "
        "without a calibration)",
    )
    identify.set_defaults(handler=_cmd_identify)
