"""Publishing a trained checkpoint as a registered model: weights, model card (YAML) and its document.

The published weights hold only the network (fp16 storage: half the size, and the loader casts
back to fp32 on load); the YAML card is what the registry reads (architecture, config, metric,
the open-set thresholds from the evaluation); the Markdown document says how the weights were
made: data and its terms, the command and configuration, seed, time and hardware, and the full
evaluation table.
"""

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from models.checkpoint import load_model, read_checkpoint
from models.configs import config_to_dict
from models.evaluation.clips import format_scores
from models.matching import MatchingTransform

CONDITIONS = ("NM", "BG", "CL")
_TRANSFORM_SUFFIX = ".transform.npz"


@dataclass(frozen=True)
class Provenance:
    """How the weights were made, in the words and numbers the model card shows."""

    command: str
    config: Path
    trained_on: str  # hardware and wall time, e.g. "2-core CPU, 9.5 h"
    data: str = "CASIA-B subjects 001-074 (OpenGait pretreatment); research use only, not redistributed"


def _table(metrics: dict[str, Any], metric: str) -> list[str]:
    table = metrics[metric]["table"]
    views = list(next(iter(table.values())).keys())
    lines = [f"| probe | {' | '.join(views)} | mean |", "|---" * (len(views) + 2) + "|"]
    for condition in CONDITIONS:
        cells = " | ".join(f"{table[condition][v]:.1f}" for v in views)
        lines.append(f"| {condition} | {cells} | **{metrics[metric]['means'][condition]:.2f}** |")
    return lines


def _document(
    name: str,
    version: str,
    arch: str,
    shape: dict[str, Any],
    iteration: int,
    evaluation: dict[str, Any],
    provenance: Provenance,
    seed: int,
    parameters: int,
    started_from: str | None,
    clips: dict[str, Any] | None,
    span: np.ndarray | None,
) -> str:
    lines = [
        f"# Model card: {name}@{version}",
        "",
        f"- Architecture: {arch} {json.dumps(shape)}; {parameters:,} parameters; embedding float32 [256, 16], "
        "cosine similarity (mean over the 16 parts).",
        f"- Training data: {provenance.data}.",
        f"- Trained with: `{provenance.command}` (configuration `{provenance.config}`, seed {seed}), "
        f"{iteration} iterations, on {provenance.trained_on}.",
        *(
            [f"- Started from: `{started_from}` (an earlier stage's weights; its config and card say how it was made)."]
            if started_from
            else []
        ),
        f"- Evaluated with: `gaitid evaluate --dataset casia-b --subjects {evaluation['subjects']}"
        f"{_held_out_option(evaluation)}` "
        f"({evaluation['sequences']} sequences, {evaluation['embedder']}, {evaluation['seconds']:.0f} s).",
        "",
        "## CASIA-B rank-1 (%), identical view excluded",
        "",
    ]
    for metric in evaluation["metrics"]:
        lines += [f"{metric}:", "", *_table(evaluation["metrics"], metric), ""]
    lines += _matching_section(evaluation, name, span)
    lines += [
        "## Open-set thresholds (the service's `unknown` decision)",
        "",
        "| operating point | threshold | false accepts | true accepts |",
        "|---|---|---|---|",
    ]
    for point, values in evaluation["open_set"].items():
        scale = values.get("scale", "similarity")
        lines.append(
            f"| {point} | {scale} ≥ {values['threshold']:.6f} | {100 * values['far']:.2f}% | "
            f"{100 * values['tar']:.2f}% |"
        )
    if clips is not None:
        lines += ["", *_clips_section(clips)]
    return "\n".join(lines) + "\n"


