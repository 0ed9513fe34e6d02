"""``gaitid bench gallery``: gallery index build time, memory, search latency and recall per size × kind.

By default the gallery is synthetic (``service/gallery/synthetic.py``: subjects with 2–8 sequences
each, correlated parts, genuine scores ~0.6–0.9, impostors ~0.0–0.5). With ``--real`` it is grown
from a model's real CASIA-B embeddings (``service/gallery/grown.py``: the real population mean,
subject offsets and within-subject residuals, recombined) and searched after that model's
matching transform, which is what tells the truth about recall for a shipped model: raw real
embeddings share a large common component that isotropic data lacks. Queries are new sequences
of enrolled subjects. It is generated in chunks, so a 1M-entry gallery
(16 GB as float32) never exists at once: the index is rebuilt from the first chunk (which trains
PQ) and the rest added, as a service with a large database would. For each cell:

- build s: seconds inside ``rebuild``/``add`` (generating the data is not counted);
- GB: resident memory the built index added to this process;
- p50/p99 ms: one query at a time, k=10, as the service searches one probe track at a time;
- recall@1: queries whose top-1 id equals exact search's (numpy float32 over all entries, chunk-wise).
"""

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from bench.report import BenchReport
from cli_common.errors import CliInputError
from models.matching import MatchingTransform
from pipeline.defaults import cache_dir
from service.gallery.grown import GrownGallery
from service.gallery.index import INDEX_KINDS, GalleryIndex, IndexConfig
from service.gallery.synthetic import SubjectGallery, SyntheticGallery
from service.gallery.vectors import DEFAULT_EMBEDDING_SHAPE

_CHUNK = 20_000  # entries generated at a time: ~330 MB of float32 vectors
_K = 10
_REAL_PER_SUBJECT = 20  # real sequences embedded per test subject to grow galleries from


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        fields = dict(line.split(":", 1) for line in meminfo)
    return int(fields["MemAvailable"].split()[0]) * 1024


@dataclass
class _Exact:
    """Exact top-1 of each query over all entries, accumulated chunk by chunk."""

    queries: np.ndarray
    best_score: np.ndarray
    best_id: np.ndarray

    @classmethod
    def start(cls, queries: np.ndarray) -> "_Exact":
        count = len(queries)
        return cls(queries, np.full(count, -np.inf, dtype=np.float32), np.full(count, -1, dtype=np.int64))

    def update(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        scores = self.queries @ vectors.T
        best = scores.argmax(axis=1)
        top = scores[np.arange(len(best)), best]
        better = top > self.best_score
        self.best_score[better] = top[better]
        self.best_id[better] = ids[best[better]]


@dataclass(frozen=True)
class _Source:
    """Where galleries come from: synthetic, or grown from real embeddings under a model's transform."""

    transform: MatchingTransform
    real: tuple[np.ndarray, np.ndarray] | None = None  # embeddings [n, 256, 16], subjects [n]
    description: str = "synthetic"

    @property
    def dim(self) -> int:
        """The length of the gallery vectors: the embedding's ``D*P``, or less after a projecting transform."""
        shape = DEFAULT_EMBEDDING_SHAPE if self.real is None else self.real[0].shape[1:]
        return self.transform.vector_length(shape)

    def gallery(self, size: int, seed: int) -> SubjectGallery:
        if self.real is None:
            return SyntheticGallery(size, seed=seed)
        return GrownGallery(*self.real, size=size, seed=seed)


def _real_source(args: argparse.Namespace) -> _Source:
    """Embed (once; cached under GAITID_CACHE_DIR/bench) a sample of the model's CASIA-B test subjects."""
    from models.evaluation.runner import embed_records, load_split, sample_per_subject
    from models.loading import create_embedder
    from models.registry import resolve

    spec = resolve(args.model)
    cached = cache_dir() / "bench" / f"{spec.key}-{args.real_subjects}-{_REAL_PER_SUBJECT}.npz"
    if not cached.is_file():
        if not args.data.is_dir():
            raise CliInputError(f"--real needs CASIA-B at --data (no folder {args.data})", code="input_not_found")
        records = sample_per_subject(load_split(args.data, args.real_subjects, None), _REAL_PER_SUBJECT)
        print(f"embedding {len(records)} real sequences with {spec.key} (once)", file=sys.stderr, flush=True)
        embedder = create_embedder(spec.arch, spec.weights, backend="onnx", config=spec.config)
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, embeddings=embed_records(embedder, records), subjects=[r.subject for r in records])
    with np.load(cached) as stored:
        embeddings, subjects = stored["embeddings"], stored["subjects"]
    description = (
        f"grown from {len(embeddings)} real embeddings of {len(set(subjects.tolist()))} CASIA-B subjects "
        f"({spec.key}, matching transform {spec.transform.digest})"
    )
    return _Source(spec.transform, (embeddings, subjects), description)


def _build(
    index: GalleryIndex, gallery: SubjectGallery, transform: MatchingTransform, label: str, exact: _Exact | None
) -> float:
    """Fill ``index`` chunk by chunk; returns the seconds spent inside the index."""
    seconds, shown = 0.0, time.perf_counter()
    for ids, embeddings in gallery.chunks(_CHUNK):
        vectors = transform.vectors(embeddings)
        del embeddings
        if exact is not None:
            exact.update(ids, vectors)
        started = time.perf_counter()
        if ids[0] == 0:
            index.rebuild(ids, vectors)
        else:
            index.add(ids, vectors)
        seconds += time.perf_counter() - started
        if time.perf_counter() - shown > 15:
            shown = time.perf_counter()
            done = f"{ids[-1] + 1:,}/{gallery.size:,}"
            print(f"    {label}: {done} entries, {seconds:.0f} s in the index", file=sys.stderr, flush=True)
    return seconds


