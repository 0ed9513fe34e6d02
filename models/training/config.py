"""Training configuration, read from a YAML file (see ``configs/`` in the repository).

A config may start from another with ``base: other.yaml`` (a path beside it): the later stage of
a run then states only what changes (its run folder, seed, schedule, starting weights). Mappings are
merged key by key, at any depth; any other value replaces the parent's. The run folder's copy
(``config.yaml``) is the merged result, complete on its own.
"""

import copy
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from models.configs import ArchConfig, make_config
from models.errors import ModelError, one_line
from models.mapping import dataclass_from_mapping
from models.training.footage import FootageConfig
from models.training.sampling import SamplingConfig

T = TypeVar("T")


@dataclass(frozen=True)
class OptimizerConfig:
    """SGD with momentum and a multi-step learning-rate schedule (the GaitBase recipe)."""

    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] = (20000, 40000, 50000)
    gamma: float = 0.1


@dataclass(frozen=True)
class LossConfig:
    triplet_margin: float = 0.2
    triplet_weight: float = 1.0
    label_smoothing: float = 0.1
    cross_entropy_weight: float = 1.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; ``run_dir`` holds its checkpoints, TensorBoard logs and a config copy."""

    arch: str
    model: ArchConfig
    data_root: Path
    run_dir: Path
    train_subjects: str = "001-074"
    iterations: int = 60000
    seed: int = 0
    amp: str = "none"  # none | bf16 | fp16
    channels_last: bool = False  # NHWC convolutions: with bf16 on a recent GPU about twice the speed
    compile: bool = False  # torch.compile the trained model: faster GPU steps after a minute of compiling
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 1
    threads: int = 0  # torch intra-op threads on CPU; 0 leaves PyTorch's default
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    cache_dir: Path | None = None
    init_weights: Path | None = None  # a later stage starts from an earlier run's weights
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    footage: FootageConfig = field(default_factory=FootageConfig)  # off unless the config turns it on
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    raw: dict[str, Any] = field(default_factory=dict)


def _section(cls: type[T], values: dict[str, Any] | None, name: str) -> T:
    return dataclass_from_mapping(cls, values, f"training config section {name}", "bad_train_config")


def _read(path: Path, children: tuple[Path, ...]) -> dict[str, Any]:
    """The config at ``path`` with its ``base`` chain merged in (``children``: the files extending it)."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"training config {path} is unreadable: {one_line(error)}", code="bad_train_config") from None
    if not isinstance(raw, dict):
        raise ModelError(f"training config {path} must be a mapping", code="bad_train_config")
    parent = raw.pop("base", None)
    if parent is None:
        return raw
    parent_path = path.parent / str(parent)
    if parent_path.resolve() in {p.resolve() for p in (*children, path)}:
        raise ModelError(f"training config {path} is its own base through {parent}", code="bad_train_config")
    return _merge(_read(parent_path, (*children, path)), raw)


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        both_mappings = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = _merge(base[key], value) if both_mappings else value
    return merged


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Parse a YAML training config; relative paths are taken from the current directory."""
    path = Path(path)
    merged = _read(path, ())
    raw = copy.deepcopy(merged)
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        model = raw.pop("model")
        arch = model["arch"]
        data = raw.pop("data")
    except KeyError as error:
        raise ModelError(f"training config {path} lacks {error.args[0]!r}", code="bad_train_config") from None
    sections = {"sampling", "footage", "optimizer", "loss"}
    top = {f.name for f in fields(TrainConfig)} - {"arch", "model", "data_root", "raw"} - sections
    unknown = sorted(set(raw) - top - sections)
    if unknown:
        raise ModelError(f"training config {path}: unknown keys {', '.join(unknown)}", code="bad_train_config")
    if "run_dir" not in raw:
        raise ModelError(f"training config {path} lacks 'run_dir'", code="bad_train_config")
    scalars = {k: v for k, v in raw.items() if k in top}
    for key in ("run_dir", "cache_dir", "init_weights"):
        if scalars.get(key) is not None:
            scalars[key] = Path(scalars[key])
    return TrainConfig(
        arch=arch,
        model=make_config(arch, model.get("config")),
        data_root=Path(data["root"]),
        train_subjects=str(data.get("train_subjects", "001-074")),
        sampling=_section(SamplingConfig, raw.get("sampling"), "sampling"),
        footage=_section(FootageConfig, raw.get("footage"), "footage"),
        optimizer=_section(OptimizerConfig, raw.get("optimizer"), "optimizer"),
        loss=_section(LossConfig, raw.get("loss"), "loss"),
        raw=merged,
        **scalars,
    )
