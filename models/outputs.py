"""The typed result of a gait network's forward pass, and which features matching uses."""

from typing import NamedTuple

import torch
from torch import nn


class GaitOutput(NamedTuple):
    """``embeddings``: ``[B, D, P]`` before the BNNeck (the triplet loss uses them); ``logits``:
    ``[B, classes, P]``; ``features``: ``[B, D, P]`` what matching uses (see ``MATCHING_FEATURES``)."""

    embeddings: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor


def neck_output(embeddings: torch.Tensor, necks: nn.Module, matching: str) -> GaitOutput:
    """Run the BNNeck on the part embeddings and pick the matching features."""
    neck_features, logits = necks(embeddings)
    return GaitOutput(embeddings, logits, neck_features if matching == "bnneck" else embeddings)
