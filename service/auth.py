"""API keys and roles.

A key looks like ``gid_<prefix>_<secret>``; the prefix finds the row, only a SHA-256 of the whole
key is stored (keys are 190-bit random, so a slow hash adds nothing), and comparison is constant
time. Roles are nested sets of permissions: ``admin`` ⊃ ``enroll``/``identify`` ⊃ ``read``.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import audit
from service.db.tables import ApiKey, utcnow

Role = Literal["admin", "enroll", "identify", "read"]
Permission = Literal["read", "enroll", "identify", "admin"]
ROLES: tuple[Role, ...] = ("admin", "enroll", "identify", "read")
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "identify": frozenset({"read", "identify"}),
    "enroll": frozenset({"read", "enroll"}),
    "admin": frozenset({"read", "identify", "enroll", "admin"}),
}
KEY_PREFIX = "gid"


@dataclass(frozen=True)
class Principal:
    """The caller behind a request."""

    key_id: str
    name: str
    role: str

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS.get(self.role, frozenset())


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, role: Role, name: str = "") -> tuple[ApiKey, str]:
    """A new key row (added to ``session``, not committed) and the plaintext, shown once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKey(name=name, role=role, prefix=prefix, secret_hash=_digest(plaintext))
    session.add(row)
    return row, plaintext


def issue_key(session: Session, role: Role, name: str = "", via: str = "cli") -> tuple[ApiKey, str]:
    """A new key with its audit row, as ``gaitid keys create`` makes it (added, not committed)."""
    row, plaintext = create_key(session, role, name)
    session.flush()
    audit.record(session, None, "key.create", f"key:{row.id}", role=role, via=via)
    return row, plaintext


def authenticate(session: Session, key: str) -> Principal | None:
    """The principal for a presented key; None when it is malformed, unknown or revoked."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.secret_hash, _digest(key)):
        return None
    return Principal(key_id=row.id, name=row.name, role=row.role)


def key_is_active(session: Session, key_id: str) -> bool:
    """Whether a key that authenticated earlier may still be used (long-lived connections re-check)."""
    row = session.get(ApiKey, key_id)
    return row is not None and row.revoked_at is None


def revoke_key(session: Session, key_id: str, when: datetime | None = None) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = when or utcnow()
    return True
