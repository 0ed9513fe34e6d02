"""Reading and writing OpenGait-format checkpoints safely.

OpenGait saves ``{"model": state_dict, "optimizer": ..., "scheduler": ..., "iteration": int}``,
with a ``module.`` prefix when the model was wrapped for multi-GPU training. Files are read with
``torch.load(weights_only=True)``, so a file that would run code on unpickling is refused
instead of executed. Every failure becomes a :class:`CheckpointError` with one clear line.
"""

import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.architectures import build_model, infer_config
from models.configs import ArchConfig
from models.errors import CheckpointError

_MODULE_PREFIX = "module."
_LISTED_KEYS = 3


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file as plain tensors and containers, refusing anything executable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file", code="checkpoint_not_found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes about pickle protocols are not the user's problem
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        detail = _unpickler_detail(str(error))
        if "Unsupported global" in detail:
            raise CheckpointError(
                f"checkpoint {path} refused: it references Python code, which unpickling would run [{detail}]",
                code="unsafe_checkpoint",
            ) from None
        raise CheckpointError(
            f"checkpoint {path} is not a checkpoint: a pickle that weights-only loading cannot read [{detail}]",
            code="not_a_checkpoint",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or not a PyTorch file): {reason[:200]}",
            code="unreadable_checkpoint",
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"checkpoint {path} is not a checkpoint: it holds a {type(payload).__name__}, "
            "expected a dict with a 'model' state dict",
            code="not_a_checkpoint",
        )
    return payload


def _unpickler_detail(message: str) -> str:
    """The informative sentence of torch's weights-only refusal (its other lines are advice)."""
    marker = "WeightsUnpickler error:"
    if marker in message:
        detail = message.split(marker, 1)[1].strip().splitlines()[0]
        return detail.split(". Please use")[0][:200]
    return message.strip().splitlines()[0][:200] if message.strip() else "unpickling failed"


def state_dict_of(payload: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """The model state dict of a checkpoint payload, without any ``module.`` prefix.

    Accepts OpenGait's ``{"model": ...}`` and a bare state dict.
    """
    state = payload.get("model", payload)
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"checkpoint {source} is not a checkpoint: no 'model' entry mapping parameter names to tensors",
            code="not_a_checkpoint",
        )
    return {k.removeprefix(_MODULE_PREFIX): v for k, v in state.items()}


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED_KEYS])
    return shown + (f", … +{len(keys) - _LISTED_KEYS} more" if len(keys) > _LISTED_KEYS else "")


def check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], arch: str, source: str) -> None:
    """Raise one line naming missing, unexpected and mis-shaped keys if ``state`` does not fit ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)}≠{tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or misshaped:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys ({_listing(missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys ({_listing(unexpected)})")
        if misshaped:
            problems.append(f"{len(misshaped)} mis-shaped keys ({_listing(misshaped)})")
        raise CheckpointError(
            f"checkpoint {source} does not fit architecture {arch!r}: " + "; ".join(problems),
            code="checkpoint_mismatch",
        )


def load_model(arch: str, path: str | Path, config: ArchConfig | None = None) -> tuple[nn.Module, ArchConfig]:
    """Build ``arch`` shaped like the checkpoint at ``path``, load its weights, return it in eval mode."""
    state = state_dict_of(read_checkpoint(path), str(path))
    shape = infer_config(arch, state, config)
    model = build_model(arch, shape)
    check_fits(model, state, arch, str(path))
    model.load_state_dict(state, strict=True)
    return model.eval(), shape


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: Mapping[str, Any] | None = None,
    scheduler: Mapping[str, Any] | None = None,
    iteration: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write OpenGait's checkpoint format atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "model": model.state_dict(),
        "optimizer": dict(optimizer or {}),
        "scheduler": dict(scheduler or {}),
        "iteration": iteration,
    }
    payload.update(extra or {})
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
