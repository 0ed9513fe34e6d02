"""Embeddings as gallery vectors: one inner product equals OpenGait's mean per-part cosine similarity.

An embedding is ``float32 [256, 16]``: 256 channels for each of 16 horizontal parts. OpenGait
matches part by part and averages, so each part's 256-vector is L2-normalised on its own and the
whole vector scaled by ``1/sqrt(16)``: then ``<a, b> = (1/16) * sum_p cos(a_p, b_p)``, the score
in [-1, 1] that FAISS's inner-product search ranks by.
"""

import numpy as np

EMBEDDING_SHAPE = (256, 16)
CHANNELS, PARTS = EMBEDDING_SHAPE
DIM = CHANNELS * PARTS


def gallery_vectors(embeddings: np.ndarray) -> np.ndarray:
    """``[n, 256, 16]`` (or one ``[256, 16]``) float → ``float32 [n, 4096]`` C-contiguous, per-part
    L2-normalised and scaled by ``1/sqrt(16)``.

    Parts are laid out one after another (part-major), so ``vector[p*256:(p+1)*256]`` is part ``p``.
    A part that is all zeros stays zero (it then adds nothing to any score) instead of becoming NaN.
    """
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[1:] != EMBEDDING_SHAPE:
        raise ValueError(f"embeddings must be [n, 256, 16] or [256, 16], got {list(np.shape(embeddings))}")
    parts = x.transpose(0, 2, 1)  # [n, 16, 256]
    norms = np.linalg.norm(parts, axis=2, keepdims=True)
    scaled = parts / (np.maximum(norms, np.finfo(np.float32).tiny) * np.float32(np.sqrt(PARTS)))
    return np.ascontiguousarray(scaled.reshape(len(x), DIM), dtype=np.float32)
