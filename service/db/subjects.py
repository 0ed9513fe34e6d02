"""Writes to the gallery of people, each in one transaction with its audit entry and gallery change.

The routes (and anything else that edits subjects) call these instead of composing rows, change-log
entries, audit records and commits themselves: a subject's sequences leave every process's gallery
because the same transaction that deletes them logs their removal (:mod:`service.gallery.sync`).
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db import audit
from service.db.tables import GaitSequence, Subject, new_id
from service.errors import ConflictError, NotFoundError
from service.gallery.sync import embedding_to_bytes, record_change


def sequence_counts(session: Session, subject_ids: Sequence[str], model_key: str) -> dict[str, int]:
    """Enrolled sequences under ``model_key`` per subject, in one query however many subjects."""
    if not subject_ids:
        return {}
    rows = session.execute(
        select(GaitSequence.subject_id, func.count())
        .where(GaitSequence.subject_id.in_(list(subject_ids)), GaitSequence.model_key == model_key)
        .group_by(GaitSequence.subject_id)
    ).all()
    counts = {subject_id: 0 for subject_id in subject_ids}
    counts.update({subject_id: int(count) for subject_id, count in rows})
    return counts


def add_subject(
    session: Session, key_id: str | None, external_id: str | None, name: str, metadata: dict[str, Any]
) -> Subject:
    """A new subject in the caller's transaction, with its audit entry. A taken ``external_id`` raises 409
    ``external_id_taken``; if another transaction took it meanwhile, the flush fails and so does the
    caller's transaction (nothing of it is kept)."""
    if external_id is not None and session.scalar(select(Subject.id).where(Subject.external_id == external_id)):
        raise ConflictError(f"external_id {external_id!r} is taken", code="external_id_taken")
    subject = Subject(id=new_id(), external_id=external_id, name=name, attributes=metadata)
    session.add(subject)
    try:
        session.flush()
    except IntegrityError:
        raise ConflictError(f"external_id {external_id!r} is taken", code="external_id_taken") from None
    audit.record(session, key_id, "subject.create", f"subject:{subject.id}", external_id=external_id)
    return subject


def create_subject(
    session: Session, key_id: str | None, external_id: str | None, name: str, metadata: dict[str, Any]
) -> Subject:
    subject = add_subject(session, key_id, external_id, name, metadata)
    _commit_unique(session, external_id)
    return subject


def update_subject(session: Session, key_id: str | None, subject: Subject, changes: dict[str, Any]) -> Subject:
    """Apply ``changes`` (any of external_id, name, metadata; as sent, unset fields left out)."""
    if "external_id" in changes:
        subject.external_id = changes["external_id"]
    if changes.get("name") is not None:
        subject.name = changes["name"]
    if changes.get("metadata") is not None:
        subject.attributes = changes["metadata"]
    audit.record(session, key_id, "subject.update", f"subject:{subject.id}", fields=sorted(changes))
    _commit_unique(session, subject.external_id)
    return subject


def add_sequence(
    session: Session,
    key_id: str | None,
    subject_id: str,
    model_key: str,
    embedding: np.ndarray,
    *,
    frames: int,
    quality: float,
    source: str,
    track_id: int | None,
    job_id: str | None,
) -> GaitSequence:
    """Enroll one walk into the caller's transaction: the sequence, its gallery change and the audit entry."""
    sequence = GaitSequence(
        subject_id=subject_id,
        model_key=model_key,
        embedding=embedding_to_bytes(embedding),
        frames=frames,
        quality=quality,
        source=source[:500],
        track_id=track_id,
        job_id=job_id,
    )
    session.add(sequence)
    session.flush()
    record_change(session, model_key, sequence.id, "add")
    audit.record(session, key_id, "enroll", f"subject:{subject_id}", sequence_id=sequence.id)
    return sequence


def delete_subject(session: Session, key_id: str | None, subject: Subject) -> list[int]:
    """Delete the subject and its sequences under every model version; returns the sequences' ids."""
    sequences = session.execute(
        select(GaitSequence.id, GaitSequence.model_key).where(GaitSequence.subject_id == subject.id)
    ).all()
    for sequence_id, model_key in sequences:
        record_change(session, model_key, sequence_id, "remove")
    session.delete(subject)
    audit.record(session, key_id, "subject.delete", f"subject:{subject.id}", sequences=len(sequences))
    session.commit()
    return [sequence_id for sequence_id, _ in sequences]


def delete_sequence(session: Session, key_id: str | None, subject_id: str, sequence_id: int) -> None:
    sequence = session.get(GaitSequence, sequence_id)
    if sequence is None or sequence.subject_id != subject_id:
        raise NotFoundError(f"subject {subject_id} has no sequence {sequence_id}", code="sequence_not_found")
    record_change(session, sequence.model_key, sequence.id, "remove")
    session.delete(sequence)
    audit.record(session, key_id, "sequence.delete", f"subject:{subject_id}", sequence_id=sequence_id)
    session.commit()


def _commit_unique(session: Session, external_id: str | None) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"external_id {external_id!r} is taken", code="external_id_taken") from None
