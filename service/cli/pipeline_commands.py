"""``gaitid silhouettes``: video in, one silhouette sequence per walking person out."""

import argparse
import sys
import time
from pathlib import Path

from cli_common.pipeline_options import (
    add_cache_option,
    add_pipeline_options,
    cache_from_args,
    pipeline_config_from_args,
)
from pipeline.cache import extract_cached
from pipeline.output import Annotator, write_outputs


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
        result = extract_cached(args.video, config, cache_from_args(args), progress=progress, on_frame=annotator)
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


def configure_silhouettes(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Detect, track and segment the people walking in a video (file, http(s) URL or rtsp://)\n"
        "and write DIR/tracks.json (every track, kept or rejected with the reason), DIR/<id>.npy\n"
        "(uint8 [N,64,64] OpenGait-normalized silhouettes) and DIR/<id>.png (a contact sheet)."
    )
    parser.epilog = (
        "examples:\n  gaitid silhouettes walk.mp4 --out out/walk\n"
        "  gaitid silhouettes sideways.mp4 --rotate 90 --out out/s --annotate out/s/boxes.mp4\n"
        "  gaitid silhouettes rtsp://cam.local/stream --max-duration 30 --segmenter bgsub --out out/cam"
    )
    parser.add_argument("video", help="video file, http(s) URL or rtsp:// stream")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--annotate", type=Path, help="also write the video with boxes and track ids")
    add_cache_option(parser, "the tracks")
    add_pipeline_options(parser)
    parser.set_defaults(handler=_cmd_silhouettes)
