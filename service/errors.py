"""Service errors: each has an HTTP status and a stable machine-readable ``code``.

Errors from the pipeline and the models (bad videos, bad silhouettes) carry their own codes and
are answered as 422; nothing a client sends may produce a 500.
"""

import re
from typing import Any

_ERRNO = re.compile(r"\[(?:Errno|WinError) -?\d+\]\s*")


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, code: str | None = None, status: int | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}
        self.headers: dict[str, str] = {}


class NotFoundError(ServiceError):
    status, code = 404, "not_found"


class ConflictError(ServiceError):
    status, code = 409, "conflict"


class UnauthorizedError(ServiceError):
    status, code = 401, "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"WWW-Authenticate": "ApiKey"}


class ForbiddenError(ServiceError):
    status, code = 403, "forbidden"


class PayloadTooLargeError(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaTypeError(ServiceError):
    status, code = 415, "unsupported_media_type"


class UnprocessableError(ServiceError):
    status, code = 422, "unprocessable"


class TooManyJobsError(ServiceError):
    status, code = 429, "too_many_jobs"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class NotReadyError(ServiceError):
    status, code = 503, "not_ready"


# HTTP status of a failed job's error code, for a client that waited for the job (422 otherwise); the
# same whether the job failed in this process or in a worker.
JOB_FAILURE_STATUS = {
    "multiple_tracks": 409,
    "external_id_taken": 409,
    "insufficient_storage": 507,
    "subject_not_found": 404,
    "silhouettes_too_large": 413,
    "internal_error": 500,
    "interrupted": 503,
}


def job_failure_status(code: str | None) -> int:
    return JOB_FAILURE_STATUS.get(code or "", 422)


def describe(error: BaseException) -> str:
    """An exception's first line for a message a client sees: no errno number, no file name.

    An ``OSError`` shows only its ``strerror`` (its text also names the file); wrapped ones
    (httpx's connection errors) lose their ``[Errno N]`` prefix.
    """
    text = _ERRNO.sub("", getattr(error, "strerror", None) or str(error)).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


class UnavailableError(ServiceError):
    """A part the service needs (the database, the job queue) cannot be reached right now: 503 with a
    ``Retry-After``, so that a client retries rather than treats it as a bug (a 500) or its own fault."""

    status = 503

    def __init__(self, message: str, code: str, retry_after_s: int = 5) -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": str(retry_after_s)}


class InsufficientStorageError(ServiceError):
    """The disk is full (ENOSPC/EDQUOT): 507, and nothing half-written stays behind."""

    status, code = 507, "insufficient_storage"
