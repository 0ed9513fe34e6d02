"""``gaitid export`` produces one ONNX file that matches torch on the fixtures with ORT on the CPU."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from models.checkpoint import load_model
from models.embedder import OnnxEmbedder
from models.onnx_export import EmbeddingGraph
from models.transform import to_model_input
from service.cli import main

FIXTURE_LENGTHS = (5, 30, 300)


@pytest.fixture(scope="module", params=["gaitbase", "deepgaitv2"])
def exported(request, opengait_dir, tmp_path_factory):
    arch = request.param
    output = tmp_path_factory.mktemp("onnx") / f"{arch}.onnx"
    status = main(
        ["export", "--arch", arch, "--checkpoint", str(opengait_dir / f"{arch}_random.pt"), "--output", str(output)]
    )
    assert status == 0
    return arch, output


def test_one_self_contained_file_with_dynamic_axes(exported):
    arch, path = exported
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no external data files
    graph = onnx.load(str(path)).graph
    sils = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in sils] == [True, True, False, False]  # batch and frames dynamic
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata["gaitid.arch"] == arch


@pytest.mark.slow
def test_onnx_matches_torch_for_5_30_300_frames(exported, opengait_dir, fixture_array):
    arch, path = exported
    model, _ = load_model(arch, opengait_dir / f"{arch}_random.pt")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    padded = fixture_array("input_sils_lengths.npy")
    reference = fixture_array(f"{arch}_embeddings_lengths.npy")
    for index, frames in enumerate(FIXTURE_LENGTHS):
        sils = to_model_input(padded[index, :frames])[None]
        lengths = np.array([frames], dtype=np.int64)
        (got,) = session.run(None, {"sils": sils, "lengths": lengths})
        with torch.inference_mode():
            expected = EmbeddingGraph(model)(torch.from_numpy(sils), torch.from_numpy(lengths)).numpy()
        assert np.abs(got - expected).max() <= 1e-4, f"{arch} {frames} frames"
        np.testing.assert_allclose(got[0], reference[index], rtol=1e-4, atol=1e-4)


def test_onnx_batch_of_mixed_lengths_equals_one_by_one(exported, fixture_array):
    arch, path = exported
    two = fixture_array("input_sils_64x64.npy")
    sequences = [two[0], two[1][:9], two[1]]
    embedder = OnnxEmbedder(path, max_padding=1.0)
    batched = embedder.embed(sequences)
    for index, sils in enumerate(sequences):
        assert np.abs(batched[index] - embedder.embed([sils])[0]).max() <= 1e-5
    np.testing.assert_allclose(batched[0], fixture_array(f"{arch}_embeddings.npy")[0], rtol=1e-4, atol=1e-5)
