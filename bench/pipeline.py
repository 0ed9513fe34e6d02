"""``gaitid bench pipeline VIDEO``: milliseconds per processed frame for each pipeline stage.

Runs the real pipeline (decoder, detector + tracker, segmenter, normalization) for every
combination of detector input size and frame stride asked for, and prints one row per
combination with the kept-track count, so speed can be traded against tracking quality.
``--sizes`` and ``--strides`` take the place of ``--imgsz`` and ``--stride``.
"""

import argparse
import time
from dataclasses import replace

from bench.report import BenchReport
from pipeline.extract import STAGES, extract_tracks
from service.cli.pipeline_commands import add_pipeline_options, pipeline_config_from_args


def _run(args: argparse.Namespace) -> int:
    base = pipeline_config_from_args(args)
    sizes = [int(s) for s in args.sizes.split(",")]
    strides = [int(s) for s in args.strides.split(",")]
    print(f"gaitid bench pipeline: {args.video}, segmenter {base.segmenter}", flush=True)
    headers = ["imgsz", "stride", "frames", *(f"{s} ms" for s in STAGES), "total ms", "frames/s", "kept"]
    report = BenchReport(headers)
    for size in sizes:
        for stride in strides:
            config = replace(
                base, detector=replace(base.detector, image_size=size), limits=replace(base.limits, frame_stride=stride)
            )
            started = time.perf_counter()
            result = extract_tracks(args.video, config)
            wall = time.perf_counter() - started
            frames = max(1, result.frames)
            stage_ms = [1000 * result.times.seconds[s] / frames for s in STAGES]
            row = [
                size,
                stride,
                result.frames,
                *(f"{ms:.1f}" for ms in stage_ms),
                f"{1000 * wall / frames:.1f}",
                f"{frames / wall:.2f}",
                len(result.kept),
            ]
            report.add(row)
    report.print_table()
    return 0


def register(stages: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = stages.add_parser(
        "pipeline",
        help="per-stage pipeline speed on a video",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="examples:\n  gaitid bench pipeline walk.mp4\n"
        "  gaitid bench pipeline walk.mp4 --sizes 320,416,640 --strides 1,2",
    )
    parser.add_argument("video")
    parser.add_argument("--sizes", default="640", help="detector input sizes to compare (default 640)")
    parser.add_argument("--strides", default="1", help="frame strides to compare (default 1)")
    add_pipeline_options(parser)
    parser.set_defaults(handler=_run)
