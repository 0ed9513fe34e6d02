"""The real-clip protocol: enrol people from real videos, identify them in other real videos.

CASIA-B measures a network on clean laboratory silhouettes; this measures the product: the same
pipeline, embedding, matching transform, calibration and open-set decision as ``/v1/identify``,
on footage with moving cameras, crowds, high and frontal views. A protocol file (see
``configs/protocols/clips.yaml``) says who is enrolled from which clip and which clips are probes;
``ground_truth.json`` in the data folder says who walks when and where. Pipeline tracks are matched
to people by time overlap and, in group clips, by each person's position at one moment, never
by track numbers (those change with any detector or tracker change).
"""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from models.embedder import MAX_FRAMES, Embedder
from models.errors import ModelError, one_line
from models.matching import (
    NO_RANKING_WINDOWS,
    WHOLE_SEQUENCE,
    Calibration,
    Candidate,
    MatchingTransform,
    ProbeWalk,
    RankingWindows,
    Windowing,
    decide,
    embed_probe_walks,
    embed_walks,
    rank_subjects,
)
from pipeline.cache import TrackCache, extract_cached
from pipeline.extract import PipelineConfig, PipelineResult
from pipeline.tracks import Track

GROUND_TRUTH = "ground_truth.json"
MAX_POSITION_ERROR = 0.12  # fraction of the frame width between a track's box centre and a person's
MIN_TIME_OVERLAP = 0.3  # intersection over union of a track's and a person's time in view

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClipEntry:
    """A clip of the protocol: the people to enrol from it (enrolment clips) and how to read it."""

    clip: str
    persons: tuple[str, ...] = ()
    rotate: int = 0


@dataclass(frozen=True)
class ClipsProtocol:
    enroll: tuple[ClipEntry, ...]
    probes: tuple[ClipEntry, ...]


def _entry(raw: Any, path: Path) -> ClipEntry:
    if not isinstance(raw, dict) or "clip" not in raw:
        raise ModelError(f"clip protocol {path}: every entry needs a clip", code="bad_protocol")
    return ClipEntry(str(raw["clip"]), tuple(str(p) for p in raw.get("persons") or ()), int(raw.get("rotate", 0)))


def load_protocol(path: Path) -> ClipsProtocol:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"clip protocol {path} is unreadable: {one_line(error)}", code="bad_protocol") from None
    protocol = ClipsProtocol(
        tuple(_entry(e, path) for e in raw.get("enroll") or ()), tuple(_entry(e, path) for e in raw.get("probes") or ())
    )
    if not protocol.enroll or not protocol.probes:
        raise ModelError(f"clip protocol {path} needs enroll and probes entries", code="bad_protocol")
    return protocol


@dataclass(frozen=True)
class PersonTruth:
    """When a person is in view in one clip, and (group clips) where they stand at ``at_s``."""

    person: str
    windows: tuple[tuple[float, float], ...]
    x: float | None = None


@dataclass(frozen=True)
class ClipTruth:
    persons: tuple[PersonTruth, ...]
    at_s: float | None = None  # the moment the positions were read


def clip_truth(ground_truth: dict[str, Any], clip: str) -> ClipTruth:
    """One clip's ground truth from ``ground_truth.json``."""
    try:
        entry = ground_truth["clips"][clip]
    except KeyError:
        raise ModelError(f"{GROUND_TRUTH} has no clip {clip!r}", code="bad_protocol") from None
    windows: dict[str, list[tuple[float, float]]] = {}
    for track in entry.get("tracks", []):
        windows.setdefault(str(track["person"]), []).append((float(track["from_s"]), float(track["to_s"])))
    positions = entry.get("positions") or {}
    xs = positions.get("x", {})
    persons = tuple(PersonTruth(p, tuple(w), xs.get(p)) for p, w in windows.items())
    return ClipTruth(persons, positions.get("t_s"))


def _time_iou(track: Track, windows: Sequence[tuple[float, float]]) -> float:
    start, end = track.start_s, track.end_s
    inter = sum(max(0.0, min(end, b) - max(start, a)) for a, b in windows)
    union = (end - start) + sum(b - a for a, b in windows) - inter
    return inter / union if union > 0 else 0.0


