"""``gaitid silhouettes`` on broken inputs and on a clip with nobody in it."""

import json

import pytest

from tests.conftest import run_cli


def _silhouettes(video, out, detector, pose_model=None, timeout=300):
    """``gaitid silhouettes VIDEO --out OUT --detector DETECTOR [--seg-model POSE_MODEL]``."""
    args = ["silhouettes", str(video), "--out", str(out), "--detector", str(detector)]
    if pose_model is not None:
        args += ["--seg-model", str(pose_model)]
    return run_cli(*args, timeout=timeout)


@pytest.mark.parametrize("name", ["empty.mp4", "text.mp4", "truncated_no_moov.mp4"])
def test_bad_files_are_one_line_errors(name, videos_dir, detector_weights, tmp_path):
    result = _silhouettes(videos_dir / "bad" / name, tmp_path, detector_weights, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("gaitid: error [video_unreadable]: ")


def test_unanswered_url_is_a_typed_error(detector_weights, tmp_path):
    result = _silhouettes("http://127.0.0.1:9/walk.mp4", tmp_path, detector_weights, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "gaitid: error [source_unreachable]" in result.stderr


def test_missing_detector_weights_say_how_to_get_them(videos_dir, tmp_path):
    result = _silhouettes(videos_dir / "walk_outdoor.mp4", tmp_path, tmp_path / "none.pt", timeout=60)
    assert result.returncode == 2 and "detector_not_found" in result.stderr


@pytest.mark.slow
def test_clip_without_people_gives_zero_tracks(videos_dir, detector_weights, pose_model, tmp_path):
    result = _silhouettes(videos_dir / "bad" / "no_person.mp4", tmp_path, detector_weights, pose_model)
    assert result.returncode == 0, result.stderr
    assert "no walking person found" in result.stdout
    report = json.loads((tmp_path / "tracks.json").read_text())
    assert report["kept_tracks"] == 0 and report["message"] == "no walking person found"


@pytest.mark.slow
def test_truncated_file_is_processed_with_a_warning(videos_dir, detector_weights, pose_model, tmp_path):
    result = _silhouettes(videos_dir / "bad" / "truncated.mp4", tmp_path, detector_weights, pose_model)
    assert result.returncode == 0, result.stderr
    assert "is damaged" in result.stderr
    assert json.loads((tmp_path / "tracks.json").read_text())["truncated"] is True
