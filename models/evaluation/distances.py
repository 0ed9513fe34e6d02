"""Distances between part embeddings ``[S, D, P]``, as OpenGait computes them.

Both metrics work part by part and average over the parts: Euclidean distance per part, or
``1 - cosine similarity`` per part. The cosine *similarity* (mean per-part cosine) is also what
the service's gallery scores are, so thresholds chosen on it carry over unchanged.
"""

from typing import Literal

import numpy as np
import torch

Metric = Literal["euclidean", "cosine"]


def distance_matrix(probe: np.ndarray, gallery: np.ndarray, metric: Metric) -> np.ndarray:
    """``[Sp, D, P]`` × ``[Sg, D, P]`` → ``[Sp, Sg]`` mean per-part distance (smaller is closer)."""
    x = torch.from_numpy(np.ascontiguousarray(probe, dtype=np.float32)).permute(2, 0, 1)  # [P, Sp, D]
    y = torch.from_numpy(np.ascontiguousarray(gallery, dtype=np.float32)).permute(2, 0, 1)  # [P, Sg, D]
    if metric == "cosine":
        x = torch.nn.functional.normalize(x, dim=2)
        y = torch.nn.functional.normalize(y, dim=2)
        return (1.0 - torch.bmm(x, y.transpose(1, 2))).mean(dim=0).numpy()
    squared = (x * x).sum(2, keepdim=True) + (y * y).sum(2).unsqueeze(1) - 2 * torch.bmm(x, y.transpose(1, 2))
    return torch.sqrt(torch.clamp(squared, min=0.0)).mean(dim=0).numpy()


def cosine_similarity_matrix(probe: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Mean per-part cosine similarity ``[Sp, Sg]`` (larger is closer): the service's score."""
    return 1.0 - distance_matrix(probe, gallery, "cosine")
