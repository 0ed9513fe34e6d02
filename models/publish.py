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

import torch
import yaml

from models.architectures import config_to_dict
from models.checkpoint import load_model, read_checkpoint

CONDITIONS = ("NM", "BG", "CL")


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
        f"- Evaluated with: `gaitid evaluate --dataset casia-b --subjects {evaluation['subjects']}` "
        f"({evaluation['sequences']} sequences, {evaluation['embedder']}, {evaluation['seconds']:.0f} s).",
        "",
        "## CASIA-B rank-1 (%), identical view excluded",
        "",
    ]
    for metric in evaluation["metrics"]:
        lines += [f"{metric}:", "", *_table(evaluation["metrics"], metric), ""]
    lines += [
        "## Open-set thresholds (the service's `unknown` decision)",
        "",
        "| operating point | similarity ≥ | false accepts | true accepts |",
        "|---|---|---|---|",
    ]
    for point, values in evaluation["open_set"].items():
        lines.append(
            f"| {point} | {values['threshold']:.6f} | {100 * values['far']:.2f}% | {100 * values['tar']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


def publish(
    checkpoint: Path,
    arch: str,
    name: str,
    version: str,
    evaluation_json: Path,
    provenance: Provenance,
    output_dir: Path,
) -> Path:
    """Write ``<name>.pt``, ``<name>.yaml`` and ``<name>.md`` into ``output_dir``; returns the card path.

    The card matches with the features the evaluation was measured with, since its thresholds
    come from that evaluation."""
    evaluation = json.loads(evaluation_json.read_text())
    model, shape = load_model(arch, checkpoint)
    shape = replace(shape, matching=evaluation.get("matching", "embedding"))
    payload = read_checkpoint(checkpoint)
    training = yaml.safe_load(provenance.config.read_text()) if provenance.config.is_file() else {}
    output_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
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
    )
    (output_dir / f"{name}.md").write_text(document)
    return output_dir / f"{name}.yaml"
