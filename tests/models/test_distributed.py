"""Multi-process training under torchrun (DistributedDataParallel over gloo on the CPU).

The GPU path is the same code with NCCL; here two CPU processes show that gradients are really
averaged across ranks and that only rank 0 reports and writes checkpoints.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.checkpoint import read_checkpoint, state_dict_of
from tests.conftest import REPO, shared_path

ITERATIONS = 4


def _config(tmp_path: Path, name: str) -> Path:
    """The smoke config, shortened, single-threaded (so results are bitwise comparable), in its own run folder."""
    text = (REPO / "configs" / "smoke_cpu.yaml").read_text()
    text = text.replace("run_dir: var/runs/smoke", f"run_dir: {tmp_path / name}")
    text = text.replace("iterations: 40", f"iterations: {ITERATIONS}").replace(
        "checkpoint_every: 20", "checkpoint_every: 2"
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(text + "threads: 1\nlog_every: 2\n")
    return path


def _train(command: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*command, "-m", "service.cli", "train", "--config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return state_dict_of(read_checkpoint(run / "checkpoints" / f"gaitbase-{ITERATIONS:06d}.pt"), str(run))


@pytest.mark.slow
def test_two_ranks_average_their_gradients(tmp_path: Path):
    shared_path("data/casia-b", "sil")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    distributed = _train(torchrun, _config(tmp_path, "ddp"))
    _train([sys.executable], _config(tmp_path, "single"))

    assert distributed.stderr.count(f"iter {ITERATIONS}/{ITERATIONS}") == 1, "rank 1 must not report"
    assert distributed.stderr.count("loaded ") == 1
    saved = sorted(p.name for p in (tmp_path / "ddp" / "checkpoints").glob("*.pt"))
    assert saved == ["gaitbase-000002.pt", "gaitbase-000004.pt"]

    # rank 0 draws exactly the single process's batches, so only rank 1's averaged-in gradients can
    # make the weights differ: equal weights would mean the ranks trained apart
    ddp, alone = _weights(tmp_path / "ddp"), _weights(tmp_path / "single")
    assert all(torch.isfinite(v).all() for v in ddp.values() if v.is_floating_point())
    same = [name for name, value in alone.items() if value.is_floating_point() and torch.equal(value, ddp[name])]
    assert not same, f"unchanged by rank 1's gradients: {same}"
