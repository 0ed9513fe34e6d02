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
from models.evaluation.casia_b import (
    GALLERY_CONDITIONS,
    PROBE_CONDITIONS,
    SequenceLabel,
    casia_b_rank1,
    protocol_pairs,
)
from models.evaluation.distances import distance_matrix
from models.evaluation.open_set import open_set_thresholds
from models.evaluation.retrieval import retrieval_scores
from models.matching import (
    NO_RANKING_WINDOWS,
    WHOLE_SEQUENCE,
    Calibration,
    MatchingTransform,
    RankingWindows,
    Windowing,
    centring_transform,
    embed_pieces,
    embed_walks,
    fit_calibration,
    reliability,
)
from models.training.trainer import parse_subject_range

Progress = Callable[[int, int], None]
EMBED_CHUNK = 64
FIT_SEQUENCES_PER_SUBJECT = 24  # enough for a stable mean and calibration; a fraction of the split's cost


def embeddable(sils: np.ndarray) -> np.ndarray:
    """A sequence with at least the models' minimum frames: very short ones are cycled."""
    return sils if len(sils) >= MIN_FRAMES else np.resize(sils, (MIN_FRAMES, *sils.shape[1:]))


def embed_records(
    embedder: Embedder,
    records: Sequence[SequenceRecord],
    progress: Progress | None = None,
    windowing: Windowing = WHOLE_SEQUENCE,
) -> np.ndarray:
    """Embeddings ``[S, D, P]`` of every record (whole, or windows averaged), in chunks so progress can be shown."""
    chunks = []
    for start in range(0, len(records), EMBED_CHUNK):
        chunk = records[start : start + EMBED_CHUNK]
        chunks.append(embed_walks(embedder.embed, [embeddable(r.sils) for r in chunk], windowing))
        if progress:
            progress(start + len(chunk), len(records))
    return np.concatenate(chunks)


def _ranking_windows(
    embedder: Embedder,
    records: Sequence[SequenceRecord],
    probes: Sequence[int],
    ranking: RankingWindows,
    progress: Progress | None,
) -> dict[int, np.ndarray]:
    """Probe index → the raw embeddings ``[w, D, P]`` of its ranking windows, for probes long enough to have some."""
    windows = {i: ranking.split(records[i].sils) for i in probes}
    windowed = [i for i, pieces in windows.items() if pieces]
    found: dict[int, np.ndarray] = {}
    for start in range(0, len(windowed), EMBED_CHUNK):
        chunk = windowed[start : start + EMBED_CHUNK]
        found.update(zip(chunk, embed_pieces(embedder.embed, [windows[i] for i in chunk]), strict=True))
        if progress:
            progress(start + len(chunk), len(windowed))
    return found


def _labels(records: Sequence[SequenceRecord]) -> list[SequenceLabel]:
    return [SequenceLabel(r.subject, r.condition, r.view) for r in records]


def fit_matching(
    embedder: Embedder,
    data_root: Path,
    subjects: str = "001-074",
    centre: bool = True,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    windowing: Windowing = WHOLE_SEQUENCE,
    held_out: str | None = None,
) -> tuple[MatchingTransform, Calibration, dict[str, Any]]:
    """The matching transform and calibration of a model, from its *training* split.

    A fixed sample of each subject's sequences (seed 0) is embedded; the transform centres on
    their mean and the calibration is fitted on their protocol pairs (probes against nm-01..04
    across views), the same kind of comparison the test split is scored on.

    ``held_out``: subjects the model was *not* trained on (of the training split, or of the test
    split: ``evaluate_casia_b`` then leaves them out of the calibration check). The calibration
    then takes its same-person pairs from every sequence of theirs and only its different-person
    pairs from the sample. A model scores the walks of people it trained on higher than those of
    new people, while its different-person scores are alike for both (measured on GPU-trained
    narrow2: same-person median similarity 0.70 on its training subjects against 0.59 on new ones,
    different-person 95th percentile 0.42 against 0.41), so a fit on trained-on people alone is
    under-confident on new people; only the same-person side needs people the model never saw.
    """
    sample = sample_per_subject(load_split(data_root, subjects, cache_dir), FIT_SEQUENCES_PER_SUBJECT)
    unseen = [] if held_out is None else load_split(data_root, held_out, cache_dir)
    overlap = sorted({r.subject for r in unseen} & {r.subject for r in sample})
    if overlap:
        raise ModelError(
            f"held-out subjects {held_out} overlap the fit subjects {subjects} ({', '.join(overlap[:5])})",
            code="bad_option",
        )
    embeddings = embed_records(embedder, sample, progress, windowing)
    transform = centring_transform(embeddings) if centre else MatchingTransform()
    similarity, same = protocol_pairs(transform.vectors(embeddings), _labels(sample))
    facts: dict[str, Any] = {"subjects": subjects, "sequences": len(sample), "pairs": len(same), "centred": centre}
    if held_out is not None:
        unseen_similarity, unseen_same = protocol_pairs(
            transform.vectors(embed_records(embedder, unseen, progress, windowing)), _labels(unseen)
        )
        similarity = np.concatenate([unseen_similarity[unseen_same], similarity[~same]])
        same = np.concatenate([np.ones(int(unseen_same.sum()), bool), np.zeros(int((~same).sum()), bool)])
        facts.update({"held_out": held_out, "held_out_sequences": len(unseen), "pairs": len(same)})
    calibration = fit_calibration(similarity, same)
    return transform, calibration, facts


