"""The models package's refusals of unusable inputs: each a :class:`ModelError` with its own code and
a one-line message, raised before any weights are loaded or data embedded."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.configs import check_matching
from models.data.casia_b import SilhouetteDataset
from models.embedder import TorchEmbedder
from models.errors import ModelError
from models.evaluation.clips import load_protocol, matching_from_report
from models.evaluation.runner import evaluate_partition
from models.loading import create_embedder
from models.matching import MatchingTransform, fit_calibration


def _refused(code: str, call, *args, **kwargs) -> str:
    with pytest.raises(ModelError) as refused:
        call(*args, **kwargs)
    assert refused.value.code == code, refused.value
    message = str(refused.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def test_an_onnx_file_needs_the_onnx_backend(tmp_path: Path):
    weights = tmp_path / "model.onnx"
    weights.write_bytes(b"not read: the suffix decides first")
    assert "--backend onnx" in _refused("backend_mismatch", create_embedder, "gaitbase", weights, backend="torch")


def test_calibration_needs_both_kinds_of_pairs():
    similarity = np.array([0.9, 0.8, 0.7])
    _refused("bad_calibration", fit_calibration, similarity, np.ones(3))
    _refused("bad_calibration", fit_calibration, similarity, np.zeros(3))
    calibration = fit_calibration(np.array([0.9, 0.8, 0.1, 0.2]), np.array([1, 1, 0, 0]))
    assert calibration.confidence(0.9) > 0.5 > calibration.confidence(0.1)  # with both, it fits


def test_unreadable_matching_transform_and_unknown_matching_features(tmp_path: Path):
    _refused("bad_model_card", MatchingTransform.load, tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", not_mean=np.zeros((256, 16)))
    assert "mean" in _refused("bad_model_card", MatchingTransform.load, tmp_path / "other.npz")
    assert "nope" in _refused("bad_model_config", check_matching, "nope")


def test_a_folder_that_is_no_dataset(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    _refused("bad_dataset", SilhouetteDataset, tmp_path / "empty")
    _refused("bad_dataset", SilhouetteDataset, tmp_path / "missing")


def test_unusable_partition_protocol_and_evaluation_files(tmp_path: Path):
    (tmp_path / "partition.json").write_text(json.dumps({"TRAIN_SET": ["001"]}))  # no TEST_SET
    _refused("bad_partition", evaluate_partition, None, tmp_path, tmp_path / "partition.json", ["nm"])
    _refused("bad_partition", evaluate_partition, None, tmp_path, tmp_path / "missing.json", ["nm"])

    (tmp_path / "no_probes.yaml").write_text("enroll:\n  - clip: a.mp4\n")
    (tmp_path / "no_clip.yaml").write_text("enroll:\n  - persons: [J]\nprobes:\n  - clip: b.mp4\n")
    (tmp_path / "broken.yaml").write_text("enroll: [unclosed\n")
    for name in ("no_probes.yaml", "no_clip.yaml", "broken.yaml", "missing.yaml"):
        _refused("bad_protocol", load_protocol, tmp_path / name)

    (tmp_path / "report.json").write_text(json.dumps({"rank1": {"NM": 90.0}}))  # no open_set, no matching
    _refused("bad_evaluation", matching_from_report, tmp_path / "report.json")
    _refused("bad_evaluation", matching_from_report, tmp_path / "missing.json")


def test_unknown_precision_and_missing_cuda_are_refused():
    model = torch.nn.Linear(4, 4)
    assert "fp8" in _refused("bad_precision", TorchEmbedder, model, precision="fp8")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device: the no_cuda refusal needs one without")
    assert "CUDA" in _refused("no_cuda", TorchEmbedder, model, device="cuda")
