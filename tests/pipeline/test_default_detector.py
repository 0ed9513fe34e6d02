"""The default person detector: licence-clean, self-describing, checked at fetch, and it finds people."""

import io
import json
import tarfile
from collections.abc import Iterator

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from pipeline.detect import DetectorConfig, PersonTracker
from pipeline.errors import BadOptionError
from pipeline.fetch_weights import ARTIFACTS, main
from pipeline.nanodet import NanoDetDetector, NanoDetSpec
from pipeline.ultralytics_env import offline_ultralytics
from tests.conftest import run_cli


def _metadata(path) -> dict[str, str]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def test_the_default_detector_says_where_it_comes_from_and_its_licence(detector_weights):
    metadata = _metadata(detector_weights)
    assert "Apache-2.0" in metadata["license"] and "AGPL" not in metadata["license"].upper()
    detector = ARTIFACTS["detector"]
    assert f"{detector.package}@{detector.version}" in metadata["source"]
    assert NanoDetSpec.from_metadata(metadata) == detector.spec


def _walker_frame(videos_dir) -> np.ndarray:
    """Frame 40 of walk_indoor_a_probe.mp4: one walker, whole, in a 9:16 phone video."""
    capture = cv2.VideoCapture(str(videos_dir / "walk_indoor_a_probe.mp4"))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 40)
    ok, frame = capture.read()
    assert ok
    return frame


def _first_frames(clip, count: int) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(clip))
    for _ in range(count):
        ok, frame = capture.read()
        assert ok
        yield frame


def _nanodet(weights) -> NanoDetDetector:
    session = ort.InferenceSession(str(weights), providers=["CPUExecutionProvider"])
    spec = NanoDetSpec.from_metadata(dict(session.get_modelmeta().custom_metadata_map))
    return NanoDetDetector(session, spec, None, confidence=0.3, nms_iou=0.6)


def test_it_finds_the_one_walker_of_a_real_frame(detector_weights, videos_dir):
    frame, detector = _walker_frame(videos_dir), _nanodet(detector_weights)
    boxes = detector.detect(frame)
    assert len(boxes) == 1, boxes
    x1, y1, x2, y2 = boxes.xyxy[0]
    height, width = frame.shape[:2]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert y2 - y1 > 1.5 * (x2 - x1) and y2 - y1 > 0.15 * height  # a whole standing person
    assert boxes.conf[0] > 0.5


def test_a_letterbox_of_the_frame_finds_what_the_square_finds(detector_weights, videos_dir):
    """The default graph takes any input size: a 9:16 frame is letterboxed to 234×416 (256×416 padded
    to whole strides), not padded to 416×416 (62 % of the pixels); the boxes are the square's, within
    a few pixels."""
    frame, detector = _walker_frame(videos_dir), _nanodet(detector_weights)
    assert detector.fits_frame
    tensor, _ = detector._input(frame)
    assert frame.shape[0] * 9 == frame.shape[1] * 16 and tensor.shape[2:] == (416, 256)  # a 9:16 phone video
    letterboxed = detector.detect(frame)
    detector.fits_frame = False
    squared = detector.detect(frame)
    assert len(letterboxed) == len(squared) == 1
    height = squared.xyxy[0, 3] - squared.xyxy[0, 1]
    assert abs(letterboxed.xyxy[0] - squared.xyxy[0]).max() < 0.03 * height, (letterboxed.xyxy, squared.xyxy)
    assert abs(letterboxed.conf[0] - squared.conf[0]) < 0.1


def test_tracking_gives_the_walker_one_id_over_consecutive_frames(detector_weights, videos_dir):
    tracker = PersonTracker(DetectorConfig(weights=detector_weights))
    ids = set()
    for frame in _first_frames(videos_dir / "walk_indoor_a_probe.mp4", 20):
        ids.update(d.track_id for d in tracker.update(frame))
    assert len(ids) == 1, ids


