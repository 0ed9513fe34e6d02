"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Validation errors, unknown routes and wrong methods get the same shape with their own codes;
an unexpected exception is logged with its request id and answered 500 ``internal_error``.
"""

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import ModelError
from pipeline.errors import PipelineError
from service.errors import ServiceError

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

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(ServiceError("internal error; see the server log", code="internal_error", status=500))
