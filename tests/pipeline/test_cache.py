"""The pipeline cache is an optimisation: a store that fails (full disk, unusable folder) loses nothing."""

import numpy as np

from pipeline.cache import TrackCache
from pipeline.decode import VideoInfo
from pipeline.extract import PipelineResult, StageTimes
from pipeline.tracks import Track


def _result() -> PipelineResult:
    track = Track(1, True, "20 good frames", 0, 19, 0.0, 0.6, 20, np.zeros((20, 64, 64), np.uint8),
                  list(range(20)), [(0, (1.0, 2.0, 30.0, 90.0))], {})  # fmt: skip
    return PipelineResult("walk.mp4", VideoInfo(64, 128, 30.0, 20, 0.66, 0), [track], 20, False, StageTimes())


def test_a_stored_result_comes_back_whole(tmp_path):
    cache = TrackCache(tmp_path / "tracks")
    assert cache.put("k", _result())
    back = cache.get("k", "walk.mp4")
    assert back is not None and back.tracks[0].silhouettes.shape == (20, 64, 64)
    assert back.tracks[0].boxes == [(0, (1.0, 2.0, 30.0, 90.0))]


def test_a_store_that_fails_leaves_nothing_and_says_so(tmp_path):
    blocked = tmp_path / "tracks"
    blocked.write_text("a file where the cache folder should be")  # mkdir fails as on a broken volume
    cache = TrackCache(blocked)
    assert cache.put("k", _result()) is False
    assert cache.get("k", "walk.mp4") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks"]
