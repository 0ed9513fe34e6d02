"""Service settings: environment variables ``GAITID_*``, optionally a settings file.

Every field below is read from ``GAITID_<FIELD>`` (upper case). ``GAITID_SETTINGS_FILE`` may name
a dotenv-style file with the same variables; real environment variables win over the file.
``deploy/.env.example`` documents each variable; a test keeps the two in step.
"""

import os
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline import defaults

# A comma-separated list of networks in CIDR form (``10.0.0.0/8,fd12:3456::/48``); empty: none.
Networks = Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode]


class Settings(BaseSettings):
    """Everything an operator may change without touching code."""

    model_config = SettingsConfigDict(env_prefix="GAITID_", extra="ignore")

    database_url: str = Field(
        "sqlite:///var/gaitid.db", description="SQLAlchemy URL: sqlite:///PATH or postgresql+psycopg://..."
    )
    host: str = Field("127.0.0.1", description="address `gaitid serve` binds to")
    port: int = Field(8000, ge=1, le=65535, description="port `gaitid serve` listens on")
    data_dir: Path = Field(
        Path("var/data"),
        description="job inputs (removed when a job ends), job artefacts (removed with the job), enrolled walks' "
        "contact sheets and stream snapshots",
    )
    model: str = Field("default", description="registry name of the gait model used for new embeddings")
    embed_backend: Literal["onnx", "torch"] = Field("onnx", description="runtime for the gait model")
    embed_device: str = Field("cpu", description="cpu or cuda")
    detector_weights: Path = Field(
        defaults.DETECTOR_WEIGHTS,
        description="person detector: the NanoDet ONNX file of pipeline.fetch_weights, or any ultralytics YOLO weights",
    )
    pose_model: Path = Field(defaults.POSE_MODEL, description="pose segmenter model")
    segmenter: Literal["pose", "bgsub", "grabcut", "yolo"] = Field(
        defaults.SEGMENTER, description="silhouette segmenter"
    )
    detector_device: str = Field(
        defaults.DETECTOR_DEVICE, description="where the person detector runs: cpu, cuda or cuda:N"
    )
    detector_image_size: int = Field(
        defaults.DETECTOR_IMAGE_SIZE, ge=128, le=2048, description="detector input size in pixels"
    )
    detect_every: int = Field(
        defaults.DETECT_EVERY,
        ge=1,
        le=10,
        description="run the detector on every k-th frame and track in between (NanoDet only; every frame "
        "while two or more people are in view, one is lost, or someone moves fast)",
    )
    pipeline_cache: bool = Field(
        defaults.KEEP_TRACKS,
        description="keep each processed file's tracks (silhouettes) under GAITID_CACHE_DIR, keyed by content, "
        "so the same file is never processed twice; off by default: it stores biometric data beyond the job",
    )
    min_good_frames: int = Field(
        defaults.MIN_GOOD_FRAMES, ge=5, le=1000, description="good frames a track needs to be identified"
    )
    job_artefacts: bool = Field(
        True,
        description="keep what a job shows under DATA_DIR/artefacts: each track's thumbnail and contact sheet, and "
        "for identify the video with names on the boxes (one more decoding pass); they go with the job. Each "
        "enrolled walk's contact sheet is kept with its sequence (DATA_DIR/sequences)",
    )
    job_retention_days: float = Field(
        7,
        ge=0,
        description="delete finished jobs (results, artefacts, a preview's silhouettes) older than this many days, "
        "checked hourly by the API; 0 keeps them forever",
    )
    max_upload_mb: float = Field(500.0, gt=0, description="largest accepted upload (413 above)")
    max_video_seconds: float = Field(
        defaults.MAX_DURATION_S, gt=0, description="longest accepted video (422 video_too_long)"
    )
    url_allow_networks: Networks = Field(
        (),
        description="networks (CIDR, comma-separated) a video URL may lead to besides public addresses; by default "
        "loopback, private, link-local, multicast and reserved addresses are refused (422 url_not_allowed), and "
        "cloud metadata endpoints always are",
    )
    url_fetch_seconds: float = Field(
        300.0, gt=0, description="longest the download of a video given by URL may take (422 source_unreachable)"
    )
    stream_allow_networks: Networks = Field(
        (),
        description="networks (CIDR, comma-separated) camera streams may be on; empty: anywhere (streams are "
        "registered by admin keys only); cloud metadata endpoints are always refused",
    )
    max_active_jobs: int = Field(16, ge=1, description="queued + running jobs before new ones get 429")
    job_workers: int = Field(1, ge=1, le=64, description="in-process job threads")
    job_max_attempts: int = Field(3, ge=1, description="runs of a job interrupted by crashes before it fails")
    max_wait_seconds: float = Field(
        300.0, ge=0, description="longest a request's ?wait= holds it (a longer ask waits this long, then 202)"
    )
    match_threshold: float | None = Field(
        None,
        ge=-1,
        le=1,
        description="confidence (similarity for uncalibrated models) needed for a match; default: the card's",
    )
    threshold_far: str = Field(
        "far_1e-3",
        description="which model-card threshold to use: far_1e-3 (0.1% false accepts against a 50-subject gallery; "
        "the default, since real galleries are larger and false accepts grow with them) or far_1e-2",
    )
    top_k: int = Field(5, ge=1, le=100, description="candidates returned per track")
    index_exact_max: int = Field(4096, ge=256, description="gallery size up to which search is exact")
    index_scan_threads: int = Field(
        2, ge=1, le=64, description="threads one search of the compressed index (above index_exact_max) scans on"
    )
    jobs: Literal["inprocess", "celery"] = Field("inprocess", description="where enroll/identify work runs")
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker (GAITID_JOBS=celery)")
    celery_queue: str = Field("gaitid-jobs", description="Celery queue the API sends jobs to and workers read")
    job_lease_seconds: float = Field(
        30.0, gt=0, description="a running job without a heartbeat for this long lost its worker and may be redone"
    )
    job_redelivery_seconds: int = Field(
        300, ge=5, description="Celery: a job not acknowledged this long after delivery is delivered again"
    )
    streams: bool = Field(
        True,
        description="run the live streams and webhook deliveries in this process (the API process with "
        "GAITID_JOBS=inprocess, the workers with celery); each stream is owned by one process at a time",
    )
    streams_per_process: int = Field(
        4, ge=1, le=256, description="most streams one process reads at once; more streams need more processes"
    )
    stream_lease_seconds: float = Field(
        15.0, ge=2, description="a stream whose owner has not renewed its lease this long is taken over by another"
    )
    stream_track_lost_seconds: float = Field(
        2.0, gt=0, description="a person not seen on a stream for this long has left; their track ends"
    )
    stream_min_good_frames: int = Field(
        10,
        ge=5,
        le=1000,
        description="good frames a person on a stream needs before the first answer (fewer than for uploads: "
        "an answer while the person is still in view matters; later answers use more frames)",
    )
    stream_refine_frames: int = Field(
        5, ge=1, description="good frames more a track needs before it is identified again while in view"
    )
    snapshots: bool = Field(True, description="save a JPEG of the person with each stream event under DATA_DIR")
    event_retention_days: float = Field(
        0,
        ge=0,
        description="delete stream events (with their webhook deliveries and snapshots) older than this many days, "
        "checked hourly by every process that runs streams; 0 keeps them forever (or run `gaitid events prune`)",
    )
    webhook_max_attempts: int = Field(
        12, ge=1, le=50, description="deliveries tried before a webhook event fails (12: about 18 minutes of retries)"
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60, description="time a webhook endpoint has to answer")
    shutdown_grace_seconds: float = Field(
        10.0,
        gt=0,
        description="on stop, requests still open after this long are cut (event streams end at once; clients "
        "reconnect); acknowledged work is in the database and resumes at the next start",
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    log_json: bool = Field(True, description="one JSON object per log line")

    @field_validator("url_allow_networks", "stream_allow_networks", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        """``GAITID_URL_ALLOW_NETWORKS=10.0.0.0/8, 192.168.1.0/24`` → two networks; empty → none."""
        return tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value

    @field_validator("match_threshold", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``GAITID_MATCH_THRESHOLD=`` (as in .env.example) means: use the model card's threshold."""
        return None if value == "" else value


def load_settings() -> Settings:
    """Settings from the environment, with ``GAITID_SETTINGS_FILE`` as a lower-priority source."""
    settings_file = os.environ.get("GAITID_SETTINGS_FILE")
    if settings_file:
        return Settings(_env_file=settings_file)  # type: ignore[call-arg]
    return Settings()


# Read outside these settings: by the models and pipeline packages (which do not depend on the
# service) and by the command-line client.
OTHER_VARIABLES = (
    "GAITID_SETTINGS_FILE",
    "GAITID_MODELS_DIR",
    "GAITID_CACHE_DIR",
    "GAITID_SERVER",  # read by the `gaitid enroll/identify` client
    "GAITID_API_KEY",
)


def documented_variables() -> list[str]:
    """Every environment variable the product reads, for docs and the .env.example check."""
    return [*OTHER_VARIABLES, *(f"GAITID_{name.upper()}" for name in Settings.model_fields)]
