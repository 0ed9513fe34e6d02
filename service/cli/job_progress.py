"""Sending a video to the server and following its job, with progress from the first second.

The upload shows its bytes sent, then the job its stage and progress, polled without ``?wait`` so
that nothing stays silent while the server works. On a terminal one line is redrawn in place; in a
pipe or a log, where ``\\r`` redraws run together, one plain line is printed per stage instead.
Ctrl-C while waiting leaves the job running on the server (it is the user's work, possibly long)
and prints its id with the commands that follow or cancel it.
"""

import io
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from cli_common.errors import CliInputError
from service.cli.http_client import Client
from service.cli.result_tables import tracks_table

_POLL_S = 0.5
_RUNNING = ("queued", "running")


class JobFailedError(CliInputError):
    """The job ended without a result (failed or cancelled): its own error code and message."""


class Progress:
    """How far a command is, on stderr: redrawn in place on a terminal, one line per stage elsewhere."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.live = stream.isatty()
        # a line longer than the terminal wraps, and ``\r`` then redraws only its last part
        self.columns = shutil.get_terminal_size().columns - 1
        self.stage = ""  # the stage shown last: a pipe gets a line only when it changes
        self.width = 0  # characters drawn last on a terminal, blanked by the next drawing

    def show(self, stage: str, detail: str = "") -> None:
        if self.live:
            line = (f"{stage}  {detail}" if detail else stage)[: self.columns]
            self.stream.write("\r" + line.ljust(self.width))
            self.stream.flush()
            self.width = len(line)
        elif stage != self.stage:
            print(stage, file=self.stream, flush=True)
        self.stage = stage

    def clear(self) -> None:
        """End the display before other output: a terminal's redrawn line is blanked."""
        if self.live and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
        self.stage, self.width = "", 0


class UploadFile(io.FileIO):
    """A file being uploaded that reports, each time httpx reads a piece to send, how many bytes have gone."""

    def __init__(self, path: Path, on_read: Callable[[int], None]) -> None:
        super().__init__(path, "rb")
        self.on_read = on_read

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size) or b""
        if chunk:
            self.on_read(self.tell())
        return chunk


def submit(
    client: Client, path: str, video: str, progress: Progress, params: dict[str, Any], track_id: int | None = None
) -> dict[str, Any]:
    """Send ``video`` (a file, uploaded with progress, or a URL the server fetches) to ``path`` without
    ``?wait``: the job as the server accepted it, queued."""
    try:
        if video.startswith(("http://", "https://")):
            progress.show(f"asking {urlsplit(video).hostname} for the video")  # the URL may hold a password
            body = {"url": video, **({"track_id": track_id} if track_id is not None else {})}
            return client.call("POST", path, params=params, json=body)
        return _upload(client, path, Path(video), progress, params, track_id)
    finally:
        progress.clear()


def _upload(
    client: Client, path: str, file: Path, progress: Progress, params: dict[str, Any], track_id: int | None
) -> dict[str, Any]:
    if not file.is_file():
        raise CliInputError(f"no such file: {file}", code="video_not_found")
    size = file.stat().st_size
    stage = f"uploading {file.name} ({_size(size)})"

    def sent(done: int) -> None:
        progress.show(stage, f"{_size(done)} sent, {100 * done / max(size, 1):.0f}%")

    data = {"track_id": str(track_id)} if track_id is not None else {}
    sent(0)
    with UploadFile(file, sent) as upload:
        files = {"file": (file.name, upload, "application/octet-stream")}
        return client.call("POST", path, params=params, files=files, data=data)


def finished(client: Client, job: dict[str, Any], wait_s: float, progress: Progress) -> dict[str, Any]:
    """Poll the job, showing its stage and progress, until it succeeds (its final state is returned),
    fails (:class:`JobFailedError`) or ``wait_s`` passes (``timeout``, the job left running)."""
    deadline = time.monotonic() + wait_s
    try:
        while job["status"] in _RUNNING:
            progress.show(f"job {job['id']}: {job['stage']}", f"{100 * job['progress']:.0f}%")
            if time.monotonic() >= deadline:
                raise CliInputError(  # not a JobFailedError: the job goes on, and may yet succeed
                    f"job {job['id']} still {job['status']} after {wait_s:g} s; {_follow(job['id'])}", code="timeout"
                )
            time.sleep(_POLL_S)
            job = client.call("GET", f"/v1/jobs/{job['id']}")
    except KeyboardInterrupt:
        progress.clear()
        left = f"gaitid: job {job['id']} is left {job['status']} on the server (Ctrl-C stops only this command)"
        print(f"{left}; {_follow(job['id'])}", file=sys.stderr)
        raise
    finally:
        progress.clear()
    if job["status"] != "succeeded":
        error = job.get("error") or {}
        if error.get("details", {}).get("tracks"):
            print(tracks_table(error["details"]["tracks"]), file=sys.stderr)
        cancelled = job["status"] == "cancelled"
        message = error.get("message") or ("the job was cancelled" if cancelled else "the job failed")
        raise JobFailedError(message, code=error.get("code") or ("job_cancelled" if cancelled else "job_failed"))
    return job


def _follow(job_id: str) -> str:
    return f"follow it with `gaitid jobs show {job_id}`, cancel it with `gaitid jobs cancel {job_id}`"


def _size(count: int) -> str:
    """Bytes in decimal units, as file managers and upload limits (GAITID_MAX_UPLOAD_MB) count them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"
