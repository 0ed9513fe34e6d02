"""``gaitid bench pipeline VIDEO``: milliseconds per processed frame for each pipeline stage.

Runs the real pipeline (decoder, detector + tracker, segmenter, normalization) for every
combination of detector input size, frame stride and detection interval asked for, and prints
one row per combination with the kept-track count, so speed can be traded against tracking
quality. ``--sizes``, ``--strides`` and ``--detect-everys`` take the place of ``--imgsz``,
``--stride`` and ``--detect-every``; the row of the product's defaults is marked. ``--json``
writes the rows (``frames_per_s``, ``kept_tracks``, ``default``) for scripts.
"""

import argparse
import itertools
import json
import time
from dataclasses import replace
from pathlib import Path

from bench.report import BenchReport
from cli_common.pipeline_options import add_pipeline_options, pipeline_config_from_args
from pipeline import defaults
from pipeline.detect import fixed_input_size
from pipeline.extract import STAGES, extract_tracks


def _ints(text: str) -> list[int]:
    return [int(s) for s in text.split(",")]


def _run(args: argparse.Namespace) -> int:
    base = pipeline_config_from_args(args)
    fixed = fixed_input_size(base.detector)
    sizes = [fixed] if fixed else _ints(args.sizes)
    print(f"gaitid bench pipeline: {args.video}, segmenter {base.segmenter}", flush=True)
    if fixed and args.sizes != str(defaults.DETECTOR_IMAGE_SIZE):
        print(f"  the detector runs at its own {fixed} px input; --sizes applies to YOLO weights", flush=True)
    headers = ["imgsz", "stride", "detect every", "frames", *(f"{s} ms" for s in STAGES), "total ms", "frames/s"]
    report = BenchReport([*headers, "kept", "default"])
    rows = []
    for size, stride, every in itertools.product(sizes, _ints(args.strides), _ints(args.detect_everys)):
        detector = replace(base.detector, image_size=size, detect_every=every)
        config = replace(base, detector=detector, limits=replace(base.limits, frame_stride=stride))
        started = time.perf_counter()
        result = extract_tracks(args.video, config)
        wall = time.perf_counter() - started
        frames = max(1, result.frames)
        stage_ms = {s: 1000 * result.times.seconds[s] / frames for s in STAGES}
        default = (size == fixed or size == defaults.DETECTOR_IMAGE_SIZE) and stride == defaults.FRAME_STRIDE
        default = default and every == defaults.DETECT_EVERY
        row = {
            "imgsz": size,
            "stride": stride,
            "detect_every": every,
            "frames": result.frames,
            **{f"{s}_ms": round(ms, 2) for s, ms in stage_ms.items()},
            "total_ms": round(1000 * wall / frames, 2),
            "frames_per_s": round(frames / wall, 2),
            "kept_tracks": len(result.kept),
            "default": default,
        }
        rows.append(row)
        shown = [f"{v:.1f}" if isinstance(v, float) else v for k, v in row.items() if k != "default"]
        report.add([*shown, "yes" if default else ""])
    report.print_table()
    if args.json:
        document = {"video": str(args.video), "segmenter": base.segmenter, "detector": str(base.detector.weights)}
        args.json.write_text(json.dumps({**document, "rows": rows}, indent=1) + "\n")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.epilog = (
        "examples:\n  gaitid bench pipeline walk.mp4\n"
        "  gaitid bench pipeline walk.mp4 --sizes 320,416,640 --strides 1,2\n"
        "  gaitid bench pipeline walk.mp4 --detect-everys 1,2,3 --json pipeline.json"
    )
    parser.add_argument("video")
    parser.add_argument(
        "--sizes",
        default=str(defaults.DETECTOR_IMAGE_SIZE),
        help=f"detector input sizes to compare (default {defaults.DETECTOR_IMAGE_SIZE})",
    )
    parser.add_argument(
        "--strides",
        default=str(defaults.FRAME_STRIDE),
        help=f"frame strides to compare (default {defaults.FRAME_STRIDE})",
    )
    parser.add_argument(
        "--detect-everys", default=str(defaults.DETECT_EVERY), help="detection intervals to compare, e.g. 1,2,3"
    )
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    add_pipeline_options(parser)
    parser.set_defaults(handler=_run)
