"""``gaitid silhouettes``: video in, one silhouette sequence per walking person out."""

import argparse
import sys
import time
from pathlib import Path

from pipeline import defaults
from pipeline.cache import default_cache, extract_cached
from pipeline.detect import TRACKER_CONFIGS
from pipeline.extract import PipelineConfig, make_pipeline_config
from pipeline.output import Annotator, write_outputs
from pipeline.segment import SEGMENTERS


class ProgressLine:
    """A one-line progress indicator on stderr: frames done, total when known, speed."""

    def __init__(self, label: str) -> None:
        self.label, self.started, self.last = label, time.perf_counter(), 0.0

    def __call__(self, done: int, total: int | None) -> None:
        now = time.perf_counter()
        if now - self.last < 0.5 and done != total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        of = f"/{total}" if total else ""
        print(f"\r{self.label}: frame {done}{of}, {rate:.1f} frames/s", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        print(file=sys.stderr)


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
        f"still every frame where people overlap or move fast (default {defaults.DETECT_EVERY})",
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


def _cmd_silhouettes(args: argparse.Namespace) -> int:
    config = pipeline_config_from_args(args)
    annotator = None
    progress = ProgressLine(str(args.video))
    try:
        if args.annotate:
            from pipeline.decode import VideoSource

            with VideoSource(args.video, config.limits, config.rotate) as probe:
                fps = probe.info.fps / config.limits.frame_stride
            annotator = Annotator(args.annotate, fps)
        cache = None if args.no_cache else default_cache()
        result = extract_cached(args.video, config, cache, progress=progress, on_frame=annotator)
    finally:
        progress.done()
        if annotator:
            annotator.close()
    path = write_outputs(result, args.out)
    for track in result.tracks:
        verdict = "kept" if track.kept else "rejected"
        print(f"track {track.track_id}: {verdict}, {track.start_s:.1f}–{track.end_s:.1f} s, {track.reason}")
    if result.truncated:
        print(f"warning: {args.video} is damaged; decoding stopped after {result.frames} frames", file=sys.stderr)
    summary = f"{len(result.kept)} walking person(s)" if result.kept else "no walking person found"
    print(f"{summary} in {result.frames} frames → {path}")
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "silhouettes",
        help="extract per-person silhouette sequences from a video",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Detect, track and segment the people walking in a video (file, http(s) URL or rtsp://)\n"
        "and write DIR/tracks.json (every track, kept or rejected with the reason), DIR/<id>.npy\n"
        "(uint8 [N,64,64] OpenGait-normalized silhouettes) and DIR/<id>.png (a contact sheet).",
        epilog="examples:\n  gaitid silhouettes walk.mp4 --out out/walk\n"
        "  gaitid silhouettes sideways.mp4 --rotate 90 --out out/s --annotate out/s/boxes.mp4\n"
        "  gaitid silhouettes rtsp://cam.local/stream --max-duration 30 --segmenter bgsub --out out/cam",
    )
    parser.add_argument("video", help="video file, http(s) URL or rtsp:// stream")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--annotate", type=Path, help="also write the video with boxes and track ids")
    parser.add_argument(
        "--no-cache", action="store_true", help="always run the pipeline (results are cached per file content)"
    )
    add_pipeline_options(parser)
    parser.set_defaults(handler=_cmd_silhouettes)
