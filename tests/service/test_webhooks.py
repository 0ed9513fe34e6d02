"""Webhooks end to end with real parts: HTTP receivers on 127.0.0.1, SQLite and PostgreSQL, a real server;
and the retention that prunes old events with their deliveries.

The dispatcher tests drive :meth:`WebhookDispatcher.deliver_due` by hand (with a short back-off) so
retries take a second, not minutes; the API tests and one delivery run against ``gaitid serve``.
"""

import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.auth import create_key
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.db.tables import AuditEntry, Stream, StreamEvent, Webhook, WebhookDelivery
from service.settings import Settings
from service.streams.events import record_event
from service.streams.payload import event_payload
from service.streams.retention import event_retention
from service.streams.webhooks import WebhookDispatcher, retry_delay, sign, verify
from tests.conftest import run_cli, within
from tests.service.conftest import DATABASES, ServerProcess, eventually, free_port, fresh_database, running_server

Sessions = sessionmaker[Session]
HANG_S = 60  # deadlines that only stop a hang: the waits below take a second or two


# --- a real HTTP endpoint ----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names in lower case
    body: bytes


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that timed out closed the socket before the answer; that is the test's point, not an error."""


class Receiver:
    """A webhook endpoint on 127.0.0.1 (``http.server`` in a thread) that records every request.

    It answers ``statuses`` in turn (the last one repeats), after ``delay_s``; while ``release`` is
    clear, requests wait for it (up to ``hold_s``), which holds a sender of the dispatcher busy.
    """

    def __init__(self, statuses: Sequence[int] = (200,), delay_s: float = 0.0, hold_s: float = 10.0) -> None:
        self.statuses = list(statuses)
        self.delay_s = delay_s
        self.hold_s = hold_s
        self.requests: list[Received] = []
        self.release = threading.Event()
        self.release.set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    index = len(receiver.requests)
                    receiver.requests.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
                receiver.release.wait(receiver.hold_s)
                time.sleep(receiver.delay_s)
                self.send_response(receiver.statuses[min(index, len(receiver.statuses) - 1)])
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def __enter__(self) -> "Receiver":
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout_s: float = HANG_S) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.requests) >= count, f"got {len(self.requests)} requests, expected {count}"
        return list(self.requests)


# --- database helpers --------------------------------------------------------------------------


@pytest.fixture()
def sessions(database_url: str) -> Iterator[Sessions]:
    """A migrated database (SQLite, then PostgreSQL) and sessions on it."""
    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def add_stream(sessions: Sessions, name: str = "door") -> str:
    """A stream row, disabled so that no stream manager tries to read its camera."""
    with sessions() as session, session.begin():
        stream = Stream(name=name, url="rtsp://127.0.0.1:9/none", enabled=False)
        session.add(stream)
        session.flush()
        return stream.id


def add_webhook(
    sessions: Sessions,
    url: str,
    *,
    stream_id: str | None = None,
    decisions: list[str] | None = None,
    enabled: bool = True,
) -> Webhook:
    with sessions() as session, session.begin():
        webhook = Webhook(
            url=url, secret=secrets.token_urlsafe(32), stream_id=stream_id, decisions=decisions, enabled=enabled
        )
        session.add(webhook)
    return webhook


