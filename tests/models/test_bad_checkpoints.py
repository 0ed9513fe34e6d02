"""Bad model files give one clear line and exit status 2: no traceback, never code execution."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import run_cli


class _RunsCode:
    """Unpickling this would create a marker file: a stand-in for a malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _embed(checkpoint: Path, arch: str, tmp_path: Path):
    sils = tmp_path / "sils.npy"
    np.save(sils, (np.random.default_rng(0).random((2, 8, 64, 64)) > 0.5).astype(np.uint8) * 255)
    return run_cli(
        "embed",
        "--arch",
        arch,
        "--checkpoint",
        str(checkpoint),
        "--input",
        str(sils),
        "--output",
        str(tmp_path / "out.npy"),
        env={"GAITID_CACHE_DIR": str(tmp_path / "cache")},
    )


def _assert_one_line_error(result, code: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gaitid: error [{code}]: "), lines[0]
    return lines[0]


def test_deepgaitv2_checkpoint_loaded_as_gaitbase(opengait_dir, tmp_path):
    line = _assert_one_line_error(
        _embed(opengait_dir / "deepgaitv2_random.pt", "gaitbase", tmp_path), "checkpoint_mismatch"
    )
    assert "missing keys" in line and "unexpected keys" in line and "Backbone.forward_block" in line


def test_misshaped_keys_are_listed(opengait_dir, tmp_path):
    payload = torch.load(opengait_dir / "gaitbase_random.pt", weights_only=True)
    payload["model"]["FCs.fc_bin"] = torch.zeros(16, 256, 256)  # wrong input width for the backbone
    torch.save(payload, tmp_path / "misshaped.pt")
    line = _assert_one_line_error(_embed(tmp_path / "misshaped.pt", "gaitbase", tmp_path), "checkpoint_mismatch")
    assert "mis-shaped keys (FCs.fc_bin" in line


def test_truncated_file(opengait_dir, tmp_path):
    data = (opengait_dir / "gaitbase_random.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    _assert_one_line_error(_embed(tmp_path / "truncated.pt", "gaitbase", tmp_path), "unreadable_checkpoint")


@pytest.mark.parametrize("content", [[1, 2, 3], {"weights": "none"}, {"model": {"a": 1}}])
def test_pickle_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "not_a_checkpoint.pt"
    torch.save(content, path)
    _assert_one_line_error(_embed(path, "gaitbase", tmp_path), "not_a_checkpoint")


def test_plain_pickle_file_is_refused(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"model": "x"}, protocol=pickle.HIGHEST_PROTOCOL))
    _assert_one_line_error(_embed(path, "gaitbase", tmp_path), "not_a_checkpoint")


@pytest.mark.parametrize(
    "write",
    [
        lambda path, payload: torch.save({"model": payload}, path),  # a torch checkpoint carrying code
        lambda path, payload: path.write_bytes(pickle.dumps(payload, protocol=2)),  # a plain pickle
    ],
    ids=["torch-save", "plain-pickle"],
)
def test_code_executing_pickle_is_refused_not_run(tmp_path, write):
    marker = tmp_path / "code_was_executed"
    path = tmp_path / "evil.pt"
    write(path, _RunsCode(marker))
    assert not marker.exists()
    line = _assert_one_line_error(_embed(path, "gaitbase", tmp_path), "unsafe_checkpoint")
    assert "Unsupported global" in line
    assert not marker.exists(), "unpickling executed code"


def test_missing_and_empty_files(tmp_path):
    _assert_one_line_error(_embed(tmp_path / "nope.pt", "gaitbase", tmp_path), "checkpoint_not_found")
    (tmp_path / "empty.pt").write_bytes(b"")
    _assert_one_line_error(_embed(tmp_path / "empty.pt", "gaitbase", tmp_path), "unreadable_checkpoint")


def test_bad_onnx_file(tmp_path, opengait_dir):
    shutil.copy(opengait_dir / "report.json", tmp_path / "model.onnx")
    sils = tmp_path / "sils.npy"
    np.save(sils, np.full((8, 64, 64), 255, dtype=np.uint8))
    result = run_cli(
        "embed",
        "--arch",
        "gaitbase",
        "--checkpoint",
        str(tmp_path / "model.onnx"),
        "--backend",
        "onnx",
        "--input",
        str(sils),
        "--output",
        str(tmp_path / "out.npy"),
    )
    _assert_one_line_error(result, "bad_onnx")
