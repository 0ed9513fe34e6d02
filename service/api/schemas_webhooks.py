"""Request and response bodies of ``/v1/webhooks``."""

from datetime import datetime
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

EventDecision = Literal["match", "unknown"]
DeliveryStatus = Literal["pending", "delivered", "failed"]


def _check_url(value: str) -> str:
    """Accept what the dispatcher can POST to: an absolute http(s) URL with a host, nothing to be guessed."""
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("the URL must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
        httpx.URL(value)
    except (ValueError, httpx.InvalidURL) as error:
        raise ValueError(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=2000, description="where events are POSTed (http or https)"),
    AfterValidator(_check_url),
]


def _unique_decisions(value: list[EventDecision] | None) -> list[EventDecision] | None:
    return None if value is None else sorted(set(value))


Decisions = Annotated[
    list[EventDecision] | None,
    Field(min_length=1, description="send only events with these decisions; null: every decision"),
    AfterValidator(_unique_decisions),
]

_WEBHOOK_EXAMPLE = {
    "url": "https://alarms.example/gaitid",
    "description": "front door: known people",
    "stream_id": "5b7e0c1e-2f4f-4d0a-9d7a-3c6b1f0e8a21",
    "decisions": ["match"],
    "enabled": True,
}


class WebhookCreate(BaseModel):
    """An HTTP endpoint to receive stream events, each request signed (admin)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_WEBHOOK_EXAMPLE]})

    url: WebhookUrl
    description: str = Field("", max_length=200, description="a note for people: what the endpoint is for")
    stream_id: str | None = Field(
        None, min_length=1, max_length=36, description="send only this stream's events; null: every stream"
    )
    decisions: Decisions = None
    enabled: bool = Field(True, description="a disabled webhook is owed no new events; pending ones are dropped")


class WebhookUpdate(BaseModel):
    """Only the fields present change; ``decisions: null`` means every decision again."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}, {"decisions": None}]})

    url: WebhookUrl | None = Field(None, description="new endpoint URL, also for deliveries still pending; not null")
    description: str | None = Field(None, max_length=200, description="new note for people; not null")
    decisions: Decisions = None
    enabled: bool | None = Field(
        None, description="false stops deliveries (pending ones are dropped); true resumes with new events; not null"
    )

    @model_validator(mode="after")
    def _no_null_values(self) -> Self:
        """Only ``decisions`` has a meaning for null; a null URL or flag is a client mistake, not "unchanged"."""
        nulls = sorted(
            f for f in ("url", "description", "enabled") if f in self.model_fields_set and getattr(self, f) is None
        )
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null")
        return self


class WebhookOut(BaseModel):
    """A webhook, without its signing secret."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0f8e2b9a-51c4-4b8e-a6d2-7d1c3e9b4a10",
                    "created_at": "2026-11-26T08:00:00+00:00",
                    **_WEBHOOK_EXAMPLE,
                }
            ]
        }
    )

    id: str = Field(description="the webhook's id (a UUID), assigned by the service")
    url: str = Field(description="where events are POSTed")
    description: str = Field(description="the note for people; may be empty")
    stream_id: str | None = Field(description="only this stream's events are sent; null: events of every stream")
    decisions: list[EventDecision] | None = Field(
        description="only events with these decisions are sent (sorted, no repeats); null: every decision"
    )
    enabled: bool = Field(description="whether new events are delivered")
    created_at: datetime = Field(description="when the webhook was registered (UTC)")


class WebhookCreated(WebhookOut):
    """A webhook with its signing secret: only the answers to creating it and to rotating the secret show it."""

    secret: str = Field(
        description="signs every request (header X-GaitID-Signature); shown only once, store it with the receiver"
    )


class DeliveryAttempt(BaseModel):
    """One try at POSTing an event to a webhook."""

    attempt: int = Field(description="1 for the first try")
    at: datetime = Field(description="when the answer (or the error) came")
    status_code: int | None = Field(description="the endpoint's HTTP status; null when it gave none")
    error: str | None = Field(description="why the attempt failed: HTTP status, connection error, timeout")
    ms: int = Field(description="milliseconds the attempt took")
    by: str = Field(description="the process (host:pid:tag) that sent it")


class DeliveryOut(BaseModel):
    """One event owed to one webhook: its state and every attempt at sending it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "webhook_id": "0f8e2b9a-51c4-4b8e-a6d2-7d1c3e9b4a10",
                    "event_id": 1207,
                    "status": "delivered",
                    "attempts": 2,
                    "next_attempt_at": None,
                    "last_status_code": 200,
                    "last_error": None,
                    "log": [
                        {
                            "attempt": 1,
                            "at": "2026-11-26T08:30:00.120+00:00",
                            "status_code": 503,
                            "error": "HTTP 503",
                            "ms": 31,
                            "by": "api-1:7",
                        },
                        {
                            "attempt": 2,
                            "at": "2026-11-26T08:30:01.140+00:00",
                            "status_code": 200,
                            "error": None,
                            "ms": 12,
                            "by": "api-1:7",
                        },
                    ],
                    "created_at": "2026-11-26T08:30:00.080+00:00",
                    "delivered_at": "2026-11-26T08:30:01.140+00:00",
                }
            ]
        }
    )

    id: int = Field(description="also sent as the X-GaitID-Delivery header, for receivers to deduplicate")
    webhook_id: str = Field(description="the webhook the event is sent to")
    event_id: int = Field(description="the event sent (GET /v1/events/{id}); the request body is that event")
    status: DeliveryStatus = Field(
        description="pending: not yet delivered, retried with back-off; delivered: a 2xx answer came; "
        "failed: GAITID_WEBHOOK_MAX_ATTEMPTS attempts failed, or the webhook was disabled "
        "(POST .../retry sends it again)"
    )
    attempts: int = Field(description="attempts of the current round (a retry starts a new round at 0)")
    next_attempt_at: datetime | None = Field(description="when the next try is due; null once delivered or failed")
    last_status_code: int | None = Field(
        description="the endpoint's HTTP status at the latest attempt; null before any or when it gave none"
    )
    last_error: str | None = Field(
        description="why the latest attempt failed, or that the webhook was disabled; null before any or on success"
    )
    log: list[DeliveryAttempt] = Field(description="every attempt, oldest first")
    created_at: datetime = Field(description="when the delivery was owed: the event was recorded (UTC)")
    delivered_at: datetime | None = Field(description="when the endpoint accepted it (UTC); null until delivered")
