"""Each segmentation backend on inputs whose right answer is known."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pipeline.detect import Detection
from pipeline.errors import BadOptionError
from pipeline.quality import QualityConfig, mask_problem
from pipeline.segment import (
    BackgroundSubtractionSegmenter,
    OnnxSegmenter,
    OnnxSegmenterConfig,
    YoloMaskSegmenter,
    create_segmenter,
)

HEIGHT, WIDTH = 240, 320


def _scene(person_left: int) -> tuple[np.ndarray, Detection]:
    """A textured grey background with a bright 'person' (a 40×120 bar with a head) at ``person_left``."""
    rng = np.random.default_rng(1)
    image = np.full((HEIGHT, WIDTH, 3), 90, np.uint8) + rng.integers(0, 6, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    image[80:200, person_left : person_left + 40] = 230
    image[60:80, person_left + 12 : person_left + 28] = 230
    box = (person_left - 6.0, 55.0, person_left + 46.0, 205.0)
    return image, Detection(track_id=1, box=box, confidence=0.9)


def _person_pixels(mask: np.ndarray, detection: Detection, person_left: int) -> tuple[float, float]:
    """Share of the true person covered, and share of the mask that is the person."""
    x1, y1 = int(detection.box[0]), int(detection.box[1])
    truth = np.zeros_like(mask, dtype=bool)
    truth[80 - y1 : 200 - y1, person_left - x1 : person_left + 40 - x1] = True
    truth[60 - y1 : 80 - y1, person_left + 12 - x1 : person_left + 28 - x1] = True
    found = mask > 127
    return (found & truth).sum() / truth.sum(), (found & truth).sum() / max(1, found.sum())


def test_background_subtraction_finds_the_moving_person():
    segmenter = BackgroundSubtractionSegmenter(history=50)
    background, _ = _scene(person_left=-100)  # an empty street to learn
    for _ in range(30):
        segmenter.observe(background)
    image, detection = _scene(person_left=140)
    segmenter.observe(image)
    mask = segmenter.segment(image, detection)
    assert mask is not None and mask.shape == (150, 52)
    recall, precision = _person_pixels(mask, detection, 140)
    assert recall > 0.9 and precision > 0.9
    assert mask_problem(mask, QualityConfig()) is None


def test_yolo_masks_are_cut_to_the_box():
    image, detection = _scene(person_left=140)
    full = np.zeros((HEIGHT, WIDTH), np.uint8)
    full[80:200, 140:180] = 255
    full[60:80, 152:168] = 255
    mask = YoloMaskSegmenter().segment(image, Detection(1, detection.box, 0.9, full))
    recall, precision = _person_pixels(mask, detection, 140)
    assert recall > 0.95 and precision > 0.95
    assert YoloMaskSegmenter().segment(image, detection) is None  # a detector without masks


def _brightness_model(path, channels: int) -> None:
    """An ONNX 'segmentation model' that scores a pixel by its brightness: person = bright."""
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=1)]
    if channels == 2:  # logits for (background, person)
        nodes += [
            helper.make_node("Neg", ["mean"], ["background"]),
            helper.make_node("Concat", ["background", "mean"], ["scores"], axis=1),
        ]
    else:
        nodes += [helper.make_node("Identity", ["mean"], ["scores"])]
    graph = helper.make_graph(
        nodes,
        "brightness",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, channels, 64, 64])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


@pytest.mark.parametrize("channels", [1, 2])
def test_generic_onnx_segmenter(tmp_path, channels):
    path = tmp_path / "seg.onnx"
    _brightness_model(path, channels)
    # normalised input is (x - 0.5) / 0.5: bright pixels are > 0, the grey background < 0
    config = OnnxSegmenterConfig(
        path, input_width=64, input_height=64, threshold=0.0 if channels == 1 else 0.5, softmax=channels == 2
    )
    image, detection = _scene(person_left=140)
    mask = OnnxSegmenter(config).segment(image, detection)
    recall, precision = _person_pixels(mask, detection, 140)
    assert recall > 0.85 and precision > 0.85


def test_segmenter_configuration_errors(tmp_path):
    with pytest.raises(BadOptionError, match="needs a model"):
        create_segmenter("onnx")
    with pytest.raises(BadOptionError, match="does not exist"):
        create_segmenter("pose", pose_model=tmp_path / "missing.tflite")
    with pytest.raises(BadOptionError):
        create_segmenter("magic")


def test_pose_segmenter_on_a_real_person(pose_model, detector_weights, videos_dir):
    """The default backend on a real frame: a plausible whole-body mask of the detected person."""
    from pipeline.decode import VideoSource
    from pipeline.detect import DetectorConfig, PersonTracker

    with VideoSource(videos_dir / "walk_indoor_a_probe.mp4") as video:
        image = next(frame for frame in video.frames() if frame.index == 30).image
    detections = PersonTracker(DetectorConfig(detector_weights)).update(image)
    assert len(detections) == 1, "J is the only person in frame 30"
    mask = create_segmenter("pose", pose_model=pose_model).segment(image, detections[0])
    assert mask is not None and mask_problem(mask, QualityConfig()) is None
    rows = np.flatnonzero((mask > 127).any(axis=1))
    assert (rows[-1] - rows[0]) / mask.shape[0] > 0.8  # head to feet


def test_wide_boxes_are_not_walkers():
    """A box wider than tall (a parked object, a lying person) never gives a silhouette frame."""
    from pipeline.quality import frame_problem

    wide = Detection(1, (50.0, 100.0, 170.0, 160.0), 0.9)
    upright = Detection(2, (50.0, 60.0, 90.0, 160.0), 0.9)
    assert frame_problem(wide, [], (240, 320, 3), QualityConfig()) == "not_upright"
    assert frame_problem(upright, [], (240, 320, 3), QualityConfig()) is None
