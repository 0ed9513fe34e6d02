"""The real-clip protocol: track-to-person assignment on constructed tracks, and a smoke run on real clips."""

import json

import numpy as np
import pytest

from models.evaluation.clips import ClipTruth, PersonTruth, assign_tracks
from pipeline.tracks import Track
from tests.conftest import run_cli


def _track(track_id: int, start_s: float, end_s: float, x_centre: float, width: float = 100.0) -> Track:
    frames = list(range(int(start_s * 10), int(end_s * 10) + 1))
    half = width * 0.05
    return Track(
        track_id=track_id,
        kept=True,
        reason="",
        first_frame=frames[0],
        last_frame=frames[-1],
        start_s=start_s,
        end_s=end_s,
        seen_frames=len(frames),
        silhouettes=np.zeros((0, 64, 64), np.uint8),
        frame_ids=[],
        boxes=[(f, (x_centre * width - half, 10.0, x_centre * width + half, 90.0)) for f in frames],
        problems={},
    )


def test_group_tracks_go_to_the_person_standing_there_whatever_their_numbers() -> None:
    truth = ClipTruth(
        (PersonTruth("N", ((0, 8),), 0.27), PersonTruth("G", ((0, 8),), 0.41), PersonTruth("W", ((0, 8),), 0.53)),
        at_s=4.0,
    )
    tracks = [_track(9, 0, 8, 0.55), _track(2, 0, 8, 0.25), _track(5, 0.5, 7, 0.43), _track(7, 5, 8, 0.40)]
    # track 7 starts after the moment the positions were read: it cannot be told apart, so it stays out
    assert assign_tracks(tracks, truth, 100.0) == {9: "W", 2: "N", 5: "G"}


def test_a_track_far_from_every_position_is_not_forced_onto_someone() -> None:
    truth = ClipTruth((PersonTruth("N", ((0, 8),), 0.2), PersonTruth("G", ((0, 8),), 0.4)), at_s=4.0)
    assert assign_tracks([_track(1, 0, 8, 0.9), _track(2, 0, 8, 0.38)], truth, 100.0) == {2: "G"}


def test_without_positions_tracks_go_by_time_in_view() -> None:
    # walk_outdoor: O 1.2-3.8 s, then R 3.6-6.7 s; rotated_group: both from 0, R leaves at 5.5 s
    one_after_other = ClipTruth((PersonTruth("O", ((1.2, 3.8),)), PersonTruth("R", ((3.6, 6.7),))))
    tracks = [_track(3, 1.3, 3.9, 0.5), _track(8, 3.7, 6.6, 0.5), _track(11, 6.9, 7.0, 0.5)]
    assert assign_tracks(tracks, one_after_other, 100.0) == {3: "O", 8: "R"}
    together = ClipTruth((PersonTruth("R", ((0.0, 5.5),)), PersonTruth("O", ((0.0, 8.0),))))
    assert assign_tracks([_track(1, 0.0, 5.4, 0.5), _track(2, 1.0, 8.0, 0.4)], together, 100.0) == {1: "R", 2: "O"}


SMOKE_PROTOCOL = """
enroll:
  - {clip: walk_indoor_a_enroll.mp4, persons: [J]}
  - {clip: walk_outdoor.mp4, persons: [O, R]}
probes:
  - {clip: walk_indoor_a_probe.mp4}
"""


@pytest.mark.slow
def test_clip_protocol_smoke_on_real_clips(tmp_path, shared_cache, weights_env, videos_dir) -> None:
    """The shipped default through the real pipeline: J enrolled from one clip is J in another (ranked by
    the best window of the probe walk, scored on the whole walk), and the open-set pass sends J to
    `unknown` once J is out of the gallery (nobody else is in the probe)."""
    protocol = tmp_path / "protocol.yaml"
    protocol.write_text(SMOKE_PROTOCOL)
    env = {"GAITID_CACHE_DIR": str(shared_cache), **weights_env}
    out = tmp_path / "clips.json"
    result = run_cli(
        *("evaluate", "--dataset", "clips", "--data", str(videos_dir), "--model", "default"),
        *("--protocol", str(protocol), "--json", str(out), "--cache"),
        *("--ranking-window-frames", "20"),  # J's 53-frame probe walk then ranks by its best window
        env=env,
        timeout=1200,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert sorted(report["enrolled"]) == ["J", "O", "R"]
    assert report["ranking_windows"] == {"frames": 20, "stride": 10, "longer_than": 30}
    (j,) = report["appearances"]
    assert (j["clip"], j["person"], j["top1"], j["top1_right"]) == ("walk_indoor_a_probe.mp4", "J", "J", True)
    assert j["genuine"]["similarity"] > j["best_impostor"]["similarity"]
    assert 0.0 <= j["genuine"]["confidence"] <= 1.0
    point = report["summary"]["far_1e-2"]
    assert j["decisions"]["far_1e-2"] == "match J" and point["decision_right"] == 1 and point["false_matches"] == 0
    assert j["open_set"]["far_1e-2"]["J"] == "unknown" and j["open_set"]["far_1e-2"]["O"] == "match J"
    assert point["open_set_removed_unknown"] == "1/1" and point["open_set_others_changed"] == 0
    assert "top-1 right 1/1" in result.stdout and "ranked by their best 20-frame window" in result.stdout