def _matching_section(evaluation: dict[str, Any], name: str, span: np.ndarray | None) -> list[str]:
    """How scores are made and what the confidence means, with the calibration's check on the test split."""
    fitted, calibration = evaluation.get("matching_fit"), evaluation.get("calibration")
    if calibration is None:
        return ["## Matching", "", "Mean per-part cosine similarity of the raw embedding; no calibration.", ""]
    centred = fitted is not None and fitted.get("mean") is not None
    lines = [
        "## Matching and calibration",
        "",
        (
            f"- Matching transform: the mean embedding of {fitted['sequences']} sequences of CASIA-B "
            f"{fitted['subjects']} (the training split) is subtracted before the per-part normalisation "
            f"(`{name}{_TRANSFORM_SUFFIX}` beside this card)."
            if centred
            else "- Matching transform: none (raw embedding)."
        ),
        *(
            [
                f"- Gallery vectors: each centred part in the {span.shape[2]} directions the network's last layer "
                f"embeds in (of {span.shape[1]}: an orthonormal basis of the rows of `FCs.fc_bin`, array `basis` "
                f"of the transform file), so the same scores come from vectors {span.shape[0] * span.shape[2]:,} "
                f"long instead of {span.shape[0] * span.shape[1]:,}."
            ]
            if centred and span is not None
            else []
        ),
        f"- Confidence = 1 / (1 + exp(-({calibration['slope']:.4f} × similarity {calibration['intercept']:+.4f}))): "
        "the probability of the same person under a 50/50 prior, fitted by logistic regression on "
        + _calibration_pairs(fitted),
        f"- Checked on the test split's {calibration['pairs']:,} protocol pairs (probes against nm-01..04 across "
        f"views, both classes weighted equally{_left_out(calibration)}): expected calibration error "
        f"**{calibration['ece']:.4f}**.",
        "",
        "| confidence | share of pairs | mean confidence | same person |",
        "|---|---|---|---|",
    ]
    for row in calibration["reliability"]:
        lines.append(
            f"| {row['low']:.1f}–{row['high']:.1f} | {row['pairs']:.3f} | {row['mean_confidence']:.3f} | "
            f"{row['same_rate']:.3f} |"
        )
    return [*lines, ""]


def _held_out_option(evaluation: dict[str, Any]) -> str:
    """The ``--held-out`` option the evaluation ran with, if its calibration was fitted that way."""
    held_out = (evaluation.get("matching_fit") or {}).get("held_out")
    return f" --held-out {held_out}" if held_out else ""


def _left_out(calibration: dict[str, Any]) -> str:
    """The test subjects the check leaves out because they fitted the calibration, as the card says it."""
    left_out = calibration.get("left_out")
    return f"; subjects {left_out}, which fitted it, left out" if left_out else ""


def _calibration_pairs(fitted: dict[str, Any] | None) -> str:
    """Which pairs the calibration was fitted on, as the card states it."""
    if not fitted:
        return "training-split pairs."
    if fitted.get("held_out") is None:
        return f"{fitted['pairs']:,} training-split pairs."
    return (
        f"{fitted['pairs']:,} pairs: same-person pairs of all {fitted['held_out_sequences']} "
        f"sequences of subjects {fitted['held_out']}, held out of the model's training, and different-person "
        "pairs of the training-split sequences above."
    )


def _ranking_sentence(ranking: dict[str, Any]) -> str:
    """What ordered the candidates of the clips' long walks, if anything but the whole walk did."""
    if not ranking.get("frames"):
        return ""
    return (
        f" Walks over {ranking['longer_than']} frames rank the gallery by their best {ranking['frames']}-frame "
        "window; scores and decisions are the whole walk's."
    )


def _clips_section(clips: dict[str, Any]) -> list[str]:
    """The real-clip protocol's result (``gaitid evaluate --dataset clips``)."""
    summary = clips["summary"]
    lines = [
        "## Real clips (`gaitid evaluate --dataset clips`, configs/protocols/clips.yaml)",
        "",
        f"Top-1 right for {summary['top1_right']} of {summary['appearances']} probe appearances "
        f"({summary['found']} with a usable track).{_ranking_sentence(clips.get('ranking_windows') or {})}",
        "",
        "| clip | person | top-1 | genuine confidence / similarity | best other | decisions |",
        "|---|---|---|---|---|---|",
    ]
    for a in clips["appearances"]:
        if a["track"] is None:
            lines.append(f"| {a['clip']} | {a['person']} | no usable track | | | |")
            continue
        genuine, other = a["genuine"] or {}, a["best_impostor"]
        decisions = "; ".join(f"{k}: {v}" for k, v in a["decisions"].items())
        lines.append(
            f"| {a['clip']} | {a['person']} | {a['top1']} | {format_scores(genuine)} | {other['subject']} "
            f"{format_scores(other)} | {decisions} |"
        )
    lines += [
        "",
        "| operating point | decisions right | false matches | open set: removed → unknown | others changed |",
    ]
    lines.append("|---|---|---|---|---|")
    for name, point in summary.items():
        if isinstance(point, dict):
            lines.append(
                f"| {name} | {point['decision_right']}/{summary['appearances']} | {point['false_matches']} | "
                f"{point['open_set_removed_unknown']} | {point['open_set_others_changed']} |"
            )
    return lines


