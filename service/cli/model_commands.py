"""``gaitid embed`` and ``gaitid export``: running and exporting a gait network."""

import argparse
from pathlib import Path

import numpy as np

from cli_common.errors import CliInputError
from cli_common.weights import add_weights_options, weights_from_args
from models.checkpoint import load_model
from models.configs import config_to_dict
from models.loading import create_embedder
from models.onnx_export import export_onnx, max_difference_vs_torch, metadata_for


def load_silhouettes(path: Path) -> list[np.ndarray]:
    """Read ``[S, N, 64, W]`` or ``[N, 64, W]`` uint8 silhouettes; trailing empty frames are padding."""
    if not path.is_file():
        raise CliInputError(f"input {path} does not exist", code="input_not_found")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise CliInputError(f"input {path} is not a readable .npy array: {error}", code="bad_input") from None
    if not isinstance(array, np.ndarray) or array.ndim not in (3, 4):
        raise CliInputError(
            f"input {path} must be uint8 [S,N,64,W] or [N,64,W], got shape {list(np.shape(array))}",
            code="bad_silhouettes",
        )
    if array.dtype != np.uint8:
        raise CliInputError(f"input {path} must be uint8 (0..255), got {array.dtype}", code="bad_silhouettes")
    sequences = [array] if array.ndim == 3 else list(array)
    return [_without_trailing_padding(s) for s in sequences]


def _without_trailing_padding(sils: np.ndarray) -> np.ndarray:
    # Pretreatment never emits an empty frame, so all-zero frames at the end are padding
    # added to stack sequences of different lengths into one array.
    filled = np.flatnonzero(sils.reshape(len(sils), -1).any(axis=1))
    return sils[: filled[-1] + 1] if len(filled) else sils


def _cmd_embed(args: argparse.Namespace) -> int:
    choice = weights_from_args(args)
    sequences = load_silhouettes(args.input)
    embedder = create_embedder(
        choice.arch,
        choice.weights,
        backend=args.backend,
        device=args.device,
        precision=args.precision,
        config=choice.config,
    )
    embeddings = embedder.embed(sequences)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.output, embeddings)
    lengths = ", ".join(str(len(s)) for s in sequences)
    print(
        f"embedded {len(sequences)} sequence(s) of {lengths} frames with {choice.label} "
        f"on {embedder.description} → {args.output} {list(embeddings.shape)}"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    choice = weights_from_args(args)
    if choice.weights.suffix == ".onnx":
        raise CliInputError(f"{choice.weights} is already an ONNX file", code="bad_input")
    model, shape = load_model(choice.arch, choice.weights, choice.config)
    print(f"exporting {choice.label} ({choice.arch}) to {args.output} …", flush=True)
    export_onnx(model, args.output, metadata_for(choice.arch, config_to_dict(shape)))
    size_mb = args.output.stat().st_size / 1e6
    message = f"wrote {args.output} ({size_mb:.1f} MB): inputs sils [batch, frames 5..1000, 64, 44], lengths [batch]"
    if not args.no_verify:
        message += f"; ORT-CPU vs torch max |diff| {max_difference_vs_torch(model, args.output):.2e}"
    print(message)
    return 0


def configure_embed(embed: argparse.ArgumentParser) -> None:
    embed.description = (
        "Embed uint8 silhouettes [S,N,64,64] or [N,64,64] into float32 [S,256,16].\n"
        "Applies the standard transform (cut int(W//64)*10 px each side → 64×44, /255). Trailing\n"
        "all-zero frames are treated as padding and dropped. Each sequence needs 5..1000 frames."
    )
    embed.epilog = (
        "example:\n  gaitid embed --arch gaitbase --checkpoint gaitbase.pt --input sils.npy --output emb.npy\n"
        "  gaitid embed --model default --input sils.npy --output emb.npy --backend onnx"
    )
    add_weights_options(embed)
    embed.add_argument("--input", type=Path, required=True, help="uint8 .npy [S,N,64,64] or [N,64,64]")
    embed.add_argument("--output", type=Path, required=True, help="where to write float32 [S,256,16]")
    embed.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    embed.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    embed.add_argument(
        "--precision", choices=["fp32", "fp16", "bf16"], default="fp32", help="torch autocast precision (default fp32)"
    )
    embed.set_defaults(handler=_cmd_embed)


def configure_export(export: argparse.ArgumentParser) -> None:
    export.description = (
        "Export the embedding path to ONNX (opset 18) with dynamic batch and frame (5..1000)\n"
        "axes. Inputs: sils float32 [batch, frames, 64, 44] (already transformed) and lengths int64\n"
        "[batch]; output: embeddings float32 [batch, 256, 16]. Verifies ORT-CPU against torch."
    )
    export.epilog = (
        "example:\n  gaitid export --checkpoint gaitbase.pt --arch gaitbase --output gaitbase.onnx\n"
        "  gaitid export --model default --output default.onnx"
    )
    add_weights_options(export)
    export.add_argument("--output", type=Path, required=True, help="the .onnx file to write")
    export.add_argument("--no-verify", action="store_true", help="skip the ORT-vs-torch check")
    export.set_defaults(handler=_cmd_export)
