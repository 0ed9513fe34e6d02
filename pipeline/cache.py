"""A content-addressed cache of pipeline results for local video files.

The pipeline is the slow part of every request (seconds per second of video on a CPU). The same
file processed with the same settings gives the same tracks, so the result is stored under a key
made of the file's SHA-256 and a digest of the configuration, whose weight files are hashed by
content. Retried uploads, re-enrollments and a second service reading a clip that the CLI
already processed then cost a file hash instead of a pipeline run. Network sources are never
cached (a URL's content can change).
"""

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.decode import VideoInfo, is_network_source
from pipeline.defaults import cache_dir
from pipeline.extract import FrameHook, PipelineConfig, PipelineResult, Progress, StageTimes, extract_tracks
from pipeline.tracks import Track

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: every box of a track, not five samples
# Bumped whenever the same configuration gives different tracks (a new tracker, segmentation
# region, ...), so an upgraded service never serves results of the old pipeline from its cache.
PIPELINE_REVISION = 6  # 3: our ByteTrack, detect every k-th frame, segmentation margin; 4: detected boxes;
# 5: NanoDet on a letterbox of the frame's aspect ratio; 6: groups detected on every frame at any interval


@lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file, remembered while the file's size and modification time stay the same."""
    stat = path.stat()
    return _file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _config_fingerprint(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _config_fingerprint(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return file_digest(value) if value.is_file() else str(value)
    if isinstance(value, tuple | list):
        return [_config_fingerprint(v) for v in value]
    return value


class TrackCache:
    """Pipeline results stored as ``<folder>/<key>.npz`` (silhouettes plus a JSON header)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def key(self, source: str | Path, config: PipelineConfig) -> str | None:
        """The cache key of a local file under ``config``; None for network sources and missing files."""
        if is_network_source(source) or not Path(source).is_file():
            return None
        fingerprint = json.dumps(
            [FORMAT_VERSION, PIPELINE_REVISION, _config_fingerprint(config)], sort_keys=True, default=str
        )
        config_digest = hashlib.sha256(fingerprint.encode()).hexdigest()
        return f"{file_digest(Path(source))[:32]}-{config_digest[:16]}"

    def get(self, key: str, source: str | Path) -> PipelineResult | None:
        path = self.folder / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as stored:
                header = json.loads(bytes(stored["header"]).decode())
                tracks = [
                    Track(**{**meta, "silhouettes": stored[f"track{i}"], "boxes": _boxes(meta["boxes"])})
                    for i, meta in enumerate(header["tracks"])
                ]
        except (OSError, KeyError, ValueError):  # absent, partial or from another version: run the pipeline
            return None
        times = StageTimes(seconds=header["seconds"], frames=header["frames"])
        return PipelineResult(
            str(source), VideoInfo(**header["info"]), tracks, header["frames"], header["truncated"], times
        )

    def put(self, key: str, result: PipelineResult) -> bool:
        """Store atomically: a reader sees the whole entry or none. False when it could not be
        stored (a full disk, a read-only folder): the cache is an optimisation, never a failure."""
        header = {
            "info": dataclasses.asdict(result.info),
            "frames": result.frames,
            "truncated": result.truncated,
            "seconds": result.times.seconds,
            "tracks": [
                {f.name: getattr(t, f.name) for f in dataclasses.fields(t) if f.name != "silhouettes"}
                for t in result.tracks
            ],
        }
        arrays = {f"track{i}": t.silhouettes for i, t in enumerate(result.tracks)}
        partial = self.folder / f"{key}.{os.getpid()}.partial.npz"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            np.savez(partial, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
            partial.replace(self.folder / f"{key}.npz")
        except OSError as error:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            log.warning("pipeline cache: %s not stored (%s)", key, error.strerror or type(error).__name__)
            return False
        return True


def _boxes(raw: list[list[Any]]) -> list[tuple[int, tuple[float, float, float, float]]]:
    return [(int(frame), (box[0], box[1], box[2], box[3])) for frame, box in raw]


def default_cache() -> TrackCache:
    """The cache under ``GAITID_CACHE_DIR`` (default ``./var/cache``), shared by the CLI and the service."""
    return TrackCache(cache_dir() / "tracks")


def extract_cached(
    source: str | Path,
    config: PipelineConfig,
    cache: TrackCache | None,
    progress: Progress | None = None,
    on_frame: FrameHook | None = None,
) -> PipelineResult:
    """:func:`extract_tracks`, answered from ``cache`` when it can be; a frame hook always runs the pipeline."""
    key = cache.key(source, config) if cache else None
    if cache and key and on_frame is None and (hit := cache.get(key, source)) is not None:
        return hit
    result = extract_tracks(source, config, progress=progress, on_frame=on_frame)
    if cache and key:
        cache.put(key, result)
    return result
