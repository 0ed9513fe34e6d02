"""The service's pipeline configuration: its ``GAITID_*`` settings given to the pipeline's one builder.

The command line gives its options to the same builder (``cli_common.pipeline_options``), so an
upload and ``gaitid silhouettes`` with the same values run the same pipeline.
"""

from pipeline.extract import PipelineConfig, make_pipeline_config
from service.settings import Settings


def pipeline_config(settings: Settings) -> PipelineConfig:
    """What every enrollment, identification and stream of this service runs."""
    return make_pipeline_config(
        detector_weights=settings.detector_weights,
        segmenter=settings.segmenter,
        segmenter_model=settings.pose_model,
        image_size=settings.detector_image_size,
        device=settings.detector_device,
        detect_every=settings.detect_every,
        min_good_frames=settings.min_good_frames,
        max_duration_s=settings.max_video_seconds,
    )
