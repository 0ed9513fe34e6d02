"""Request and response bodies (pydantic), kept apart from the database tables."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.answers import EnrollResult, IdentifyResult
from service.auth import Role


class ErrorDetail(BaseModel):
    code: str = Field(examples=["multiple_tracks"])
    message: str = Field(examples=["the video shows 2 walking people (tracks 1, 3); pick one with track_id"])
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    error: ErrorDetail
    job: "JobOut | None" = None


class SubjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(None, min_length=1, max_length=200, examples=["emp-0042"])
    name: str = Field("", max_length=200, examples=["Jane Doe"])
    metadata: dict[str, Any] = Field(default_factory=dict, examples=[{"team": "night shift"}])


class SubjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, max_length=200)
    metadata: dict[str, Any] | None = None


class SubjectOut(BaseModel):
    id: str
    external_id: str | None
    name: str
    metadata: dict[str, Any]
    sequences: int = Field(description="enrolled walks under the service's current model")
    created_at: datetime
    updated_at: datetime


class SequenceOut(BaseModel):
    id: int
    model: str
    frames: int
    quality: float
    source: str
    track_id: int | None
    created_at: datetime


class JobError(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class JobOut(BaseModel):
    id: str
    kind: Literal["enroll", "identify"]
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    stage: str
    progress: float = Field(ge=0, le=1)
    subject_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: IdentifyResult | EnrollResult | None = Field(
        None, description="the job's result once it succeeded: an identify or an enroll result (null before)"
    )
    error: JobError | None = None


class UrlInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=1000, examples=["https://cams.example/clips/door-1.mp4"])
    track_id: int | None = Field(None, ge=0, description="enrollment only: which walking person to enroll")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field("", max_length=200, examples=["door-camera-service"])


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="the secret; shown only once")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


# The error answers the /v1 routes document in the OpenAPI description; any of them may meet the machine's
# faults: 503 database_unavailable / queue_unavailable (retry after Retry-After), 507 insufficient_storage.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 415, 422, 429, 503, 507)
}
