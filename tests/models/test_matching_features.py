"""Which features matching uses: OpenGait's pre-BNNeck embedding by default, or the BNNeck's features."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.architectures import build_model
from models.configs import make_config
from models.embedder import OnnxEmbedder, TorchEmbedder
from models.errors import ModelError
from models.onnx_export import export_onnx
from tests.conftest import walking_blob

SMALL = {"channels": [8, 16, 32, 32], "classes": 5}


@pytest.fixture(scope="module", name="walking_blob")
def walking_blob_fixture() -> np.ndarray:
    return walking_blob(frames=12, seed=3, dropout=0.05)


def _trained_like(arch: str, matching: str) -> torch.nn.Module:
    """A small network whose BNNeck statistics are not the identity (as after training)."""
    torch.manual_seed(0)
    model = build_model(arch, make_config(arch, {**SMALL, "matching": matching}))
    neck = model.BNNecks.bn1d
    neck.running_mean.normal_(0, 0.5)
    neck.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.mark.parametrize("arch", ["gaitbase", "deepgaitv2"])
def test_bnneck_features_are_the_normalised_neck_output(arch, walking_blob):
    plain, neck = _trained_like(arch, "embedding"), _trained_like(arch, "bnneck")
    neck.load_state_dict(plain.state_dict())
    sils = torch.from_numpy(walking_blob[:, :, 10:54].astype(np.float32) / 255)[None]
    with torch.inference_mode():
        out_plain, out_neck = plain(sils), neck(sils)
    assert torch.equal(out_plain.features, out_plain.embeddings)
    assert torch.equal(out_neck.embeddings, out_plain.embeddings)  # training sees the same embedding
    assert not torch.allclose(out_neck.features, out_neck.embeddings)
    norms = out_neck.features.norm(dim=1)  # [B, P]: each part is a unit vector
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_onnx_export_outputs_the_configured_features(walking_blob, tmp_path):
    model = _trained_like("gaitbase", "bnneck")
    path = export_onnx(model, tmp_path / "neck.onnx")
    from_onnx = OnnxEmbedder(path).embed([walking_blob])
    from_torch = TorchEmbedder(model).embed([walking_blob])
    assert np.abs(from_onnx - from_torch).max() <= 1e-4
    assert np.allclose(np.linalg.norm(from_onnx[0], axis=0), 1.0, atol=1e-4)


def test_unknown_matching_is_refused():
    with pytest.raises(ModelError, match="matching must be one of embedding, bnneck"):
        make_config("gaitbase", {"matching": "cosine"})
    assert replace(make_config("deepgaitv2"), matching="bnneck").matching == "bnneck"
