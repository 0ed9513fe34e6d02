"""Our GaitBase and DeepGaitV2 reproduce OpenGait's reference outputs on its own checkpoints."""

import json

import numpy as np
import pytest
import torch

from models.checkpoint import load_model
from models.embedder import TorchEmbedder
from models.transform import to_model_input

ARCHS = ["gaitbase", "deepgaitv2"]
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
FIXTURE_LENGTHS = (5, 30, 300)


@pytest.fixture(scope="module", params=ARCHS)
def loaded(request, opengait_dir):
    arch = request.param
    model, _ = load_model(arch, opengait_dir / f"{arch}_random.pt")
    return arch, model


def _forward_one(model, sils_uint8: np.ndarray):
    with torch.inference_mode():
        return model(torch.from_numpy(to_model_input(sils_uint8))[None])


def test_checkpoint_shape_matches_report(loaded, opengait_dir):
    arch, model = loaded
    report = json.loads((opengait_dir / "report.json").read_text())[arch]
    assert sum(p.numel() for p in model.parameters()) == report["params"]
    assert len(model.state_dict()) == report["state_dict_keys"]


def test_embeddings_and_logits_match_opengait(loaded, fixture_array):
    arch, model = loaded
    sils = fixture_array("input_sils_64x64.npy")
    for index in range(2):
        out = _forward_one(model, sils[index])
        np.testing.assert_allclose(
            out.embeddings[0].numpy(), fixture_array(f"{arch}_embeddings.npy")[index], **TOLERANCE
        )
        np.testing.assert_allclose(out.logits[0].numpy(), fixture_array(f"{arch}_logits.npy")[index], **TOLERANCE)


def test_fed_input_equals_our_transform(fixture_array):
    sils = fixture_array("input_sils_64x64.npy")
    fed = np.stack([to_model_input(s) for s in sils])
    assert np.array_equal(fed, fixture_array("input_fed_float32.npy"))


def test_distances_match_opengait(loaded, fixture_array, opengait_dir):
    arch, model = loaded
    sils = fixture_array("input_sils_64x64.npy")
    a, b = (_forward_one(model, sils[i]).embeddings[0].numpy() for i in range(2))  # [256, 16]
    euclidean = np.linalg.norm(a - b, axis=0).mean()
    cosine = 1 - (np.sum(a * b, axis=0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))).mean()
    expected = json.loads((opengait_dir / "report.json").read_text())[arch]["distances_seq0_vs_seq1"]
    assert euclidean == pytest.approx(expected["euc"], rel=1e-4)
    assert cosine == pytest.approx(expected["cos"], rel=1e-3, abs=1e-6)


@pytest.mark.slow
def test_sequence_lengths_5_30_300_match_opengait(loaded, fixture_array):
    arch, model = loaded
    padded = fixture_array("input_sils_lengths.npy")
    expected = fixture_array(f"{arch}_embeddings_lengths.npy")
    for index, frames in enumerate(FIXTURE_LENGTHS):
        out = _forward_one(model, padded[index, :frames])
        np.testing.assert_allclose(out.embeddings[0].numpy(), expected[index], **TOLERANCE)


def test_batched_equals_one_by_one(loaded, fixture_array):
    """Sequences of different lengths in one padded batch give their one-sequence results."""
    arch, model = loaded
    two = fixture_array("input_sils_64x64.npy")
    lengths = fixture_array("input_sils_lengths.npy")
    sequences = [two[0], lengths[0, :5], two[1], lengths[1, :30], two[0][:17]]
    embedder = TorchEmbedder(model, max_padding=1.0)  # force every length into one padded batch
    batched = embedder.embed(sequences)
    embedder.frame_multiple = 32  # the GPU's stable shapes: every batch padded to a multiple of 32 frames
    bucketed = embedder.embed(sequences)
    for index, sils in enumerate(sequences):
        single = _forward_one(model, sils).embeddings[0].numpy()
        assert np.abs(batched[index] - single).max() <= 1e-5, f"{arch} sequence {index}"
        assert np.abs(bucketed[index] - single).max() <= 1e-5, f"{arch} sequence {index}, padded to 32 frames"
    # and the references, for the sequences that have one
    np.testing.assert_allclose(batched[0], fixture_array(f"{arch}_embeddings.npy")[0], **TOLERANCE)
    np.testing.assert_allclose(batched[1], fixture_array(f"{arch}_embeddings_lengths.npy")[0], **TOLERANCE)
    np.testing.assert_allclose(batched[3], fixture_array(f"{arch}_embeddings_lengths.npy")[1], **TOLERANCE)


def test_module_prefix_is_accepted(tmp_path, opengait_dir, fixture_array):
    """Checkpoints saved from DataParallel/DDP models (``module.`` prefix) load the same."""
    payload = torch.load(opengait_dir / "gaitbase_random.pt", weights_only=True)
    payload["model"] = {f"module.{k}": v for k, v in payload["model"].items()}
    torch.save(payload, tmp_path / "ddp.pt")
    model, _ = load_model("gaitbase", tmp_path / "ddp.pt")
    out = _forward_one(model, fixture_array("input_sils_64x64.npy")[0])
    np.testing.assert_allclose(out.embeddings[0].numpy(), fixture_array("gaitbase_embeddings.npy")[0], **TOLERANCE)


def test_any_bnneck_class_count_and_width_loads(tmp_path):
    """A narrower network with another class count loads from its own checkpoint, shape inferred."""
    from models.architectures import build_model
    from models.checkpoint import save_checkpoint
    from models.configs import make_config

    config = make_config("gaitbase", {"channels": [16, 32, 64, 128], "classes": 5})
    save_checkpoint(tmp_path / "narrow.pt", build_model("gaitbase", config))
    model, shape = load_model("gaitbase", tmp_path / "narrow.pt")
    assert shape.channels == (16, 32, 64, 128) and shape.classes == 5
    out = _forward_one(model, (np.random.default_rng(0).random((8, 64, 64)) > 0.5).astype(np.uint8) * 255)
    assert out.embeddings.shape == (1, 256, 16) and out.logits.shape == (1, 5, 16)
