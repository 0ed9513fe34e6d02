"""Silhouette segmentation backends behind one interface, chosen by configuration.

* ``pose`` — MediaPipe's full-body pose model (``pose_landmark_full.tflite``, Apache-2.0, from
  the ``mediapipe`` wheel) run with LiteRT on a square crop around each box; its segmentation
  output gives clean whole-body masks on any camera at about 25 ms per person on a CPU core.
  The default.
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

SEGMENTERS = ("pose", "bgsub", "grabcut", "yolo", "onnx")
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
    """GrabCut on the box crop (with a margin), at a working height that bounds its cost.

    Seeded with what a person box implies: outside the box is background, the box is probably
    the person, and a strip down the middle of the upper body (head and torso, where the legs'
    gap cannot be) is certainly the person. The seed keeps GrabCut from settling on background.
    """

    def __init__(self, work_height: int = 128, iterations: int = 3, margin: float = 0.08) -> None:
        self.work_height, self.iterations, self.margin = work_height, iterations, margin

    @staticmethod
    def _seed(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
        x1, y1, x2, y2 = box
        width, height = x2 - x1, y2 - y1
        mask = np.full(shape, cv2.GC_BGD, np.uint8)
        mask[max(0, int(y1)) : int(np.ceil(y2)), max(0, int(x1)) : int(np.ceil(x2))] = cv2.GC_PR_FGD
        core_x1, core_x2 = int(x1 + 0.42 * width), int(np.ceil(x1 + 0.58 * width))
        core_y1, core_y2 = int(y1 + 0.08 * height), int(np.ceil(y1 + 0.5 * height))
        mask[core_y1:core_y2, core_x1:core_x2] = cv2.GC_FGD
        return mask

    def segment(self, image: np.ndarray, detection: Detection) -> np.ndarray | None:
        x1, y1, x2, y2 = detection.box
        mx, my = (x2 - x1) * self.margin, (y2 - y1) * self.margin
        cx1, cy1, cx2, cy2 = crop_box(image.shape, (x1 - mx, y1 - my, x2 + mx, y2 + my))
        crop = image[cy1:cy2, cx1:cx2]
        if crop.shape[0] < 16 or crop.shape[1] < 8:
            return None
        scale = self.work_height / crop.shape[0]
        small = cv2.resize(crop, (max(8, int(crop.shape[1] * scale)), self.work_height), interpolation=cv2.INTER_AREA)
        mask = self._seed(
            small.shape[:2], ((x1 - cx1) * scale, (y1 - cy1) * scale, (x2 - cx1) * scale, (y2 - cy1) * scale)
        )
        background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        try:
            cv2.grabCut(small, mask, None, background, foreground, self.iterations, cv2.GC_INIT_WITH_MASK)
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


class PoseSegmenter(Segmenter):
    """Whole-body masks from the segmentation head of MediaPipe's pose-landmark model.

    The model expects one person centred in a square RGB crop (values 0..1, 256×256); the crop
    is the box's longer side plus ``margin``, padded with black where it leaves the frame. Its
    mask output is a logit map: positive means person.
    """

    INPUT_SIZE = 256
    MASK_OUTPUT = "Identity_2"

    def __init__(self, path: Path, margin: float = 0.25, threads: int = 2) -> None:
        if not path.is_file():
            raise BadOptionError(
                f"pose segmentation model {path} does not exist; run `make segmenter` or pass --seg-model",
                code="segmenter_not_found",
            )
        from ai_edge_litert.interpreter import Interpreter  # imported late: only this backend needs it

        try:
            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as error:
            raise BadOptionError(
                f"pose segmentation model {path} cannot be loaded: {error}", code="bad_segmenter"
            ) from None
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        if self.MASK_OUTPUT not in outputs:
            raise BadOptionError(
                f"{path} has no {self.MASK_OUTPUT} mask output: not pose_landmark_full", code="bad_segmenter"
            )
        self.mask_index = outputs[self.MASK_OUTPUT]
        self.margin = margin

    def segment(self, image: np.ndarray, detection: Detection) -> np.ndarray | None:
        x1, y1, x2, y2 = detection.box
        side = int(max(x2 - x1, y2 - y1) * (1 + self.margin))
        if side < 16:
            return None
        left, top = int((x1 + x2 - side) / 2), int((y1 + y2 - side) / 2)
        crop = np.zeros((side, side, 3), np.uint8)
        height, width = image.shape[:2]
        sx1, sy1, sx2, sy2 = max(0, left), max(0, top), min(width, left + side), min(height, top + side)
        crop[sy1 - top : sy2 - top, sx1 - left : sx2 - left] = image[sy1:sy2, sx1:sx2]
        rgb = cv2.cvtColor(
            cv2.resize(crop, (self.INPUT_SIZE, self.INPUT_SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB
        )
        self.interpreter.set_tensor(self.input_index, (rgb.astype(np.float32) / 255.0)[None])
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self.mask_index)[0, :, :, 0]
        full = cv2.resize(logits, (side, side), interpolation=cv2.INTER_LINEAR)
        bx1, by1, bx2, by2 = crop_box(image.shape, detection.box)
        box_logits = full[by1 - top : by2 - top, bx1 - left : bx2 - left]
        return largest_component(np.where(box_logits > 0, 255, 0).astype(np.uint8))


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


def create_segmenter(name: str, onnx: OnnxSegmenterConfig | None = None, pose_model: Path | None = None) -> Segmenter:
    """A segmenter by name; ``onnx`` needs its model configuration, ``pose`` its model file."""
    if name == "pose":
        if pose_model is None:
            raise BadOptionError("the pose segmenter needs its model file (--seg-model)", code="missing_option")
        return PoseSegmenter(pose_model)
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