def _latencies(index: GalleryIndex, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds per single-query search, and each query's top-1 id."""
    index.search(queries[:1], _K)  # warm-up
    ms, top1 = np.empty(len(queries)), np.empty(len(queries), dtype=np.int64)
    for row, query in enumerate(queries):
        started = time.perf_counter()
        _, ids = index.search(query[None], _K)
        ms[row] = 1000 * (time.perf_counter() - started)
        top1[row] = ids[0, 0]
    return ms, top1


def _parse_list(text: str, option: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise CliInputError(f"{option} needs at least one value", code="bad_option")
    return items


def _run(args: argparse.Namespace) -> int:
    kinds = _parse_list(args.kinds, "--kinds")
    unknown = sorted(set(kinds) - set(INDEX_KINDS))
    if unknown:
        raise CliInputError(f"unknown kind(s) {', '.join(unknown)}; choose from {', '.join(INDEX_KINDS)}", "bad_option")
    try:
        sizes = [int(s) for s in _parse_list(args.sizes, "--sizes")]
    except ValueError as error:
        raise CliInputError(f"--sizes must be whole numbers: {error}", code="bad_option") from None
    codes_asked = [] if args.pq_subquantizers is None else [args.pq_subquantizers]
    if min(sizes) < 2 or min(args.queries, args.threads, args.scan_threads, *codes_asked) < 1:
        raise CliInputError(
            "--sizes must be at least 2, --queries, --threads, --scan-threads and --pq-subquantizers at least 1",
            "bad_option",
        )
    source = _real_source(args) if args.real else _Source(MatchingTransform())
    config = IndexConfig(threads=args.threads, scan_threads=args.scan_threads, pq_subquantizers=args.pq_subquantizers)
    codes = config.subquantizers(source.dim)
    if source.dim % codes:
        raise CliInputError(f"--pq-subquantizers must divide the vectors' length {source.dim}", code="bad_option")
    print(
        f"gaitid bench gallery: {source.description}, seed {args.seed}, {args.queries} queries, k={_K}, "
        f"dim {source.dim}, faiss {faiss.__version__}, {args.threads} OpenMP thread(s), PQ {codes} codes scanned on "
        f"{args.scan_threads} thread(s), exact_max {config.exact_max}",
        flush=True,
    )
    report = BenchReport(["entries", "kind", "in use", "build s", "GB", "p50 ms", "p99 ms", "recall@1"])
    for size in sizes:
        gallery = source.gallery(size, args.seed)
        _, query_embeddings = gallery.queries(args.queries, seed=args.seed + 1)
        queries = source.transform.vectors(query_embeddings)
        queries @ queries.T  # the first BLAS call allocates its buffers: keep them out of the first row's GB
        exact, pending = _Exact.start(queries), True  # filled during the first build
        for kind in kinds:
            flat_bytes = size * source.dim * 4
            flat = kind == "flat" or (kind == "auto" and size <= config.exact_max)
            if flat and flat_bytes > _available_bytes() // 2:
                report.add([size, kind, "flat", "skipped", f"{flat_bytes / 1e9:.1f} needed", "-", "-", "-"])
                continue
            index = GalleryIndex(source.dim, replace(config, kind=kind))
            before = _rss_bytes()
            build = _build(index, gallery, source.transform, f"{kind} at {size:,}", exact if pending else None)
            memory, pending = (_rss_bytes() - before) / 1e9, False
            ms, top1 = _latencies(index, queries)
            recall = float(np.mean(top1 == exact.best_id))
            row = [size, kind, index.kind, f"{build:.1f}", f"{memory:.2f}"]
            report.add([*row, f"{np.percentile(ms, 50):.2f}", f"{np.percentile(ms, 99):.2f}", f"{recall:.3f}"])
            del index
    report.print_table()
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.epilog = (
        "examples:\n  gaitid bench gallery\n"
        "  gaitid bench gallery --sizes 10000,100000,1000000 --kinds flat,auto\n"
        "  gaitid bench gallery --sizes 100000 --kinds pq --scan-threads 1\n"
        "  gaitid bench gallery --real --model default --sizes 100000,1000000 --kinds auto"
    )
    parser.add_argument("--sizes", default="10000,100000", help="gallery entries, comma list (default 10000,100000)")
    parser.add_argument("--kinds", default="flat,auto", help=f"comma list from {', '.join(INDEX_KINDS)}")
    parser.add_argument("--queries", type=int, default=200, help="single-query searches per cell (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic gallery seed (default 0)")
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads per call (default 1)")
    parser.add_argument(
        "--scan-threads",
        type=int,
        default=IndexConfig.scan_threads,
        help=f"threads one PQ search scans on, its codes split in as many parts (default {IndexConfig.scan_threads})",
    )
    parser.add_argument(
        "--pq-subquantizers",
        type=int,
        help="4-bit codes a vector in the compressed index, a divisor of the vectors' length (default: one "
        "per 8 dims, at least 256: 512 for 4,096-long vectors, 256 for the bundled model's 1,024)",
    )
    parser.add_argument(
        "--real", action="store_true", help="grow galleries from --model's real CASIA-B embeddings (its transform)"
    )
    parser.add_argument("--model", default="default", help="the registered model for --real (default: default)")
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data/casia-b"), help="CASIA-B for --real (packed or OpenGait)"
    )
    parser.add_argument("--real-subjects", default="075-124", help="subjects --real embeds (default 075-124)")
    parser.set_defaults(handler=_run)
