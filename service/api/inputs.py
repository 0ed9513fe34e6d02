"""Video and silhouette inputs of enroll/identify requests, staged on disk for the job.

A request carries either a multipart upload (field ``file``, optional ``url``/``track_id``
fields) or a JSON body ``{"url": ..., "track_id": ...}``. Uploads are copied in chunks to the
job's own folder while their SHA-256 is computed (for idempotency); the body-size limit itself is
enforced while the request streams in (see :mod:`service.api.middleware`). A disk that fills up
meanwhile is answered 507 ``insufficient_storage``, and the partial copy is removed. A URL is downloaded
into the same folder before the job exists (:mod:`service.api.url_fetch`), so a URL the service
may not reach is refused with the request, and the job reads a local file either way.
"""

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from service.addresses import AddressPolicy
from service.api.schemas import UrlInput
from service.api.url_fetch import fetch_url
from service.db.faults import disk_full
from service.errors import InsufficientStorageError, ServiceError, UnprocessableError, UnsupportedMediaTypeError
from service.jobs.store import input_dir
from service.settings import Settings
from service.streams.urls import redact_url

InputKind = Literal["video", "npy", "zip"]
_CHUNK = 1 << 20
_URL_SCHEMES = ("http", "https")  # cameras (rtsp, ...) are streams: /v1/streams
_VIDEO_TYPES = ("video/", "application/octet-stream", "application/mp4", "application/x-matroska")
_SILHOUETTE_TYPES = ("application/x-npy", "application/npy", "application/zip", "application/x-zip-compressed")


def input_request_body(*, enrollment: bool) -> dict[str, Any]:
    """The request body the OpenAPI document shows for a route that takes a video.

    Only enrollment takes silhouettes (.npy, zip of PNGs) and ``track_id``; identify and previews
    take a video, uploaded or by URL, and their documents must not offer more."""
    file = "the video, or its silhouettes as .npy / zip of PNGs" if enrollment else "the video"
    properties: dict[str, Any] = {
        "file": {"type": "string", "format": "binary", "description": file},
        "url": {"type": "string", "description": "instead of a file: http(s) URL of the video"},
    }
    json_schema = UrlInput.model_json_schema()
    if enrollment:
        properties["track_id"] = {"type": "integer", "minimum": 0, "description": "the person to enroll"}
    else:
        json_schema = {**json_schema, "properties": {"url": json_schema["properties"]["url"]}}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": properties}},
            "application/json": {"schema": json_schema},
        },
    }


@dataclass
class StagedInput:
    """Where the job finds its input, and a digest of the request for idempotency checks."""

    job_id: str
    kind: InputKind
    path: Path
    source: str  # what users see: the upload's file name or the URL without its password
    digest: str
    track_id: int | None

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def _check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in _URL_SCHEMES or not parsed.netloc:
        raise UnprocessableError(f"url must be an {'/'.join(_URL_SCHEMES)} URL", code="bad_url")
    return url


async def _stage_url(job_id: str, folder: Path, url: str, track_id: int | None, settings: Settings) -> StagedInput:
    """Download the video at ``url`` into ``folder``, reaching only public addresses and the allowed networks."""
    checked, shown = _check_url(url), redact_url(url)
    policy = AddressPolicy(settings.url_allow_networks, public=True, setting="GAITID_URL_ALLOW_NETWORKS")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"input{Path(urlparse(checked).path).suffix[:10] or '.video'}"
    await fetch_url(checked, path, policy, int(settings.max_upload_mb * 1e6), settings.url_fetch_seconds, shown)
    digest = hashlib.sha256(f"url:{checked}".encode()).hexdigest()
    return StagedInput(job_id, "video", path, shown, digest, track_id)


def _parse_track_id(raw: object) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(str(raw))
    except ValueError:
        raise UnprocessableError("track_id must be a whole number", code="bad_track_id") from None
    if value < 0:
        raise UnprocessableError("track_id must be ≥ 0", code="bad_track_id")
    return value


