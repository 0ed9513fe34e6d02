"""Request and response bodies for live streams and their events."""

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline.decode import NETWORK_PREFIXES, is_network_source

MIN_ROI_SIDE = 0.05
ROI_DESCRIPTION = (
    "region of interest [x1, y1, x2, y2] as fractions of the frame (0..1); only people inside it are "
    "identified, and only it is processed"
)


class _StreamChecks(BaseModel):
    """Checks shared by create and update: a network stream URL (never a local file) and a sane ROI."""

    @field_validator("url", check_fields=False)
    @classmethod
    def _network_url(cls, url: str | None) -> str | None:
        if url is not None and not is_network_source(url):
            raise ValueError(f"the stream URL must start with one of {', '.join(NETWORK_PREFIXES)}")
        return url

    @field_validator("roi", check_fields=False)
    @classmethod
    def _fractional_roi(cls, roi: list[float] | None) -> list[float] | None:
        spans = (roi[::2], roi[1::2]) if roi is not None else ()  # (x1, x2), (y1, y2)
        if not all(low >= 0 and low + MIN_ROI_SIDE <= high <= 1 for low, high in spans):
            raise ValueError(
                f"roi must be [x1, y1, x2, y2] with 0 <= x1 < x2 <= 1, 0 <= y1 < y2 <= 1, "
                f"and each side at least {MIN_ROI_SIDE} of the frame"
            )
        return roi

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        """null means "clear" only for roi and match_threshold; anywhere else it is a mistake, not "unchanged"."""
        nulls = sorted(
            f for f in ("url", "name", "max_fps", "enabled") if f in self.model_fields_set and getattr(self, f) is None
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null")
        return self


class StreamCreate(_StreamChecks):
    """A camera stream to watch (admin)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2000,
        examples=["rtsp://viewer:secret@cam-lobby.local:554/stream1"],
        description="answers show it with the password replaced by ***",
    )
    name: str = Field("", max_length=200, examples=["lobby entrance"], description="display name; may be empty")
    max_fps: float = Field(10.0, gt=0, le=60, description="frames per second taken from the stream at most")
    roi: list[float] | None = Field(None, min_length=4, max_length=4, description=ROI_DESCRIPTION)
    match_threshold: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="this stream's open-set threshold (a confidence for calibrated models); default: the service's",
    )
    enabled: bool = Field(True, description="read the stream now; false: keep it defined but idle")


class StreamUpdate(_StreamChecks):
    """Changes to a stream: only the fields present change; null clears roi and match_threshold only."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None, min_length=1, max_length=2000, description="new stream URL (rtsp://, http(s):// ...); not null"
    )
    name: str | None = Field(None, max_length=200, description="new display name; not null")
    max_fps: float | None = Field(
        None, gt=0, le=60, description="frames per second taken from the stream at most; not null"
    )
    roi: list[float] | None = Field(
        None, min_length=4, max_length=4, description=ROI_DESCRIPTION + "; null: the whole frame"
    )
    match_threshold: float | None = Field(
        None, ge=-1, le=1, description="this stream's open-set threshold; null: the service's again"
    )
    enabled: bool | None = Field(None, description="start (true) or stop (false) reading the stream; not null")


class StreamStatus(BaseModel):
    """How the stream is doing, as last reported by the process that reads it."""

    state: Literal["starting", "connecting", "connected", "reconnecting", "error", "disabled", "stopped", "unowned"] = (
        Field(
            description="connected: frames are arriving; reconnecting: the source failed and is retried with back-off; "
            "error: the pipeline cannot start (retried); stopped: its process shut down, another takes it over; "
            "unowned: its process stopped answering, another takes it over when it has room"
        )
    )
    connected: bool = Field(description="true exactly when state is connected")
    fps_in: float = Field(description="frames per second the source delivers")
    fps_out: float = Field(description="frames per second the pipeline processes")
    frames_dropped: int = Field(description="frames skipped because the pipeline was busy")
    last_frame_at: datetime | None = Field(description="when the latest frame arrived (UTC); null before the first one")
    last_error: str | None = Field(
        description="why reading or processing last failed (password hidden); null when the last report had none"
    )
    owner: str | None = Field(description="the process reading the stream (host:pid:tag); null when none holds it")
    updated_at: datetime | None = Field(
        description="when this status was last written (UTC); null if no process has taken the stream yet"
    )


class StreamOut(BaseModel):
    """A camera stream: its definition and its status."""

    id: str = Field(description="the stream's id (a UUID), assigned by the service")
    name: str = Field(description="display name; may be empty")
    url: str = Field(description="the stream URL, with any password replaced by ***")
    max_fps: float = Field(description="frames per second taken from the stream at most")
    roi: list[float] | None = Field(description=ROI_DESCRIPTION + "; null: the whole frame")
    match_threshold: float | None = Field(description="this stream's open-set threshold; null: the service's")
    enabled: bool = Field(description="whether the stream is to be read")
    created_at: datetime = Field(description="when the stream was registered (UTC)")
    updated_at: datetime = Field(description="when the definition last changed through the API (UTC)")
    status: StreamStatus = Field(description="the stream's runtime status")
