"""API keys, for admins. The first admin key comes from the CLI: ``gaitid keys create --role admin``."""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import select

from service.api.deps import Admin, DbSession
from service.api.pages import Limit, Offset, Page, page_of
from service.api.schemas import ERROR_RESPONSES, KeyCreate, KeyCreated, KeyOut
from service.auth import create_key, revoke_key
from service.db import audit
from service.db.tables import ApiKey
from service.errors import ConflictError, NotFoundError

router = APIRouter(prefix="/v1/keys", tags=["keys"])


def key_out(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id, name=row.name, role=row.role, prefix=row.prefix, created_at=row.created_at, revoked_at=row.revoked_at
    )


@router.get("", response_model=Page[KeyOut], responses=ERROR_RESPONSES)
def list_keys(*, limit: Limit = 50, offset: Offset = 0, _: Admin, session: DbSession) -> Page[KeyOut]:
    """Every key, revoked ones too, oldest first (secrets are never shown again)."""
    order = (ApiKey.created_at, ApiKey.id)
    return page_of(session, select(ApiKey), order, limit, offset, lambda rows: [key_out(k) for k in rows])


@router.post("", status_code=201, response_model=KeyCreated, responses=ERROR_RESPONSES)
def create(body: KeyCreate, principal: Admin, session: DbSession) -> KeyCreated:
    row, plaintext = create_key(session, body.role, body.name)
    session.flush()
    audit.record(session, principal.key_id, "key.create", f"key:{row.id}", role=body.role)
    session.commit()
    return KeyCreated(**key_out(row).model_dump(), key=plaintext)


@router.delete("/{key_id}", status_code=204, responses=ERROR_RESPONSES)
def revoke(
    key_id: Annotated[str, Path(min_length=1, max_length=36)],
    principal: Admin,
    session: DbSession,
) -> Response:
    if key_id == principal.key_id:  # an admin locking themself out: leave that to `gaitid keys revoke`
        raise ConflictError("a key cannot revoke itself; use another admin key or the CLI", code="own_key")
    if not revoke_key(session, key_id):
        raise NotFoundError(f"no active key {key_id}", code="key_not_found")
    audit.record(session, principal.key_id, "key.revoke", f"key:{key_id}")
    session.commit()
    return Response(status_code=204)