def embedding_span(state: dict[str, torch.Tensor], matching: str) -> np.ndarray | None:
    """Per part an orthonormal basis ``[P, D, r]`` of the directions the network can embed in, or None.

    The matched embedding is the part-wise linear map ``FCs.fc_bin [P, C, D]`` (no bias) of the
    pooled features, so with ``C < D`` every embedding of part ``p`` (and their mean) lies in the
    ``C``-dimensional row space of ``fc_bin[p]``: coordinates in its basis keep every score. Taken
    from the weights as published (fp16), the ones the service embeds with. None when the features
    pass the BNNeck (``bnneck`` matching) or the map does not narrow."""
    weights = state.get("FCs.fc_bin")
    if matching != "embedding" or weights is None or weights.shape[1] >= weights.shape[2]:
        return None
    rows = weights.double().numpy().transpose(0, 2, 1)  # [P, D, C]
    return np.stack([np.linalg.qr(part)[0] for part in rows]).astype(np.float32)


def _matching_fields(
    evaluation: dict[str, Any], name: str, output_dir: Path, span: np.ndarray | None
) -> dict[str, Any]:
    """The card's ``transform`` (file written here) and ``calibration`` entries, from the evaluation."""
    fields: dict[str, Any] = {}
    mean = (evaluation.get("matching_fit") or {}).get("mean")
    if mean is not None:
        transform = MatchingTransform(np.asarray(mean, dtype=np.float32), span)
        transform.save(output_dir / f"{name}{_TRANSFORM_SUFFIX}")
        fields["transform"] = f"{name}{_TRANSFORM_SUFFIX}"
    calibration = evaluation.get("calibration")
    if calibration is not None:
        fields["calibration"] = {"slope": calibration["slope"], "intercept": calibration["intercept"]}
    windows = evaluation.get("windows") or {}
    if windows.get("frames"):
        fields["windows"] = {"frames": windows["frames"], "stride": windows["stride"]}
    ranking = evaluation.get("ranking_windows") or {}
    if ranking.get("frames"):
        fields["ranking_windows"] = {key: ranking[key] for key in ("frames", "stride", "longer_than")}
    return fields


def publish(
    checkpoint: Path,
    arch: str,
    name: str,
    version: str,
    evaluation_json: Path,
    provenance: Provenance,
    output_dir: Path,
    clips_json: Path | None = None,
) -> Path:
    """Write ``<name>.pt``, ``<name>.yaml``, ``<name>.md`` (and ``<name>.transform.npz`` when the
    evaluation fitted a centring) into ``output_dir``; returns the card path.

    The card matches with the features, transform and calibration the evaluation was measured
    with, since its thresholds come from that evaluation. ``clips_json``, a real-clip protocol
    report of the same weights, goes into the document."""
    evaluation = json.loads(evaluation_json.read_text())
    clips = json.loads(clips_json.read_text()) if clips_json else None
    model, shape = load_model(arch, checkpoint)
    shape = replace(shape, matching=evaluation.get("matching", "embedding"))
    payload = read_checkpoint(checkpoint)
    training = yaml.safe_load(provenance.config.read_text()) if provenance.config.is_file() else {}
    output_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    span = embedding_span(state, shape.matching)
    torch.save({"model": state, "iteration": int(payload.get("iteration", 0))}, output_dir / f"{name}.pt")
    shape_dict = config_to_dict(shape)
    card = {
        "name": name,
        "version": version,
        "arch": arch,
        "weights": f"{name}.pt",
        "metric": "cosine",
        "config": shape_dict,
        "thresholds": {k: round(float(v["threshold"]), 6) for k, v in evaluation["open_set"].items()},
        **_matching_fields(evaluation, name, output_dir, span),
        "description": f"CASIA-B rank-1 NM/BG/CL {evaluation['NM']:.1f}/{evaluation['BG']:.1f}/{evaluation['CL']:.1f}",
        "card": f"{name}.md",
    }
    (output_dir / f"{name}.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    parameters = sum(p.numel() for p in model.parameters())
    document = _document(
        name,
        version,
        arch,
        shape_dict,
        int(payload.get("iteration", 0)),
        evaluation,
        provenance,
        int(training.get("seed", 0)),
        parameters,
        training.get("init_weights"),
        clips,
        span,
    )
    (output_dir / f"{name}.md").write_text(document)
    return output_dir / f"{name}.yaml"
