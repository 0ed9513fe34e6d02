"""GaitID's ByteTrack on synthetic walks: identities hold through gaps, low scores and clutter."""

import numpy as np

from pipeline.bytetrack import ByteTracker, ByteTrackSettings


def _walker(frame: int, start_x: float, speed: float, y: float = 100.0) -> list[float]:
    x = start_x + speed * frame
    return [x, y, x + 60, y + 180]


def _run(tracker: ByteTracker, frames: list[tuple[list[list[float]], list[float]]]) -> list[dict[int, list[float]]]:
    seen = []
    for boxes, scores in frames:
        tracks = tracker.update(np.array(boxes, dtype=float).reshape(-1, 4), np.array(scores, dtype=float))
        seen.append({t.track_id: t.xyxy.tolist() for t in tracks})
    return seen


def test_two_walkers_keep_their_ids_through_a_missed_stretch():
    tracker = ByteTracker(ByteTrackSettings())
    frames = []
    for f in range(40):
        boxes, scores = [_walker(f, 0, 6)], [0.8]
        if not 15 <= f < 22:  # the second walker is missed for 7 frames (occluded by a pillar)
            boxes.append(_walker(f, 600, -5, y=110))
            scores.append(0.7)
        frames.append((boxes, scores))
    seen = _run(tracker, frames)
    assert seen[0].keys() == {1, 2}  # the first frame's people are confirmed at once
    assert all(set(s) == {1, 2} for f, s in enumerate(seen) if not 15 <= f < 22)
    assert all(set(s) == {1} for f, s in enumerate(seen) if 15 <= f < 22)
    leftmost = [min(s.items(), key=lambda kv: kv[1][0])[0] for s in seen if len(s) == 2]
    assert set(leftmost) == {1}  # walker 1 stays walker 1: no identity switch


def test_a_low_score_detection_extends_a_track_but_does_not_start_one():
    tracker = ByteTracker(ByteTrackSettings())
    frames = [([_walker(f, 0, 4)], [0.9]) for f in range(5)]
    frames += [([_walker(f, 0, 4), [700, 50, 760, 230]], [0.2, 0.25]) for f in range(5, 10)]
    seen = _run(tracker, frames)
    assert all(set(s) == {1} for s in seen)


def test_a_one_frame_false_detection_is_never_reported():
    tracker = ByteTracker(ByteTrackSettings())
    frames = [([_walker(f, 0, 4)], [0.9]) for f in range(3)]
    frames.append(([_walker(3, 0, 4), [500, 40, 540, 160]], [0.9, 0.9]))  # clutter, one frame only
    frames += [([_walker(f, 0, 4)], [0.9]) for f in range(4, 8)]
    seen = _run(tracker, frames)
    assert all(set(s) == {1} for s in seen)
    assert not tracker.unconfirmed()


def test_a_second_sighting_confirms_a_newcomer():
    tracker = ByteTracker(ByteTrackSettings())
    frames = [([_walker(f, 0, 4)], [0.9]) for f in range(3)]
    frames += [([_walker(f, 0, 4), _walker(f, 400, -4)], [0.9, 0.9]) for f in range(3, 6)]
    seen = _run(tracker, frames)
    assert set(seen[3]) == {1}  # born, waiting for confirmation
    assert set(seen[4]) == set(seen[5]) == {1, 2}


def test_prediction_carries_a_moving_box_between_detections():
    tracker = ByteTracker(ByteTrackSettings())
    _run(tracker, [([_walker(f, 0, 6)], [0.9]) for f in range(10)])
    before = tracker.active()[0].xyxy.copy()
    tracker.predict()
    after = tracker.active()[0].xyxy
    assert 4 < after[0] - before[0] < 8 and abs(after[1] - before[1]) < 1  # about one frame's 6 px step
