"""NanoDet person detection with ONNX Runtime: letterbox, one forward pass, GFL decoding, NMS.

NanoDet's head predicts, for every cell of three feature maps, 80 class scores (sigmoid, already
in the graph) and for each box side a discrete distribution over ``reg_max + 1`` distances; the
distance is its expectation, in units of the map's stride, measured from the cell centre. What
the runner needs to know about the network (input size, normalisation, strides, classes) is
stored in the ONNX file's metadata by ``pipeline.fetch_weights``, so the file is self-describing
and a user's own NanoDet export works once it carries the same keys.
"""

import json
from dataclasses import dataclass

import cv2
import numpy as np

FORMAT = "nanodet-gfl"  # value of the "gaitid.format" metadata key


@dataclass(frozen=True)
class NanoDetSpec:
    """The facts about a NanoDet export that decoding depends on."""

    input_size: int
    mean_bgr: tuple[float, float, float]
    std_bgr: tuple[float, float, float]
    strides: tuple[int, ...]
    reg_max: int
    class_names: tuple[str, ...]

    def metadata(self) -> dict[str, str]:
        """The ONNX metadata entries that describe this spec (written at conversion)."""
        return {
            "gaitid.format": FORMAT,
            "gaitid.input_size": str(self.input_size),
            "gaitid.mean_bgr": json.dumps(self.mean_bgr),
            "gaitid.std_bgr": json.dumps(self.std_bgr),
            "gaitid.strides": json.dumps(self.strides),
            "gaitid.reg_max": str(self.reg_max),
            "names": json.dumps(dict(enumerate(self.class_names))),
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> "NanoDetSpec":
        names = json.loads(metadata["names"])
        return cls(
            input_size=int(metadata["gaitid.input_size"]),
            mean_bgr=tuple(json.loads(metadata["gaitid.mean_bgr"])),
            std_bgr=tuple(json.loads(metadata["gaitid.std_bgr"])),
            strides=tuple(json.loads(metadata["gaitid.strides"])),
            reg_max=int(metadata["gaitid.reg_max"]),
            class_names=tuple(names[str(i)] for i in range(len(names))),
        )


def is_nanodet(metadata: dict[str, str]) -> bool:
    return metadata.get("gaitid.format") == FORMAT


@dataclass(frozen=True)
class Boxes:
    """Person detections of one frame: ``xyxy`` in frame pixels and a score each."""

    xyxy: np.ndarray  # float32 [n, 4]
    conf: np.ndarray  # float32 [n]

    def __len__(self) -> int:
        return len(self.conf)


class NanoDetDetector:
    """One ONNX Runtime session; ``detect`` gives the boxes of the wanted classes in one frame.

    ``classes`` None means the class named "person" (every class of a model that has none).
    """

    def __init__(
        self, session: object, spec: NanoDetSpec, classes: list[int] | None, confidence: float, nms_iou: float
    ) -> None:
        if classes is None:
            named = [i for i, name in enumerate(spec.class_names) if name.lower() == "person"]
            classes = named or list(range(len(spec.class_names)))
        self.session = session
        self.spec = spec
        self.classes = np.asarray(classes, dtype=np.int64)
        self.confidence = confidence
        self.nms_iou = nms_iou
        network_input = session.get_inputs()[0]  # type: ignore[attr-defined]
        self.input_name = network_input.name
        # A graph whose height and width are free (``pipeline.tfjs_onnx.free_spatial``) takes a letterbox
        # of the frame's own aspect ratio; one with a fixed input (an older conversion) the padded square.
        self.fits_frame = not all(isinstance(d, int) for d in network_input.shape[2:4])
        self.mean = np.asarray(spec.mean_bgr, dtype=np.float32)
        self.scale = 1.0 / np.asarray(spec.std_bgr, dtype=np.float32)
        self.bins = np.arange(spec.reg_max + 1, dtype=np.float32)
        self._centres: dict[tuple[int, int], list[np.ndarray]] = {}  # input (height, width) → per stride

    def centres(self, height: int, width: int) -> list[np.ndarray]:
        """Per stride, the input-pixel centre of every cell in the head's order (row by row)."""
        if (height, width) not in self._centres:
            grids = []
            for stride in self.spec.strides:
                rows, cols = height // stride, width // stride
                y, x = np.divmod(np.arange(rows * cols), cols)
                grids.append((np.stack([x, y], axis=1).astype(np.float32) + 0.5) * stride)
            self._centres[(height, width)] = grids
        return self._centres[(height, width)]

    def _input(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Letterboxed (top-left), normalised NCHW input and the frame→input scale.

        The long side is scaled to the network's size; the short side is padded up to a multiple of
        the coarsest stride (each feature map then halves exactly), or to the full square for a graph
        with a fixed input."""
        size = self.spec.input_size
        height, width = image.shape[:2]
        ratio = size / max(height, width)
        resized = cv2.resize(image, (round(width * ratio), round(height * ratio)), interpolation=cv2.INTER_LINEAR)
        if self.fits_frame:
            step = max(self.spec.strides)
            shape = tuple(-(-side // step) * step for side in resized.shape[:2])
        else:
            shape = (size, size)
        canvas = np.zeros((*shape, 3), dtype=np.float32)
        canvas[: resized.shape[0], : resized.shape[1]] = (resized.astype(np.float32) - self.mean) * self.scale
        return canvas.transpose(2, 0, 1)[None], ratio

    def detect(self, image: np.ndarray) -> Boxes:
        """Person boxes (after NMS across classes) of a BGR uint8 frame."""
        tensor, ratio = self._input(image)
        outputs = self.session.run(None, {self.input_name: tensor})  # type: ignore[attr-defined]
        classes = len(self.spec.class_names)
        by_cells = {(o.shape[1], o.shape[2] == classes): o[0] for o in outputs}  # (cells, is class scores)
        boxes, scores = [], []
        grids = self.centres(*tensor.shape[2:4])
        for stride, centres in zip(self.spec.strides, grids, strict=True):
            cells = len(centres)
            class_scores = by_cells[(cells, True)][:, self.classes]
            best = class_scores.argmax(axis=1)
            score = class_scores[np.arange(cells), best]
            keep = score >= self.confidence
            if not keep.any():
                continue
            logits = by_cells[(cells, False)][keep].reshape(-1, 4, self.spec.reg_max + 1)
            weights = np.exp(logits - logits.max(axis=2, keepdims=True))
            distances = (weights * self.bins).sum(axis=2) / weights.sum(axis=2) * stride  # left, top, right, bottom
            centre = centres[keep]
            boxes.append(np.concatenate([centre - distances[:, :2], centre + distances[:, 2:]], axis=1))
            scores.append(score[keep])
        if not boxes:
            return Boxes(np.zeros((0, 4), dtype=np.float32), np.zeros(0, dtype=np.float32))
        xyxy = np.concatenate(boxes) / ratio
        conf = np.concatenate(scores)
        height, width = image.shape[:2]
        xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
        keep = _nms(xyxy, conf, self.nms_iou)
        return Boxes(xyxy[keep], conf[keep].astype(np.float32))


def _nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by class-agnostic non-maximum suppression, best first."""
    wh = [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in xyxy]
    kept = cv2.dnn.NMSBoxes(wh, scores.astype(float).tolist(), 0.0, iou)
    return np.asarray(kept, dtype=np.int64).reshape(-1)
