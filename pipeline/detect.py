"""Person detection and tracking with ultralytics YOLO and its ByteTrack/BoT-SORT trackers.

Any YOLO weights the user supplies work (``.pt``, ``.onnx``, ``.engine``); which classes count
as a person is configurable (by default the class named "person", or every class of a model
that has none, such as a dedicated person detector). A segmentation model's instance masks
come back with the boxes so that the YOLO-mask segmenter can use them.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import BadOptionError
from pipeline.ultralytics_env import offline_ultralytics

TRACKER_CONFIGS = {
    "bytetrack": Path(__file__).resolve().parent / "trackers" / "gaitid_bytetrack.yaml",
    "botsort": Path("botsort.yaml"),  # ultralytics' bundled configuration
}


@dataclass(frozen=True)
class DetectorConfig:
    weights: Path
    person_classes: tuple[int, ...] | None = None  # None: "person" by name, else every class
    image_size: int = 640
    confidence: float = 0.1  # low: ByteTrack uses low-score boxes in its second association round
    nms_iou: float = 0.6
    tracker: str = "bytetrack"
    device: str = "cpu"


@dataclass(frozen=True)
class Detection:
    """One tracked person in one frame: box ``(x1, y1, x2, y2)`` in pixels, and a mask if the model gives one."""

    track_id: int
    box: tuple[float, float, float, float]
    confidence: float
    mask: np.ndarray | None = field(default=None, repr=False)  # uint8 0/255, frame-sized


class PersonTracker:
    """Detects and tracks people frame by frame; one instance per video (the tracker has state)."""

    def __init__(self, config: DetectorConfig) -> None:
        if not config.weights.is_file():
            raise BadOptionError(f"detector weights {config.weights} do not exist", code="detector_not_found")
        if config.tracker not in TRACKER_CONFIGS:
            raise BadOptionError(f"tracker must be one of {', '.join(TRACKER_CONFIGS)}, got {config.tracker!r}")
        offline_ultralytics()
        from ultralytics import YOLO

        self.config = config
        try:
            self.model = YOLO(str(config.weights), task=None)
        except Exception as error:  # ultralytics raises many types for unusable weights
            raise BadOptionError(
                f"detector weights {config.weights} cannot be loaded: {str(error).strip()[:200]}",
                code="bad_detector",
            ) from None
        names = self.model.names or {}
        if config.person_classes is not None:
            self.classes = list(config.person_classes)
        else:
            named = [i for i, n in names.items() if str(n).lower() == "person"]
            self.classes = named or list(names)
        self.segments = self.model.task == "segment"

    def update(self, image: np.ndarray) -> list[Detection]:
        """Detections with track ids for the next frame of the video (BGR uint8)."""
        result = self.model.track(
            image,
            persist=True,
            tracker=str(TRACKER_CONFIGS[self.config.tracker]),
            imgsz=self.config.image_size,
            conf=self.config.confidence,
            iou=self.config.nms_iou,
            agnostic_nms=True,  # one person detected as two classes (e.g. "walking"/"fallen") is one box
            classes=self.classes,
            device=self.config.device,
            verbose=False,
        )[0]
        boxes = result.boxes
        if boxes is None or boxes.id is None:
            return []
        ids = boxes.id.int().tolist()
        xyxy = boxes.xyxy.cpu().numpy()
        scores = boxes.conf.cpu().numpy()
        masks = self._masks(result, image.shape[:2]) if self.segments else [None] * len(ids)
        return [
            Detection(int(i), tuple(float(v) for v in box), float(score), mask)  # type: ignore[arg-type]
            for i, box, score, mask in zip(ids, xyxy, scores, masks, strict=True)
        ]

    @staticmethod
    def _masks(result: object, shape: tuple[int, int]) -> list[np.ndarray | None]:
        import cv2

        masks = getattr(result, "masks", None)
        if masks is None:
            return [None] * len(result.boxes)  # type: ignore[attr-defined]
        out: list[np.ndarray | None] = []
        for mask in masks.data.cpu().numpy():
            resized = cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
            out.append(((resized > 0.5) * 255).astype(np.uint8))
        return out
