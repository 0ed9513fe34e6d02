"""Running an evaluation protocol end to end: read the test split, embed it, score it."""

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.data.casia_b import SilhouetteDataset, iter_subject_range
from models.data.records import SequenceRecord
from models.embedder import MIN_FRAMES, Embedder
from models.errors import ModelError
from models.evaluation.casia_b import GALLERY_CONDITIONS, PROBE_CONDITIONS, SequenceLabel, casia_b_rank1
from models.evaluation.distances import cosine_similarity_matrix, distance_matrix
from models.evaluation.open_set import open_set_thresholds
from models.evaluation.retrieval import retrieval_scores

Progress = Callable[[int, int], None]
EMBED_CHUNK = 64


def embeddable(sils: np.ndarray) -> np.ndarray:
    """A sequence with at least the models' minimum frames: very short ones are cycled."""
    return sils if len(sils) >= MIN_FRAMES else np.resize(sils, (MIN_FRAMES, *sils.shape[1:]))


def embed_records(
    embedder: Embedder, records: Sequence[SequenceRecord], progress: Progress | None = None
) -> np.ndarray:
    """Embeddings ``[S, D, P]`` of every record, in chunks so progress can be shown."""
    chunks = []
    for start in range(0, len(records), EMBED_CHUNK):
        chunk = records[start : start + EMBED_CHUNK]
        chunks.append(embedder.embed([embeddable(r.sils) for r in chunk]))
        if progress:
            progress(start + len(chunk), len(records))
    return np.concatenate(chunks)


def _load_split(data_root: Path, subjects: str, cache_dir: Path | None) -> list[SequenceRecord]:
    first, _, last = subjects.partition("-")
    dataset = SilhouetteDataset(data_root, cache_dir)
    chosen = list(iter_subject_range(dataset.subjects, int(first), int(last or first)))
    if not chosen:
        raise ModelError(f"no subjects {subjects} in {data_root}", code="bad_dataset")
    return [r for r in dataset.load(chosen) if len(r.sils) > 0]


def evaluate_casia_b(
    embedder: Embedder,
    data_root: Path,
    subjects: str = "075-124",
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The CASIA-B protocol with both metrics, plus open-set thresholds; JSON-ready."""
    started = time.perf_counter()
    records = _load_split(data_root, subjects, cache_dir)
    embeddings = embed_records(embedder, records, progress)
    labels = [SequenceLabel(r.subject, r.condition, r.view) for r in records]
    results = {metric: casia_b_rank1(embeddings, labels, metric) for metric in ("euclidean", "cosine")}
    conditions = np.array([r.condition for r in records])
    gallery = np.isin(conditions, GALLERY_CONDITIONS)
    probes = np.isin(conditions, [c for group in PROBE_CONDITIONS.values() for c in group])
    subjects_of = np.array([r.subject for r in records])
    similarity = cosine_similarity_matrix(embeddings[probes], embeddings[gallery])
    points = open_set_thresholds(similarity, subjects_of[probes].tolist(), subjects_of[gallery].tolist())
    report: dict[str, Any] = dict(results["euclidean"].means)
    report.update(
        {
            "dataset": "casia-b",
            "subjects": subjects,
            "sequences": len(records),
            "embedder": embedder.description,
            "seconds": round(time.perf_counter() - started, 1),
            "metrics": {metric: {"means": result.means, "table": result.table} for metric, result in results.items()},
            "open_set": {
                name: {"threshold": p.threshold, "far": p.false_accept_rate, "tar": p.true_accept_rate}
                for name, p in points.items()
            },
        }
    )
    return report


def evaluate_partition(
    embedder: Embedder,
    data_root: Path,
    partition: Path,
    probe_conditions: Sequence[str],
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Generic retrieval protocol: TEST_SET of a partition file, probes by condition, the rest gallery."""
    try:
        test_set = [str(s) for s in json.loads(partition.read_text())["TEST_SET"]]
    except (OSError, ValueError, KeyError) as error:
        raise ModelError(f"partition file {partition} is unusable: {error}", code="bad_partition") from None
    dataset = SilhouetteDataset(data_root, cache_dir)
    missing = sorted(set(test_set) - set(dataset.subjects))
    if missing:
        raise ModelError(f"partition lists subjects not in {data_root}: {', '.join(missing[:5])}", code="bad_partition")
    started = time.perf_counter()
    records = [r for r in dataset.load(test_set) if len(r.sils) > 0]
    embeddings = embed_records(embedder, records, progress)
    probe = np.array([r.condition in probe_conditions for r in records])
    if not probe.any() or probe.all():
        raise ModelError("probe conditions must select some, but not all, test sequences", code="bad_partition")
    subjects = np.array([r.subject for r in records])
    report: dict[str, Any] = {"dataset": "generic", "sequences": len(records), "embedder": embedder.description}
    for metric in ("euclidean", "cosine"):
        distances = distance_matrix(embeddings[probe], embeddings[~probe], metric)  # type: ignore[arg-type]
        scores = retrieval_scores(distances, subjects[probe].tolist(), subjects[~probe].tolist())
        report[metric] = {
            "rank1": scores.rank[1],
            "rank5": scores.rank[5],
            "rank10": scores.rank[10],
            "mAP": scores.mean_ap,
            "mINP": scores.mean_inp,
            "probes_without_match": scores.probes_without_match,
        }
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report
