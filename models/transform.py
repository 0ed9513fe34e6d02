"""The model input transform of the silhouette-sequence contract.

OpenGait's evaluation transform cuts ``int(W // 64) * 10`` columns from each side of a
``[N, 64, W]`` silhouette (64×64 → 64×44) and divides by 255.
"""

import numpy as np

from models.errors import InputShapeError

SIL_HEIGHT = 64


def side_cut(width: int) -> int:
    """Columns removed from each side of a silhouette of this width."""
    return int(width // 64) * 10


def validate_sequence(sils: np.ndarray, min_frames: int = 1) -> None:
    """Raise :class:`InputShapeError` unless ``sils`` is uint8 ``[N, 64, W]`` with enough frames."""
    if sils.dtype != np.uint8:
        raise InputShapeError(f"silhouettes must be uint8 0..255, got {sils.dtype}")
    if sils.ndim != 3 or sils.shape[1] != SIL_HEIGHT or sils.shape[2] < 2 * side_cut(sils.shape[2]) + 1:
        raise InputShapeError(f"a silhouette sequence must be [N, 64, W] (W ≥ 64), got {list(sils.shape)}")
    if sils.shape[0] < min_frames:
        raise InputShapeError(f"a silhouette sequence needs at least {min_frames} frames, got {sils.shape[0]}")


def to_model_input(sils: np.ndarray) -> np.ndarray:
    """uint8 ``[N, 64, W]`` → float32 ``[N, 64, W - 2*cut]`` in 0..1."""
    validate_sequence(sils)
    return crop_and_scale(sils)


def crop_and_scale(sils: np.ndarray) -> np.ndarray:
    """The transform on any uint8 array whose last two axes are ``64 × W`` (a padded batch too)."""
    width = sils.shape[-1]
    cut = side_cut(width)
    return sils[..., cut : width - cut].astype(np.float32) / np.float32(255.0)
