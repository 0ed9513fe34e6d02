"""``gaitid bench embed``: embedding speed per backend × sequence length × batch size.

Speed does not depend on the weights, so without ``--model``/``--checkpoint`` the benchmark
uses a randomly initialised network of the chosen architecture. Inputs are random binary
silhouettes. Each cell is timed after a warm-up, repeating until ``--min-seconds`` have passed.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.report import BenchReport
from cli_common.errors import CliInputError
from cli_common.weights import add_weights_options, weights_from_args
from models.architectures import build_model
from models.checkpoint import load_model
from models.embedder import Embedder, OnnxEmbedder, TorchEmbedder
from models.onnx_export import export_onnx

_BACKENDS = ("torch", "onnx", "torch-cuda-fp16", "onnx-cuda")


def _random_sequences(count: int, frames: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((frames, 64, 64)) > 0.5).astype(np.uint8) * 255 for _ in range(count)]


def _embedder(backend: str, model: torch.nn.Module, onnx_path: Path) -> Embedder:
    if backend == "torch":
        return TorchEmbedder(model, device="cpu")
    if backend == "onnx":
        return OnnxEmbedder(onnx_path, device="cpu")
    if backend == "torch-cuda-fp16":
        return TorchEmbedder(model, device="cuda", precision="fp16")
    return OnnxEmbedder(onnx_path, device="cuda")


def _time_cell(embedder: Embedder, sequences: list[np.ndarray], min_seconds: float) -> float:
    """Seconds per call, averaged over as many calls as fit in ``min_seconds`` (at least one)."""
    embedder.embed(sequences[:1])  # warm-up: allocators, kernels, graph optimisation
    calls, started = 0, time.perf_counter()
    while True:
        embedder.embed(sequences)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return elapsed / calls


def _run(args: argparse.Namespace) -> int:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(_BACKENDS))
    if unknown:
        raise CliInputError(
            f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(_BACKENDS)}", code="bad_option"
        )
    lengths = [int(x) for x in args.lengths.split(",")]
    batches = [int(x) for x in args.batches.split(",")]
    if args.model or args.checkpoint:
        choice = weights_from_args(args)
        model, _ = load_model(choice.arch, choice.weights, choice.config)
        label = choice.label
    else:
        torch.manual_seed(0)
        model, label = build_model(args.arch).eval(), f"{args.arch} (random weights)"
    print(f"gaitid bench embed: {label}, torch threads {torch.get_num_threads()}", flush=True)
    report = BenchReport(["backend", "frames", "batch", "ms/seq", "seq/s", "ms/frame"])
    with tempfile.TemporaryDirectory() as workdir:
        onnx_path = Path(workdir) / "bench.onnx"
        if any(b.startswith("onnx") for b in backends):
            export_onnx(model, onnx_path)
        for backend in backends:
            embedder = _embedder(backend, model, onnx_path)
            for frames in lengths:
                for batch in batches:
                    sequences = _random_sequences(batch, frames, seed=frames * 1000 + batch)
                    seconds = _time_cell(embedder, sequences, args.min_seconds)
                    row = [
                        embedder.description,
                        frames,
                        batch,
                        f"{1000 * seconds / batch:.1f}",
                        f"{batch / seconds:.2f}",
                        f"{1000 * seconds / (batch * frames):.2f}",
                    ]
                    report.add(row)
    report.print_table()
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.epilog = (
        "examples:\n  gaitid bench embed\n  gaitid bench embed --arch deepgaitv2 --lengths 30 --batches 1\n"
        "  gaitid bench embed --backends torch-cuda-fp16,onnx-cuda   # on a GPU host"
    )
    add_weights_options(parser)
    parser.set_defaults(arch="gaitbase")
    parser.add_argument("--backends", default="torch,onnx", help=f"comma list from {', '.join(_BACKENDS)}")
    parser.add_argument("--lengths", default="30,120", help="frames per sequence (default 30,120)")
    parser.add_argument("--batches", default="1,16", help="sequences per call (default 1,16)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="time each cell at least this long")
    parser.set_defaults(handler=_run)
