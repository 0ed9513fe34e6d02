"""Network configurations: what a model card's ``config`` and a checkpoint's shapes describe.

Kept free of torch, so that the registry (``gaitid models list``, the service's start-up checks)
reads model cards without loading the deep-learning stack; :mod:`models.architectures` pairs each
configuration with its network.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from models.errors import ModelError
from models.mapping import dataclass_from_mapping

# "embedding": the part features before the BNNeck, as OpenGait matches. "bnneck": the BNNeck's
# batch-normalised features; centred by the training set's running mean, their cosine scores
# spread over a wider range, which separates open-set decisions better for narrow models.
MATCHING_FEATURES = ("embedding", "bnneck")


def check_matching(matching: str) -> None:
    if matching not in MATCHING_FEATURES:
        raise ModelError(
            f"matching must be one of {', '.join(MATCHING_FEATURES)}, got {matching!r}", code="bad_model_config"
        )


@dataclass(frozen=True)
class GaitBaseConfig:
    """Shape of a GaitBase network; the defaults are OpenGait's CASIA-B configuration."""

    channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    layers: tuple[int, int, int, int] = (1, 1, 1, 1)
    strides: tuple[int, int, int, int] = (1, 2, 2, 1)
    parts: int = 16
    embedding_dim: int = 256
    classes: int = 74
    matching: str = "embedding"  # or "bnneck": see MATCHING_FEATURES

    def __post_init__(self) -> None:
        check_matching(self.matching)


@dataclass(frozen=True)
class DeepGaitV2Config:
    """Shape of a DeepGaitV2 (P3D) network; the defaults are OpenGait's CASIA-B configuration."""

    channels: tuple[int, int, int, int] = (64, 128, 256, 512)
    layers: tuple[int, int, int, int] = (1, 1, 1, 1)
    parts: int = 16
    embedding_dim: int = 256
    classes: int = 74
    matching: str = "embedding"  # or "bnneck": see MATCHING_FEATURES

    def __post_init__(self) -> None:
        check_matching(self.matching)


ArchConfig = GaitBaseConfig | DeepGaitV2Config

CONFIGS: dict[str, type[ArchConfig]] = {"gaitbase": GaitBaseConfig, "deepgaitv2": DeepGaitV2Config}
ARCHITECTURE_NAMES = tuple(CONFIGS)


def config_class(arch: str) -> type[ArchConfig]:
    try:
        return CONFIGS[arch]
    except KeyError:
        raise ModelError(
            f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURE_NAMES)}",
            code="unknown_architecture",
        ) from None


def make_config(arch: str, values: Mapping[str, Any] | None = None) -> ArchConfig:
    """Build an architecture's config from a mapping (lists become tuples); unknown keys are an error."""
    return dataclass_from_mapping(config_class(arch), values, f"{arch} config", "bad_model_config")


def config_to_dict(config: ArchConfig) -> dict[str, Any]:
    """A config as plain YAML/JSON-friendly values."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
