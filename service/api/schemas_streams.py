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
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2000,
        examples=["rtsp://viewer:secret@cam-lobby.local:554/stream1"],
        description="answers show it with the password replaced by ***",
    )
    name: str = Field("", max_length=200, examples=["lobby entrance"])
    max_fps: float = Field(10.0, gt=0, le=60, description="frames per second taken from the stream at most")
    roi: list[float] | None = Field(None, min_length=4, max_length=4, description=ROI_DESCRIPTION)
    match_threshold: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="this stream's open-set threshold (a confidence for calibrated models); default: the service's",
    )
    enabled: bool = True


class StreamUpdate(_StreamChecks):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=2000)
    name: str | None = Field(None, max_length=200)
    max_fps: float | None = Field(None, gt=0, le=60)
    roi: list[float] | None = Field(None, min_length=4, max_length=4, description=ROI_DESCRIPTION)
    match_threshold: float | None = Field(None, ge=-1, le=1)
    enabled: bool | None = None


class StreamStatus(BaseModel):
    state: Literal["starting", "connecting", "connected", "reconnecting", "error", "disabled", "stopped", "unowned"] = (
        Field(
            description="connected: frames are arriving; reconnecting: the source failed and is retried with back-off; "
            "error: the pipeline cannot start (retried); stopped: its process shut down, another takes it over; "
            "unowned: its process stopped answering, another takes it over when it has room"
        )
    )
    connected: bool
    fps_in: float = Field(description="frames per second the source delivers")
    fps_out: float = Field(description="frames per second the pipeline processes")
    frames_dropped: int = Field(description="frames skipped because the pipeline was busy")
    last_frame_at: datetime | None
    last_error: str | None
    owner: str | None = Field(description="the process reading the stream")
    updated_at: datetime | None


class StreamOut(BaseModel):
    id: str
    name: str
    url: str
    max_fps: float
    roi: list[float] | None
    match_threshold: float | None
    enabled: bool
    created_at: datetime
    updated_at: datetime
    status: StreamStatus
