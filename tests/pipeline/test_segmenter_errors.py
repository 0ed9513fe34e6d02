"""A segmentation model that is missing or is not a model: a typed error with its code, before any frame."""

from pathlib import Path

import pytest

from pipeline.errors import BadOptionError
from pipeline.segment import OnnxSegmenter, OnnxSegmenterConfig, PoseSegmenter, create_segmenter


@pytest.fixture()
def not_a_model(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"this is not a model file\n" * 40)
    return path


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda folder, junk: PoseSegmenter(folder / "missing.tflite"), "segmenter_not_found"),
        (lambda folder, junk: PoseSegmenter(junk), "bad_segmenter"),
        (lambda folder, junk: OnnxSegmenter(OnnxSegmenterConfig(folder / "missing.onnx")), "segmenter_not_found"),
        (lambda folder, junk: OnnxSegmenter(OnnxSegmenterConfig(junk)), "bad_segmenter"),
        (lambda folder, junk: create_segmenter("pose"), "missing_option"),
        (lambda folder, junk: create_segmenter("onnx"), "missing_option"),
        (lambda folder, junk: create_segmenter("magic"), "bad_option"),
    ],
)
def test_unusable_segmentation_models_are_refused_with_their_code(tmp_path, not_a_model, make, code):
    with pytest.raises(BadOptionError) as refused:
        make(tmp_path, not_a_model)
    assert refused.value.code == code, refused.value
    assert "Traceback" not in str(refused.value)