def assign_tracks(tracks: Sequence[Track], truth: ClipTruth, frame_width: float) -> dict[int, str]:
    """Track id → person, for the tracks that can be told apart from the ground truth.

    Group clips with positions: the tracks in view at the ground truth's moment are matched one to
    one with the people (the assignment with the least total distance between box centres and
    positions, each within ``MAX_POSITION_ERROR``). Otherwise each track goes to the person whose
    time in view overlaps it most (intersection over union at least ``MIN_TIME_OVERLAP``).
    """
    placed = [p for p in truth.persons if p.x is not None]
    if truth.at_s is not None and placed:
        centres: dict[int, float] = {}
        for track in tracks:
            box = track.box_near(truth.at_s)
            if box is not None:
                centres[track.track_id] = (box[0] + box[2]) / 2 / frame_width
        return _closest_one_to_one(centres, {p.person: float(p.x) for p in placed if p.x is not None})
    assigned = {}
    for track in tracks:
        overlaps = {p.person: _time_iou(track, p.windows) for p in truth.persons}
        if overlaps:
            person, overlap = max(overlaps.items(), key=lambda item: item[1])
            if overlap >= MIN_TIME_OVERLAP:
                assigned[track.track_id] = person
    return assigned


def _closest_one_to_one(centres: dict[int, float], positions: dict[str, float]) -> dict[int, str]:
    """The one-to-one pairing of tracks and people, each pair within ``MAX_POSITION_ERROR``, that pairs the
    most tracks with the least total distance (exhaustive: groups are small, and the bound prunes)."""
    tracks = list(centres)

    def best_from(index: int, free: frozenset[str]) -> tuple[int, float, dict[int, str]]:
        if index == len(tracks):
            return 0, 0.0, {}
        track = tracks[index]
        count, error, pairs = best_from(index + 1, free)  # this track left out
        for person in free:
            distance = abs(centres[track] - positions[person])
            if distance > MAX_POSITION_ERROR:
                continue
            more, rest, chosen = best_from(index + 1, free - {person})
            if (more + 1, -(rest + distance)) > (count, -error):
                count, error, pairs = more + 1, rest + distance, {track: person, **chosen}
        return count, error, pairs

    return best_from(0, frozenset(positions))[2]


@dataclass(frozen=True)
class Appearance:
    """One person's usable walk in one clip: the longest usable track assigned to them."""

    clip: str
    person: str
    track: Track


def appearances(result: PipelineResult, clip: str, truth: ClipTruth, persons: Sequence[str]) -> dict[str, Appearance]:
    """Person → appearance for ``persons`` (missing when no usable track was assigned to them)."""
    assigned = assign_tracks(result.kept, truth, float(result.info.width))
    found: dict[str, Appearance] = {}
    for track in result.kept:
        person = assigned.get(track.track_id)
        if person in persons and (person not in found or track.good_frames > found[person].track.good_frames):
            found[person] = Appearance(clip, person, track)
    return found


@dataclass(frozen=True)
class ProbeScores:
    """One probe walk against the enrolled walks: whole-walk similarities, and per enrolled walk the
    best of its ranking windows' similarities (None: a walk ranked whole)."""

    whole: np.ndarray
    windows: np.ndarray | None


@dataclass(frozen=True)
class Matching:
    """The model's matching as the service applies it: transform, calibration, card thresholds."""

    transform: MatchingTransform
    calibration: Calibration | None
    thresholds: dict[str, float]
    windowing: Windowing = WHOLE_SEQUENCE
    ranking: RankingWindows = NO_RANKING_WINDOWS

    def candidates(self, scores: ProbeScores, subjects: Sequence[str], exclude: str | None = None) -> list[Candidate]:
        """Subjects ranked as the gallery ranks them (one enrolled sequence each here), optionally one left out."""
        whole = {s: float(v) for s, v in zip(subjects, scores.whole.tolist(), strict=True) if s != exclude}
        windows = {} if scores.windows is None else dict(zip(subjects, scores.windows.tolist(), strict=True))
        windows.pop(exclude or "", None)
        return [
            Candidate.scored(s, whole[s], self.calibration, window_similarity=windows.get(s))
            for s in rank_subjects(whole, windows)
        ]


