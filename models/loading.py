"""From a registry name or a checkpoint path to a ready :class:`~models.embedder.Embedder`."""

import hashlib
import json
from pathlib import Path
from typing import Literal

from torch import nn

from models.checkpoint import load_model
from models.configs import ArchConfig, config_to_dict
from models.embedder import DEFAULT_MAX_BATCH_FRAMES, Embedder, OnnxEmbedder, Precision, TorchEmbedder
from models.errors import ModelError
from models.onnx_export import export_onnx, metadata_for
from pipeline.defaults import cache_dir

Backend = Literal["torch", "onnx"]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def onnx_for_checkpoint(arch: str, checkpoint: Path, model: nn.Module, config: ArchConfig) -> Path:
    """The ONNX export of a checkpoint, made once and cached by the checkpoint's content and the config
    (which decides, for one, the features the export outputs)."""
    described = json.dumps(config_to_dict(config), sort_keys=True)
    key = hashlib.sha256(f"{_file_digest(checkpoint)}:{described}".encode()).hexdigest()[:16]
    target = cache_dir() / "onnx" / f"{arch}-{key}.onnx"
    if not target.exists():
        export_onnx(model, target, metadata_for(arch, config_to_dict(config)))
    return target


def create_embedder(
    arch: str,
    weights: Path,
    backend: Backend = "torch",
    device: str = "cpu",
    precision: Precision = "fp32",
    config: ArchConfig | None = None,
    max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES,
) -> Embedder:
    """An embedder for a weights file: an OpenGait checkpoint, or (onnx backend only) an ONNX file."""
    if weights.suffix == ".onnx":
        if backend != "onnx":
            raise ModelError(f"{weights} is an ONNX file: use --backend onnx", code="backend_mismatch")
        return OnnxEmbedder(weights, device=device, max_batch_frames=max_batch_frames)
    model, shape = load_model(arch, weights, config)
    if backend == "torch":
        return TorchEmbedder(model, device=device, precision=precision, max_batch_frames=max_batch_frames)
    if precision != "fp32":
        raise ModelError("the onnx backend runs fp32 graphs; drop --precision", code="bad_precision")
    onnx_path = onnx_for_checkpoint(arch, weights, model, shape)
    return OnnxEmbedder(onnx_path, device=device, max_batch_frames=max_batch_frames)
