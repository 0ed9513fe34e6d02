"""``gaitid bench stream VIDEO``: how many live streams this machine sustains, and how fast events come.

For each stream count asked for, serves VIDEO as that many looping MJPEG camera streams on
127.0.0.1 (at the clip's frame rate, optionally resized, e.g. ``--width 1280`` for 720p), runs
the real stream workers on them (reader, detector + tracker, segmenter, gait model, gallery
search, events in a SQLite database) for ``--seconds``, and prints per row: frames per second
each stream delivered and processed, the share of frames dropped because the pipeline was busy,
events emitted, and the latency from capturing the frame that completed an identification to
the event being committed. A stream counts as sustained when it processes at least 90% of
``min(source fps, --max-fps)``. The gallery is empty, so every event says ``unknown``; matching
costs the same either way.
"""

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.report import BenchReport
from bench.stream_source import ClipStreamServer, encode_clip
from service.context import ServiceContext
from service.db.migrate import upgrade
from service.db.tables import Stream, utcnow
from service.settings import load_settings
from service.streams.worker import StreamDefinition, StreamWorker

SUSTAINED_SHARE = 0.9
BENCH_OWNER = "gaitid-bench"


def _measure(ctx: ServiceContext, frames: list[bytes], fps: float, count: int, seconds: float, max_fps: float) -> list:
    cameras = [ClipStreamServer(frames, fps).start() for _ in range(count)]
    workers = []
    lease = utcnow() + timedelta(days=1)  # the workers run here without a manager: they own their streams
    with ctx.sessions() as session, session.begin():
        rows = [
            Stream(url=c.url, name=f"bench-{i}", max_fps=max_fps, owner=BENCH_OWNER, lease_until=lease)
            for i, c in enumerate(cameras)
        ]
        session.add_all(rows)
        session.flush()
        definitions = [StreamDefinition.of(row) for row in rows]
    try:
        workers = [StreamWorker(ctx, definition, BENCH_OWNER) for definition in definitions]
        for worker in workers:
            worker.start()
        _wait_connected(workers, timeout_s=120)
        sent = [c.frames_sent for c in cameras]
        processed = [w.stats.frames_processed for w in workers]
        dropped = [w.buffer.dropped for w in workers]
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        fps_in = [(c.frames_sent - s) / elapsed for c, s in zip(cameras, sent, strict=True)]
        fps_out = [(w.stats.frames_processed - p) / elapsed for w, p in zip(workers, processed, strict=True)]
        drops = [w.buffer.dropped - d for w, d in zip(workers, dropped, strict=True)]
        latencies = sorted(x for w in workers for x in w.stats.latencies_s)
    finally:
        for worker in workers:
            worker.stop()
        for camera in cameras:
            camera.stop()
    wanted = min(fps, max_fps)
    taken = [o * elapsed + d for o, d in zip(fps_out, drops, strict=True)]
    return [
        count,
        f"{statistics.mean(fps_in):.1f}",
        f"{statistics.mean(fps_out):.2f}",
        f"{min(fps_out):.2f}",
        f"{100 * sum(drops) / max(1, sum(taken)):.0f}%",
        sum(w.stats.events for w in workers),
        f"{1000 * statistics.median(latencies):.0f}" if latencies else "-",
        f"{1000 * latencies[int(0.95 * (len(latencies) - 1))]:.0f}" if latencies else "-",
        "yes" if min(fps_out) >= SUSTAINED_SHARE * wanted else "no",
    ]


def _wait_connected(workers: list[StreamWorker], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(w.stats.frames_processed > 0 for w in workers):
            return
        if any(w.status()["state"] == "error" for w in workers):
            raise SystemExit(f"a stream worker could not start: {[w.error for w in workers if w.error]}")
        time.sleep(0.2)
    raise SystemExit(f"streams not processing after {timeout_s} s: {[w.status() for w in workers]}")


def _run(args: argparse.Namespace) -> int:
    counts = [int(c) for c in args.streams.split(",")]
    frames, fps = encode_clip(Path(args.video), args.width)
    with tempfile.TemporaryDirectory(prefix="gaitid-bench-stream-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        settings = load_settings().model_copy(
            update={
                "database_url": url,
                "data_dir": Path(folder) / "data",
                "embed_device": args.device,
                "detector_device": args.device,
            }
        )
        ctx = ServiceContext.create(settings)
        ctx.load()
        print(
            f"gaitid bench stream: {args.video} ({len(frames)} frames at {fps:.0f} fps"
            f"{f', resized to {args.width} px wide' if args.width else ''}), {args.seconds:.0f} s per row, "
            f"max {args.max_fps:g} fps per stream, model {ctx.recognizer.model_key}",
            flush=True,
        )
        headers = [
            "streams",
            "source fps",
            "processed fps",
            "slowest",
            "dropped",
            "events",
            "latency p50 ms",
            "p95 ms",
            "sustained",
        ]
        report = BenchReport(headers)
        try:
            for count in counts:
                report.add(_measure(ctx, frames, fps, count, args.seconds, args.max_fps))
        finally:
            ctx.close()
    report.print_table()
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.epilog = (
        "examples:\n  gaitid bench stream ../shared/videos/walk_indoor_a_probe.mp4\n"
        "  gaitid bench stream clip.mp4 --streams 1,2,4,8 --width 1280 --max-fps 25 --seconds 60"
    )
    parser.add_argument("video", help="the clip each simulated camera plays in a loop")
    parser.add_argument("--streams", default="1,2", help="stream counts to measure (default 1,2)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring time per row (default 30)")
    parser.add_argument("--max-fps", type=float, default=10.0, help="each stream's frame-rate cap (default 10)")
    parser.add_argument("--width", type=int, default=None, help="resize the clip to this width (1280: 720p)")
    parser.add_argument("--device", default="cpu", help="detector and gait model device: cpu or cuda (default cpu)")
    parser.set_defaults(handler=_run)
