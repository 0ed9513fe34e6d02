"""The pipeline on the real clips: one kept track per person who walks ≥ 2 s in view (and can be seen).

Ground truth comes from ../shared/videos/ground_truth.json. Each clip runs through ``gaitid silhouettes``
(real decoder, detector, tracker and segmenter), so this is slow: a few minutes. The shortest clip runs
as a real command line process (with ``--annotate``); the others run the same command in this process,
once per session (the ``clip_pipeline`` fixture), sparing a process start that reloads torch and the models.
"""

import json
from collections import defaultdict

import numpy as np
import pytest

from pipeline.decode import VideoSource
from tests.conftest import HIDDEN_WALKERS, SHARED, run_cli

MIN_WALK_S = 2.0
ROTATE = {"rotated_group.mp4": 90}
ANNOTATED = "walk_indoor_a_probe.mp4"  # encoding the annotated video is checked once, on the shortest clip


def _walkers(clip: dict) -> int:
    seconds: dict[str, float] = defaultdict(float)
    for track in clip.get("tracks", []):
        seconds[track["person"]] += track["to_s"] - track["from_s"]
    return sum(1 for s in seconds.values() if s >= MIN_WALK_S)


def _clips() -> list[tuple[str, int]]:
    path = SHARED / "videos" / "ground_truth.json"
    if not path.is_file():
        return []
    clips = json.loads(path.read_text())["clips"]
    return [
        (name, _walkers(clip) - len(HIDDEN_WALKERS.get(name, "")))
        for name, clip in clips.items()
        if clip.get("walkers")
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("clip", "walkers"),
    _clips() or [pytest.param("none", 0, id="no-ground-truth")],  # videos_dir then fails, saying what is missing
)
def test_one_kept_track_per_walker(
    clip, walkers, videos_dir, detector_weights, pose_model, shared_cache, clip_pipeline, tmp_path
):
    if clip == ANNOTATED:  # the real command line, in its own process
        result = run_cli(
            "silhouettes",
            str(videos_dir / clip),
            "--out",
            str(tmp_path),
            "--rotate",
            str(ROTATE.get(clip, 0)),
            "--detector",
            str(detector_weights),
            "--seg-model",
            str(pose_model),
            "--annotate",
            str(tmp_path / "boxes.mp4"),
            "--cache",
            timeout=600,
            env={"GAITID_CACHE_DIR": str(shared_cache)},  # the service tests reuse these pipeline results
        )
        assert result.returncode == 0, result.stderr[-2000:]
        out = tmp_path
    else:
        out = clip_pipeline(clip, ROTATE.get(clip, 0))
    report = json.loads((out / "tracks.json").read_text())
    kept = [t for t in report["tracks"] if t["usable"]]
    assert len(kept) == walkers, json.dumps(report["tracks"], indent=1)
    for track in kept:
        sils = np.load(out / f"{track['track_id']}.npy")
        assert sils.dtype == np.uint8 and sils.shape[1:] == (64, 64) and len(sils) == track["good_frames"] >= 15
        assert (out / f"{track['track_id']}.png").is_file()
        # a walking person fills a plausible share of the 64×64 frame, not a box or a sliver
        fill = (sils > 127).mean()
        assert 0.08 < fill < 0.45, f"track {track['track_id']} fill {fill:.2f}"
    if clip == ANNOTATED:  # the annotated video plays, frame for frame
        with VideoSource(tmp_path / "boxes.mp4") as annotated:
            assert sum(1 for _ in annotated.frames()) == report["frames_processed"]
