"""Request and response bodies (pydantic), kept apart from the database tables."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.answers import JobResult
from service.auth import Role


class ErrorDetail(BaseModel):
    """What went wrong: a stable code for programs, a sentence for people, and facts to act on."""

    code: str = Field(
        examples=["multiple_tracks"],
        description="stable machine-readable error code, e.g. invalid_request, subject_not_found, multiple_tracks",
    )
    message: str = Field(
        examples=["the video shows 2 walking people (tracks 1, 3); pick one with track_id"],
        description="what went wrong, in words for people; may change between versions",
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="facts particular to the code, e.g. problems for invalid_request, tracks for multiple_tracks; "
        "often empty",
    )


class ErrorBody(BaseModel):
    """The body of every error answer (4xx, 5xx) but /readyz's 503, which is a Health."""

    error: ErrorDetail = Field(description="the error")
    job: "JobOut | None" = Field(
        None,
        description="the job, when a request that waited for it (?wait) found it failed or cancelled; absent otherwise",
    )


class SubjectCreate(BaseModel):
    """A new person for the gallery; their walks are enrolled afterwards (POST .../enrollments)."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        examples=["emp-0042"],
        description="your own identifier for the person, unique across subjects (409 external_id_taken); null: none",
    )
    name: str = Field("", max_length=200, examples=["Jane Doe"], description="display name; may be empty")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        examples=[{"team": "night shift"}],
        description="any JSON object of your own, stored and returned as given",
    )


class SubjectUpdate(BaseModel):
    """Changes to a subject: only the fields present change."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="new external id, unique across subjects (409 external_id_taken); null removes it",
    )
    name: str | None = Field(None, max_length=200, description="new display name; null leaves it unchanged")
    metadata: dict[str, Any] | None = Field(
        None, description="replaces the whole metadata object (no merge); null leaves it unchanged"
    )


class SubjectOut(BaseModel):
    """A person of the gallery."""

    id: str = Field(description="the subject's id (a UUID), assigned by the service")
    external_id: str | None = Field(description="your own identifier for the person; null if none was given")
    name: str = Field(description="display name; may be empty")
    metadata: dict[str, Any] = Field(description="the JSON object you stored with the subject")
    sequences: int = Field(description="enrolled walks under the service's current model")
    created_at: datetime = Field(description="when the subject was created (UTC)")
    updated_at: datetime = Field(
        description="when the subject's own fields last changed (UTC); enrollments do not count"
    )


class SequenceOut(BaseModel):
    """One enrolled walk of a subject: its embedding under one model version."""

    id: int = Field(description="the sequence's id (DELETE /v1/subjects/{id}/sequences/{sequence_id})")
    model: str = Field(
        description="the gait model that embedded the walk, name@version; only the service's current model matches"
    )
    frames: int = Field(description="silhouettes (good frames) the embedding was made from")
    quality: float = Field(
        description="0..1: the track's good frames / frames the person was seen in; 1 for uploaded silhouettes"
    )
    source: str = Field(description="the uploaded file's name or the video URL (password replaced by ***)")
    track_id: int | None = Field(description="the enrolled person's track in the video; null for uploaded silhouettes")
    created_at: datetime = Field(description="when the walk was enrolled (UTC)")
    contact_sheet: str | None = Field(
        None,
        description="URL of the walk's silhouettes in a grid (PNG), kept with the sequence; null when the service "
        "keeps no pictures (GAITID_JOB_ARTEFACTS=false) or the walk was enrolled before it kept them",
    )


class JobError(BaseModel):
    """Why a job failed."""

    code: str = Field(description="stable machine-readable error code, e.g. no_walking_person, multiple_tracks")
    message: str = Field(description="what went wrong, in words for people")
    details: dict[str, Any] = Field(
        default_factory=dict, description="facts particular to the code, e.g. tracks for multiple_tracks; often empty"
    )


class JobOut(BaseModel):
    """Long work (an enrollment, an identification, a preview, a group enrollment): its state, progress and,
    once ended, its result or error."""

    id: str = Field(description="the job's id (GET /v1/jobs/{id})")
    kind: Literal["enroll", "identify", "preview", "enroll_group"] = Field(
        description="what the job does: enroll one walk, identify everyone in a video, preview a video's tracks, "
        "or enroll several previewed tracks"
    )
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] = Field(
        description="queued and running jobs are active; succeeded, failed and cancelled ones have ended"
    )
    stage: str = Field(
        description="the step under way: queued, starting, pipeline, embed, match (identify), render (pictures), "
        "store (group enrollment), then done, failed or cancelled"
    )
    progress: float = Field(ge=0, le=1, description="share of the work done, 0..1 (1 once succeeded)")
    subject_id: str | None = Field(
        description="the subject an enroll job adds a walk to; null for the other kinds (a group enrollment names "
        "its subjects in its result)"
    )
    created_at: datetime = Field(description="when the job was accepted (UTC)")
    started_at: datetime | None = Field(
        description="when a worker (last) started it (UTC); null while it has not started"
    )
    finished_at: datetime | None = Field(description="when it succeeded, failed or was cancelled (UTC); null before")
    result: JobResult | None = Field(None, description="the job's result once it succeeded, by kind (null before)")
    error: JobError | None = Field(None, description="why the job failed; null unless status is failed")


class UrlInput(BaseModel):
    """The JSON body of enroll, identify and preview: a video to fetch instead of an upload."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=1000,
        examples=["https://cams.example/clips/door-1.mp4"],
        description="http(s) URL of the video; the service downloads it",
    )
    track_id: int | None = Field(None, ge=0, description="enrollment only: which walking person to enroll")


class KeyCreate(BaseModel):
    """A new API key."""

    model_config = ConfigDict(extra="forbid")

    role: Role = Field(
        description="what the key may do: read; enroll or identify (each includes read); admin (everything)"
    )
    name: str = Field(
        "", max_length=200, examples=["door-camera-service"], description="a note for people: who uses it"
    )


class KeyOut(BaseModel):
    """An API key, without its secret."""

    id: str = Field(description="the key's id (DELETE /v1/keys/{id} revokes it)")
    name: str = Field(description="the note given at creation; may be empty")
    role: str = Field(description="admin, enroll, identify or read")
    prefix: str = Field(description="the key's public part (gid_<prefix>_...), to tell keys apart without the secret")
    created_at: datetime = Field(description="when the key was created (UTC)")
    revoked_at: datetime | None = Field(description="when the key was revoked (UTC); null while it is active")


class KeyCreated(KeyOut):
    """A new API key, with its secret (the only answer that shows it)."""

    key: str = Field(description="the secret; shown only once")


class Health(BaseModel):
    """Liveness (/healthz) or readiness (/readyz) of the service."""

    status: Literal["ok", "unavailable"] = Field(description="ok, or unavailable (readiness only, answered 503)")
    checks: dict[str, str] = Field(
        default_factory=dict,
        description="readiness only: database, gallery and model, each 'ok...' or why not; empty for liveness",
    )


# The error answers the /v1 routes document in the OpenAPI description; any of them may meet the machine's
# faults: 503 database_unavailable / queue_unavailable (retry after Retry-After), 507 insufficient_storage.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 415, 422, 429, 503, 507)
}
# A job's routes: the error answers, plus 202 with the job while it runs (POST ...?wait=SECONDS).
JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    202: {"model": JobOut, "description": "accepted; poll the job (GET /v1/jobs/{id})"},
}
