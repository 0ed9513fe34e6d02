"""Which models the gallery can serve, and the embedding shape it stores for each.

The gallery matches by one inner product of per-part normalised vectors (the mean per-part cosine
after the model's matching transform, :mod:`models.matching`): that is what thresholds and the
calibration are stated on. A model card asking for another metric, or an embedding the compressed
index cannot split into its sub-quantizers, is refused up front (``gaitid models add``, service
start-up) instead of failing at the first enrollment.
"""

from models.errors import ModelError
from models.registry import ModelSpec
from service.gallery.index import IndexConfig


def served_shape(spec: ModelSpec, index_config: IndexConfig | None = None) -> tuple[int, int]:
    """``(channels, parts)`` of the embeddings the gallery stores for ``spec``; a one-line
    :class:`ModelError` when the gallery cannot serve the model."""
    if spec.metric != "cosine":
        raise ModelError(
            f"model {spec.key} asks for the {spec.metric} metric, but the gallery matches by cosine similarity "
            "(what thresholds and calibrations are stated on); evaluate it with `gaitid evaluate`, serve it "
            "with metric: cosine",
            code="model_not_servable",
        )
    channels, parts = spec.embedding_shape
    config = index_config or IndexConfig()
    try:
        length = spec.transform.vector_length((channels, parts))
    except ValueError as error:
        raise ModelError(
            f"model {spec.key} embeds {channels}×{parts}, but {error}: publish the model again with its own transform",
            code="model_not_servable",
        ) from None
    if config.kind != "flat" and length % config.subquantizers(length):
        raise ModelError(
            f"model {spec.key}'s gallery vectors are {length} values long ({channels}×{parts} after its matching "
            f"transform), but the compressed index needs a multiple of {config.subquantizers(length)} "
            "(its sub-quantizers)",
            code="model_not_servable",
        )
    return channels, parts
