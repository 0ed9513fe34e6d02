"""Every list endpoint: one envelope ``{items, total, limit, offset}`` honouring both, and a constant
number of SQL statements per page, not one per row.

The app runs in this process behind a real uvicorn server on 127.0.0.1 (real HTTP), so that a
SQLAlchemy listener on the service's own engine counts every statement a request makes.
"""

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import event

from models.registry import resolve
from service.api.app import create_app
from service.auth import issue_key
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.db.tables import GaitSequence, Stream, StreamEvent, Subject, utcnow
from service.gallery.sync import embedding_to_bytes, record_change
from service.settings import Settings
from tests.service.conftest import serve_in_process

SUBJECTS = 120


def _seed(database_url: str) -> str:
    """SUBJECTS subjects with one sequence each, one event naming each (with five candidates), and a read key."""
    engine = make_engine(database_url)
    model_key = resolve("default").key  # the bundled model's: sequences of another version are not listed
    try:
        with make_session_factory(engine)() as session, session.begin():
            subjects = [Subject(name=f"person {n}") for n in range(SUBJECTS)]
            stream = Stream(name="door", url="rtsp://127.0.0.1/door")
            session.add_all([*subjects, stream])
            session.flush()
            for n, subject in enumerate(subjects):
                sequence = GaitSequence(
                    subject_id=subject.id,
                    model_key=model_key,
                    embedding=embedding_to_bytes(np.full((256, 16), n, np.float32)),
                    frames=30,
                    quality=1.0,
                )
                session.add(sequence)
                session.flush()
                record_change(session, sequence.model_key, sequence.id, "add")
                candidates = [subjects[(n + k) % SUBJECTS].id for k in range(5)]
                session.add(
                    StreamEvent(
                        stream_id=stream.id,
                        track_id=n,
                        started_at=utcnow(),
                        ended_at=utcnow(),
                        decision="match",
                        subject_id=subject.id,
                        score=0.9,
                        confidence=0.99,
                        threshold=0.99,
                        good_frames=30,
                        candidates=[{"subject_id": c, "score": 0.9, "confidence": 0.99} for c in candidates],
                        model_key=model_key,
                    )
                )
            _, key = issue_key(session, "read", "test-read")
        return key
    finally:
        engine.dispose()


@pytest.fixture()
def in_process_server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str, list[str]]]:
    """The service's URL, a read key, and the list its engine appends every executed statement to."""
    upgrade(database_url)
    key = _seed(database_url)
    app = create_app(Settings(database_url=database_url, data_dir=tmp_path / "data"))  # type: ignore[call-arg]
    with serve_in_process(app) as url:
        statements: list[str] = []

        def count(*args: object) -> None:
            # requests run on AnyIO's worker threads; the job runner, webhook dispatcher and stream manager
            # poll the same engine from their own threads, which is not what a request costs
            if threading.current_thread().name.startswith("AnyIO worker thread"):
                statements.append(str(args[2]))

        event.listen(app.state.ctx.engine, "before_cursor_execute", count)
        yield url, key, statements


@pytest.mark.parametrize("path", ["/v1/subjects", "/v1/events"])
def test_a_page_costs_the_same_statements_for_5_rows_or_all(in_process_server, path: str):
    url, key, statements = in_process_server
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
        counts = {}
        for limit in (5, 500):
            statements.clear()
            page = client.get(path, params={"limit": limit}).json()
            counts[limit] = len(statements)
            assert len(page["items"]) == min(limit, SUBJECTS) and page["total"] == SUBJECTS
            if path == "/v1/subjects":
                assert all(item["sequences"] == 1 for item in page["items"])
            else:
                assert all(item["subject"] and len(item["candidates"]) == 5 for item in page["items"])
    assert counts[5] == counts[500], f"statements for limit 5 vs 500: {counts}"


def test_every_list_endpoint_answers_one_envelope_and_takes_limit_and_offset():
    schema = create_app(Settings(database_url="sqlite://")).openapi()  # type: ignore[call-arg]
    lists = 0
    for path, operations in schema["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        body = get["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        assert body.get("type") != "array", f"GET {path} answers a bare array"
        if body.get("$ref", "").startswith("#/components/schemas/Page_"):
            lists += 1
            names = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
            assert {"limit", "offset"} <= names, f"GET {path} pages without limit/offset: {names}"
            page = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
            assert set(page["properties"]) == {"items", "total", "limit", "offset"}
    assert lists == 8, "subjects, sequences, jobs, keys, streams, events, webhooks, deliveries"


def test_limit_and_offset_page_through_a_list(in_process_server):
    url, key, _ = in_process_server
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=120) as client:
        pages = [client.get("/v1/subjects", params={"limit": 50, "offset": offset}).json() for offset in (0, 50, 100)]
    assert [len(p["items"]) for p in pages] == [50, 50, SUBJECTS - 100]
    assert all((p["total"], p["limit"]) == (SUBJECTS, 50) for p in pages)
    assert [p["offset"] for p in pages] == [0, 50, 100]
    names = [item["name"] for p in pages for item in p["items"]]
    assert len(set(names)) == SUBJECTS, "every subject once, no page overlapping another"
