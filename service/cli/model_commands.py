"""``gaitid models``, ``gaitid embed`` and ``gaitid export``: the model tools."""

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.architectures import ARCHITECTURE_NAMES, ArchConfig, config_to_dict, make_config
from models.checkpoint import load_model
from models.loading import create_embedder
from models.onnx_export import export_onnx, max_difference_vs_torch, metadata_for
from models.outputs import MATCHING_FEATURES
from models.registry import ModelSpec, list_models, resolve, user_models_dir, write_user_card
from service.cli.errors import CliInputError
from service.cli.output import format_table

_RAW = argparse.RawDescriptionHelpFormatter


@dataclass(frozen=True)
class WeightsChoice:
    """Which network to run: from ``--model NAME`` or from ``--checkpoint PATH --arch ARCH``."""

    arch: str
    weights: Path
    config: ArchConfig | None
    label: str
    spec: ModelSpec | None = None  # the registered model's card (matching transform, calibration, thresholds)


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    """The shared ``--model`` / ``--checkpoint`` + ``--arch`` options."""
    parser.add_argument("--model", help="a registered model name (see `gaitid models list`)")
    parser.add_argument(
        "--checkpoint", type=Path, help="an OpenGait-format checkpoint (.pt) or, for onnx, an .onnx file"
    )
    parser.add_argument("--arch", choices=ARCHITECTURE_NAMES, help="architecture of --checkpoint")
    parser.add_argument(
        "--matching",
        choices=MATCHING_FEATURES,
        help="features of --checkpoint to match with: the embedding before the BNNeck (default, as OpenGait) "
        "or the BNNeck's centred features",
    )


def weights_from_args(args: argparse.Namespace) -> WeightsChoice:
    """Resolve the weights options to one choice, or a one-line error."""
    if args.model and args.checkpoint:
        raise CliInputError("give either --model or --checkpoint, not both", code="conflicting_options")
    if args.model:
        if getattr(args, "matching", None):
            raise CliInputError("--matching goes with --checkpoint; a model's card sets it", code="conflicting_options")
        spec = resolve(args.model)
        return WeightsChoice(spec.arch, spec.weights, spec.config, spec.key, spec)
    if not args.checkpoint:
        raise CliInputError("give --model NAME, or --checkpoint PATH with --arch", code="missing_option")
    if not args.arch:
        raise CliInputError("--checkpoint needs --arch gaitbase|deepgaitv2", code="missing_option")
    config = make_config(args.arch, {"matching": args.matching}) if args.matching else None
    return WeightsChoice(args.arch, args.checkpoint, config, str(args.checkpoint))


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


def _cmd_models_list(args: argparse.Namespace) -> int:
    specs = list_models()
    if not specs:
        print(
            f"no models registered (bundled: none; user folder {user_models_dir()} is empty).\n"
            "register a checkpoint with: gaitid models add NAME --arch gaitbase --checkpoint PATH"
        )
        return 0
    rows = [
        [
            s.name,
            s.version,
            s.arch,
            s.metric,
            s.origin,
            ", ".join(f"{k}={v:.4f}" for k, v in s.thresholds.items()) or "-",
            str(s.weights) if s.weights.exists() else f"{s.weights} (MISSING)",
        ]
        for s in specs
    ]
    print(format_table(["name", "version", "arch", "metric", "origin", "thresholds", "weights"], rows))
    return 0


def _cmd_models_show(args: argparse.Namespace) -> int:
    spec = resolve(args.name)
    config = config_to_dict(spec.config) if spec.config else "inferred from the checkpoint"
    print(
        f"name: {spec.name}\nversion: {spec.version}\narch: {spec.arch}\nconfig: {config}\n"
        f"weights: {spec.weights}\nmetric: {spec.metric}\nmatching transform: {spec.transform.digest}\n"
        f"calibration: {_calibration_text(spec)}\nthresholds: {spec.thresholds or 'none'}\n"
        f"origin: {spec.origin}\ndescription: {spec.description or '-'}"
    )
    if spec.card and spec.card.is_file():
        print("\n" + spec.card.read_text())
    return 0


def _calibration_text(spec: ModelSpec) -> str:
    if spec.calibration is None:
        return "none (scores and thresholds are similarities)"
    c = spec.calibration
    return f"confidence = sigmoid({c.slope:.4f} × similarity + {c.intercept:.4f}); thresholds are confidences"


def _cmd_models_add(args: argparse.Namespace) -> int:
    _, shape = load_model(args.arch, args.checkpoint)  # refuse a checkpoint that does not load
    thresholds = {}
    if args.threshold_far_1e2 is not None:
        thresholds["far_1e-2"] = args.threshold_far_1e2
    if args.threshold_far_1e3 is not None:
        thresholds["far_1e-3"] = args.threshold_far_1e3
    path = write_user_card(
        args.name,
        args.arch,
        args.checkpoint,
        version=args.version,
        metric=args.metric,
        thresholds=thresholds,
        description=args.description,
    )
    print(f"registered {args.name}@{args.version} ({args.arch}, {config_to_dict(shape)}) in {path}")
    return 0


