"""Request dependencies: the service context, a database session, and the authenticated caller."""

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.auth import Permission, Principal, authenticate
from service.context import ServiceContext
from service.errors import ForbiddenError, NotFoundError, UnauthorizedError

Row = TypeVar("Row")

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key: gid_<prefix>_<secret>")
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


def get_context(request: Request) -> ServiceContext:
    return request.app.state.ctx


def get_session(ctx: ServiceContext = Depends(get_context)) -> Iterator[Session]:
    with ctx.sessions() as session:
        yield session


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that authenticates the caller (401) and checks one permission (403)."""

    def dependency(
        request: Request,
        header_key: str | None = Depends(_api_key_header),
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        ctx: ServiceContext = Depends(get_context),
    ) -> Principal:
        key = header_key or (bearer.credentials if bearer else None)
        if not key:
            raise UnauthorizedError("an API key is required (header X-API-Key or Authorization: Bearer)")
        with ctx.sessions() as session:
            principal = authenticate(session, key)
        if principal is None:
            raise UnauthorizedError("the API key is unknown or revoked")
        if not principal.can(permission):
            raise ForbiddenError(f"role {principal.role!r} may not {permission}", code="forbidden")
        request.state.principal = principal
        return principal

    return dependency


# The job routes' common parameters.
WaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=3600,
        description="seconds to wait for the result before answering 202 with the job to poll; the server waits "
        "at most GAITID_MAX_WAIT_SECONDS (300 by default) whatever is asked",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", min_length=1, max_length=200, description="repeat a request without repeating its job"
    ),
]

# What route signatures declare, instead of writing ``Depends(...)`` out in every route.
Context = Annotated[ServiceContext, Depends(get_context)]
DbSession = Annotated[Session, Depends(get_session)]
Reader = Annotated[Principal, Depends(require("read"))]
Identifier = Annotated[Principal, Depends(require("identify"))]
Enroller = Annotated[Principal, Depends(require("enroll"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def get_or_404(session: Session, table: type[Row], row_id: object, what: str) -> Row:
    """The row with this id, or a 404 with the code ``<what>_not_found``."""
    row = session.get(table, row_id)
    if row is None:
        raise NotFoundError(f"no {what} {row_id}", code=f"{what}_not_found")
    return row
