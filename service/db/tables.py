"""SQLAlchemy tables: the database is the source of truth; the FAISS gallery is derived from it.

Schema changes go through Alembic revisions in ``migrations/``; the app never calls ``create_all``.
"""

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Compare in UTC: SQLite would drop a ``+02:00`` offset and compare the wall-clock digits."""
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


class Subject(Base):
    """An enrolled person (or a person to be enrolled)."""

    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sequences: Mapped[list["GaitSequence"]] = relationship(back_populates="subject", passive_deletes=True)


class GaitSequence(Base):
    """One enrolled walk of a subject: its embedding under one model version."""

    __tablename__ = "sequences"
    __table_args__ = (Index("ix_sequences_model_key", "model_key"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    model_key: Mapped[str] = mapped_column(String(100))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 [256, 16], C order
    frames: Mapped[int] = mapped_column(Integer)
    quality: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(500), default="")
    track_id: Mapped[int | None] = mapped_column(Integer)
    # one sequence per enrollment job: a job redelivered to a second worker cannot enroll twice
    job_id: Mapped[str | None] = mapped_column(String(36), index=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    subject: Mapped[Subject] = relationship(back_populates="sequences")


class GalleryChange(Base):
    """Append-only log of gallery writes; its highest id is the gallery revision.

    Each API process applies the changes after its own revision, so deletes and enrollments made
    by another process reach its FAISS index without a full rebuild.
    """

    __tablename__ = "gallery_changes"

    revision: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    model_key: Mapped[str] = mapped_column(String(100), index=True)
    sequence_id: Mapped[int] = mapped_column(BigInteger)
    op: Mapped[str] = mapped_column(String(10))  # "add" | "remove"
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    """An enrollment or identification, durable from the moment it is acknowledged."""

    __tablename__ = "jobs"
    __table_args__ = (UniqueConstraint("api_key_id", "idempotency_key", name="uq_jobs_idempotency"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))  # "enroll" | "identify" | "preview" | "enroll_group"
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    stage: Mapped[str] = mapped_column(String(40), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    input_path: Mapped[str | None] = mapped_column(String(1000))
    source: Mapped[str] = mapped_column(String(1000), default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(60))
    error_message: Mapped[str | None] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(String(36))
    api_key_id: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_digest: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    # refreshed while the job runs; a "running" job whose heartbeat is old lost its worker
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class JobAdmission(Base):
    """One row that every job admission updates first, so admissions run one at a time.

    The update takes the row lock on PostgreSQL and the write lock on SQLite until the admitting
    transaction ends; the count of active jobs read after it then includes every job admitted
    before, so a burst of requests cannot all see room for themselves.
    """

    __tablename__ = "job_admission"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    admitted: Mapped[int] = mapped_column(BigInteger, default=0)  # jobs admitted so far (a counter, never read)


class ApiKey(Base):
    """A client credential; only a hash of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class AuditEntry(Base):
    """Who changed what: every write through the API or the CLI leaves one row."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    api_key_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Stream(Base):
    """A live camera stream to watch: its definition (set through the API) and its runtime status.

    The status columns are written by whichever process owns the stream; ownership is a lease
    (``owner`` + ``lease_until``) so that one process, and only one, reads each stream.
    ``revision`` goes up on every change of the definition, which tells the owner to restart it.
    """

    __tablename__ = "streams"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), default="")
    url: Mapped[str] = mapped_column(String(2000))
    max_fps: Mapped[float] = mapped_column(Float, default=10.0)
    roi: Mapped[list[float] | None] = mapped_column(JSON)  # [x1, y1, x2, y2] as fractions of the frame
    match_threshold: Mapped[float | None] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column()
    state: Mapped[str] = mapped_column(String(20), default="starting")
    fps_in: Mapped[float] = mapped_column(Float, default=0.0)
    fps_out: Mapped[float] = mapped_column(Float, default=0.0)
    frames_dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    last_frame_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    status_at: Mapped[datetime | None] = mapped_column()


class StreamEvent(Base):
    """One identification of a person seen on a stream (``update`` > 0: a refinement of it).

    The integer id grows with every event, so Server-Sent Events clients resume with Last-Event-ID.
    """

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_stream_id_id", "stream_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(Integer)
    update: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime] = mapped_column()
    decision: Mapped[str] = mapped_column(String(20), index=True)
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id", ondelete="SET NULL"), index=True)
    score: Mapped[float | None] = mapped_column(Float)  # the similarity (mean per-part cosine)
    confidence: Mapped[float | None] = mapped_column(Float)  # null for models without a calibration
    threshold: Mapped[float] = mapped_column(Float)
    good_frames: Mapped[int] = mapped_column(Integer)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_key: Mapped[str] = mapped_column(String(100))
    snapshot_path: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Webhook(Base):
    """An HTTP endpoint that receives events, signed with HMAC-SHA256 under its own secret."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))  # kept in clear: signing needs it
    description: Mapped[str] = mapped_column(String(200), default="")
    stream_id: Mapped[str | None] = mapped_column(ForeignKey("streams.id", ondelete="CASCADE"))
    decisions: Mapped[list[str] | None] = mapped_column(JSON)  # None: every decision
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event owed to one webhook: written with the event, retried with back-off until delivered."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column()
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # one entry per attempt
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
