"""``gaitid models``: list, show, register and publish the gait models the registry knows."""

import argparse
from pathlib import Path

from cli_common.errors import CliInputError
from cli_common.tables import format_table
from models.configs import ARCHITECTURE_NAMES, config_to_dict
from models.registry import ModelSpec, list_models, resolve, user_models_dir, write_user_card

_RAW = argparse.RawDescriptionHelpFormatter


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
    from models.checkpoint import load_model
    from service.gallery.servable import served_shape

    _, shape = load_model(args.arch, args.checkpoint)  # refuse a checkpoint that does not load
    spec = ModelSpec(args.name, args.version, args.arch, args.checkpoint, args.metric, shape)
    served_shape(spec)  # and one the gallery could not serve, before anything is written
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
        config=shape,
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


def configure_models(models: argparse.ArgumentParser) -> None:
    models.epilog = (
        "examples:\n  gaitid models list\n  gaitid models show default\n"
        "  gaitid models add mine --arch gaitbase --checkpoint runs/mine/checkpoints/iter-60000.pt"
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
