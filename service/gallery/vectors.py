"""The stored embedding's shape: ``float32 [256, 16]``, 256 channels for each of 16 horizontal parts.

The gallery vector of an embedding (``models.matching.MatchingTransform.vectors``) is
``256 * 16`` long: one inner product is OpenGait's mean per-part cosine similarity.
"""

EMBEDDING_SHAPE = (256, 16)
CHANNELS, PARTS = EMBEDDING_SHAPE
DIM = CHANNELS * PARTS
