"""The default embedding shape: ``float32 [256, 16]``, 256 channels for each of 16 horizontal parts.

The bundled models (GaitBase and DeepGaitV2 as OpenGait configures them) embed this shape; a
gallery takes its model's own shape from the model card (:func:`service.gallery.servable.served_shape`).
The gallery vector of an embedding (``models.matching.MatchingTransform.vectors``) is
``channels * parts`` long: one inner product is OpenGait's mean per-part cosine similarity.
"""

DEFAULT_EMBEDDING_SHAPE = (256, 16)
CHANNELS, PARTS = DEFAULT_EMBEDDING_SHAPE
DIM = CHANNELS * PARTS
