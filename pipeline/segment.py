"""Silhouette segmentation backends behind one interface, chosen by configuration.

* ``bgsub`` — background subtraction (MOG2) over the whole frame, read inside each tracked
  box, cleaned with morphology; for fixed cameras, needs no weights (the offline default).
* ``grabcut`` — OpenCV's GrabCut seeded with the tracked box; needs no weights and no fixed
  camera, slower; for hand-held or panning footage.
* ``yolo`` — the instance masks of a YOLO segmentation model used as the detector.
* ``onnx`` — any ONNX person-segmentation model run on the box crop (input size,
  normalisation, channel order and threshold configurable), e.g. PP-HumanSeg-like models.

Every backend returns, per detection, a uint8 0/255 mask of the box crop (or None).
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.detect import Detection
from pipeline.errors import BadOptionError

SEGMENTERS = ("bgsub", "grabcut", "yolo", "onnx")
_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))


def crop_box(image_shape: tuple[int, ...], box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """Integer crop ``(x1, y1, x2, y2)`` of a box, clipped to the image."""
    height, width = image_shape[:2]
    x1, y1, x2, y2 = box
    return max(0, int(x1)), max(0, int(y1)), min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the biggest connected blob (a person), after an opening and a closing."""
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _KERNEL)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return mask
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.where(labels == biggest, 255, 0).astype(np.uint8)


class Segmenter(ABC):
    """Turns tracked boxes into person masks of the box crops."""

    def observe(self, image: np.ndarray) -> None:  # noqa: B027 - optional hook, most backends need no state
        """Called once per frame before :meth:`segment` (background models learn here)."""

    @abstractmethod
    def segment(self, image: np.ndarray, detection: Detection) -> np.ndarray | None:
        """uint8 0/255 mask of ``detection``'s box crop, or None when nothing usable is found."""