def _sniff(head: bytes, content_type: str, enrollment: bool) -> InputKind:
    kind: InputKind = "npy" if head.startswith(b"\x93NUMPY") else "zip" if head.startswith(b"PK\x03\x04") else "video"
    if kind != "video" and not enrollment:
        raise UnsupportedMediaTypeError("this takes a video; silhouette files are for enrollment")
    allowed = _VIDEO_TYPES + (_SILHOUETTE_TYPES if enrollment else ())
    if content_type and not content_type.startswith(allowed):
        raise UnsupportedMediaTypeError(f"file type {content_type!r} is not a video", code="unsupported_media_type")
    return kind


async def _stage_upload(upload: UploadFile, folder: Path, enrollment: bool) -> tuple[Path, InputKind, str]:
    head = await upload.read(16)
    kind = _sniff(head, (upload.content_type or "").split(";")[0].strip().lower(), enrollment)
    if not head:
        raise UnprocessableError("the uploaded file is empty", code="empty_upload")
    folder.mkdir(parents=True, exist_ok=True)
    suffix = {"npy": ".npy", "zip": ".zip"}.get(kind, Path(upload.filename or "").suffix[:10] or ".video")
    path = folder / f"input{suffix}"
    digest = hashlib.sha256(head)
    with path.open("wb") as out:
        out.write(head)
        while chunk := await upload.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
    return path, kind, digest.hexdigest()


def _enrollment_only(track_id: int | None, enrollment: bool) -> int | None:
    if track_id is not None and not enrollment:
        raise UnprocessableError(
            "track_id picks the person to enroll; identify and previews answer for everyone walking",
            code="bad_track_id",
        )
    return track_id


async def stage_input(request: Request, settings: Settings, enrollment: bool) -> StagedInput:
    """Read the request's input into ``DATA_DIR/jobs/<job id>/``; 4xx for unusable or unreachable inputs.

    Only an ``enrollment`` takes silhouette files and a ``track_id``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    job_id = str(uuid.uuid4())
    folder = input_dir(settings.data_dir, job_id)
    try:
        if content_type == "application/json":
            try:
                body = UrlInput.model_validate(json.loads(await request.body() or b"null"))
            except (ValueError, ValidationError) as error:
                message = error.errors()[0]["msg"] if isinstance(error, ValidationError) else "the body is not JSON"
                raise UnprocessableError(f"invalid JSON body: {message}", code="invalid_request") from None
            return await _stage_url(job_id, folder, body.url, _enrollment_only(body.track_id, enrollment), settings)
        if content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise UnsupportedMediaTypeError("send multipart/form-data with a file, or application/json with a url")
        async with request.form(max_files=1, max_fields=10) as form:
            upload, url = form.get("file"), form.get("url")
            track_id = _enrollment_only(_parse_track_id(form.get("track_id")), enrollment)
            if isinstance(upload, UploadFile):
                if url:
                    raise UnprocessableError("send a file or a url, not both", code="invalid_request")
                path, kind, digest = await _stage_upload(upload, folder, enrollment)
                name = Path(upload.filename or "upload").name[:200]
                return StagedInput(job_id, kind, path, name, digest, track_id)
            if isinstance(url, str) and url:
                return await _stage_url(job_id, folder, url, track_id, settings)
    except (MultiPartException, HTTPException) as error:  # the multipart parser's verdict on a malformed body
        shutil.rmtree(folder, ignore_errors=True)
        detail = getattr(error, "detail", None) or getattr(error, "message", str(error))
        raise ServiceError(f"malformed multipart body: {detail}", code="malformed_body", status=400) from None
    except OSError as error:  # the disk (this folder's, or the parser's temporary files') is full
        shutil.rmtree(folder, ignore_errors=True)
        if disk_full(error):
            raise InsufficientStorageError("no room left on the server to store the upload; retry later") from None
        raise
    except BaseException:  # refused, or the client went away: nothing staged stays behind
        shutil.rmtree(folder, ignore_errors=True)
        raise
    raise UnprocessableError("the request has neither a file nor a url", code="missing_input")
