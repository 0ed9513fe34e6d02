"""CUDA paths: torch autocast fp16/bf16 and ONNX Runtime's CUDA provider. Skipped without a GPU."""

import numpy as np
import pytest
import torch

from models.checkpoint import load_model
from models.embedder import OnnxEmbedder, TorchEmbedder
from models.onnx_export import export_onnx

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


@pytest.mark.parametrize("arch", ["gaitbase", "deepgaitv2"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_torch_cuda_matches_reference(arch, precision, opengait_dir, fixture_array):
    model, _ = load_model(arch, opengait_dir / f"{arch}_random.pt")
    embedder = TorchEmbedder(model, device="cuda", precision=precision)
    got = embedder.embed(list(fixture_array("input_sils_64x64.npy")))
    reference = fixture_array(f"{arch}_embeddings.npy")
    # Half precision keeps ~3 significant digits; fp32 on CUDA (TF32 off by default for convs) is close.
    tolerance = {"fp32": 1e-3, "fp16": 2e-2, "bf16": 1e-1}[precision]
    assert np.abs(got - reference).max() <= tolerance * np.abs(reference).max()


def test_onnxruntime_cuda_matches_reference(opengait_dir, fixture_array, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDAExecutionProvider (install the gpu extra)")
    model, _ = load_model("gaitbase", opengait_dir / "gaitbase_random.pt")
    path = export_onnx(model, tmp_path / "gaitbase.onnx")
    embedder = OnnxEmbedder(path, device="cuda")
    assert embedder.provider == "CUDAExecutionProvider"
    got = embedder.embed(list(fixture_array("input_sils_64x64.npy")))
    np.testing.assert_allclose(got, fixture_array("gaitbase_embeddings.npy"), rtol=1e-3, atol=1e-3)


def test_compiled_channels_last_training_on_cuda_trains_like_the_plain_loop(tmp_path):
    """The GPU stages' speed options (channels_last, compile) on CUDA: one step as the plain loop."""
    from dataclasses import replace

    from models.training.config import load_train_config
    from tests.conftest import REPO, SHARED, shared_path
    from tests.models.test_training import assert_trains_like_the_plain_loop

    shared_path("data/casia-b", "sil")
    config = load_train_config(REPO / "configs" / "smoke_cpu.yaml", {"run_dir": str(tmp_path / "run")})
    config = replace(config, device="cuda", data_root=SHARED / "data" / "casia-b", cache_dir=tmp_path / "cache")
    assert_trains_like_the_plain_loop(config, tmp_path, channels_last=True, compile=True)
