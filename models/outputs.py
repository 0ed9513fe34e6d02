"""The typed result of a gait network's forward pass."""

from typing import NamedTuple

import torch


class GaitOutput(NamedTuple):
    """``embeddings``: ``[B, D, P]`` before the BNNeck (what matching uses); ``logits``: ``[B, classes, P]``."""

    embeddings: torch.Tensor
    logits: torch.Tensor
