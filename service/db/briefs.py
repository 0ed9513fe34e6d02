"""Short descriptions of rows as answers show them (a subject in an identification, an event, a webhook body)."""

from typing import Any

from sqlalchemy.orm import Session

from service.db.tables import Subject


def subject_brief(session: Session, subject_id: str | None) -> dict[str, Any] | None:
    """``{id, external_id, name}``, or None when there is no such subject (any more)."""
    subject = session.get(Subject, subject_id) if subject_id else None
    if subject is None:
        return None
    return {"id": subject.id, "external_id": subject.external_id, "name": subject.name}
