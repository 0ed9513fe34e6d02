"""How the client commands print the server's answers: tables of tracks, subjects, jobs and events.

The server answers JSON (``--json`` prints it as it came); people read these tables instead. They
live apart from the commands because ``gaitid jobs show`` prints a finished identification with the
same table as ``gaitid identify``.
"""

from collections.abc import Sequence
from typing import Any

from cli_common.tables import format_table


def tracks_table(tracks: list[dict[str, Any]]) -> str:
    """The tracks of a refused enrollment (``multiple_tracks``, ``no_walking_person``, ...): which to pick, and why."""
    rows = [
        [t["track_id"], f"{t['start_s']:.1f}–{t['end_s']:.1f} s", t["good_frames"], t.get("box"), t["reason"]]
        for t in tracks
    ]
    return format_table(["track", "time", "good frames", "box (x1,y1,x2,y2)", "verdict"], rows)


def identify_lines(result: dict[str, Any]) -> str:
    """An identification's answer per walker, and the threshold and model that gave it."""
    tracks = result["tracks"]
    if not tracks:
        return "no person found in the video"
    rows = []
    for t in tracks:
        closest = t["candidates"][0]["subject"] if t["candidates"] else None
        rows.append(
            [
                t["track_id"],
                f"{t['start_s']:.1f}–{t['end_s']:.1f} s",
                t["good_frames"],
                t["decision"],
                subject_label(t["subject"]) if t["subject"] else f"- (closest: {subject_label(closest)})",
                number(t["confidence"], 3),
                number(t["score"], 4),
            ]
        )
    table = format_table(["track", "time", "good frames", "decision", "subject", "confidence", "similarity"], rows)
    return f"{table}\n(threshold {result['threshold']:.4g}, model {result['model']})"


def enroll_line(result: dict[str, Any]) -> str:
    """What an enrollment stored: the sequence, its good frames and the model."""
    return (
        f"enrolled subject {result['subject_id']}: sequence {result['sequence_id']}, "
        f"{result['track']['good_frames']} good frames (model {result['model']})"
    )


def truncated_warning(result: dict[str, Any]) -> str | None:
    """The warning for a video that ended early, whose answer covers only the frames before the cut."""
    if not result.get("truncated"):
        return None
    return (
        f"gaitid: warning: the video ended early (damaged or cut off) after {result['frames']} frames; "
        "people walking later in it were not seen"
    )


def subject_label(subject: dict[str, Any] | None) -> str:
    """A subject as people know it: the caller's own id, else the name, else the service's id."""
    subject = subject or {}
    return str(subject.get("external_id") or subject.get("name") or subject.get("id") or "-")


def number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def when(timestamp: str | None) -> str:
    """An ISO 8601 time from the server (UTC) to the second, as a table shows it."""
    return "-" if not timestamp else timestamp[:19].replace("T", " ")


def fields(pairs: Sequence[tuple[str, object]]) -> str:
    """One ``name  value`` line per field, the values aligned: one record (a subject, a job) shown whole."""
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name.ljust(width)}  {'-' if value is None else value}" for name, value in pairs)


def page_note(page: dict[str, Any], noun: str) -> str:
    """Which rows of how many a list showed, and the option that shows the next ones."""
    shown, total, offset = len(page["items"]), page["total"], page["offset"]
    if not shown:
        return f"no {noun}" if not offset else f"no {noun} at offset {offset} (total {total})"
    note = f"{noun} {offset + 1}–{offset + shown} of {total}"
    return note + (f" (next: --offset {offset + shown})" if offset + shown < total else "")
