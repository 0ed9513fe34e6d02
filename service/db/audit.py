"""The audit log: one row per write, in the same transaction as the write itself."""

from typing import Any

from sqlalchemy.orm import Session

from service.db.tables import AuditEntry


def record(session: Session, key_id: str | None, action: str, target: str = "", **details: Any) -> None:
    session.add(AuditEntry(api_key_id=key_id, action=action, target=target, details=details))
