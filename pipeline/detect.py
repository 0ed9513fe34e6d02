"""Person detection and tracking: the default NanoDet (ONNX Runtime) or any ultralytics YOLO weights.

The default detector is a NanoDet ONNX file made by ``pipeline.fetch_weights`` (its metadata says
so); its boxes go to GaitID's own ByteTrack (``pipeline.bytetrack``) frame by frame, so the default
runs no ultralytics (AGPL) code. Any YOLO weights a user supplies (``.pt``, ``.onnx``, ``.engine``;
the ``yolo`` extra) run through ultralytics' own ``track`` with ByteTrack or BoT-SORT, and a
segmentation model's instance masks come back with the boxes so that the YOLO-mask segmenter can
use them. Which classes count as a person is configurable (by default
the class named "person", or every class of a model that has none).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import defaults
from pipeline.bytetrack import ByteTracker, ByteTrackSettings
from pipeline.errors import BadOptionError
from pipeline.nanodet import Boxes, NanoDetDetector, NanoDetSpec, is_nanodet
from pipeline.ultralytics_env import offline_ultralytics

TRACKER_CONFIGS = {
    "bytetrack": Path(__file__).resolve().parent / "trackers" / "gaitid_bytetrack.yaml",
    "botsort": Path("botsort.yaml"),  # ultralytics' bundled configuration
}


@dataclass(frozen=True)
class DetectorConfig:
    weights: Path
    person_classes: tuple[int, ...] | None = None  # None: "person" by name, else every class
    image_size: int = defaults.DETECTOR_IMAGE_SIZE
    confidence: float = defaults.DETECTOR_CONFIDENCE
    nms_iou: float = 0.6
    tracker: str = defaults.TRACKER
    device: str = defaults.DETECTOR_DEVICE
    # Run the detector on at most every k-th frame and let the tracker's motion model carry the boxes
    # in between; it still runs at once when tracked people overlap or move fast (NanoDet path only).
    detect_every: int = defaults.DETECT_EVERY


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
        self.config = config
        nanodet = _open_nanodet(config) if config.weights.suffix == ".onnx" else None
        self._backend: _NanoDetTracking | _YoloTracking = (
            _NanoDetTracking(nanodet, config) if nanodet is not None else _YoloTracking(config)
        )

    def update(self, image: np.ndarray) -> list[Detection]:
        """Detections with track ids for the next frame of the video (BGR uint8)."""
        return self._backend.update(image)

    @property
    def detector_runs(self) -> int:
        """Frames the detector itself ran on (fewer than the frames seen when ``detect_every`` > 1)."""
        return self._backend.detector_runs


def fixed_input_size(config: DetectorConfig) -> int | None:
    """The input size a NanoDet file was exported at (None for YOLO weights, which take ``image_size``)."""
    detector = _open_nanodet(config) if config.weights.suffix == ".onnx" else None
    return detector.spec.input_size if detector else None


def _onnx_providers(device: str) -> list[str]:
    import onnxruntime as ort

    if not device.startswith("cuda"):
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise BadOptionError(
            "--device cuda asked for, but ONNX Runtime has no CUDAExecutionProvider (install onnxruntime-gpu)",
            code="no_cuda",
        )
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def _open_nanodet(config: DetectorConfig) -> NanoDetDetector | None:
    """The NanoDet runner when the ONNX file says it is one (None for other ONNX files, e.g. YOLO)."""
    import onnxruntime as ort

    providers = _onnx_providers(config.device)
    try:
        # No spinning: ONNX Runtime's idle threads otherwise busy-wait after each frame's forward, on
        # the cores the segmenter runs on next (2 cores: segmentation 14-16 -> 9 ms per frame).
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(config.weights), options, providers=providers)
    except Exception as error:  # ORT raises its own exception types for unreadable graphs
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadOptionError(
            f"detector weights {config.weights} cannot be loaded: {reason[:200]}", code="bad_detector"
        ) from None
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    if not is_nanodet(metadata):
        return None
    classes = list(config.person_classes) if config.person_classes is not None else None
    return NanoDetDetector(session, NanoDetSpec.from_metadata(metadata), classes, config.confidence, config.nms_iou)


class _NanoDetTracking:
    """NanoDet boxes tracked by GaitID's own ByteTrack (``pipeline.bytetrack``): no ultralytics code.

    With ``detect_every`` k > 1 the detector runs on every k-th frame; in between each track's box
    is its Kalman prediction, advanced one step per frame exactly as the tracker would, so the
    next detection frame associates as if no frame had been skipped. Skipping is only safe for one
    walker moving smoothly: a frame with two or more people in view or one lost from view (groups
    occlude each other; at k = 2 a walker of probe1_4p_high was lost and one of probe2_4p_back split
    before this rule), a track moving more than ``FAST`` of its height per frame (running, a panning
    camera, someone close to the lens) or a new track awaiting confirmation is always detected.
    """

    FAST = 0.04  # a walker covers about 2-3 % of their height per frame at 25-30 fps

    def __init__(self, detector: NanoDetDetector, config: DetectorConfig) -> None:
        import yaml

        if config.detect_every < 1:
            raise BadOptionError(f"detect_every must be at least 1, got {config.detect_every}")
        if config.tracker != "bytetrack":
            raise BadOptionError(
                f"the {config.tracker} tracker comes with ultralytics YOLO weights (--detector); "
                "the default detector uses ByteTrack"
            )
        self.detector = detector
        self.every = config.detect_every
        self.skipped = self.every  # the first frame is always detected
        self.detector_runs = 0
        settings = yaml.safe_load(TRACKER_CONFIGS["bytetrack"].read_text())
        self.tracker = ByteTracker(ByteTrackSettings.from_mapping(settings))

    def update(self, image: np.ndarray) -> list[Detection]:
        if self.skipped + 1 < self.every and not self._must_detect():
            self.skipped += 1
            self.tracker.predict()
            return [self._detection(t.track_id, t.xyxy, t.score) for t in self.tracker.active()]
        self.skipped = 0
        self.detector_runs += 1
        boxes: Boxes = self.detector.detect(image)
        # A detected person's box is the detector's own, not the filtered estimate, which lags a
        # turning or stopping walker: the segmenter must look where the person is in this frame.
        return [
            self._detection(t.track_id, boxes.xyxy[t.detection], t.score)
            for t in self.tracker.update(boxes.xyxy, boxes.conf)
        ]

    @staticmethod
    def _detection(track_id: int, box: np.ndarray, score: float) -> Detection:
        return Detection(track_id, tuple(float(v) for v in box), float(score))  # type: ignore[arg-type]

    def _must_detect(self) -> bool:
        if self.tracker.unconfirmed():
            return True  # a new track is confirmed by a detection on the next frame
        active = self.tracker.active()
        if len(active) > 1 or self.tracker.lost():
            return True  # a group: people pass behind each other, and only a detection finds them again
        for track in active:  # one walker (or nobody): only fast motion needs every frame
            vx, vy, _, vh = track.velocity
            if max(np.hypot(vx, vy), 2 * abs(vh)) > self.FAST * track.height:
                return True
        return False


class _YoloTracking:
    """Any ultralytics YOLO weights through ultralytics' own ``track``."""

    def __init__(self, config: DetectorConfig) -> None:
        try:
            from ultralytics import YOLO
        except ImportError:
            raise BadOptionError(
                f"{config.weights.name} is not a NanoDet file made by pipeline.fetch_weights, and other detector "
                "weights run with ultralytics, which is not installed: pip install 'gaitid[yolo]' (AGPL-3.0)",
                code="bad_detector",
            ) from None

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
        self.detector_runs = 0

    def update(self, image: np.ndarray) -> list[Detection]:
        self.detector_runs += 1
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
