"""``gaitid bench load VIDEO``: the embedded default under a burst of uploads and reads.

Starts ``gaitid serve`` as the embedded default (SQLite, in-process jobs) on a free port in a
temporary folder, makes an admin key, then at once sends ``--uploads`` identify uploads of VIDEO
and ``--reads`` reads (subjects, jobs, health), each on its own connection, and waits for every
accepted job to end. Reports per kind the answers by status (5xx must be none, 429 is the job
limit working), latency p50/p99, the time until the last accepted job ended, jobs per minute,
and the peak resident memory of the server and its children. ``--url``/``--key`` aim it at a
running server instead (no memory figure then).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from bench.report import BenchReport

TERMINAL = {"succeeded", "failed", "cancelled"}
READ_PATHS = ("/v1/subjects?limit=10", "/v1/jobs?limit=10", "/healthz")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue  # the process ended while being read
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += rss.get(current, 0)
        pending.extend(children.get(current, []))
    return total


class _PeakMemory(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stopped = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            self.peak = max(self.peak, _tree_rss_bytes(self.pid))


@contextmanager
def _embedded_server(folder: Path) -> Iterator[tuple[str, str, int]]:
    """The embedded default in ``folder``: yields its URL, an admin key and the server's pid."""
    from service.auth import issue_key
    from service.db.engine import make_engine, make_session_factory
    from service.db.migrate import upgrade

    database = f"sqlite:///{folder / 'gaitid.db'}"
    upgrade(database)
    engine = make_engine(database)
    with make_session_factory(engine)() as session:
        _, key = issue_key(session, "admin", "gaitid-bench-load", via="bench")
        session.commit()
    engine.dispose()
    port = _free_port()
    env = {**os.environ, "GAITID_DATABASE_URL": database, "GAITID_DATA_DIR": str(folder / "data")}
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"gaitid bench load: the server did not start; see {folder / 'server.log'}")
            time.sleep(0.5)
        yield url, key, server.pid
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def _timed(call) -> tuple[int, float, dict | None]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        answer = call()
    except httpx.HTTPError:
        return 0, time.perf_counter() - started, None  # no answer at all: counted as status 0
    body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
    return answer.status_code, time.perf_counter() - started, body


def _percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def _burst(url: str, key: str, video: Path, uploads: int, reads: int, timeout_s: float) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    payload = video.read_bytes()

    def upload() -> tuple[int, float, dict | None]:
        files = {"file": (video.name, payload, "video/mp4")}
        return _timed(lambda: httpx.post(f"{url}/v1/identify", files=files, headers=headers, timeout=timeout_s))

    def read(index: int) -> tuple[int, float, dict | None]:
        path = READ_PATHS[index % len(READ_PATHS)]
        return _timed(lambda: httpx.get(f"{url}{path}", headers=headers, timeout=timeout_s))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=uploads + min(reads, 100)) as pool:
        upload_futures = [pool.submit(upload) for _ in range(uploads)]
        read_futures = [pool.submit(read, i) for i in range(reads)]
        upload_answers = [f.result() for f in upload_futures]
        read_answers = [f.result() for f in read_futures]
    accepted = [body["id"] for status, _, body in upload_answers if status == 202 and body]
    outcomes: Counter[str] = Counter()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        pending = set(accepted)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                status = client.get(f"/v1/jobs/{job_id}").json().get("status")
                if status in TERMINAL:
                    outcomes[status] += 1
                    pending.discard(job_id)
            time.sleep(1)
        outcomes["unfinished"] = len(pending)
    return {
        "uploads": upload_answers,
        "reads": read_answers,
        "accepted": len(accepted),
        "jobs": dict(outcomes),
        "all_done_s": time.monotonic() - started,
    }


def _print_server_errors(log: Path) -> None:
    """The server's own account of what went wrong (its log goes with the temporary folder)."""
    causes: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("level") == "error":
            trace = str(record.get("exception") or record.get("message", "")).strip().splitlines()
            causes[trace[-1][:300] if trace else "?"] += 1
    if causes:
        print("\nerrors in the server log, by their last line:")
        for cause, count in causes.most_common():
            print(f"  {count} x {cause}")


def _run(args: argparse.Namespace) -> int:
    if not args.video.is_file():
        print(f"gaitid bench load: error: {args.video} does not exist", file=sys.stderr)
        return 2
    print(f"gaitid bench load: {args.uploads} identify uploads of {args.video.name} + {args.reads} reads", flush=True)
    with tempfile.TemporaryDirectory(prefix="gaitid-load-") as folder:
        if args.url:
            memory, result = None, _burst(args.url, args.key, args.video, args.uploads, args.reads, args.timeout)
        else:
            with _embedded_server(Path(folder)) as (url, key, pid):
                memory = _PeakMemory(pid)
                memory.start()
                result = _burst(url, key, args.video, args.uploads, args.reads, args.timeout)
                memory.stopped.set()
            _print_server_errors(Path(folder) / "server.log")
    report = BenchReport(["kind", "requests", "answers by status", "5xx", "p50 s", "p99 s"])
    rows = {}
    for kind in ("uploads", "reads"):
        answers = result[kind]
        statuses = Counter(status for status, _, _ in answers)
        p50, p99 = _percentiles([seconds for _, seconds, _ in answers])
        errors = sum(n for status, n in statuses.items() if status >= 500 or status == 0)
        shown = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        report.add([kind, len(answers), shown, errors, f"{p50:.2f}", f"{p99:.2f}"])
        rows[kind] = {
            "requests": len(answers),
            "statuses": dict(statuses),
            "errors": errors,
            "p50_s": p50,
            "p99_s": p99,
        }
    report.print_table()
    finished = sum(n for status, n in result["jobs"].items() if status != "unfinished")
    per_minute = 60 * finished / result["all_done_s"] if result["all_done_s"] else 0.0
    peak_mb = memory.peak / 2**20 if memory else None
    print(
        f"\naccepted jobs {result['accepted']}: {result['jobs']}; all ended after {result['all_done_s']:.0f} s "
        f"({per_minute:.1f} jobs/min)"
        + (f"; peak RSS of the server and its children {peak_mb:.0f} MiB" if memory else "")
    )
    if args.json:
        summary = {"accepted": result["accepted"], "jobs": result["jobs"], "all_done_s": result["all_done_s"]}
        args.json.write_text(
            json.dumps({**rows, **summary, "jobs_per_min": per_minute, "peak_rss_mib": peak_mb}) + "\n"
        )
    failed = any(rows[k]["errors"] for k in rows) or result["jobs"].get("unfinished", 0)
    return 1 if failed else 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.epilog = (
        "examples:\n  gaitid bench load ../shared/videos/walk_indoor_a_probe.mp4\n"
        "  gaitid bench load walk.mp4 --uploads 10 --reads 100 --json load.json\n"
        "  gaitid bench load walk.mp4 --url http://gpu-host:8000 --key gid_..."
    )
    parser.add_argument("video", type=Path)
    parser.add_argument("--uploads", type=int, default=50, help="identify uploads sent at once (default 50)")
    parser.add_argument("--reads", type=int, default=500, help="reads sent at the same time (default 500)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the jobs (default 3600)")
    parser.add_argument("--url", help="a running server instead of the embedded default")
    parser.add_argument("--key", help="an API key of that server (with --url)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.set_defaults(handler=_run)
