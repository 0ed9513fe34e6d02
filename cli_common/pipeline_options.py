"""The options of every command that runs the pipeline, and the pipeline configuration they give.

``gaitid silhouettes`` and ``gaitid bench pipeline`` take them alike; their defaults are the
pipeline's own (``pipeline.defaults``), which the service's settings use too.
"""

import argparse
from pathlib import Path

from pipeline import defaults
from pipeline.cache import TrackCache, default_cache
from pipeline.detect import TRACKER_CONFIGS
from pipeline.extract import PipelineConfig, make_pipeline_config
from pipeline.segment import SEGMENTERS


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that runs the pipeline."""
    parser.add_argument(
        "--rotate",
        type=int,
        default=0,
        choices=[0, 90, 180, 270],
        help="turn frames clockwise (footage stored sideways without metadata)",
    )
    parser.add_argument(
        "--detector",
        type=Path,
        default=None,
        help=f"YOLO weights (.pt/.onnx/.engine); default $GAITID_DETECTOR_WEIGHTS or {defaults.DETECTOR_WEIGHTS}",
    )
    parser.add_argument("--classes", help="comma list of class ids that are people (default: 'person', else all)")
    parser.add_argument(
        "--imgsz",
        type=int,
        default=defaults.DETECTOR_IMAGE_SIZE,
        help=f"detector input size (default {defaults.DETECTOR_IMAGE_SIZE})",
    )
    parser.add_argument(
        "--conf",
        type=float,
        default=defaults.DETECTOR_CONFIDENCE,
        help=f"detector confidence floor (default {defaults.DETECTOR_CONFIDENCE})",
    )
    parser.add_argument("--tracker", choices=sorted(TRACKER_CONFIGS), default=defaults.TRACKER)
    parser.add_argument(
        "--detect-every",
        type=int,
        default=defaults.DETECT_EVERY,
        help="run the NanoDet detector on every k-th frame, the tracker's motion model in between; "
        f"still every frame with two or more people in view or fast motion (default {defaults.DETECT_EVERY})",
    )
    parser.add_argument(
        "--segmenter",
        choices=SEGMENTERS,
        default=defaults.SEGMENTER,
        help="pose (any camera), bgsub (fixed cameras), grabcut (no weights), "
        f"yolo (seg model given as --detector), onnx (--seg-model); default {defaults.SEGMENTER}",
    )
    parser.add_argument(
        "--seg-model",
        type=Path,
        help=f"model for --segmenter pose (default $GAITID_POSE_MODEL or {defaults.POSE_MODEL}) or onnx",
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=defaults.FRAME_STRIDE,
        help=f"process every k-th frame (default {defaults.FRAME_STRIDE})",
    )
    parser.add_argument(
        "--max-duration",
        type=float,
        default=defaults.MAX_DURATION_S,
        help=f"refuse longer videos (s; default {defaults.MAX_DURATION_S:g})",
    )
    parser.add_argument(
        "--min-good-frames",
        type=int,
        default=defaults.MIN_GOOD_FRAMES,
        help=f"frames a track needs to be kept (default {defaults.MIN_GOOD_FRAMES})",
    )


def pipeline_config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The pipeline configuration of :func:`add_pipeline_options`' options."""
    return make_pipeline_config(
        detector_weights=args.detector,
        segmenter=args.segmenter,
        segmenter_model=args.seg_model,
        person_classes=tuple(int(c) for c in args.classes.split(",")) if args.classes else None,
        image_size=args.imgsz,
        confidence=args.conf,
        tracker=args.tracker,
        detect_every=args.detect_every,
        min_good_frames=args.min_good_frames,
        max_duration_s=args.max_duration,
        frame_stride=args.stride,
        rotate=args.rotate,
    )


def add_cache_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--cache``/``--no-cache``: keep ``what`` (pipeline results) for later runs; off by default as in the service."""
    parser.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=defaults.KEEP_TRACKS,
        help=f"keep {what} under $GAITID_CACHE_DIR/tracks (default {defaults.CACHE_DIR}/tracks), keyed by file "
        "content, so the same file is not processed again; they are silhouettes, biometric data "
        f"(default {'on' if defaults.KEEP_TRACKS else 'off'}, as GAITID_PIPELINE_CACHE in the service)",
    )


def cache_from_args(args: argparse.Namespace) -> TrackCache | None:
    """The track cache :func:`add_cache_option` asked for, or None."""
    return default_cache() if args.cache else None
