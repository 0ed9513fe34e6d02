"""``gaitid enroll`` and ``gaitid identify``: a small client for a running GaitID server.

They upload a video (or send a URL), wait for the job with a progress line, and print the answer
as a table (``--json`` for the raw response). Server and key come from ``--server``/``--api-key``
or ``GAITID_SERVER``/``GAITID_API_KEY``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from cli_common.errors import CliInputError
from cli_common.tables import format_table

DEFAULT_SERVER = "http://127.0.0.1:8000"
_POLL_S = 1.0


class Client:
    def __init__(self, server: str, api_key: str | None, timeout_s: float) -> None:
        if not api_key:
            raise CliInputError("an API key is needed: --api-key or GAITID_API_KEY", code="missing_api_key")
        self.http = httpx.Client(base_url=server.rstrip("/"), headers={"X-API-Key": api_key}, timeout=timeout_s)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise CliInputError(f"cannot reach {self.http.base_url}: {error}", code="server_unreachable") from None

    def checked(self, response: httpx.Response) -> dict[str, Any]:
        """The JSON body of a 2xx answer; the server's error code and message otherwise."""
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            tracks = error.get("details", {}).get("tracks")
            if tracks:
                print(_tracks_table(tracks), file=sys.stderr)
            raise CliInputError(error.get("message", response.text[:300]), code=error.get("code", "http_error"))
        return body

    def finished(self, job: dict[str, Any], wait_s: float) -> dict[str, Any]:
        """Poll a 202 job until it ends (or ``wait_s`` passes), drawing a progress line."""
        deadline = time.monotonic() + wait_s
        drawn = False
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            print(f"\r{job['stage']:<10} {100 * job['progress']:5.1f}%", end="", file=sys.stderr, flush=True)
            drawn = True
            time.sleep(_POLL_S)
            job = self.checked(self.request("GET", f"/v1/jobs/{job['id']}"))
        if drawn:
            print("\r" + " " * 20 + "\r", end="", file=sys.stderr)
        if job["status"] in ("queued", "running"):
            raise CliInputError(f"job {job['id']} still {job['status']} after {wait_s:.0f} s", code="timeout")
        if job["status"] != "succeeded":
            error = job.get("error") or {}
            if error.get("details", {}).get("tracks"):
                print(_tracks_table(error["details"]["tracks"]), file=sys.stderr)
            raise CliInputError(error.get("message", job["status"]), code=error.get("code", job["status"]))
        return job


def _tracks_table(tracks: list[dict[str, Any]]) -> str:
    rows = [
        [t["track_id"], f"{t['start_s']:.1f}–{t['end_s']:.1f} s", t["good_frames"], t.get("box"), t["reason"]]
        for t in tracks
    ]
    return format_table(["track", "time", "good frames", "box (x1,y1,x2,y2)", "verdict"], rows)


def _input(video: str, track_id: int | None) -> dict[str, Any]:
    if video.startswith(("http://", "https://")):
        return {"json": {"url": video, **({"track_id": track_id} if track_id is not None else {})}}
    path = Path(video)
    if not path.is_file():
        raise CliInputError(f"no such file: {video}", code="video_not_found")
    data = {"track_id": str(track_id)} if track_id is not None else {}
    return {"files": {"file": (path.name, path.open("rb"), "application/octet-stream")}, "data": data}


def _client(args: argparse.Namespace) -> Client:
    return Client(args.server, args.api_key, timeout_s=args.wait + 60)


def _subject_id(client: Client, args: argparse.Namespace) -> str:
    if args.subject:
        return args.subject
    found = client.checked(client.request("GET", "/v1/subjects", params={"external_id": args.external_id}))
    if found["items"]:
        return found["items"][0]["id"]
    body = {"external_id": args.external_id, "name": args.name or args.external_id}
    created = client.checked(client.request("POST", "/v1/subjects", json=body))
    print(f"created subject {created['id']} ({args.external_id})", file=sys.stderr)
    return created["id"]


def _cmd_enroll(args: argparse.Namespace) -> int:
    client = _client(args)
    subject_id = _subject_id(client, args)
    response = client.request(
        "POST",
        f"/v1/subjects/{subject_id}/enrollments",
        params={"wait": min(args.wait, 30)},
        **_input(args.video, args.track_id),
    )
    job = client.finished(client.checked(response), args.wait)
    if args.json:
        print(json.dumps(job, indent=1))
        return 0
    track = job["result"]["track"]
    print(
        f"enrolled subject {subject_id}: sequence {job['result']['sequence_id']}, "
        f"{track['good_frames']} good frames (model {job['result']['model']})"
    )
    return 0


def _cmd_identify(args: argparse.Namespace) -> int:
    client = _client(args)
    params: dict[str, Any] = {"wait": min(args.wait, 30)}
    if args.threshold is not None:
        params["threshold"] = args.threshold
    response = client.request("POST", "/v1/identify", params=params, **_input(args.video, None))
    job = client.finished(client.checked(response), args.wait)
    if args.json:
        print(json.dumps(job, indent=1))
        return 0
    tracks = job["result"]["tracks"]
    if not tracks:
        print("no person found in the video")
        return 0
    rows = []
    for t in tracks:
        closest = t["candidates"][0]["subject"] if t["candidates"] else None
        rows.append(
            [
                t["track_id"],
                f"{t['start_s']:.1f}–{t['end_s']:.1f} s",
                t["good_frames"],
                t["decision"],
                _subject_label(t["subject"]) if t["subject"] else f"- (closest: {_subject_label(closest)})",
                _number(t["confidence"], 3),
                _number(t["score"], 4),
            ]
        )
    print(format_table(["track", "time", "good frames", "decision", "subject", "confidence", "similarity"], rows))
    print(f"(threshold {job['result']['threshold']:.4g}, model {job['result']['model']})")
    return 0


def _subject_label(subject: dict[str, Any] | None) -> str:
    subject = subject or {}
    return str(subject.get("external_id") or subject.get("name") or subject.get("id") or "-")


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", help="video file, or http(s) URL the server should fetch (cameras: /v1/streams)")
    parser.add_argument("--server", default=os.environ.get("GAITID_SERVER", DEFAULT_SERVER), help="server URL")
    parser.add_argument("--api-key", default=os.environ.get("GAITID_API_KEY"), help="API key (or GAITID_API_KEY)")
    parser.add_argument("--wait", type=float, default=900, help="seconds to wait for the result (default 900)")
    parser.add_argument("--json", action="store_true", help="print the job as JSON")


def configure_enroll(enroll: argparse.ArgumentParser) -> None:
    enroll.description = (
        "Upload a video of one person walking (or pick a track with --track-id) and enroll it.\n"
        "With --external-id the subject is found, or created, by your own id."
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
        "calibrated probability of the same person; the similarity is the raw mean per-part cosine."
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
