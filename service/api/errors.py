"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Validation errors, unknown routes and wrong methods get the same shape with their own codes;
an unreachable database is 503 ``database_unavailable`` and a full disk 507 ``insufficient_storage``
(faults of the machine, not of the request, and not bugs); any other unexpected exception is logged
with its request id and answered 500 ``internal_error``.
"""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import ModelError
from pipeline.errors import PipelineError
from service.db.faults import database_full, database_unreachable, disk_full
from service.errors import InsufficientStorageError, ServiceError, UnavailableError

log = logging.getLogger(__name__)
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def error_payload(error: ServiceError, extra: dict[str, Any] | None = None) -> bytes:
    body = {"error": {"code": error.code, "message": str(error), "details": error.details}, **(extra or {})}
    return json.dumps(body, default=str).encode()


def error_response(error: ServiceError, extra: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse(json.loads(error_payload(error, extra)), status_code=error.status, headers=error.headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(_request: Request, error: ServiceError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(PipelineError)
    @app.exception_handler(ModelError)
    async def _input(_request: Request, error: Exception) -> JSONResponse:
        return error_response(ServiceError(str(error), code=getattr(error, "code", "unprocessable"), status=422))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")} for e in error.errors()
        ]
        first = problems[0] if problems else {"where": "", "problem": "invalid"}
        message = f"{first['where']}: {first['problem']}"
        return error_response(ServiceError(message, code="invalid_request", status=422, details={"problems": problems}))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "http_error")
        return error_response(ServiceError(str(error.detail), code=code, status=error.status_code))

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)  # every pooled connection busy past the pool's timeout
    async def _database(_request: Request, error: Exception) -> JSONResponse:
        if database_unreachable(error):
            log.warning("database unreachable: %s", " ".join(str(getattr(error, "orig", error)).split())[:300])
            return error_response(
                UnavailableError("the database is unreachable; retry shortly", code="database_unavailable")
            )
        if database_full(error):
            log.error("the database's disk is full: %s", " ".join(str(getattr(error, "orig", error)).split())[:300])
            return error_response(InsufficientStorageError("the database's disk is full"))
        return _internal(error)

    @app.exception_handler(OSError)
    async def _os(_request: Request, error: OSError) -> JSONResponse:
        if disk_full(error):  # the handler that raised it has removed what it had written
            log.error("disk full: %s", error.strerror)
            return error_response(InsufficientStorageError("the server's disk is full; retry later"))
        return _internal(error)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        return _internal(error)


def _internal(error: BaseException) -> JSONResponse:
    log.error("unexpected error", exc_info=error)
    return error_response(ServiceError("internal error; see the server log", code="internal_error", status=500))