def test_detecting_every_third_frame_still_boxes_the_walker_on_every_frame(detector_weights, videos_dir):
    every_frame = PersonTracker(DetectorConfig(weights=detector_weights, detect_every=1))
    every_third = PersonTracker(DetectorConfig(weights=detector_weights, detect_every=3))
    frames = 30
    for frame in _first_frames(videos_dir / "walk_indoor_a_probe.mp4", frames):
        reference, carried = every_frame.update(frame), every_third.update(frame)
        assert len(carried) == len(reference) == 1
        (rx1, ry1, rx2, ry2), (cx1, cy1, cx2, cy2) = reference[0].box, carried[0].box
        height = ry2 - ry1  # the carried box stands where the detector sees the walker (widths swing with the stride)
        assert abs((rx1 + rx2) - (cx1 + cx2)) / 2 < 0.15 * height and abs((ry1 + ry2) - (cy1 + cy2)) / 2 < 0.1 * height
        assert abs((cy2 - cy1) - height) < 0.15 * height
    assert every_frame.detector_runs == frames
    assert every_third.detector_runs < frames / 2  # one walker, apart from everyone: skipping is allowed


def test_a_tarball_that_is_not_the_pinned_one_is_refused(tmp_path):
    forged = tmp_path / "human-models.tgz"
    payload = b'{"format": "graph-model"}'
    with tarfile.open(forged, "w:gz") as archive:
        info = tarfile.TarInfo("package/models/nanodet.json")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    with pytest.raises(SystemExit, match=r"sha(256|512)"):
        main(["detector", "--out", str(tmp_path / "out"), "--npm-tarball", str(forged)])
    assert not (tmp_path / "out" / ARTIFACTS["detector"].filename).exists()


def test_a_group_is_detected_on_every_frame_whatever_the_interval(detector_weights, videos_dir):
    """Skipping is for one walker: in a group people pass behind each other (at k = 2 without this
    rule a walker of probe1_4p_high was lost and one of probe2_4p_back split in two)."""
    tracker = PersonTracker(DetectorConfig(weights=detector_weights, detect_every=3))
    frames = 30
    for frame in _first_frames(videos_dir / "gallery_4p.mp4", frames):
        people = tracker.update(frame)
    assert len(people) == 4 and tracker.detector_runs == frames


@pytest.mark.slow
def test_bench_pipeline_compares_detection_intervals(detector_weights, pose_model, videos_dir, tmp_path):
    out = tmp_path / "pipeline.json"
    clip = videos_dir / "walk_indoor_a_probe.mp4"
    result = run_cli("bench", "pipeline", str(clip), "--detect-everys", "2,3", "--json", str(out), timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["detect_every"] for r in rows] == [2, 3]
    assert [r["default"] for r in rows] == [True, False]
    assert all(r["kept_tracks"] == 1 and r["frames"] == 83 and r["frames_per_s"] > 0 for r in rows), rows
    assert "detect every" in result.stdout and "frames/s" in result.stdout


def test_users_yolo_weights_still_run_through_ultralytics(tmp_path, videos_dir, monkeypatch):
    """The YOLO option (the `yolo` extra): an untrained YOLOv8n built from its config runs and tracks."""
    monkeypatch.chdir(tmp_path)  # ultralytics writes nothing into the repository
    offline_ultralytics()
    from ultralytics import YOLO

    weights = tmp_path / "untrained.pt"
    YOLO("yolov8n.yaml").save(str(weights))
    tracker = PersonTracker(DetectorConfig(weights=weights, person_classes=(0,)))
    capture = cv2.VideoCapture(str(videos_dir / "walk_indoor_a_probe.mp4"))
    for _ in range(3):
        ok, frame = capture.read()
        assert ok
        assert isinstance(tracker.update(frame), list)  # untrained: boxes or none, but no error
    assert tracker.detector_runs == 3


def test_unusable_detector_weights_are_refused_with_a_code(tmp_path, detector_weights):
    junk = tmp_path / "detector.pt"
    junk.write_text("not weights")
    with pytest.raises(BadOptionError) as refused:
        PersonTracker(DetectorConfig(weights=junk))
    assert refused.value.code == "bad_detector"
    with pytest.raises(BadOptionError, match="ByteTrack"):
        PersonTracker(DetectorConfig(weights=detector_weights, tracker="botsort"))
