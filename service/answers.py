"""What recognition answers look like: the typed results jobs store, the API returns and events carry.

One set of models for every way an answer leaves the service (``GET /v1/jobs/{id}``, the waited-for
``POST /v1/identify``, ``GET /v1/events``, Server-Sent Events, webhook bodies, the CLI's tables), so
OpenAPI documents each field once and no path builds its own dictionary.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag

from pipeline.summary import TrackSummary

SCORE_DESCRIPTION = (
    "similarity of the walk to the subject's best enrolled sequence: the mean per-part cosine after the "
    "model's matching transform, -1..1; comparable within one model version only"
)
CONFIDENCE_DESCRIPTION = (
    "calibrated probability (0..1) that it is the same person, were a match and a non-match equally likely "
    "beforehand; null for models without a calibration"
)
CANDIDATES_DESCRIPTION = (
    "the closest subjects, best first: by score, except that a walk longer than the model card's ranking "
    "windows is ordered by each subject's best window (its most comparable stretch); score and confidence "
    "stay the whole walk's, and the decision reads the first candidate's"
)
THRESHOLD_DESCRIPTION = (
    "the open-set threshold the decision used: on the confidence scale for calibrated models (a match needs "
    "confidence ≥ threshold), else on the similarity"
)


THUMBNAIL_DESCRIPTION = (
    "URL of a picture of the person mid-track (JPEG, 192 px high), a job artefact; null when none was kept"
)
SHEET_DESCRIPTION = (
    "URL of the track's silhouettes as the gait model sees them, evenly spaced in a grid (PNG), a job artefact; "
    "null when none was kept"
)


class SubjectBrief(BaseModel):
    """A subject as an answer names it; null where the subject has been deleted since."""

    id: str = Field(description="the subject's id (GET /v1/subjects/{id})")
    external_id: str | None = Field(description="the caller's own identifier, if one was given")
    name: str = Field(description="display name")


class CandidateAnswer(BaseModel):
    """One gallery subject close to the walk."""

    subject: SubjectBrief | None = Field(description="the subject (null if deleted since the answer)")
    score: float = Field(description=SCORE_DESCRIPTION)
    confidence: float | None = Field(description=CONFIDENCE_DESCRIPTION)
    window_score: float | None = Field(
        None,
        description="the similarity of the walk's best ranking window to the subject, which ordered this "
        "candidate (a walk longer than the model card's ranking windows); null when the whole walk's score did",
    )


class TrackAnswer(TrackSummary):
    """One person of an identify video: the track and who it is."""

    decision: Literal["match", "unknown", "insufficient"] = Field(
        description="match: the best subject reaches the threshold; unknown: nobody does; "
        "insufficient: the track has too few good frames to decide (see reason)"
    )
    subject: SubjectBrief | None = Field(description="the matched subject (decision match), else null")
    score: float | None = Field(description="the best candidate's score; " + SCORE_DESCRIPTION)
    confidence: float | None = Field(description="the best candidate's confidence; " + CONFIDENCE_DESCRIPTION)
    candidates: list[CandidateAnswer] = Field(description=CANDIDATES_DESCRIPTION + " (top_k of them)")
    thumbnail: str | None = Field(None, description=THUMBNAIL_DESCRIPTION)
    contact_sheet: str | None = Field(None, description=SHEET_DESCRIPTION)


class IdentifyResult(BaseModel):
    """The result of an identify job: every track of the video, with its answer."""

    model: str = Field(description="the gait model that embedded the walks, name@version")
    threshold: float = Field(description=THRESHOLD_DESCRIPTION)
    frames: int = Field(description="video frames processed")
    truncated: bool = Field(description="the video ended early (damaged or cut off): later frames were not seen")
    tracks: list[TrackAnswer] = Field(description="every person tracked, usable or not")
    annotated_video: str | None = Field(
        None,
        description="URL of the video with each person's box and answer drawn on it (WebM, at most 640 px wide, "
        "15 frames/s) when the request asked for it (?annotate=true); null otherwise, when the service keeps no "
        "job artefacts, or when the video could not be rendered",
    )


class PreviewTrack(TrackSummary):
    """One person of a previewed video, with pictures to tell who it is."""

    thumbnail: str | None = Field(None, description=THUMBNAIL_DESCRIPTION)
    contact_sheet: str | None = Field(None, description=SHEET_DESCRIPTION)


class PreviewResult(BaseModel):
    """The result of a preview job: every track of the video, to pick whom to enroll (POST /v1/enrollments)."""

    frames: int = Field(description="video frames processed")
    truncated: bool = Field(description="the video ended early (damaged or cut off): later frames were not seen")
    tracks: list[PreviewTrack] = Field(description="every person tracked, usable or not (only usable ones enroll)")


class UploadedWalk(BaseModel):
    """An enrollment from uploaded silhouettes: there was no video, so no track."""

    track_id: None = Field(None, description="always null: the silhouettes were uploaded, not tracked")
    good_frames: int = Field(description="silhouettes enrolled")
    quality: float = Field(ge=0, le=1, description="always 1: uploaded silhouettes are taken as they are")


class EnrollResult(BaseModel):
    """The result of an enroll job: the new sequence and the walk it came from."""

    subject_id: str = Field(description="the subject the walk was added to")
    sequence_id: int = Field(description="the stored sequence (GET /v1/subjects/{id}/sequences)")
    model: str = Field(description="the gait model that embedded the walk, name@version")
    track: TrackSummary | UploadedWalk = Field(description="the enrolled track, or the uploaded silhouettes")


class GroupEnrollResult(BaseModel):
    """The result of a group enrollment: one enrollment per person, all stored together."""

    enrolled: list[EnrollResult] = Field(description="each person's enrollment, in the request's order")


class StreamBrief(BaseModel):
    """A stream as an event names it."""

    id: str = Field(description="the stream's id (GET /v1/streams/{id})")
    name: str = Field(description="the stream's name (empty if the stream was deleted since)")


class IdentificationEvent(BaseModel):
    """A person identified (or not) on a stream; the same JSON in ``GET /v1/events``, over Server-Sent
    Events and in webhook bodies."""

    id: int = Field(description="the event's id, increasing (Last-Event-ID on Server-Sent Events)")
    type: Literal["identification"] = Field(description="what happened; the one kind of event so far")
    stream: StreamBrief = Field(description="the stream the person was seen on")
    track_id: int = Field(description="the tracker's number for the person on this stream")
    update: int = Field(description="0: first identification of the track; n: the n-th changed answer since")
    started_at: datetime = Field(description="when the person was first seen")
    ended_at: datetime = Field(description="the latest frame the answer used")
    decision: Literal["match", "unknown"] = Field(
        description="match: the best subject reaches the threshold; unknown: nobody does"
    )
    subject: SubjectBrief | None = Field(description="the matched subject (decision match), else null")
    score: float | None = Field(description="the best candidate's score; " + SCORE_DESCRIPTION)
    confidence: float | None = Field(description="the best candidate's confidence; " + CONFIDENCE_DESCRIPTION)
    threshold: float = Field(description=THRESHOLD_DESCRIPTION)
    good_frames: int = Field(description="silhouettes of the person the answer used")
    candidates: list[CandidateAnswer] = Field(description=CANDIDATES_DESCRIPTION)
    model: str = Field(description="the gait model that embedded the walk, name@version")
    snapshot: str | None = Field(description="path of the person's snapshot (GET, image/jpeg), if one was kept")
    created_at: datetime = Field(description="when the event was recorded")


def _result_kind(value: Any) -> str | None:
    """Which result a stored job result is, told by its fields (results stored by older versions carry no tag)."""
    if isinstance(value, BaseModel):
        return _RESULT_TAGS.get(type(value))
    if not isinstance(value, dict):
        return None
    if "enrolled" in value:
        return "enroll_group"
    if "subject_id" in value:
        return "enroll"
    return "identify" if "threshold" in value else "preview"


_RESULT_TAGS: dict[type, str] = {}

JobResult = Annotated[
    Annotated[IdentifyResult, Tag("identify")]
    | Annotated[EnrollResult, Tag("enroll")]
    | Annotated[PreviewResult, Tag("preview")]
    | Annotated[GroupEnrollResult, Tag("enroll_group")],
    Discriminator(_result_kind),
]
_RESULT_TAGS.update(
    {IdentifyResult: "identify", EnrollResult: "enroll", PreviewResult: "preview", GroupEnrollResult: "enroll_group"}
)
