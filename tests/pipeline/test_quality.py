"""The quality gates a frame and a track pass before their silhouettes count (``not_upright`` is in
test_segment.py): each gate on a box or mask just past its limit, and the same box or mask inside it."""

from collections import Counter

import numpy as np
import pytest

from pipeline.detect import Detection
from pipeline.quality import QualityConfig, frame_problem, mask_problem, track_verdict

SHAPE = (240, 320, 3)  # height, width of the frame
CONFIG = QualityConfig()


def person(box: tuple[float, float, float, float], track_id: int = 1) -> Detection:
    return Detection(track_id, box, 0.9)


GOOD = (100.0, 60.0, 140.0, 160.0)  # 40 × 100 px, upright, clear of the border


@pytest.mark.parametrize(
    ("box", "others", "problem"),
    [
        (GOOD, [], None),
        ((100.0, 60.0, 120.0, 99.0), [], "too_small"),  # 39 px tall < 40
        ((100.0, 60.0, 120.0, 100.0), [], None),  # exactly 40 px tall
        ((1.0, 60.0, 41.0, 160.0), [], "touches_border"),  # within 2 px of the left edge
        ((100.0, 60.0, 140.0, 238.0), [], "touches_border"),  # within 2 px of the bottom
        ((3.0, 60.0, 43.0, 160.0), [], None),  # 3 px clear
        (GOOD, [(110.0, 60.0, 150.0, 160.0)], "occluded"),  # another box covers 75 % of it
        (GOOD, [(130.0, 60.0, 170.0, 160.0)], None),  # 25 % ≤ 30 %
        (GOOD, [(100.0, 60.0, 140.0, 90.0), (100.0, 130.0, 140.0, 160.0)], None),  # the largest single share counts
    ],
)
def test_frame_gates(box, others, problem):
    others = [person(o, track_id=2 + i) for i, o in enumerate(others)]
    assert frame_problem(person(box), others, SHAPE, CONFIG) == problem


def test_the_first_failing_gate_names_the_frame():
    """A small box at the border is ``too_small``: the gates are checked in order and one reason is given."""
    assert frame_problem(person((0.0, 0.0, 10.0, 20.0)), [], SHAPE, CONFIG) == "too_small"


def _mask(fill_rows: slice, fill_cols: slice, shape: tuple[int, int] = (100, 40)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[fill_rows, fill_cols] = 255
    return mask


@pytest.mark.parametrize(
    ("mask", "problem"),
    [
        (None, "no_mask"),
        (np.zeros((0, 0), np.uint8), "no_mask"),
        (_mask(slice(5, 95), slice(10, 30)), None),  # a person-like 45 % fill, head to feet
        (_mask(slice(5, 95), slice(18, 22)), "implausible_mask"),  # a sliver: 9 % < 12 %
        (_mask(slice(0, 100), slice(0, 40)), "implausible_mask"),  # the filled box: 100 % > 92 %
        (_mask(slice(60, 100), slice(0, 40)), "implausible_mask"),  # 40 % fill but only the lower 40 % of rows
        (_mask(slice(50, 100), slice(0, 40)), None),  # half the rows: exactly the minimum coverage
    ],
)
def test_mask_gates(mask, problem):
    assert mask_problem(mask, CONFIG) == problem


def test_track_verdict_keeps_enough_good_frames_and_names_what_cost_most():
    assert track_verdict(15, Counter(occluded=40), CONFIG) == (True, "15 good frames")
    kept, reason = track_verdict(14, Counter(occluded=3, touches_border=9, too_small=2), CONFIG)
    assert not kept and reason == "only 14 good frames (< 15); most frames lost to touches_border (9)"
    assert track_verdict(0, Counter(), CONFIG) == (False, "only 0 good frames (< 15)")
    assert track_verdict(5, Counter(), QualityConfig(min_good_frames=5))[0]