def _cmd_models_publish(args: argparse.Namespace) -> int:
    from models.publish import Provenance, publish

    if not args.evaluation.is_file():
        raise CliInputError(f"no evaluation report at {args.evaluation} (make it with gaitid evaluate --json)")
    command = f"gaitid train --config {args.config}"
    provenance = Provenance(command=command, config=args.config, trained_on=args.trained_on)
    if args.clips is not None and not args.clips.is_file():
        raise CliInputError(f"no clip protocol report at {args.clips} (gaitid evaluate --dataset clips --json)")
    card = publish(
        args.checkpoint, args.arch, args.name, args.version, args.evaluation, provenance, args.output_dir, args.clips
    )
    print(f"published {args.name}@{args.version}: {card} (weights and model card beside it)")
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embed silhouette sequences (.npy) with a gait model",
        formatter_class=_RAW,
        description="Embed uint8 silhouettes [S,N,64,64] or [N,64,64] into float32 [S,256,16].\n"
        "Applies the standard transform (cut int(W//64)*10 px each side → 64×44, /255). Trailing\n"
        "all-zero frames are treated as padding and dropped. Each sequence needs 5..1000 frames.",
        epilog="example:\n  gaitid embed --arch gaitbase --checkpoint gaitbase.pt --input sils.npy --output emb.npy\n"
        "  gaitid embed --model default --input sils.npy --output emb.npy --backend onnx",
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

    export = subparsers.add_parser(
        "export",
        help="export a model to one ONNX file",
        formatter_class=_RAW,
        description="Export the embedding path to ONNX (opset 18) with dynamic batch and frame (5..1000)\n"
        "axes. Inputs: sils float32 [batch, frames, 64, 44] (already transformed) and lengths int64\n"
        "[batch]; output: embeddings float32 [batch, 256, 16]. Verifies ORT-CPU against torch.",
        epilog="example:\n  gaitid export --checkpoint gaitbase.pt --arch gaitbase --output gaitbase.onnx\n"
        "  gaitid export --model default --output default.onnx",
    )
    add_weights_options(export)
    export.add_argument("--output", type=Path, required=True, help="the .onnx file to write")
    export.add_argument("--no-verify", action="store_true", help="skip the ORT-vs-torch check")
    export.set_defaults(handler=_cmd_export)

    models = subparsers.add_parser(
        "models",
        help="list, show and register gait models",
        formatter_class=_RAW,
        epilog="examples:\n  gaitid models list\n  gaitid models show default\n"
        "  gaitid models add mine --arch gaitbase --checkpoint runs/mine/checkpoints/iter-60000.pt",
    )
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="the models the registry knows")
    listing.set_defaults(handler=_cmd_models_list)
    show = actions.add_parser("show", help="one model's card")
    show.add_argument("name")
    show.set_defaults(handler=_cmd_models_show)
    add = actions.add_parser(
        "add",
        help="register a checkpoint under a name",
        formatter_class=_RAW,
        description=f"Validate a checkpoint and write a model card for it in GAITID_MODELS_DIR "
        f"(now {user_models_dir()}).",
        epilog="example:\n  gaitid models add mine --arch gaitbase --checkpoint mine.pt --threshold-far-1e2 0.82",
    )
    add.add_argument("name")
    add.add_argument("--arch", choices=ARCHITECTURE_NAMES, required=True)
    add.add_argument("--checkpoint", type=Path, required=True)
    add.add_argument("--version", default="1")
    add.add_argument("--metric", choices=["cosine", "euclidean"], default="cosine")
    add.add_argument("--threshold-far-1e2", type=float, help="similarity threshold at 1%% false accepts")
    add.add_argument("--threshold-far-1e3", type=float, help="similarity threshold at 0.1%% false accepts")
    add.add_argument("--description", default="")
    add.set_defaults(handler=_cmd_models_add)
    publish = actions.add_parser(
        "publish",
        help="turn a training checkpoint into a bundled model (fp16 weights, card, document)",
        formatter_class=_RAW,
        description="Write NAME.pt (network only, fp16), NAME.yaml (registry card with the evaluation's matching\n"
        "transform, calibration and open-set thresholds on the confidence), NAME.transform.npz (the centring)\n"
        "and NAME.md (data, command, seed, hardware, full evaluation table, calibration check, real clips).",
        epilog="example:\n  gaitid evaluate --dataset casia-b --data ../shared/data/casia-b --checkpoint CKPT "
        "--arch gaitbase --json eval.json\n  gaitid models publish default --checkpoint CKPT --arch gaitbase "
        "--evaluation eval.json --config configs/gaitbase_cpu.yaml --trained-on '2-core CPU, 9 h' --clips clips.json",
    )
    publish.add_argument("name")
    publish.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint written by gaitid train")
    publish.add_argument("--arch", choices=ARCHITECTURE_NAMES, required=True)
    publish.add_argument("--version", default="1")
    publish.add_argument("--evaluation", type=Path, required=True, help="the JSON report of gaitid evaluate")
    publish.add_argument("--config", type=Path, required=True, help="the training configuration used")
    publish.add_argument(
        "--clips", type=Path, help="the real-clip protocol report of these weights, for the model card's document"
    )
    publish.add_argument("--trained-on", required=True, help="hardware and wall time, for the model card")
    publish.add_argument("--output-dir", type=Path, default=Path("models/weights"))
    publish.set_defaults(handler=_cmd_models_publish)