def add_event(sessions: Sessions, stream_id: str, decision: str = "match", subject_id: str | None = None) -> int:
    """Record an event as a stream worker does: event and deliveries in one transaction."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        event = StreamEvent(
            stream_id=session.get_one(Stream, stream_id).id,
            track_id=7,
            update=0,
            started_at=now - timedelta(seconds=3),
            ended_at=now,
            decision=decision,
            subject_id=subject_id,
            score=0.81 if decision == "match" else 0.2,
            threshold=0.6,
            good_frames=40,
            candidates=[{"subject_id": subject_id, "score": 0.81}] if subject_id else [],
            model_key="test-model",
            snapshot_path=None,
        )
        record_event(session, event)
        return event.id


def deliveries(sessions: Sessions, webhook_id: str | None = None) -> list[WebhookDelivery]:
    with sessions() as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if webhook_id is not None:
            query = query.where(WebhookDelivery.webhook_id == webhook_id)
        return list(session.scalars(query))


def payload(sessions: Sessions, event_id: int) -> dict:
    with sessions() as session:
        return event_payload(session, session.get_one(StreamEvent, event_id))


@contextmanager
def dispatcher(
    sessions: Sessions, database_url: str, owner: str = "test-a", base_backoff_s: float = 0.0, **settings: object
) -> Iterator[WebhookDispatcher]:
    config = Settings(database_url=database_url, **settings)  # type: ignore[arg-type]
    dispatch = WebhookDispatcher(sessions, config, owner, base_backoff_s=base_backoff_s)
    try:
        yield dispatch
    finally:
        dispatch.stop()


def assert_signed(received: Received, secret: str) -> None:
    headers = received.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-gaitid-event"] == "identification"
    assert headers["x-gaitid-signature"] == "sha256=" + sign(secret, headers["x-gaitid-timestamp"], received.body)
    assert verify(secret, headers["x-gaitid-timestamp"], received.body, headers["x-gaitid-signature"])


# --- signing -----------------------------------------------------------------------------------


def test_signature_and_back_off():
    body, secret, now = b'{"id": 1}', "s3cret", time.time()
    timestamp = str(int(now))
    header = "sha256=" + sign(secret, timestamp, body)
    assert verify(secret, timestamp, body, header)
    assert not verify(secret, timestamp, b'{"id": 2}', header), "a changed body"
    assert not verify(secret, str(int(now) + 1), body, header), "a replay under a new timestamp"
    assert not verify("other", timestamp, body, header), "another webhook's secret"
    assert not verify(secret, timestamp, body, header, now=now + 301), "too old"
    assert verify(secret, timestamp, body, header, now=now + 299)
    for bad_header in ("", sign(secret, timestamp, body), "sha256=00", "sha256=é"):
        assert not verify(secret, timestamp, body, bad_header)
    assert not verify(secret, "yesterday", body, header)
    for attempts, expected in ((1, 1.0), (2, 2.0), (5, 16.0), (9, 256.0), (10, 300.0), (40, 300.0)):
        assert expected * 0.9 <= retry_delay(attempts) <= expected * 1.1


# --- the dispatcher on SQLite and PostgreSQL ---------------------------------------------------


def test_enqueue_follows_stream_and_decision_filters(sessions: Sessions):
    door, gate = add_stream(sessions, "door"), add_stream(sessions, "gate")
    every = add_webhook(sessions, "http://127.0.0.1:9/every")
    door_only = add_webhook(sessions, "http://127.0.0.1:9/door", stream_id=door)
    matches = add_webhook(sessions, "http://127.0.0.1:9/matches", decisions=["match"])
    gate_unknown = add_webhook(sessions, "http://127.0.0.1:9/gate-unknown", stream_id=gate, decisions=["unknown"])
    disabled = add_webhook(sessions, "http://127.0.0.1:9/off", enabled=False)
    events = {
        "door-match": add_event(sessions, door, "match"),
        "door-unknown": add_event(sessions, door, "unknown"),
        "gate-match": add_event(sessions, gate, "match"),
        "gate-unknown": add_event(sessions, gate, "unknown"),
    }
    hooks = (every, door_only, matches, gate_unknown, disabled)
    owed = {hook.url.rsplit("/", 1)[1]: [d.event_id for d in deliveries(sessions, hook.id)] for hook in hooks}
    assert owed == {
        "every": list(events.values()),
        "door": [events["door-match"], events["door-unknown"]],
        "matches": [events["door-match"], events["gate-match"]],
        "gate-unknown": [events["gate-unknown"]],
        "off": [],
    }
    assert all(d.status == "pending" and d.attempts == 0 and d.log == [] for d in deliveries(sessions))


def test_retries_with_back_off_until_delivered(sessions: Sessions, database_url: str):
    stream = add_stream(sessions)
    with Receiver(statuses=(500, 500, 200)) as receiver, dispatcher(sessions, database_url, base_backoff_s=0.5) as d:
        webhook = add_webhook(sessions, receiver.url)
        event_id = add_event(sessions, stream)
        for attempt in (1, 2, 3):
            assert d.deliver_due() == 1, f"attempt {attempt} was due"
            [delivery] = deliveries(sessions)
            if attempt < 3:
                assert d.deliver_due() == 0, "a failed delivery waits for its back-off"
                assert delivery.status == "pending" and delivery.last_status_code == 500
                gap = (delivery.next_attempt_at - datetime.fromisoformat(delivery.log[-1]["at"])).total_seconds()
                expected = 0.5 * 2 ** (attempt - 1)
                assert expected * 0.9 - 1e-3 <= gap <= expected * 1.1 + 1e-3, gap
                time.sleep(max(0.0, (delivery.next_attempt_at - datetime.now(UTC)).total_seconds()) + 0.02)
    assert delivery.status == "delivered" and delivery.attempts == 3 and delivery.delivered_at is not None
    assert [(e["attempt"], e["status_code"], e["error"]) for e in delivery.log] == [
        (1, 500, "HTTP 500"),
        (2, 500, "HTTP 500"),
        (3, 200, None),
    ]
    assert all(e["by"] == "test-a" and e["ms"] >= 0 for e in delivery.log)
    assert len(receiver.requests) == 3
    for received in receiver.requests:
        assert_signed(received, webhook.secret)
        assert received.headers["x-gaitid-delivery"] == str(delivery.id)
        assert json.loads(received.body) == payload(sessions, event_id)


def test_endpoint_that_never_succeeds_fails_after_max_attempts(sessions: Sessions, database_url: str):
    """HTTP errors, a refused connection and an endpoint that holds the request each use up the attempts,
    concurrently, then fail: in every pass the other two are answered and recorded while the held one is
    still open, so one slow endpoint never holds up the others."""
    stream = add_stream(sessions)
    with (
        Receiver(statuses=(503,)) as broken,
        Receiver(statuses=(504,), hold_s=HANG_S) as held,
        dispatcher(sessions, database_url, webhook_max_attempts=3, webhook_timeout_seconds=HANG_S) as d,
    ):
        hooks = {
            "broken": add_webhook(sessions, broken.url).id,
            "refused": add_webhook(sessions, f"http://127.0.0.1:{free_port()}/hook").id,
            "held": add_webhook(sessions, held.url).id,
        }
        add_event(sessions, stream)
        for attempt in (1, 2, 3):
            held.release.clear()
            passing = threading.Thread(target=d.deliver_due)
            passing.start()
            held.wait_for(attempt, timeout_s=HANG_S)
            eventually(
                lambda n=attempt: all(deliveries(sessions, hooks[k])[0].attempts == n for k in ("broken", "refused")),
                HANG_S,
                f"attempt {attempt} of the broken and refused endpoints recorded while the held one is open",
            )
            assert deliveries(sessions, hooks["held"])[0].attempts == attempt - 1, "the held request is still open"
            held.release.set()
            passing.join(HANG_S)
            assert not passing.is_alive(), "deliver_due() returned once the held endpoint answered"
        assert d.deliver_due() == 0, "failed deliveries are not retried"
    by_hook = {name: deliveries(sessions, webhook_id)[0] for name, webhook_id in hooks.items()}
    for delivery in by_hook.values():
        assert delivery.status == "failed" and delivery.attempts == 3 and len(delivery.log) == 3
        assert delivery.delivered_at is None
    assert [e["status_code"] for e in by_hook["broken"].log] == [503] * 3
    assert by_hook["broken"].last_error == "HTTP 503" and by_hook["held"].last_error == "HTTP 504"
    assert by_hook["refused"].last_status_code is None and by_hook["refused"].last_error.startswith("ConnectError")
    assert "Errno" not in by_hook["refused"].last_error  # admins read it: no errno numbers


def test_an_endpoint_that_never_answers_times_out_and_fails(sessions: Sessions, database_url: str):
    """The timeout bounds an attempt: an endpoint that holds every request (for 10 s) is given up on after
    0.5 s each time, recorded as a timeout, and the delivery fails after its attempts."""
    stream = add_stream(sessions)
    with (
        Receiver() as silent,
        dispatcher(sessions, database_url, webhook_max_attempts=2, webhook_timeout_seconds=0.5) as d,
    ):
        silent.release.clear()  # each request waits 10 s for a release that never comes
        hook = add_webhook(sessions, silent.url).id
        add_event(sessions, stream)
        for _ in range(2):
            assert within(HANG_S, d.deliver_due, "an attempt at an endpoint that never answers") == 1
        assert d.deliver_due() == 0
        [delivery] = deliveries(sessions, hook)
        assert [e["status_code"] for e in delivery.log] == [None, None], "no answer came before the timeout"
    assert delivery.status == "failed" and delivery.attempts == 2 and len(silent.requests) == 2
    assert delivery.last_error.startswith("ReadTimeout"), delivery.last_error
    assert all(e["ms"] >= 450 for e in delivery.log), "each attempt waited for its timeout"


def test_an_attempt_that_raises_counts_and_fails_in_the_end(
    sessions: Sessions, database_url: str, monkeypatch: pytest.MonkeyPatch
):
    """A delivery whose preparation always raises (a bug, a row it cannot render) is not retried forever."""

    def broken_payload(*_: object) -> dict:
        raise RuntimeError("cannot render this event")

    monkeypatch.setattr("service.streams.webhooks.event_payload", broken_payload)
    stream = add_stream(sessions)
    with Receiver() as receiver, dispatcher(sessions, database_url, webhook_max_attempts=2) as d:
        add_webhook(sessions, receiver.url)
        add_event(sessions, stream)
        assert d.deliver_due() == 1 and d.deliver_due() == 1
        assert d.deliver_due() == 0
        assert receiver.requests == []
    (delivery,) = deliveries(sessions)
    assert delivery.status == "failed" and delivery.attempts == 2 and len(delivery.log) == 2
    assert delivery.last_error == "internal error (RuntimeError); see the server log"  # the details are in the log


def test_disabled_or_deleted_webhook_drops_its_deliveries(sessions: Sessions, database_url: str):
    stream = add_stream(sessions)
    with Receiver() as receiver, dispatcher(sessions, database_url) as d:
        disabled = add_webhook(sessions, receiver.url)
        deleted = add_webhook(sessions, receiver.url)
        add_event(sessions, stream)
        with sessions() as session, session.begin():
            session.get_one(Webhook, disabled.id).enabled = False
            session.delete(session.get_one(Webhook, deleted.id))
        assert d.deliver_due() == 1
        assert receiver.requests == []
    [dropped] = deliveries(sessions)
    assert dropped.webhook_id == disabled.id and dropped.status == "failed" and dropped.attempts == 0
    assert "disabled" in (dropped.last_error or "")


def test_a_claimed_delivery_is_sent_by_one_dispatcher_only(sessions: Sessions, database_url: str):
    stream = add_stream(sessions)
    with (
        Receiver() as receiver,
        dispatcher(sessions, database_url, owner="a") as first,
        dispatcher(sessions, database_url, owner="b") as second,
    ):
        add_webhook(sessions, receiver.url)
        add_event(sessions, stream)
        receiver.release.clear()  # the first dispatcher's request is held at the endpoint
        sending = threading.Thread(target=first.deliver_due)
        sending.start()
        receiver.wait_for(1)
        assert second.deliver_due() == 0, "claimed by the first dispatcher"
        receiver.release.set()
        sending.join(timeout=10)
        assert len(receiver.requests) == 1 and deliveries(sessions)[0].status == "delivered"

        # both at once over several deliveries: each is sent exactly once
        for _ in range(8):
            add_event(sessions, stream)
        barrier, taken = threading.Barrier(2), []

        def run(d: WebhookDispatcher) -> None:
            barrier.wait()
            taken.append(d.deliver_due(limit=20))

        racers = [threading.Thread(target=run, args=(d,)) for d in (first, second)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=20)
        assert sum(taken) >= 1
        while first.deliver_due():  # rows one racer skipped while the other held them
            pass
    sent = [r.headers["x-gaitid-delivery"] for r in receiver.requests]
    assert len(sent) == len(set(sent)) == 9
    assert all(d.status == "delivered" and d.attempts == 1 for d in deliveries(sessions))
    assert {e["by"] for d in deliveries(sessions) for e in d.log} <= {"a", "b"}


def test_background_dispatcher_is_not_stalled_by_a_hanging_endpoint(sessions: Sessions, database_url: str):
    """A request held open at one endpoint neither delays the others nor stops ``stop()`` from returning:
    the held attempt is still unrecorded when ``stop()`` returns, and records its answer afterwards."""
    stream = add_stream(sessions)
    with Receiver(hold_s=HANG_S) as hanging, Receiver() as healthy:
        stuck = add_webhook(sessions, hanging.url, decisions=["unknown"])
        add_webhook(sessions, healthy.url, decisions=["match"])
        hanging.release.clear()
        config = Settings(database_url=database_url, webhook_timeout_seconds=HANG_S)
        d = WebhookDispatcher(sessions, config, "background")
        d.start()
        try:
            add_event(sessions, stream, "unknown")
            hanging.wait_for(1, timeout_s=HANG_S)
            add_event(sessions, stream, "match")
            healthy.wait_for(1, timeout_s=HANG_S)
        finally:
            within(HANG_S, d.stop, "stop() with a request held open")
        assert deliveries(sessions, stuck.id)[0].attempts == 0, "stop() returned before the held attempt ended"
        add_event(sessions, stream, "match")
        time.sleep(0.5)
        assert len(healthy.requests) == 1, "nothing is sent after stop()"
        hanging.release.set()  # the attempt abandoned at stop() still records its answer
        eventually(lambda: deliveries(sessions, stuck.id)[0].status == "delivered", HANG_S, "the held attempt recorded")


# --- the API and a delivery by a running server ------------------------------------------------


@pytest.fixture(scope="module", params=DATABASES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, shared_cache: Path):
    folder = tmp_path_factory.mktemp(f"webhooks-{request.param}")
    env = {"GAITID_WEBHOOK_TIMEOUT_SECONDS": "2", "GAITID_WEBHOOK_MAX_ATTEMPTS": "2"}
    with fresh_database(request.param, folder) as url, running_server(url, folder, shared_cache, env) as server:
        engine = make_engine(url)
        try:
            yield server, make_session_factory(engine)
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def keys(api: tuple[ServerProcess, Sessions]) -> dict[str, str]:
    """Keys made as ``gaitid keys create`` makes them, in this process (three CLI runs would cost ~8 s)."""
    with api[1]() as session, session.begin():
        return {role: create_key(session, role, f"test-{role}")[1] for role in ("admin", "enroll", "read")}


def _error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    assert response.json()["error"]["code"] == code, response.text


def test_webhooks_api(api: tuple[ServerProcess, Sessions], keys: dict[str, str]):
    server, sessions = api
    stream = add_stream(sessions)
    with server.client(keys["admin"], timeout=30) as admin:
        before = admin.get("/v1/webhooks").json()["total"]
        body = {
            "url": "https://hooks.example/a",
            "description": "door",
            "stream_id": stream,
            "decisions": ["unknown", "match", "match"],
        }
        created = admin.post("/v1/webhooks", json=body)
        assert created.status_code == 201, created.text
        webhook = created.json()
        assert len(webhook["secret"]) >= 40 and webhook["decisions"] == ["match", "unknown"]
        assert webhook["enabled"] is True and webhook["stream_id"] == stream
        shown = admin.get(f"/v1/webhooks/{webhook['id']}").json()
        assert "secret" not in shown and shown == {k: v for k, v in webhook.items() if k != "secret"}
        others = [admin.post("/v1/webhooks", json={"url": f"http://127.0.0.1:9/{i}"}).json()["id"] for i in (1, 2)]
        page = admin.get("/v1/webhooks", params={"limit": 2, "offset": before}).json()
        assert page["total"] == before + 3 and [w["id"] for w in page["items"]] == [webhook["id"], others[0]]
        assert all("secret" not in w for w in page["items"])

        changes = {"url": "http://hooks.example:8080/b", "description": "gate", "decisions": None, "enabled": False}
        patched = admin.patch(f"/v1/webhooks/{webhook['id']}", json=changes)
        assert patched.status_code == 200, patched.text
        assert {k: patched.json()[k] for k in changes} == changes
        assert admin.patch(f"/v1/webhooks/{webhook['id']}", json={}).json() == patched.json()
        no_deliveries = {"items": [], "total": 0, "limit": 50, "offset": 0}
        assert admin.get(f"/v1/webhooks/{webhook['id']}/deliveries").json() == no_deliveries

        bad_creates = [
            {"url": "ftp://hooks.example/a"},
            {"url": "not a url"},
            {"url": "javascript:alert(1)"},
            {"url": "http://"},
            {"url": "http://hooks.example:99999/"},
            {"url": "https://hooks.example/" + "a" * 2000},
            {},
            {"url": "https://hooks.example/a", "decisions": []},
            {"url": "https://hooks.example/a", "decisions": ["insufficient"]},
            {"url": "https://hooks.example/a", "enabled": "maybe"},
            {"url": "https://hooks.example/a", "secret": "mine"},
            {"url": "https://hooks.example/a", "stream_id": "x" * 37},
            ["https://hooks.example/a"],
        ]
        for bad in bad_creates:
            _error(admin.post("/v1/webhooks", json=bad), 422, "invalid_request")
        not_json = admin.post("/v1/webhooks", content=b"{", headers={"Content-Type": "application/json"})
        _error(not_json, 422, "invalid_request")
        for bad in ({"url": None}, {"enabled": None}, {"stream_id": stream}, {"url": "ftp://x"}, {"decisions": []}):
            _error(admin.patch(f"/v1/webhooks/{webhook['id']}", json=bad), 422, "invalid_request")
        for params in ({"status": "lost"}, {"limit": 0}, {"offset": -1}):
            _error(admin.get(f"/v1/webhooks/{webhook['id']}/deliveries", params=params), 422, "invalid_request")
        _error(admin.post("/v1/webhooks", json={**body, "stream_id": "no-such-stream"}), 404, "stream_not_found")

        missing = "00000000-0000-0000-0000-000000000000"
        for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("GET", "/deliveries")):
            kwargs = {"json": {"enabled": True}} if method == "PATCH" else {}
            _error(admin.request(method, f"/v1/webhooks/{missing}{path}", **kwargs), 404, "webhook_not_found")

        endpoints = [
            ("POST", "/v1/webhooks", {"json": {"url": "https://hooks.example/x"}}),
            ("GET", "/v1/webhooks", {}),
            ("GET", f"/v1/webhooks/{webhook['id']}", {}),
            ("PATCH", f"/v1/webhooks/{webhook['id']}", {"json": {"enabled": True}}),
            ("GET", f"/v1/webhooks/{webhook['id']}/deliveries", {}),
            ("DELETE", f"/v1/webhooks/{webhook['id']}", {}),
        ]
        with server.client(timeout=30) as anonymous:
            for method, path, kwargs in endpoints:
                _error(anonymous.request(method, path, **kwargs), 401, "unauthorized")
        for role in ("read", "enroll"):
            with server.client(keys[role], timeout=30) as client:
                for method, path, kwargs in endpoints:
                    _error(client.request(method, path, **kwargs), 403, "forbidden")

        assert admin.delete(f"/v1/webhooks/{webhook['id']}").status_code == 204
        _error(admin.get(f"/v1/webhooks/{webhook['id']}"), 404, "webhook_not_found")
        _error(admin.delete(f"/v1/webhooks/{webhook['id']}"), 404, "webhook_not_found")
        for other in others:
            assert admin.delete(f"/v1/webhooks/{other}").status_code == 204
    with sessions() as session:
        audited = session.scalars(
            select(AuditEntry.action).where(AuditEntry.target == f"webhook:{webhook['id']}").order_by(AuditEntry.id)
        ).all()
    assert audited == ["webhook.create", "webhook.update", "webhook.update", "webhook.delete"]


def test_running_server_delivers_signed_events(api: tuple[ServerProcess, Sessions], keys: dict[str, str]):
    """An event recorded in the database reaches a receiver through ``gaitid serve``'s dispatcher, signed."""
    server, sessions = api
    stream = add_stream(sessions, "lobby")
    with Receiver() as receiver, server.client(keys["admin"], timeout=30) as admin:
        subject = admin.post("/v1/subjects", json={"name": "Ada"}).json()["id"]
        created = admin.post("/v1/webhooks", json={"url": receiver.url, "stream_id": stream, "decisions": ["match"]})
        assert created.status_code == 201, created.text
        webhook = created.json()
        add_event(sessions, stream, "unknown")  # not wanted by this webhook
        event_id = add_event(sessions, stream, "match", subject_id=subject)
        [received] = receiver.wait_for(1)
        time.sleep(0.5)
        assert len(receiver.requests) == 1, "only the match was owed"

        assert_signed(received, webhook["secret"])
        timestamp, signature = received.headers["x-gaitid-timestamp"], received.headers["x-gaitid-signature"]
        assert abs(int(timestamp) - time.time()) < 60
        tampered = received.body.replace(b'"match"', b'"unknown"')
        assert tampered != received.body and not verify(webhook["secret"], timestamp, tampered, signature)
        sent = json.loads(received.body)
        assert sent == payload(sessions, event_id)
        assert sent["decision"] == "match" and sent["subject"]["id"] == subject and sent["stream"]["name"] == "lobby"

        path = f"/v1/webhooks/{webhook['id']}/deliveries"
        eventually(lambda: admin.get(path, params={"status": "delivered"}).json()["total"], HANG_S, "delivered")
        page = admin.get(path).json()
        assert page["total"] == 1
        [delivery] = page["items"]
        assert str(delivery["id"]) == received.headers["x-gaitid-delivery"] and delivery["event_id"] == event_id
        assert delivery["status"] == "delivered" and delivery["attempts"] == 1 and delivery["next_attempt_at"] is None
        assert [(e["attempt"], e["status_code"], e["error"]) for e in delivery["log"]] == [(1, 200, None)]
        assert admin.get(path, params={"status": "pending"}).json()["total"] == 0


