"""Fuzzing the input readers with mutated real files: the video decoder, ``.npy`` and zip-of-PNG uploads.

Every mutation (bytes flipped, a piece cut out or repeated, the file truncated) must end in a clean
refusal — the reader's own error type, which the API turns into a 4xx — or in a well-formed result:
never another exception, never a hang. ``make test`` runs a fixed, small set of cases
(``GAITID_FUZZ_EXAMPLES``, default 25 per reader, derandomised); ``make fuzz`` runs many more,
drawn anew each time.
"""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.decode import DecodeLimits, VideoSource
from pipeline.errors import PipelineError
from service.errors import ServiceError
from service.silhouette_uploads import read_silhouettes
from tests.conftest import SHARED, mutate, png_zip, shared_path, within

EXAMPLES = int(os.environ.get("GAITID_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="GAITID_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
SEED_VIDEO = SHARED / "videos" / "bad" / "no_person.mp4"  # a real 63 kB H.264 clip


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    return mutate(data, lambda low, high: draw(st.integers(low, high)))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def seed_video() -> bytes:
    return shared_path(str(SEED_VIDEO.relative_to(SHARED))).read_bytes()


def _silhouettes(frames: int = 12) -> np.ndarray:
    sils = np.zeros((frames, 64, 64), np.uint8)
    for t in range(frames):
        sils[t, 8:60, 24 + t % 4 : 40 + t % 4] = 255
    return sils


def _npy_bytes() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, _silhouettes())
    return buffer.getvalue()


def _zip_bytes() -> bytes:
    return png_zip(_silhouettes())


@pytest.mark.slow
@given(data=st.data())
@FUZZ
def test_mutated_videos_decode_or_fail_cleanly(data: st.DataObject, seed_video: bytes, tmp_path: Path) -> None:
    path = _write(tmp_path, "fuzz.mp4", data.draw(mutations(seed_video)))

    def decode() -> None:
        with VideoSource(path, DecodeLimits(max_duration_s=30)) as video:
            for frame in video.frames():
                assert frame.image.ndim == 3 and frame.image.shape[2] == 3 and frame.image.dtype == np.uint8

    try:
        within(300, decode, "decoding a mutated 63 kB clip")  # seconds at most; the deadline only stops a hang
    except PipelineError as error:
        assert str(path.parent) not in str(error) and "Errno" not in str(error)


@given(data=st.data())
@FUZZ
def test_mutated_npy_uploads_load_or_are_refused(data: st.DataObject, tmp_path: Path) -> None:
    _check_upload(_write(tmp_path, "fuzz.npy", data.draw(mutations(_npy_bytes()))), "npy")


@given(data=st.data())
@FUZZ
def test_mutated_png_zips_load_or_are_refused(data: st.DataObject, tmp_path: Path) -> None:
    _check_upload(_write(tmp_path, "fuzz.zip", data.draw(mutations(_zip_bytes()))), "zip")


def _check_upload(path: Path, kind: str) -> None:
    try:
        sils = read_silhouettes(path, kind)  # type: ignore[arg-type]
    except ServiceError as error:
        assert 400 <= error.status < 500 and str(path.parent) not in str(error)
        return
    assert sils.dtype == np.uint8 and sils.ndim == 3 and sils.shape[1:] == (64, 64)
