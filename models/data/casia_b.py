"""Readers for CASIA-B-style silhouette datasets.

Two layouts are read:

* OpenGait's: ``root/<subject>/<condition>/<view>/*.pkl``, each pickle a uint8 ``[N, 64, 64]``
  array (several pickles in one folder are concatenated along frames, sorted by name). The
  pickles are read with an unpickler that only rebuilds numpy arrays, so a dataset file cannot
  run code.
* The packed copy of ``../shared/data/casia-b``: ``sil/<subject>.npz.xz``, an xz-compressed
  ``.npz`` holding per ``"<condition>/<view>"`` the 64×44 model crop at four grey levels (0, 85,
  170, 255), four pixels per byte, plus ``"<key>#n"`` with the frame count. Frames are restored
  to ``[N, 64, 64]`` with zero side bands.

Decoding the packed files is slow (xz), so decoded subjects are cached as ``.npz`` under the
cache folder and reloaded from there.
"""

import io
import lzma
import pickle
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from models.data.records import SequenceRecord
from models.errors import ModelError

PACKED_LEVEL_STEP = 85
PACKED_CROP = (10, 54)


class DatasetError(ModelError):
    """A dataset folder that is missing or not in a known layout."""

    code = "bad_dataset"


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays and nothing else."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset pickle")
        return super().find_class(module, name)


def read_pickled_sequence(path: Path) -> np.ndarray:
    """One OpenGait ``.pkl`` silhouette file as uint8 ``[N, H, W]``."""
    with path.open("rb") as handle:
        array = _ArrayOnlyUnpickler(handle).load()
    if not isinstance(array, np.ndarray) or array.ndim != 3:
        raise DatasetError(f"{path} does not hold a [N, H, W] silhouette array")
    return array.astype(np.uint8, copy=False)


def decode_packed_subject(path: Path) -> dict[str, np.ndarray]:
    """Decode one packed ``<subject>.npz.xz`` into ``{"nm-01/090": uint8 [N, 64, 64], ...}``."""
    archive = np.load(io.BytesIO(lzma.decompress(path.read_bytes())))
    sequences = {}
    for key in archive.files:
        if key.endswith("#n"):
            continue
        frames = int(archive[key + "#n"][0])
        packed = archive[key]
        levels = np.stack([(packed >> (2 * shift)) & 0x03 for shift in range(4)], axis=-1).reshape(-1)
        left, right = PACKED_CROP
        sils = np.zeros((frames, 64, 64), np.uint8)
        sils[:, :, left:right] = levels[: frames * 64 * (right - left)].reshape(frames, 64, right - left)
        sils *= PACKED_LEVEL_STEP
        sequences[key] = sils
    return sequences


class SilhouetteDataset:
    """A silhouette dataset folder in either layout, read subject by subject."""

    def __init__(self, root: str | Path, cache_dir: str | Path | None = None) -> None:
        self.root = Path(root)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        packed = self.root / "sil"
        if packed.is_dir() and any(packed.glob("*.npz.xz")):
            self.layout = "packed"
            self._subjects = sorted(p.name.split(".")[0] for p in packed.glob("*.npz.xz"))
        elif self.root.is_dir() and any(p.is_dir() for p in self.root.iterdir()):
            self.layout = "opengait"
            self._subjects = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        else:
            raise DatasetError(
                f"{self.root} is not a silhouette dataset: expected sil/<subject>.npz.xz (packed) "
                "or <subject>/<condition>/<view>/*.pkl (OpenGait layout)"
            )

    @property
    def subjects(self) -> list[str]:
        return list(self._subjects)

    def load_subject(self, subject: str) -> list[SequenceRecord]:
        """Every sequence of one subject, sorted by condition then view."""
        if subject not in self._subjects:
            raise DatasetError(f"subject {subject!r} is not in {self.root}")
        sequences = self._cached(subject) if self.layout == "packed" else self._read_opengait(subject)
        records = []
        for key in sorted(sequences):
            condition, view = key.split("/")
            records.append(SequenceRecord(subject, condition, view, sequences[key]))
        return records

    def load(
        self, subjects: Iterable[str], workers: int = 2, progress: Callable[[str], None] | None = None
    ) -> list[SequenceRecord]:
        """Sequences of many subjects, decoded in parallel threads (xz and zlib release the GIL)."""
        records: list[SequenceRecord] = []
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for subject, subject_records in zip(subjects, pool.map(self.load_subject, subjects), strict=True):
                records.extend(subject_records)
                if progress:
                    progress(subject)
        return records

    def _cached(self, subject: str) -> dict[str, np.ndarray]:
        source = self.root / "sil" / f"{subject}.npz.xz"
        if self.cache_dir is None:
            return decode_packed_subject(source)
        cached = self.cache_dir / f"{subject}.npz"
        if cached.is_file() and cached.stat().st_mtime >= source.stat().st_mtime:
            with np.load(cached) as archive:
                return {key.replace("__", "/"): archive[key] for key in archive.files}
        sequences = decode_packed_subject(source)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial.npz")
        np.savez(partial, **{key.replace("/", "__"): value for key, value in sequences.items()})
        partial.replace(cached)
        return sequences

    def _read_opengait(self, subject: str) -> dict[str, np.ndarray]:
        sequences = {}
        for view_dir in sorted(self.root.glob(f"{subject}/*/*")):
            if not view_dir.is_dir():
                continue
            parts = [read_pickled_sequence(p) for p in sorted(view_dir.glob("*.pkl"))]
            if parts:
                sequences[f"{view_dir.parent.name}/{view_dir.name}"] = np.concatenate(parts, axis=0)
        return sequences


def iter_subject_range(subjects: Iterable[str], first: int, last: int) -> Iterator[str]:
    """Subjects whose numeric id lies in ``first..last`` (the CASIA-B split convention)."""
    for subject in subjects:
        if subject.isdigit() and first <= int(subject) <= last:
            yield subject
