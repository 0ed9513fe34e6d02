"""The pipeline loop: decode → detect + track → segment → normalize, one frame at a time.

Per-stage wall time is measured on every frame, so ``gaitid bench pipeline`` and the service's
metrics report the same numbers.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from pipeline import defaults
from pipeline.decode import DecodeLimits, Frame, VideoInfo, VideoSource
from pipeline.detect import Detection, DetectorConfig, PersonTracker
from pipeline.quality import QualityConfig, frame_problem, mask_problem, track_verdict
from pipeline.segment import OnnxSegmenterConfig, create_segmenter
from pipeline.tracks import Track, TrackBuilder, stitch_fragments

STAGES = ("decode", "detect_track", "segment", "normalize")


@dataclass(frozen=True)
class PipelineConfig:
    detector: DetectorConfig
    segmenter: str = defaults.SEGMENTER
    onnx_segmenter: OnnxSegmenterConfig | None = None
    pose_model: Path | None = None
    quality: QualityConfig = field(default_factory=QualityConfig)
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    rotate: int = 0
    # The segmenter sees the box grown by this share of its height on each side (half that above and
    # below): detector boxes hug the body, and a stride's feet and arms or the top of the head reach
    # past them; a silhouette cut at the box edge loses exactly the shape gait recognition reads.
    segment_margin: float = 0.1


def make_pipeline_config(
    *,
    detector_weights: Path | None = None,
    segmenter: str = defaults.SEGMENTER,
    segmenter_model: Path | None = None,
    person_classes: tuple[int, ...] | None = None,
    image_size: int = defaults.DETECTOR_IMAGE_SIZE,
    confidence: float = defaults.DETECTOR_CONFIDENCE,
    tracker: str = defaults.TRACKER,
    device: str = defaults.DETECTOR_DEVICE,
    detect_every: int = defaults.DETECT_EVERY,
    min_good_frames: int = defaults.MIN_GOOD_FRAMES,
    max_duration_s: float = defaults.MAX_DURATION_S,
    frame_stride: int = defaults.FRAME_STRIDE,
    rotate: int = 0,
) -> PipelineConfig:
    """The configuration for the flat settings a user gives, the service's and the command line's alike.

    The one place that turns them into the nested configuration, so that the same values run the
    same pipeline wherever they come from. ``detector_weights`` defaults to ``GAITID_DETECTOR_WEIGHTS``
    or the fetched NanoDet file; ``segmenter_model`` is the pose model for ``pose`` (default
    ``GAITID_POSE_MODEL`` or the fetched one) and the model file for ``onnx``; the other segmenters
    need none.
    """
    return PipelineConfig(
        detector=DetectorConfig(
            weights=detector_weights or defaults.detector_weights(),
            person_classes=person_classes,
            image_size=image_size,
            confidence=confidence,
            tracker=tracker,
            device=device,
            detect_every=detect_every,
        ),
        segmenter=segmenter,
        onnx_segmenter=OnnxSegmenterConfig(segmenter_model) if segmenter == "onnx" and segmenter_model else None,
        pose_model=(segmenter_model or defaults.pose_model()) if segmenter == "pose" else None,
        quality=QualityConfig(min_good_frames=min_good_frames),
        limits=DecodeLimits(max_duration_s=max_duration_s, frame_stride=frame_stride),
        rotate=rotate,
    )


@dataclass
class StageTimes:
    """Seconds spent per stage and frames processed."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    frames: int = 0

    def add(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] += now - since
        return now


@dataclass(frozen=True)
class PipelineResult:
    source: str
    info: VideoInfo
    tracks: list[Track]
    frames: int
    truncated: bool
    times: StageTimes

    @property
    def kept(self) -> list[Track]:
        return [t for t in self.tracks if t.kept]


FrameHook = Callable[[Frame, list[Detection]], None]
Progress = Callable[[int, int | None], None]