def test_failed_delivery_is_retried_on_request_signed_with_a_rotated_secret(
    api: tuple[ServerProcess, Sessions], keys: dict[str, str]
):
    server, sessions = api
    stream = add_stream(sessions, "gate")
    with Receiver(statuses=(500, 500, 200)) as receiver, server.client(keys["admin"], timeout=30) as admin:
        webhook = admin.post("/v1/webhooks", json={"url": receiver.url, "stream_id": stream}).json()
        hook_path = f"/v1/webhooks/{webhook['id']}"
        add_event(sessions, stream)
        failed = eventually(
            lambda: admin.get(f"{hook_path}/deliveries", params={"status": "failed"}).json()["items"],
            15,
            "the delivery to fail after GAITID_WEBHOOK_MAX_ATTEMPTS=2",
        )[0]
        assert len(receiver.requests) == 2
        assert_signed(receiver.requests[0], webhook["secret"])
        retry = f"{hook_path}/deliveries/{failed['id']}/retry"

        admin.patch(hook_path, json={"enabled": False})
        _error(admin.post(retry), 409, "webhook_disabled")
        admin.patch(hook_path, json={"enabled": True})
        rotated = admin.post(f"{hook_path}/secret")
        assert rotated.status_code == 200, rotated.text
        new_secret = rotated.json()["secret"]
        assert len(new_secret) >= 40 and new_secret != webhook["secret"]
        assert "secret" not in admin.get(hook_path).json()

        retried = admin.post(retry)
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "pending" and retried.json()["attempts"] == 0
        third = receiver.wait_for(3)[2]
        assert third.headers["x-gaitid-delivery"] == str(failed["id"])
        assert_signed(third, new_secret)
        signature = third.headers["x-gaitid-signature"]
        assert not verify(webhook["secret"], third.headers["x-gaitid-timestamp"], third.body, signature)
        delivered = eventually(
            lambda: admin.get(f"{hook_path}/deliveries", params={"status": "delivered"}).json()["items"], 10, "delivery"
        )[0]
        assert [(e["attempt"], e["status_code"]) for e in delivered["log"]] == [(1, 500), (2, 500), (1, 200)]
        _error(admin.post(retry), 409, "delivery_not_failed")

        other = admin.post("/v1/webhooks", json={"url": receiver.url}).json()
        _error(admin.post(f"/v1/webhooks/{other['id']}/deliveries/{failed['id']}/retry"), 404, "delivery_not_found")
        _error(admin.post(f"{hook_path}/deliveries/999999/retry"), 404, "delivery_not_found")
        _error(admin.post(f"{hook_path}/deliveries/0/retry"), 422, "invalid_request")
        missing = "00000000-0000-0000-0000-000000000000"
        _error(admin.post(f"/v1/webhooks/{missing}/secret"), 404, "webhook_not_found")
        with server.client(keys["read"], timeout=30) as reader:
            _error(reader.post(f"{hook_path}/secret"), 403, "forbidden")
            _error(reader.post(retry), 403, "forbidden")
        for hook in (webhook["id"], other["id"]):
            admin.delete(f"/v1/webhooks/{hook}")
    with sessions() as session:
        audited = session.scalars(
            select(AuditEntry.action).where(AuditEntry.target == f"webhook:{webhook['id']}").order_by(AuditEntry.id)
        ).all()
    assert audited[-3:] == ["webhook.rotate_secret", "webhook.retry_delivery", "webhook.delete"]


