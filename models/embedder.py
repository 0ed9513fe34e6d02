"""Embedders: silhouette sequences in, one ``[D, P]`` embedding per sequence out.

Two backends share the batching logic: torch (CPU or CUDA, fp32 or autocast fp16/bf16) and
ONNX Runtime (CUDA execution provider when present, else CPU). Whatever the batch, each
sequence's embedding equals what a one-sequence forward gives: padded frames are masked
inside the networks (see :mod:`models.layers`).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from models.batching import pad_batch, plan_batches
from models.errors import InputShapeError, ModelError
from models.transform import crop_and_scale, side_cut, validate_sequence

MIN_FRAMES = 5
MAX_FRAMES = 1000
DEFAULT_MAX_BATCH_FRAMES = 2048
CUDA_FRAME_MULTIPLE = 32  # batch lengths on a GPU: multiples of 32 frames

Precision = Literal["fp32", "fp16", "bf16"]
_AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def _masked_lengths(lengths: np.ndarray, frames: int) -> torch.Tensor:
    return torch.arange(frames)[None, :] < torch.from_numpy(lengths)[:, None]


class Embedder(ABC):
    """Turns uint8 silhouette sequences ``[N, 64, W]`` into float32 embeddings ``[S, D, P]``.

    Batches stay uint8 until the backend takes them: a GPU backend moves a quarter of the bytes
    and crops and scales on the device.
    """

    frame_multiple = 1  # padded batch lengths are rounded up to this (stable shapes on a GPU)

    def __init__(self, max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES, max_padding: float = 0.25) -> None:
        self.max_batch_frames = max_batch_frames
        # How much shorter than a batch's longest sequence a member may be (padding is wasted work).
        self.max_padding = max_padding

    @property
    @abstractmethod
    def description(self) -> str:
        """Backend, device and precision, for logs and benchmark tables."""

    @abstractmethod
    def _forward(self, sils: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """uint8 ``[B, T, 64, W]`` (zero-padded, not yet cropped) + int64 ``[B]`` → float32 ``[B, D, P]``."""

    def embed(self, sequences: Sequence[np.ndarray]) -> np.ndarray:
        """Embed every sequence; the result's row ``i`` belongs to ``sequences[i]``."""
        if not sequences:
            raise InputShapeError("no silhouette sequences to embed")
        for index, sils in enumerate(sequences):
            validate_sequence(sils)
            if not MIN_FRAMES <= len(sils) <= MAX_FRAMES:
                raise InputShapeError(
                    f"sequence {index} has {len(sils)} frames; the models take {MIN_FRAMES} to {MAX_FRAMES}"
                )
        result: np.ndarray | None = None
        for batch in plan_batches([len(s) for s in sequences], self.max_batch_frames, self.max_padding):
            padded, lengths = pad_batch([sequences[i] for i in batch], self.frame_multiple)
            out = self._forward(padded, lengths)
            if result is None:
                result = np.empty((len(sequences), *out.shape[1:]), dtype=np.float32)
            result[batch] = out
        assert result is not None
        return result


class TorchEmbedder(Embedder):
    """Runs a loaded gait network with PyTorch."""

    def __init__(
        self,
        model: nn.Module,
        device: str = "cpu",
        precision: Precision = "fp32",
        max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES,
        max_padding: float = 0.25,
    ) -> None:
        super().__init__(max_batch_frames, max_padding)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError("--device cuda asked for, but PyTorch sees no CUDA device", code="no_cuda")
        if precision != "fp32" and precision not in _AUTOCAST_DTYPES:
            raise ModelError(f"unknown precision {precision!r}; use fp32, fp16 or bf16", code="bad_precision")
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.to(self.device).eval()
        self.frame_multiple = CUDA_FRAME_MULTIPLE if self.device.type == "cuda" else 1

    @property
    def description(self) -> str:
        return f"torch-{self.device.type} {self.precision}"

    def _autocast(self) -> torch.autocast | nullcontext[None]:
        if self.precision == "fp32":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=_AUTOCAST_DTYPES[self.precision])

    @torch.inference_mode()
    def _forward(self, sils: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        cuda = self.device.type == "cuda"
        host = torch.from_numpy(sils)
        mask = _masked_lengths(lengths, sils.shape[1])
        if cuda:  # page-locked memory lets the copy run asynchronously
            host, mask = host.pin_memory(), mask.pin_memory()
        raw = host.to(self.device, non_blocking=cuda)
        mask = mask.to(self.device, non_blocking=cuda)
        cut = side_cut(sils.shape[-1])
        batch = raw[..., cut : sils.shape[-1] - cut].float().div_(255.0)  # the model transform, on the device
        with self._autocast():
            embeddings = self.model(batch, mask).features
        return embeddings.float().cpu().numpy()


class OnnxEmbedder(Embedder):
    """Runs an ONNX file made by ``gaitid export`` with ONNX Runtime."""

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES,
        max_padding: float = 0.25,
    ) -> None:
        super().__init__(max_batch_frames, max_padding)
        import onnxruntime as ort

        available = ort.get_available_providers()
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in available:
                raise ModelError(
                    "--device cuda asked for, but ONNX Runtime has no CUDAExecutionProvider "
                    "(install the gpu extra: onnxruntime-gpu)",
                    code="no_cuda",
                )
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        else:
            providers = ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as error:  # ORT raises its own exception types for unreadable graphs
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ModelError(f"ONNX file {path} cannot be loaded: {reason[:200]}", code="bad_onnx") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != ["sils", "lengths"]:
            raise ModelError(
                f"ONNX file {path} is not a gaitid embedding graph (inputs {names}, expected ['sils', 'lengths'])",
                code="bad_onnx",
            )
        self.provider = self.session.get_providers()[0]

    @property
    def description(self) -> str:
        return f"onnxruntime {self.provider.removesuffix('ExecutionProvider')}"

    def _forward(self, sils: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        (embeddings,) = self.session.run(None, {"sils": crop_and_scale(sils), "lengths": lengths})
        return np.asarray(embeddings, dtype=np.float32)
