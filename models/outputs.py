"""The typed result of a gait network's forward pass, and which features matching uses."""

from typing import NamedTuple

import torch
from torch import nn

from models.errors import ModelError

# "embedding": the part features before the BNNeck, as OpenGait matches. "bnneck": the BNNeck's
# batch-normalised features; centred by the training set's running mean, their cosine scores
# spread over a wider range, which separates open-set decisions better for narrow models.
MATCHING_FEATURES = ("embedding", "bnneck")


class GaitOutput(NamedTuple):
    """``embeddings``: ``[B, D, P]`` before the BNNeck (the triplet loss uses them); ``logits``:
    ``[B, classes, P]``; ``features``: ``[B, D, P]`` what matching uses (see ``MATCHING_FEATURES``)."""

    embeddings: torch.Tensor
    logits: torch.Tensor
    features: torch.Tensor


def check_matching(matching: str) -> None:
    if matching not in MATCHING_FEATURES:
        raise ModelError(
            f"matching must be one of {', '.join(MATCHING_FEATURES)}, got {matching!r}", code="bad_model_config"
        )


def neck_output(embeddings: torch.Tensor, necks: nn.Module, matching: str) -> GaitOutput:
    """Run the BNNeck on the part embeddings and pick the matching features."""
    neck_features, logits = necks(embeddings)
    return GaitOutput(embeddings, logits, neck_features if matching == "bnneck" else embeddings)
