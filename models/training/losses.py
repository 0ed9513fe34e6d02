"""The GaitBase training losses, computed part by part and averaged.

* Triplet loss (batch-all, margin 0.2) on the embeddings: for every anchor, every positive of
  its subject and every negative of another, ``max(0, d(a,p) - d(a,n) + margin)`` with Euclidean
  distances per part; the loss is the sum over triplets divided by the number of non-zero
  triplets, so easy triplets do not dilute it as training progresses.
* Cross-entropy with label smoothing on the BNNeck's cosine logits, scaled by 16 (cosine
  logits lie in [-1, 1], too flat for softmax without a scale).
"""

import torch
import torch.nn.functional as functional

COSINE_LOGIT_SCALE = 16.0


def triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """``embeddings`` ``[B, D, P]``, ``labels`` ``[B]`` → scalar batch-all triplet loss over parts."""
    parts = embeddings.float().permute(2, 0, 1)  # [P, B, D]
    distances = torch.cdist(parts, parts)  # [P, B, B]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    negative = ~same
    valid = positive[:, :, None] & negative[:, None, :]  # [B(a), B(p), B(n)]
    losses = functional.relu(distances[:, :, :, None] - distances[:, :, None, :] + margin)  # [P, a, p, n]
    losses = losses * valid[None]
    nonzero = (losses > 0).sum()
    return losses.sum() / nonzero.clamp(min=1)


def part_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """``logits`` ``[B, classes, P]`` → cross-entropy averaged over batch and parts."""
    per_part = logits.float().permute(0, 2, 1).reshape(-1, logits.shape[1]) * COSINE_LOGIT_SCALE
    targets = labels.repeat_interleave(logits.shape[2])
    return functional.cross_entropy(per_part, targets, label_smoothing=label_smoothing)
