"""Webhooks, for admins: endpoints that receive stream events, and the log of each delivery.

Each request carries ``X-GaitID-Signature: sha256=<hex>``, an HMAC-SHA256 under the webhook's
secret of ``<X-GaitID-Timestamp>.<raw body>`` (see :func:`service.streams.webhooks.verify`).
"""

import secrets
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.api.deps import Admin, DbSession, get_or_404
from service.api.pages import Limit, Offset, Page, page_of
from service.api.schemas import ERROR_RESPONSES
from service.api.schemas_webhooks import (
    DeliveryAttempt,
    DeliveryOut,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)
from service.db import audit
from service.db.tables import Stream, Webhook, WebhookDelivery, new_id, utcnow
from service.errors import ConflictError, NotFoundError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
WebhookId = Annotated[str, Path(min_length=1, max_length=36, description="the webhook's id")]
DeliveryId = Annotated[int, Path(ge=1, le=2**62, description="the delivery's id")]


def _webhook_out(row: Webhook) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        description=row.description,
        stream_id=row.stream_id,
        decisions=row.decisions,
        enabled=row.enabled,
        created_at=row.created_at,
    )


def _with_secret(row: Webhook) -> WebhookCreated:
    """The answer that shows the signing secret: on creation and on rotation, never otherwise."""
    return WebhookCreated(**_webhook_out(row).model_dump(), secret=row.secret)


def _delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        log=[DeliveryAttempt(**entry) for entry in row.log],
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _stream_not_found(stream_id: str) -> NotFoundError:
    return NotFoundError(f"no stream {stream_id}", code="stream_not_found")


@router.post("", status_code=201, response_model=WebhookCreated, responses=ERROR_RESPONSES)
def create_webhook(body: WebhookCreate, principal: Admin, session: DbSession) -> WebhookCreated:
    """Register an endpoint; the answer holds its signing secret, which is never shown again."""
    if body.stream_id is not None and session.get(Stream, body.stream_id) is None:
        raise _stream_not_found(body.stream_id)
    row = Webhook(
        id=new_id(),
        url=body.url,
        secret=secrets.token_urlsafe(32),
        description=body.description,
        stream_id=body.stream_id,
        decisions=body.decisions,
        enabled=body.enabled,
    )
    session.add(row)
    audit.record(
        session,
        principal.key_id,
        "webhook.create",
        f"webhook:{row.id}",
        url=body.url,
        stream_id=body.stream_id,
        decisions=body.decisions,
    )
    try:
        session.commit()
    except IntegrityError:  # the stream was deleted between the check and the commit
        session.rollback()
        raise _stream_not_found(str(body.stream_id)) from None
    return _with_secret(row)


@router.get("", response_model=Page[WebhookOut], responses=ERROR_RESPONSES)
def list_webhooks(
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    _: Admin,
    session: DbSession,
) -> Page[WebhookOut]:
    order = (Webhook.created_at, Webhook.id)
    return page_of(session, select(Webhook), order, limit, offset, lambda rows: [_webhook_out(r) for r in rows])


@router.get("/{webhook_id}", response_model=WebhookOut, responses=ERROR_RESPONSES)
def get_webhook(webhook_id: WebhookId, _: Admin, session: DbSession) -> WebhookOut:
    return _webhook_out(get_or_404(session, Webhook, webhook_id, "webhook"))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=ERROR_RESPONSES)
def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    principal: Admin,
    session: DbSession,
) -> WebhookOut:
    """Change the URL, description, decisions or enabled flag; pending deliveries use the new URL."""
    webhook = get_or_404(session, Webhook, webhook_id, "webhook")
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        setattr(webhook, field, value)
    audit.record(session, principal.key_id, "webhook.update", f"webhook:{webhook.id}", fields=sorted(changes))
    session.commit()
    return _webhook_out(webhook)


@router.delete("/{webhook_id}", status_code=204, responses=ERROR_RESPONSES)
def delete_webhook(webhook_id: WebhookId, principal: Admin, session: DbSession) -> Response:
    """Delete the webhook with its delivery log; deliveries not yet sent are dropped."""
    session.delete(get_or_404(session, Webhook, webhook_id, "webhook"))
    audit.record(session, principal.key_id, "webhook.delete", f"webhook:{webhook_id}")
    session.commit()
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=Page[DeliveryOut], responses=ERROR_RESPONSES)
def list_deliveries(
    *,
    webhook_id: WebhookId,
    status: DeliveryStatus | None = Query(None, description="only deliveries in this state"),
    limit: Limit = 50,
    offset: Offset = 0,
    _: Admin,
    session: DbSession,
) -> Page[DeliveryOut]:
    """The webhook's deliveries, newest first, each with the log of its attempts."""
    get_or_404(session, Webhook, webhook_id, "webhook")
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    order = (WebhookDelivery.id.desc(),)
    return page_of(session, query, order, limit, offset, lambda rows: [_delivery_out(r) for r in rows])


@router.post("/{webhook_id}/secret", response_model=WebhookCreated, responses=ERROR_RESPONSES)
def rotate_secret(webhook_id: WebhookId, principal: Admin, session: DbSession) -> WebhookCreated:
    """Replace the signing secret (after a leak, or on a schedule); the answer shows the new one, once.

    Every request from now on, retries of earlier events included, is signed with the new secret.
    """
    webhook = get_or_404(session, Webhook, webhook_id, "webhook")
    webhook.secret = secrets.token_urlsafe(32)
    audit.record(session, principal.key_id, "webhook.rotate_secret", f"webhook:{webhook.id}")
    session.commit()
    return _with_secret(webhook)


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", response_model=DeliveryOut, responses=ERROR_RESPONSES)
def retry_delivery(
    webhook_id: WebhookId,
    delivery_id: DeliveryId,
    principal: Admin,
    session: DbSession,
) -> DeliveryOut:
    """Send a failed delivery again (once its endpoint is fixed): a fresh round of attempts, due now.

    The log keeps the earlier round's attempts; the new ones are numbered from 1 again.
    """
    webhook = get_or_404(session, Webhook, webhook_id, "webhook")
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook.id:
        raise NotFoundError(f"webhook {webhook_id} has no delivery {delivery_id}", code="delivery_not_found")
    if delivery.status != "failed":
        raise ConflictError(
            f"delivery {delivery_id} is {delivery.status}; only a failed one is retried", code="delivery_not_failed"
        )
    if not webhook.enabled:
        raise ConflictError(f"webhook {webhook_id} is disabled; enable it first", code="webhook_disabled")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
    delivery.claimed_until = None
    audit.record(session, principal.key_id, "webhook.retry_delivery", f"webhook:{webhook.id}", delivery=delivery_id)
    session.commit()
    return _delivery_out(delivery)