# --- retention ---------------------------------------------------------------------------------


def _age(sessions: Sessions, event_id: int, days: float, snapshot: Path | None = None) -> None:
    with sessions() as session, session.begin():
        event = session.get_one(StreamEvent, event_id)
        event.created_at = event.created_at - timedelta(days=days)
        if snapshot is not None:
            snapshot.write_bytes(b"\xff\xd8 a jpeg")
            event.snapshot_path = str(snapshot)


def _event_ids(sessions: Sessions) -> list[int]:
    with sessions() as session:
        return list(session.scalars(select(StreamEvent.id).order_by(StreamEvent.id)))


def test_old_events_are_pruned_with_their_deliveries_and_snapshots(
    sessions: Sessions, database_url: str, tmp_path: Path
):
    stream_id = add_stream(sessions)
    add_webhook(sessions, "http://127.0.0.1:9/hook")
    old, old_with_snapshot, recent = (add_event(sessions, stream_id) for _ in range(3))
    snapshot = tmp_path / "old.jpg"
    _age(sessions, old, 40)
    _age(sessions, old_with_snapshot, 31, snapshot)
    _age(sessions, recent, 29)

    env = {"GAITID_DATABASE_URL": database_url}
    dry = run_cli("events", "prune", "--older-than", "30", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would delete 2 events" in dry.stdout and "2 webhook deliveries and 1 snapshots" in dry.stdout
    assert _event_ids(sessions) == [old, old_with_snapshot, recent] and snapshot.is_file()

    pruned = run_cli("events", "prune", "--older-than", "30", env=env)
    assert pruned.returncode == 0, pruned.stderr
    assert "deleted 2 events" in pruned.stdout, pruned.stdout
    assert _event_ids(sessions) == [recent]
    assert [d.event_id for d in deliveries(sessions)] == [recent]
    assert not snapshot.exists()
    with sessions() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "events.prune")).one()
        assert entry.details["events"] == 2 and entry.details["deliveries"] == 2

    refused = run_cli("events", "prune", "--older-than", "-1", env=env)
    assert refused.returncode != 0 and "bad_option" in refused.stderr


def test_retention_setting_sweeps_in_the_background(sessions: Sessions):
    stream_id = add_stream(sessions)
    old, recent = add_event(sessions, stream_id), add_event(sessions, stream_id)
    _age(sessions, old, 8)
    retention = event_retention(sessions, days=7)
    retention.start()
    try:
        eventually(lambda: _event_ids(sessions) == [recent], 10, "the sweep at start")
    finally:
        retention.stop()
