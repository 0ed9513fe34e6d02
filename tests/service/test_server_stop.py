"""Stopping ``gaitid serve`` while a console follows events over SSE (real server, real signal)."""

import signal
from pathlib import Path

from tests.conftest import within
from tests.service.conftest import create_key, fresh_database, running_server


def test_a_stopping_server_ends_open_event_streams_instead_of_waiting_out_its_grace(
    tmp_path: Path, shared_cache: Path, weights_env: dict[str, str]
) -> None:
    """An event stream never ends by itself, so a stop used to wait out the whole grace period with a
    console tab open; the stream now ends as the signal arrives and the server exits. The grace here is
    ten minutes, so a stop that waited for it would fail the deadlines below."""
    grace = {**weights_env, "GAITID_SHUTDOWN_GRACE_SECONDS": "600"}
    with fresh_database("sqlite", tmp_path) as url, running_server(url, tmp_path, shared_cache, grace) as server:
        key = create_key(server.env, "read")
        with server.client(key) as client, client.stream("GET", "/v1/events/stream") as response:
            lines = response.iter_lines()
            assert next(lines).startswith("retry:")
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            rest = within(120, lambda: list(lines), "the event stream of a stopping server")
        assert not any(line.startswith("event: error") for line in rest)  # it ends, it does not fail
        within(120, server.process.wait, "the server to exit")
    log = server.log_tail(100_000)
    assert "Application shutdown complete" in log and "graceful shutdown exceeded" not in log
