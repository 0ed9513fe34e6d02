"""Webhooks: stream events pushed to HTTP endpoints, signed, and retried with back-off until delivered.

A delivery row is written in the same transaction as its event (:func:`enqueue_deliveries`), so no
event is lost between the database and the network. Every process that runs streams also runs a
:class:`WebhookDispatcher`; they share the work by claiming rows with a conditional UPDATE, so one
attempt is sent by one process at a time. Delivery is at least once: a process that dies after
sending but before recording the answer leaves its claim to expire, and the attempt is sent again
— receivers deduplicate on the ``X-GaitID-Delivery`` header.

Receivers check the ``X-GaitID-Signature`` header with :func:`verify` (or its few lines in any
language): HMAC-SHA256 under the webhook's secret of ``<X-GaitID-Timestamp> + "." + <raw body>``.
"""

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from service.db.tables import StreamEvent, Webhook, WebhookDelivery, utcnow
from service.errors import describe
from service.settings import Settings
from service.streams.payload import event_payload

log = logging.getLogger(__name__)

SIGNATURE_PREFIX = "sha256="
MAX_ERROR_CHARS = 500
STOP_GRACE_S = 1.5  # stop() waits this long for attempts in flight to record their answer
ERROR_PAUSE_S = 5.0  # after a failed poll (database unreachable), so the log is not flooded


def enqueue_deliveries(session: Session, event: StreamEvent) -> int:
    """Owe ``event`` to every enabled webhook that wants it; the caller's commit makes event and deliveries durable."""
    hooks = session.scalars(
        select(Webhook).where(
            Webhook.enabled.is_(True), or_(Webhook.stream_id.is_(None), Webhook.stream_id == event.stream_id)
        )
    ).all()
    wanted = [hook for hook in hooks if hook.decisions is None or event.decision in hook.decisions]
    now = utcnow()
    session.add_all(WebhookDelivery(webhook_id=hook.id, event_id=event.id, next_attempt_at=now) for hook in wanted)
    return len(wanted)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``timestamp.body``: the timestamp is signed too, so a replayed body cannot be re-dated."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature_header: str, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """For receivers: is this request from GaitID, unaltered, and recent?

    Pass the ``X-GaitID-Timestamp`` and ``X-GaitID-Signature`` headers and the raw request body
    (before any JSON parsing). False when the signature does not match (constant-time compare) or
    the timestamp is more than ``tolerance_s`` seconds away from ``now`` (default: the clock), which
    bounds how long a captured request can be replayed.
    """
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance_s:
        return False
    expected = SIGNATURE_PREFIX + sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature_header.encode())


def retry_delay(attempts: int, base_s: float = 1.0, cap_s: float = 300.0) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling from ``base_s`` up to ``cap_s``, ±10 %.

    The jitter spreads the retries of many deliveries that failed together (an endpoint that was down).
    """
    return min(base_s * 2 ** (attempts - 1), cap_s) * random.uniform(0.9, 1.1)