class BackgroundSubtractionSegmenter(Segmenter):
    """MOG2 foreground restricted to the box; shadows (MOG2's grey 127) are not foreground."""

    def __init__(self, history: int = 300, variance_threshold: float = 25.0, work_width: int = 640) -> None:
        self.model = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=variance_threshold)
        self.work_width = work_width
        self.foreground: np.ndarray | None = None
        self.scale = 1.0

    def observe(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        self.scale = min(1.0, self.work_width / width)
        small = cv2.resize(image, (int(width * self.scale), int(height * self.scale))) if self.scale < 1 else image
        self.foreground = self.model.apply(small)

    def segment(self, image: np.ndarray, detection: Detection) -> np.ndarray | None:
        if self.foreground is None:
            return None
        x1, y1, x2, y2 = crop_box(image.shape, detection.box)
        s = self.scale
        region = self.foreground[
            int(y1 * s) : max(int(y1 * s) + 1, int(y2 * s)), int(x1 * s) : max(int(x1 * s) + 1, int(x2 * s))
        ]
        if region.size == 0:
            return None
        region = cv2.resize(region, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
        return largest_component(np.where(region > 200, 255, 0).astype(np.uint8))


class GrabCutSegmenter(Segmenter):
    """GrabCut on the box crop (with a margin), at a working height that bounds its cost."""

    def __init__(self, work_height: int = 128, iterations: int = 3, margin: float = 0.08) -> None:
        self.work_height, self.iterations, self.margin = work_height, iterations, margin

    def segment(self, image: np.ndarray, detection: Detection) -> np.ndarray | None:
        x1, y1, x2, y2 = detection.box
        mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        cx1, cy1, cx2, cy2 = crop_box(image.shape, (x1 - mx, y1 - my, x2 + mx, y2 + my))
        crop = image[cy1:cy2, cx1:cx2]
        if crop.shape[0] < 16 or crop.shape[1] < 8:
            return None
        scale = self.work_height / crop.shape[0]
        small = cv2.resize(crop, (max(8, int(crop.shape[1] * scale)), self.work_height), interpolation=cv2.INTER_AREA)
        rect = (
            max(1, int((x1 - cx1) * scale)),
            max(1, int((y1 - cy1) * scale)),
            max(2, int((x2 - x1) * scale)) - 2,
            max(2, int((y2 - y1) * scale)) - 2,
        )
        mask = np.zeros(small.shape[:2], np.uint8)
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(small, mask, rect, background, foreground, self.iterations, cv2.GC_INIT_WITH_RECT)
        except cv2.error:
            return None
        person = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
        person = largest_component(person)
        # back to the box crop, so every backend answers in the same frame of reference
        full = cv2.resize(person, (cx2 - cx1, cy2 - cy1), interpolation=cv2.INTER_NEAREST)
        bx1, by1, bx2, by2 = crop_box(image.shape, detection.box)
        return full[by1 - cy1 : by2 - cy1, bx1 - cx1 : bx2 - cx1]


class YoloMaskSegmenter(Segmenter):
    """The detector's own instance mask, cut to the box."""

    def segment(self, image: np.ndarray, detection: Detection) -> np.ndarray | None:
        if detection.mask is None:
            return None
        x1, y1, x2, y2 = crop_box(image.shape, detection.box)
        return largest_component(detection.mask[y1:y2, x1:x2])


@dataclass(frozen=True)
class OnnxSegmenterConfig:
    """How to feed a generic segmentation model: ``[1, 3, H, W]`` float in, ``[1, C, H, W]`` or ``[1, H, W]`` out."""

    path: Path
    input_width: int = 192
    input_height: int = 192
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    rgb: bool = True
    person_channel: int = 1  # which output channel is "person" when the output has several
    threshold: float = 0.5
    softmax: bool = True  # apply softmax over channels (for logits); off for probabilities


class OnnxSegmenter(Segmenter):
    def __init__(self, config: OnnxSegmenterConfig) -> None:
        import onnxruntime as ort

        if not config.path.is_file():
            raise BadOptionError(f"segmentation model {config.path} does not exist", code="segmenter_not_found")
        try:
            self.session = ort.InferenceSession(str(config.path), providers=["CPUExecutionProvider"])
        except Exception as error:  # ORT's own exception types
            raise BadOptionError(
                f"segmentation model {config.path} cannot be loaded: {error}", code="bad_segmenter"
            ) from None
        self.input_name = self.session.get_inputs()[0].name
        self.config = config

    def segment(self, image: np.ndarray, detection: Detection) -> np.ndarray | None:
        c = self.config
        x1, y1, x2, y2 = crop_box(image.shape, detection.box)
        crop = image[y1:y2, x1:x2]
        if crop.size == 0:
            return None
        resized = cv2.resize(crop, (c.input_width, c.input_height), interpolation=cv2.INTER_LINEAR)
        if c.rgb:
            resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        tensor = (resized.astype(np.float32) / 255.0 - np.array(c.mean, np.float32)) / np.array(c.std, np.float32)
        (output,) = self.session.run(None, {self.input_name: tensor.transpose(2, 0, 1)[None]})[:1]
        scores = np.asarray(output, dtype=np.float32)[0]
        if scores.ndim == 3:
            if c.softmax and scores.shape[0] > 1:
                exp = np.exp(scores - scores.max(axis=0, keepdims=True))
                scores = exp / exp.sum(axis=0, keepdims=True)
            scores = scores[min(c.person_channel, scores.shape[0] - 1)]
        mask = np.where(scores > c.threshold, 255, 0).astype(np.uint8)
        return largest_component(cv2.resize(mask, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST))


def create_segmenter(name: str, onnx: OnnxSegmenterConfig | None = None) -> Segmenter:
    """A segmenter by name; ``onnx`` needs its model configuration."""
    if name == "bgsub":
        return BackgroundSubtractionSegmenter()
    if name == "grabcut":
        return GrabCutSegmenter()
    if name == "yolo":
        return YoloMaskSegmenter()
    if name == "onnx":
        if onnx is None:
            raise BadOptionError("the onnx segmenter needs a model path (--seg-model)", code="missing_option")
        return OnnxSegmenter(onnx)
    raise BadOptionError(f"segmenter must be one of {', '.join(SEGMENTERS)}, got {name!r}")