def sample_per_subject(records: Sequence[SequenceRecord], count: int, seed: int = 0) -> list[SequenceRecord]:
    """At most ``count`` records of each subject, drawn without replacement (a pure function of ``seed``)."""
    rng = np.random.default_rng(seed)
    by_subject: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_subject.setdefault(record.subject, []).append(index)
    chosen = sorted(
        i for indices in by_subject.values() for i in rng.choice(indices, size=min(count, len(indices)), replace=False)
    )
    return [records[i] for i in chosen]


def load_split(data_root: Path, subjects: str, cache_dir: Path | None) -> list[SequenceRecord]:
    """The non-empty sequences of a subject range such as ``075-124``."""
    dataset = SilhouetteDataset(data_root, cache_dir)
    chosen = list(iter_subject_range(dataset.subjects, *parse_subject_range(subjects)))
    if not chosen:
        raise ModelError(f"no subjects {subjects} in {data_root}", code="bad_dataset")
    return [r for r in dataset.load(chosen) if len(r.sils) > 0]


def evaluate_casia_b(
    embedder: Embedder,
    data_root: Path,
    subjects: str = "075-124",
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    transform: MatchingTransform | None = None,
    calibration: Calibration | None = None,
    windowing: Windowing = WHOLE_SEQUENCE,
    ranking: RankingWindows = NO_RANKING_WINDOWS,
    ranking_progress: Progress | None = None,
    calibrated_on: str | None = None,
) -> dict[str, Any]:
    """The CASIA-B protocol, JSON-ready: rank-1 with OpenGait's Euclidean distance on the raw
    embedding and with the service's matching (cosine after ``transform``, long probes ranked by
    their best ``ranking`` window); open-set thresholds on the ``calibration``'s confidence (on the
    similarity without one); and, with a calibration, its expected calibration error and
    reliability table on the test split's protocol pairs.

    ``calibrated_on``: the held-out subjects whose same-person pairs fitted the calibration. Test
    subjects among them keep their place in the rank-1 and open-set tables (a calibration is
    monotonic: it changes no ranking and no accept rate at a false-accept rate), but their pairs
    are left out of the calibration check, which must be made on people the fit never saw."""
    started = time.perf_counter()
    transform = transform or MatchingTransform()
    records = load_split(data_root, subjects, cache_dir)
    embeddings = embed_records(embedder, records, progress, windowing)
    labels = _labels(records)
    conditions = np.array([r.condition for r in records])
    gallery = np.isin(conditions, GALLERY_CONDITIONS)
    probes = np.isin(conditions, [c for group in PROBE_CONDITIONS.values() for c in group])
    raw_windows = _ranking_windows(embedder, records, np.flatnonzero(probes).tolist(), ranking, ranking_progress)
    windows = {index: transform.centre(embedded) for index, embedded in raw_windows.items()}
    results = {
        "euclidean": casia_b_rank1(embeddings, labels, "euclidean"),
        "cosine": casia_b_rank1(transform.centre(embeddings), labels, "cosine", windows),
    }
    subjects_of = np.array([r.subject for r in records])
    vectors = transform.vectors(embeddings)  # the service's gallery vectors: one inner product per pair
    similarity = vectors[probes] @ vectors[gallery].T
    scores = similarity if calibration is None else calibration.confidence(similarity)
    points = open_set_thresholds(scores, subjects_of[probes].tolist(), subjects_of[gallery].tolist())
    report: dict[str, Any] = dict(results["euclidean"].means)
    report.update(
        {
            "dataset": "casia-b",
            "subjects": subjects,
            "sequences": len(records),
            "embedder": embedder.description,
            "windows": {"frames": windowing.frames, "stride": windowing.stride},
            "ranking_windows": vars(ranking) | {"probes": len(windows)},
            "seconds": round(time.perf_counter() - started, 1),
            "metrics": {metric: {"means": result.means, "table": result.table} for metric, result in results.items()},
            "open_set": {
                name: {
                    "threshold": p.threshold,
                    "scale": "similarity" if calibration is None else "confidence",
                    "far": p.false_accept_rate,
                    "tar": p.true_accept_rate,
                }
                for name, p in points.items()
            },
        }
    )
    if calibration is not None:
        fitted = (
            []
            if calibrated_on is None
            else sorted(set(iter_subject_range(subjects_of, *parse_subject_range(calibrated_on))))
        )
        checked = np.flatnonzero(~np.isin(subjects_of, fitted))
        pair_similarity, same = protocol_pairs(vectors[checked], [labels[i] for i in checked])
        error, table = reliability(calibration.confidence(pair_similarity), same)
        report["calibration"] = {
            "slope": calibration.slope,
            "intercept": calibration.intercept,
            "ece": error,
            "pairs": len(same),
            "left_out": "-".join(dict.fromkeys([fitted[0], fitted[-1]])) if fitted else None,  # as "075-084"
            "reliability": [vars(row) for row in table],
        }
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