@dataclass(frozen=True)
class _Attempt:
    delivery_id: int
    number: int  # 1 for the first try
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None
    ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    """Sends due deliveries from a background thread; several processes may run one on the same database.

    Each attempt runs on its own sender thread with the configured timeout, so a slow or dead
    endpoint holds one sender, never the others. ``base_backoff_s`` exists for tests; operators
    tune ``GAITID_WEBHOOK_MAX_ATTEMPTS`` and ``GAITID_WEBHOOK_TIMEOUT_SECONDS``.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        owner: str,
        *,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        poll_interval_s: float = 0.2,
        senders: int = 8,
    ) -> None:
        self.owner = owner
        self._sessions = sessions
        self._max_attempts = settings.webhook_max_attempts
        self._timeout_s = settings.webhook_timeout_seconds
        # long enough for one attempt to be sent and answered; a claim outliving its process then expires
        self._claim_s = settings.webhook_timeout_seconds + 10.0
        self._base_backoff_s = base_backoff_s
        self._max_backoff_s = max_backoff_s
        self._poll_interval_s = poll_interval_s
        self._senders = senders
        self._pool = ThreadPoolExecutor(max_workers=senders, thread_name_prefix="webhook-sender")
        self._in_flight: set[Future[None]] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("webhook dispatcher started (%s)", self.owner)

    def stop(self) -> None:
        """Stop polling at once and give attempts in flight a short grace to record their answer.

        One still running after the grace finishes on its sender thread (within the timeout); should
        the process end first, its claim expires and another process sends the attempt again.
        """
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._poll_interval_s + 1.0)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            in_flight = set(self._in_flight)
        wait(in_flight, timeout=STOP_GRACE_S)
        log.info("webhook dispatcher stopped (%s)", self.owner)

    def deliver_due(self, limit: int = 20) -> int:
        """One pass: claim up to ``limit`` due deliveries (and idle senders), send them concurrently, wait for all.

        Returns how many deliveries it took (sent, or failed because their webhook was disabled).
        """
        futures = self._dispatch(limit)
        wait(futures)
        return len(futures)

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_interval_s):
            try:
                self._dispatch(self._senders)
            except Exception:  # the database may be briefly unreachable; keep polling
                log.exception("webhook dispatcher: polling for due deliveries failed")
                self._stopping.wait(ERROR_PAUSE_S)

    def _dispatch(self, limit: int) -> Sequence[Future[None]]:
        """Claim as many due deliveries as there are idle senders (at most ``limit``) and start them."""
        with self._lock:
            idle = self._senders - len(self._in_flight)
        if min(limit, idle) <= 0:
            return []
        futures = [self._pool.submit(self._attempt, delivery_id) for delivery_id in self._claim(min(limit, idle))]
        with self._lock:
            self._in_flight.update(futures)
        for future in futures:
            future.add_done_callback(self._forget)
        return futures

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)

    def _claim(self, limit: int) -> list[int]:
        """Take due deliveries for this process until ``now + claim``; a row claimed elsewhere is skipped.

        The UPDATE re-checks the condition, so of two processes racing for a row exactly one gets it
        (PostgreSQL re-evaluates it after the other's commit; SQLite serializes writers). Rows are
        claimed in id order, so two PostgreSQL transactions never wait on each other in a cycle.
        """
        now = utcnow()
        due = and_(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
        )
        until = now + timedelta(seconds=self._claim_s)
        with self._sessions() as session, session.begin():
            candidates = session.scalars(
                select(WebhookDelivery.id).where(due).order_by(WebhookDelivery.id).limit(limit)
            ).all()
            return [
                delivery_id
                for delivery_id in candidates
                if session.execute(
                    update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, due).values(claimed_until=until)
                ).rowcount
            ]

    def _attempt(self, delivery_id: int) -> None:
        """Send one claimed delivery and record the answer.

        An unexpected error (say the event cannot be rendered) counts as a failed attempt, so a
        delivery that always fails that way ends ``failed`` after the maximum number of attempts
        instead of being retried forever. If even that cannot be recorded (the database is
        unreachable), the claim expires and the attempt is made again, uncounted.
        """
        try:
            attempt = self._prepare(delivery_id)
            if attempt is not None:
                self._record(attempt.delivery_id, attempt.number, self._send(attempt))
        except Exception as error:
            log.exception("webhook delivery %s: attempt failed unexpectedly", delivery_id)
            try:
                self._record_internal_error(delivery_id, error)
            except Exception:
                log.exception("webhook delivery %s: could not record the failure; it will be retried", delivery_id)

    def _record_internal_error(self, delivery_id: int, error: Exception) -> None:
        with self._sessions() as session:
            done = session.scalar(
                select(WebhookDelivery.attempts).where(
                    WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending"
                )
            )
        if done is not None:
            message = f"internal error ({type(error).__name__}); see the server log"
            self._record(delivery_id, done + 1, _Outcome(None, message, 0))

    def _prepare(self, delivery_id: int) -> _Attempt | None:
        """What to send, read now: the webhook's current URL and secret, the event as clients see it."""

        with self._sessions() as session, session.begin():
            delivery = session.get(WebhookDelivery, delivery_id)
            if delivery is None:  # its webhook or its event was deleted (ON DELETE CASCADE)
                return None
            hook = session.get_one(Webhook, delivery.webhook_id)
            if not hook.enabled:
                delivery.status, delivery.claimed_until = "failed", None
                delivery.last_error = "the webhook was disabled before this event could be delivered"
                log.info("webhook delivery %s dropped: webhook %s is disabled", delivery_id, hook.id)
                return None
            event = session.get_one(StreamEvent, delivery.event_id)
            body = json.dumps(event_payload(session, event)).encode()
            return _Attempt(delivery.id, delivery.attempts + 1, hook.url, hook.secret, body)

    def _send(self, attempt: _Attempt) -> _Outcome:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GaitID-Webhooks",
            "X-GaitID-Event": "identification",
            "X-GaitID-Delivery": str(attempt.delivery_id),
            "X-GaitID-Timestamp": timestamp,
            "X-GaitID-Signature": SIGNATURE_PREFIX + sign(attempt.secret, timestamp, attempt.body),
        }
        started = time.monotonic()
        # the timeout bounds connecting and each read or write: an endpoint that answers nothing is
        # given up on in time; one that trickles its headers could hold a sender longer
        try:
            # redirects are not followed: a 3xx is a failure the operator should see, not a new destination
            with (
                httpx.Client(timeout=self._timeout_s, follow_redirects=False) as client,
                client.stream("POST", attempt.url, content=attempt.body, headers=headers) as response,
            ):
                status_code: int | None = response.status_code
                error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            status_code, error = None, f"{type(exc).__name__}: {describe(exc)}"[:MAX_ERROR_CHARS]
        return _Outcome(status_code, error, round((time.monotonic() - started) * 1000))

    def _record(self, delivery_id: int, number: int, outcome: _Outcome) -> None:
        """Store the attempt in the delivery's log and decide: delivered, retried later, or failed for good."""
        now = utcnow()
        entry = {
            "attempt": number,
            "at": now.isoformat(),
            "status_code": outcome.status_code,
            "error": outcome.error,
            "ms": outcome.ms,
            "by": self.owner,
        }
        values: dict[str, object] = {
            "attempts": number,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "claimed_until": None,
        }
        if outcome.delivered:
            values.update(status="delivered", delivered_at=now)
        elif number >= self._max_attempts:
            values.update(status="failed")
            log.warning("webhook delivery %s failed after %s attempts: %s", delivery_id, number, outcome.error)
        else:
            delay = retry_delay(number, self._base_backoff_s, self._max_backoff_s)
            values.update(next_attempt_at=now + timedelta(seconds=delay))
            log.info(
                "webhook delivery %s attempt %s: %s; retry in %.1f s",
                delivery_id,
                number,
                outcome.error,
                delay,
            )
        with self._sessions() as session, session.begin():
            previous = session.scalar(select(WebhookDelivery.log).where(WebhookDelivery.id == delivery_id))
            # a new list: the row is updated as a whole, never a JSON value mutated in place
            values["log"] = [*(previous or []), entry]
            recorded = session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.attempts == number - 1,
                )
                .values(**values)
            ).rowcount
        if not recorded:  # deleted with its webhook meanwhile, or an expired claim let another process record it
            log.info(
                "webhook delivery %s attempt %s: not recorded, the delivery changed meanwhile",
                delivery_id,
                number,
            )
