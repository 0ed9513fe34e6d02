"""The pipeline's default settings, and where GaitID keeps its files under ``var/``.

The pipeline's configuration classes, the service's ``GAITID_*`` settings and the command line's
options all take their defaults from here, so an upload to the service, ``gaitid silhouettes`` and
``gaitid bench pipeline`` run the same pipeline unless told otherwise. The paths are relative to
the working folder, as ``make detector`` and ``make segmenter`` write them. This module imports
nothing heavy: the service's settings read it without loading OpenCV or FFmpeg.
"""

import os
from pathlib import Path

DETECTOR_IMAGE_SIZE = 640  # pixels; YOLO weights take it, a NanoDet file has its own fixed input
DETECTOR_CONFIDENCE = 0.1  # low: ByteTrack uses low-score boxes in its second association round
DETECTOR_DEVICE = "cpu"
TRACKER = "bytetrack"
DETECT_EVERY = 2  # >1: the tracker's motion model carries one walker's box between detections (groups: every frame)
SEGMENTER = "pose"
MIN_GOOD_FRAMES = 15  # good frames a track needs to be kept
MAX_DURATION_S = 600.0  # longer videos are refused
FRAME_STRIDE = 1
# Keep each processed file's tracks under cache_dir()/tracks, keyed by content? Off everywhere: the
# tracks are silhouettes, biometric data that would outlive the request or command that made them.
KEEP_TRACKS = False

VAR_DIR = Path("var")
WEIGHTS_DIR = VAR_DIR / "weights"
DETECTOR_WEIGHTS = WEIGHTS_DIR / "person_nanodet.onnx"  # fetched by `make detector`
POSE_MODEL = WEIGHTS_DIR / "pose_landmark_full.tflite"  # fetched by `make segmenter`
CACHE_DIR = VAR_DIR / "cache"


def cache_dir() -> Path:
    """Derived files (ONNX exports, kept tracks, decoded datasets): ``GAITID_CACHE_DIR`` or ``var/cache``."""
    return Path(os.environ.get("GAITID_CACHE_DIR", CACHE_DIR))


def detector_weights() -> Path:
    """``GAITID_DETECTOR_WEIGHTS`` or the person detector ``make detector`` fetches."""
    return Path(os.environ.get("GAITID_DETECTOR_WEIGHTS", DETECTOR_WEIGHTS))


def pose_model() -> Path:
    """``GAITID_POSE_MODEL`` or the pose-segmentation model ``make segmenter`` fetches."""
    return Path(os.environ.get("GAITID_POSE_MODEL", POSE_MODEL))