def run_clips_protocol(
    embedder: Embedder,
    matching: Matching,
    pipeline: PipelineConfig,
    data_dir: Path,
    protocol: ClipsProtocol,
    cache: TrackCache | None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Enrol, identify every probe appearance, and remove each enrolled person in turn; JSON-ready."""
    started = time.perf_counter()
    try:
        ground_truth = json.loads((data_dir / GROUND_TRUTH).read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"no readable {GROUND_TRUTH} in {data_dir}: {error}", code="bad_dataset") from None

    def walks(entry: ClipEntry, persons: Sequence[str]) -> dict[str, Appearance]:
        path = data_dir / entry.clip
        if not path.is_file():
            raise ModelError(f"clip {entry.clip} is not in {data_dir}", code="bad_dataset")
        if progress:
            progress(entry.clip)
        result = extract_cached(path, replace(pipeline, rotate=entry.rotate), cache)
        return appearances(result, entry.clip, clip_truth(ground_truth, entry.clip), persons)

    gallery: dict[str, Appearance] = {}
    for entry in protocol.enroll:
        gallery.update(walks(entry, entry.persons))
    enrolled = sorted(gallery)
    probes: list[tuple[ClipEntry, str, Appearance | None]] = []
    for entry in protocol.probes:
        people = [p.person for p in clip_truth(ground_truth, entry.clip).persons]
        found = walks(entry, people)
        probes.extend((entry, person, found.get(person)) for person in people)
    present = [a for _, _, a in probes if a is not None]
    enrolled_vectors = embed_walks(
        embedder.embed, [gallery[p].track.silhouettes[:MAX_FRAMES] for p in enrolled], matching.windowing
    )
    sequences = [a.track.silhouettes[:MAX_FRAMES] for a in present]
    walks = embed_probe_walks(embedder.embed, sequences, matching.windowing, matching.ranking) if present else []
    rows = {
        id(a): _probe_scores(matching.transform, walk, enrolled_vectors) for a, walk in zip(present, walks, strict=True)
    }
    report = _report(matching, enrolled, gallery, probes, rows)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["embedder"] = embedder.description
    report["ranking_windows"] = vars(matching.ranking)
    return report


def _probe_scores(transform: MatchingTransform, walk: ProbeWalk, enrolled: np.ndarray) -> ProbeScores:
    whole = transform.similarity(walk.whole, enrolled)[0]
    windows = transform.similarity(walk.windows, enrolled).max(axis=0) if len(walk.windows) else None
    return ProbeScores(whole, windows)


def _decision(candidates: list[Candidate], threshold: float) -> str:
    verdict = decide(candidates, threshold)
    return f"match {verdict.subject_id}" if verdict.decision == "match" else "unknown"


def _report(
    matching: Matching,
    enrolled: list[str],
    gallery: dict[str, Appearance],
    probes: list[tuple[ClipEntry, str, Appearance | None]],
    rows: dict[int, ProbeScores],
) -> dict[str, Any]:
    thresholds = matching.thresholds
    answers, confusion = [], {p: {} for p in sorted({person for _, person, _ in probes})}
    for entry, person, found in probes:
        answer: dict[str, Any] = {"clip": entry.clip, "person": person, "enrolled": person in enrolled}
        if found is None:
            answer.update({"track": None, "top1": None, "top1_right": False})
            answer["decisions"] = dict.fromkeys(thresholds, "missed")
            answer["open_set"] = {}
        else:
            candidates = matching.candidates(rows[id(found)], enrolled)
            genuine = next((c for c in candidates if c.subject_id == person), None)
            impostor = next(c for c in candidates if c.subject_id != person)
            answer.update(
                {
                    "track": {"id": found.track.track_id, "good_frames": found.track.good_frames},
                    "top1": candidates[0].subject_id,
                    "top1_right": candidates[0].subject_id == person,
                    "genuine": None if genuine is None else _scores(genuine),
                    "best_impostor": {"subject": impostor.subject_id, **_scores(impostor)},
                    "candidates": [{"subject": c.subject_id, **_scores(c)} for c in candidates[:3]],
                    "decisions": {name: _decision(candidates, t) for name, t in thresholds.items()},
                    # the same probe with each enrolled person removed from the gallery in turn
                    "open_set": {
                        name: {
                            removed: _decision(matching.candidates(rows[id(found)], enrolled, removed), t)
                            for removed in enrolled
                        }
                        for name, t in thresholds.items()
                    },
                }
            )
            confusion[person][answer["top1"]] = confusion[person].get(answer["top1"], 0) + 1
        answers.append(answer)
    return {
        "dataset": "clips",
        "enrolled": {
            p: {"clip": a.clip, "track": a.track.track_id, "good_frames": a.track.good_frames}
            for p, a in gallery.items()
        },
        "appearances": answers,
        "confusion": confusion,
        "summary": _summary(answers, enrolled, thresholds),
    }


def _scores(candidate: Candidate) -> dict[str, float | None]:
    return {"similarity": round(candidate.similarity, 6), "confidence": _round(candidate.confidence)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _summary(answers: list[dict[str, Any]], enrolled: list[str], thresholds: dict[str, float]) -> dict[str, Any]:
    """Counts per operating point: right top-1, right decisions, false matches, and the open-set pass."""
    summary: dict[str, Any] = {
        "appearances": len(answers),
        "found": sum(a["track"] is not None for a in answers),
        "top1_right": sum(a["top1_right"] for a in answers),
    }
    for name in thresholds:
        right = false = 0
        for a in answers:
            expected = f"match {a['person']}" if a["enrolled"] else "unknown"
            decision = a["decisions"][name]
            right += decision == expected
            false += decision.startswith("match") and decision != f"match {a['person']}"
        # open set: with X removed, X's appearances must be unknown and nobody else's decision may change
        removed_unknown = changed = 0
        for removed in enrolled:
            for a in answers:
                if a["track"] is None:
                    continue
                after = a["open_set"][name][removed]
                if a["person"] == removed:
                    removed_unknown += after == "unknown"
                else:
                    changed += after != a["decisions"][name]
        own = sum(1 for a in answers if a["track"] is not None and a["person"] in enrolled)
        summary[name] = {
            "threshold": thresholds[name],
            "decision_right": right,
            "false_matches": false,
            "open_set_removed_unknown": f"{removed_unknown}/{own}",
            "open_set_others_changed": changed,
        }
    return summary


def matching_from_report(path: Path) -> Matching:
    """The matching a CASIA-B evaluation fitted (``gaitid evaluate --json``), as publish would store it."""
    try:
        report = json.loads(path.read_text())
        fitted = report.get("matching_fit") or {}
        mean = fitted.get("mean")
        calibration = report.get("calibration")
        windows = report.get("windows") or {}
        ranking = report.get("ranking_windows") or {}
        return Matching(
            MatchingTransform(None if mean is None else np.asarray(mean, dtype=np.float32)),
            None if calibration is None else Calibration(calibration["slope"], calibration["intercept"]),
            {name: float(point["threshold"]) for name, point in report["open_set"].items()},
            Windowing(int(windows.get("frames", 0)), int(windows.get("stride", 0))),
            RankingWindows(*(int(ranking.get(key, 0)) for key in ("frames", "stride", "longer_than"))),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{path} is not a CASIA-B evaluation report: {error}", code="bad_evaluation") from None


def format_clips_report(report: dict[str, Any]) -> str:
    """The confusion of every appearance, then the counts per operating point."""
    lines = ["clip                      person  top-1  genuine (conf / sim)   best other (conf / sim)   decisions"]
    for a in report["appearances"]:
        if a["track"] is None:
            lines.append(f"{a['clip']:<25} {a['person']:<7} no usable track")
            continue
        genuine = a["genuine"] or {}
        other = a["best_impostor"]
        decisions = ", ".join(f"{k}: {v}" for k, v in a["decisions"].items())
        lines.append(
            f"{a['clip']:<25} {a['person']:<7} {a['top1']:<6} {format_scores(genuine):<22} "
            f"{other['subject']} {format_scores(other):<20} {decisions}"
        )
    summary = report["summary"]
    lines.append(
        f"top-1 right {summary['top1_right']}/{summary['appearances']} "
        f"({summary['found']} appearances with a usable track)"
    )
    ranking = report.get("ranking_windows") or {}
    if ranking.get("frames"):
        lines.append(
            f"walks over {ranking['longer_than']} frames ranked by their best {ranking['frames']}-frame window "
            "(scores and decisions: the whole walk's)"
        )
    for name, point in summary.items():
        if isinstance(point, dict):
            lines.append(
                f"{name} (threshold {point['threshold']:.4g}): decision right {point['decision_right']}/"
                f"{summary['appearances']}, false matches {point['false_matches']}, open set: removed person "
                f"unknown {point['open_set_removed_unknown']}, "
                f"other decisions changed {point['open_set_others_changed']}"
            )
    return "\n".join(lines)


def format_scores(scores: dict[str, Any]) -> str:
    """``confidence / similarity`` of one candidate in a report, for tables."""
    if not scores:
        return "-"
    confidence = "-" if scores.get("confidence") is None else f"{scores['confidence']:.3f}"
    return f"{confidence} / {scores['similarity']:.4f}"
