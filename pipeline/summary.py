"""One description of a track, the same in ``tracks.json``, in job results, in 409 answers and in the console.

A typed model (pydantic) so that the service's OpenAPI documents exactly what ``gaitid silhouettes``
writes; kept out of :mod:`pipeline.tracks` so that the tracker itself needs nothing beyond numpy.
"""

from pydantic import BaseModel, Field

from pipeline.tracks import Track


class TrackSummary(BaseModel):
    """Where and how long a person was seen, and whether their walk is good enough to recognise."""

    track_id: int = Field(description="the tracker's number for this person, unique within one video")
    start_s: float = Field(description="first frame showing the person, seconds from the start of the video")
    end_s: float = Field(description="last frame showing the person, seconds from the start of the video")
    good_frames: int = Field(description="frames with a usable silhouette (what the gait model sees)")
    seen_frames: int = Field(description="frames the person was detected in")
    quality: float = Field(ge=0, le=1, description="good_frames / seen_frames")
    usable: bool = Field(description="whether the walk has enough good frames to be embedded")
    reason: str = Field(description="why the track is not usable (empty when it is), e.g. 'too few good frames'")
    box: list[float] | None = Field(
        description="where the person is mid-track: [x1, y1, x2, y2] in pixels of the (rotated) video, "
        "so that tracks can be told apart"
    )

    @classmethod
    def of(cls, track: Track) -> "TrackSummary":
        middle = track.boxes[len(track.boxes) // 2][1] if track.boxes else None
        return cls(
            track_id=track.track_id,
            start_s=round(track.start_s, 3),
            end_s=round(track.end_s, 3),
            good_frames=track.good_frames,
            seen_frames=track.seen_frames,
            quality=round(track.good_frames / track.seen_frames, 3) if track.seen_frames else 0.0,
            usable=track.kept,
            reason=track.reason,
            box=[round(v, 1) for v in middle] if middle else None,
        )
