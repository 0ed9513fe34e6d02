"""ONNX export of a gait network's embedding path.

The graph takes ``sils`` float32 ``[batch, frames, 64, W']`` (the transformed input) and
``lengths`` int64 ``[batch]``, and returns ``embeddings`` float32 ``[batch, D, P]``. Both the
batch and the frame axes are dynamic (frames 5 to 1000), and ``lengths`` lets one call carry
sequences of different lengths with the same result as one-by-one calls.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from models.embedder import MAX_FRAMES, MIN_FRAMES

OPSET = 18


class EmbeddingGraph(nn.Module):
    """The exported computation: mask from lengths, network forward, embeddings only."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, sils: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = torch.arange(sils.shape[1], device=sils.device)[None, :] < lengths[:, None]
        return self.model(sils, mask).features


def export_onnx(model: nn.Module, output: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model``'s embedding graph to ``output`` as one self-contained ONNX file."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    graph = EmbeddingGraph(model).eval()
    width = 44
    example = (torch.rand(2, 30, 64, width), torch.tensor([30, 20]))
    batch = torch.export.Dim("batch", min=1, max=4096)
    frames = torch.export.Dim("frames", min=MIN_FRAMES, max=MAX_FRAMES)
    partial = output.with_name(output.name + ".partial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on axis naming are not actionable
        torch.onnx.export(
            graph,
            example,
            str(partial),
            dynamo=True,
            input_names=["sils", "lengths"],
            output_names=["embeddings"],
            dynamic_shapes={"sils": {0: batch, 1: frames}, "lengths": {0: batch}},
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )
    proto = onnx.load(str(partial))
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(partial))
    partial.replace(output)
    return output


def max_difference_vs_torch(model: nn.Module, onnx_path: str | Path, frames: int = 12, seed: int = 0) -> float:
    """Largest absolute difference of ORT-CPU from torch on a random two-sequence batch (a self-check)."""
    import onnxruntime as ort

    generator = torch.Generator().manual_seed(seed)
    sils = (torch.rand(2, frames, 64, 44, generator=generator) > 0.5).float()
    lengths = torch.tensor([frames, max(MIN_FRAMES, frames // 2)])
    with torch.inference_mode():
        expected = EmbeddingGraph(model).eval()(sils, lengths).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"sils": sils.numpy(), "lengths": lengths.numpy()})
    return float(np.abs(got - expected).max())


def metadata_for(arch: str, config: dict[str, object]) -> dict[str, str]:
    """The metadata stored in an exported file, so it says what it was made from."""
    return {"gaitid.arch": arch, "gaitid.config": json.dumps(config, sort_keys=True)}
