"""The model registry: a model name resolves to architecture, config, weights, metric and thresholds.

A model is described by a *model card* file ``<name>.yaml`` beside its weights. Cards are found
in the bundled folder ``models/weights/`` (models we trained and ship) and in the user's folder
(``GAITID_MODELS_DIR``, default ``./var/models``), where ``gaitid models add`` writes cards for
user-supplied checkpoints. A user card with the same name as a bundled one takes precedence.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from models.configs import ArchConfig, config_to_dict, make_config
from models.errors import ModelError, UnknownModelError, one_line
from models.matching import NO_RANKING_WINDOWS, Calibration, MatchingTransform, RankingWindows, Windowing

BUNDLED_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_USER_DIR = Path("var/models")
Metric = Literal["cosine", "euclidean"]


def user_models_dir() -> Path:
    """Where user model cards live: ``GAITID_MODELS_DIR`` or ``./var/models``."""
    return Path(os.environ.get("GAITID_MODELS_DIR", DEFAULT_USER_DIR))


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load, run and trust a model."""

    name: str
    version: str
    arch: str
    weights: Path
    metric: Metric = "cosine"
    config: ArchConfig | None = None
    # Open-set thresholds, keyed by the false-accept rate they were chosen for (e.g. {"far_1e-2": 0.9}):
    # on the confidence scale when the model has a calibration, else on the similarity; empty for
    # checkpoints nobody evaluated.
    thresholds: dict[str, float] = field(default_factory=dict)
    transform: MatchingTransform = field(default_factory=MatchingTransform)
    calibration: Calibration | None = None
    windowing: Windowing = field(default_factory=Windowing)  # how long walks are embedded
    ranking: RankingWindows = NO_RANKING_WINDOWS  # how long probe walks order the gallery
    description: str = ""
    card: Path | None = None
    origin: Literal["bundled", "user"] = "user"

    @property
    def embedding_shape(self) -> tuple[int, int]:
        """``(channels, parts)`` of one embedding, from the card's config (else the architecture's defaults)."""
        config = self.config or make_config(self.arch)
        return config.embedding_dim, config.parts

    @property
    def key(self) -> str:
        """Name and version: the gallery keeps one index per key."""
        return f"{self.name}@{self.version}"


def _parse_card(path: Path, origin: Literal["bundled", "user"]) -> ModelSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ModelError(f"model card {path} is unreadable: {one_line(error)}", code="bad_model_card") from None
    if not isinstance(raw, dict):
        raise ModelError(f"model card {path} must be a mapping", code="bad_model_card")
    try:
        weights = Path(raw["weights"])
        arch = str(raw["arch"])
    except KeyError as error:
        raise ModelError(f"model card {path} lacks the field {error.args[0]!r}", code="bad_model_card") from None
    metric = raw.get("metric", "cosine")
    if metric not in ("cosine", "euclidean"):
        raise ModelError(f"model card {path}: metric must be cosine or euclidean", code="bad_model_card")
    card_doc = raw.get("card")
    transform = raw.get("transform")
    return ModelSpec(
        name=str(raw.get("name", path.stem)),
        version=str(raw.get("version", "1")),
        arch=arch,
        weights=weights if weights.is_absolute() else path.parent / weights,
        metric=metric,
        config=make_config(arch, raw["config"]) if raw.get("config") else None,
        thresholds={str(k): float(v) for k, v in (raw.get("thresholds") or {}).items()},
        transform=MatchingTransform.load(path.parent / transform) if transform else MatchingTransform(),
        calibration=_calibration(raw.get("calibration"), path),
        windowing=_windowing(raw.get("windows"), path),
        ranking=_ranking(raw.get("ranking_windows"), path),
        description=str(raw.get("description", "")),
        card=(path.parent / card_doc) if card_doc else None,
        origin=origin,
    )


def _calibration(raw: Any, path: Path) -> Calibration | None:
    if raw is None:
        return None
    try:
        calibration = Calibration(float(raw["slope"]), float(raw["intercept"]))
    except (TypeError, KeyError, ValueError):
        raise ModelError(
            f"model card {path}: calibration needs numbers slope and intercept", code="bad_model_card"
        ) from None
    if not calibration.slope > 0:
        raise ModelError(f"model card {path}: calibration slope must be positive", code="bad_model_card")
    return calibration


def _windowing(raw: Any, path: Path) -> Windowing:
    if raw is None:
        return Windowing()
    try:
        return Windowing(int(raw["frames"]), int(raw["stride"]))
    except (TypeError, KeyError, ValueError) as error:
        message = f"model card {path}: windows needs whole numbers frames and stride ({error})"
        raise ModelError(message, code="bad_model_card") from None


def _ranking(raw: Any, path: Path) -> RankingWindows:
    if raw is None:
        return NO_RANKING_WINDOWS
    try:
        return RankingWindows(int(raw["frames"]), int(raw["stride"]), int(raw["longer_than"]))
    except (TypeError, KeyError, ValueError) as error:
        message = f"model card {path}: ranking_windows needs 0 < stride <= frames <= longer_than ({error})"
        raise ModelError(message, code="bad_model_card") from None


def _card_paths(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def list_models() -> list[ModelSpec]:
    """Every model the registry knows, user cards overriding bundled ones of the same name."""
    found: dict[str, ModelSpec] = {}
    for folder, origin in ((BUNDLED_DIR, "bundled"), (user_models_dir(), "user")):
        for path in _card_paths(folder):
            spec = _parse_card(path, origin)  # type: ignore[arg-type]
            found[spec.name] = spec
    return sorted(found.values(), key=lambda s: s.name)


def resolve(name: str) -> ModelSpec:
    """The model called ``name``; an :class:`UnknownModelError` lists what exists instead."""
    models = {spec.name: spec for spec in list_models()}
    if name in models:
        return models[name]
    known = ", ".join(models) or "none (add one with `gaitid models add`)"
    raise UnknownModelError(f"unknown model {name!r}; available: {known}")


def write_user_card(
    name: str,
    arch: str,
    weights: Path,
    version: str = "1",
    metric: Metric = "cosine",
    config: ArchConfig | None = None,
    thresholds: dict[str, float] | None = None,
    description: str = "",
) -> Path:
    """Register a user-supplied checkpoint under ``name`` in the user models folder; ``config`` (the shape
    read off the checkpoint) goes into the card, so the gallery knows the embedding's shape."""
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    card: dict[str, Any] = {
        "name": name,
        "version": version,
        "arch": arch,
        "weights": str(weights.resolve()),
        "metric": metric,
        **({"config": config_to_dict(config)} if config is not None else {}),
        "thresholds": dict(thresholds or {}),
        "description": description,
    }
    path = folder / f"{name}.yaml"
    partial = path.with_name(path.name + ".partial")
    partial.write_text(yaml.safe_dump(card, sort_keys=False))
    partial.replace(path)
    return path