def finish_track(builder: TrackBuilder, quality: QualityConfig) -> Track:
    """The track a builder has accumulated, kept or rejected by the quality gate."""
    kept, reason = track_verdict(len(builder.silhouettes), builder.problems, quality)
    sils = np.stack(builder.silhouettes) if builder.silhouettes else np.zeros((0, 64, 64), np.uint8)
    return Track(
        track_id=builder.track_id,
        kept=kept,
        reason=reason,
        first_frame=builder.first_frame,
        last_frame=builder.last_frame,
        start_s=builder.first_time_s,
        end_s=builder.last_time_s,
        seen_frames=builder.seen_frames,
        silhouettes=sils,
        frame_ids=list(builder.frame_ids),
        boxes=list(builder.boxes),
        problems=dict(builder.problems),
    )


def finish_tracks(builders: list[TrackBuilder], quality: QualityConfig) -> list[Track]:
    return [finish_track(builder, quality) for builder in stitch_fragments(builders)]


class FrameProcessor:
    """Detection, tracking, segmentation and normalization one frame at a time: the state of one video.

    ``extract_tracks`` drives it over a file; the stream runner drives it over a live source and
    takes finished tracks out of ``builders`` as people leave, so memory stays bounded.
    """

    def __init__(self, config: PipelineConfig, times: StageTimes | None = None) -> None:
        self.config = config
        self.times = times or StageTimes()
        self.tracker = PersonTracker(config.detector)
        self.segmenter = create_segmenter(config.segmenter, config.onnx_segmenter, config.pose_model)
        self.builders: dict[int, TrackBuilder] = {}

    def process(self, frame: Frame) -> list[Detection]:
        """Add one frame's good silhouettes to their tracks; returns the frame's tracked people."""
        times, quality = self.times, self.config.quality
        started = time.perf_counter()
        detections = self.tracker.update(frame.image)
        started = times.add("detect_track", started)
        self.segmenter.observe(frame.image)
        started = times.add("segment", started)
        for detection in detections:
            builder = self.builders.get(detection.track_id)
            if builder is None:
                builder = self.builders[detection.track_id] = TrackBuilder(
                    detection.track_id, frame.index, frame.time_s
                )
            builder.saw(frame.index, frame.time_s, detection.box)
            others = [d for d in detections if d.track_id != detection.track_id]
            problem = frame_problem(detection, others, frame.image.shape, quality)
            if problem is None:
                mask = self.segmenter.segment(frame.image, self._region(detection, frame.image.shape))
                problem = mask_problem(mask, quality)
            started = times.add("segment", started)
            if problem is not None:
                builder.problems[problem] += 1
                continue
            assert mask is not None
            builder.add_mask(frame.index, mask)
            started = times.add("normalize", started)
        times.frames += 1
        return detections

    def _region(self, detection: Detection, shape: tuple[int, ...]) -> Detection:
        """The detection with its box grown by ``segment_margin``, clipped to the frame."""
        x1, y1, x2, y2 = detection.box
        grow = self.config.segment_margin * (y2 - y1)
        height, width = shape[:2]
        box = (
            max(0.0, x1 - grow),
            max(0.0, y1 - grow / 2),
            min(float(width), x2 + grow),
            min(float(height), y2 + grow / 2),
        )
        return replace(detection, box=box)

    def finish(self) -> list[Track]:
        """Every track so far, fragments stitched, each kept or rejected with a reason."""
        return finish_tracks(list(self.builders.values()), self.config.quality)


def extract_tracks(
    source: str | Path,
    config: PipelineConfig,
    progress: Progress | None = None,
    on_frame: FrameHook | None = None,
) -> PipelineResult:
    """Run the whole pipeline on one video; every track comes back, kept or rejected with a reason."""
    times = StageTimes()
    with VideoSource(source, config.limits, config.rotate) as video:
        processor = FrameProcessor(config, times)
        started = time.perf_counter()
        for frame in video.frames():
            times.add("decode", started)
            detections = processor.process(frame)
            if on_frame:
                on_frame(frame, detections)
            if progress:
                progress(frame.index + 1, video.info.frames)
            started = time.perf_counter()
        return PipelineResult(str(source), video.info, processor.finish(), times.frames, video.truncated, times)
