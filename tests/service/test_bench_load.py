"""``gaitid bench load`` (issue 19's load figures) on a small burst against the embedded default."""

import json

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_a_small_burst_gets_no_server_error_and_every_job_ends(weights_env, videos_dir, tmp_path):
    out = tmp_path / "load.json"
    clip = videos_dir / "walk_indoor_a_probe.mp4"
    result = run_cli(
        "bench", "load", str(clip), "--uploads", "2", "--reads", "20", "--json", str(out), env=weights_env, timeout=900
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["uploads"]["errors"] == figures["reads"]["errors"] == 0
    assert figures["accepted"] == 2 and figures["jobs"] == {"succeeded": 2, "unfinished": 0}
    assert figures["reads"]["statuses"] == {"200": 20} and figures["peak_rss_mib"] > 0
    assert "jobs/min" in result.stdout and "p99 s" in result.stdout
