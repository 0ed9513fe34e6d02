"""``gaitid train`` and ``gaitid evaluate``."""

import argparse
import json
import sys
from pathlib import Path

from models.evaluation.casia_b import CasiaBResult, format_casia_b
from models.evaluation.runner import evaluate_casia_b, evaluate_partition
from models.loading import create_embedder
from models.training.config import load_train_config
from models.training.trainer import Trainer
from service.cli.errors import CliInputError
from service.cli.model_commands import add_weights_options, weights_from_args

_RAW = argparse.RawDescriptionHelpFormatter


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else ""
    print(f"\rembedded {done}/{total} sequences", end=end, file=sys.stderr, flush=True)


def _cmd_train(args: argparse.Namespace) -> int:
    if not args.config.is_file():
        raise CliInputError(f"training config {args.config} does not exist", code="input_not_found")
    config = load_train_config(args.config, {"iterations": args.iterations, "run_dir": args.run_dir})
    trainer = Trainer(config)
    if args.resume_from and not args.resume_from.is_file():
        raise CliInputError(f"checkpoint {args.resume_from} does not exist", code="input_not_found")
    if args.resume or args.resume_from:
        trainer.resume(args.resume_from)
    batches = trainer.load_data()
    trainer.run(batches)
    return 0


def _print_casia_b(report: dict) -> None:
    for metric, section in report["metrics"].items():
        result = CasiaBResult(metric, sorted(next(iter(section["table"].values()))), section["table"], section["means"])
        print(format_casia_b(result) + "\n")
    for name, point in report["open_set"].items():
        print(
            f"open-set {name}: similarity ≥ {point['threshold']:.4f} → FAR {100 * point['far']:.2f}%, "
            f"TAR {100 * point['tar']:.2f}%"
        )
    print(f"{report['sequences']} sequences on {report['embedder']} in {report['seconds']} s")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    choice = weights_from_args(args)
    embedder = create_embedder(
        choice.arch, choice.weights, backend=args.backend, device=args.device, config=choice.config
    )
    matching = choice.config.matching if choice.config else "embedding"
    if args.dataset == "casia-b":
        report = evaluate_casia_b(embedder, args.data, args.subjects, args.cache_dir, _progress)
        report["model"] = choice.label
        _print_casia_b(report)
    else:
        if not args.partition:
            raise CliInputError("--dataset generic needs --partition PARTITION.json", code="missing_option")
        if not args.probe_conditions:
            raise CliInputError("--dataset generic needs --probe-conditions", code="missing_option")
        report = evaluate_partition(
            embedder, args.data, args.partition, args.probe_conditions.split(","), args.cache_dir, _progress
        )
        report["model"] = choice.label
        for metric in ("euclidean", "cosine"):
            scores = report[metric]
            print(
                f"{metric}: rank-1 {scores['rank1']:.2f}  rank-5 {scores['rank5']:.2f}  "
                f"rank-10 {scores['rank10']:.2f}  mAP {scores['mAP']:.2f}  mINP {scores['mINP']:.2f}"
            )
    report["matching"] = matching  # publish puts it in the model card with the thresholds measured here
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    train = subparsers.add_parser(
        "train",
        help="train a gait model from a YAML config",
        formatter_class=_RAW,
        description="Train with P×K triplet batches, triplet + cross-entropy losses, SGD and a multi-step\n"
        "schedule. Checkpoints (OpenGait format) go to RUN_DIR/checkpoints, TensorBoard logs to\n"
        "RUN_DIR/tensorboard. Several GPUs: torchrun --nproc-per-node N -m service.cli train ...",
        epilog="examples:\n  gaitid train --config configs/gaitbase_cpu.yaml\n"
        "  gaitid train --config configs/gaitbase_cpu.yaml --resume      # continue exactly\n"
        "  gaitid train --config configs/gaitbase_cpu.yaml --resume-from models/training/state/gaitbase-cpu.pt\n"
        "  gaitid train --config configs/gaitbase_casiab.yaml --iterations 1000 --run-dir var/runs/try",
    )
    train.add_argument("--config", type=Path, required=True)
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of the run")
    train.add_argument("--resume-from", type=Path, help="continue exactly from this checkpoint (another run's)")
    train.add_argument("--iterations", type=int, help="override the total number of iterations")
    train.add_argument("--run-dir", type=Path, help="override the run folder")
    train.set_defaults(handler=_cmd_train)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on CASIA-B or a partitioned dataset",
        formatter_class=_RAW,
        description="CASIA-B: gallery nm-01..04, probes NM/BG/CL, rank-1 per probe view averaged over the\n"
        "other gallery views (identical view excluded), euclidean and cosine, plus open-set thresholds.\n"
        "generic: rank-1/5/10, mAP and mINP on the TEST_SET of a partition file.",
        epilog="examples:\n"
        "  gaitid evaluate --dataset casia-b --data ../shared/data/casia-b --model default --json out.json\n"
        "  gaitid evaluate --dataset generic --data DATA --partition part.json --probe-conditions nm-05,nm-06 "
        "--checkpoint m.pt --arch gaitbase",
    )
    add_weights_options(evaluate)
    evaluate.add_argument("--dataset", choices=["casia-b", "generic"], default="casia-b")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset folder (packed or OpenGait layout)")
    evaluate.add_argument("--subjects", default="075-124", help="CASIA-B test subjects (default 075-124)")
    evaluate.add_argument("--partition", type=Path, help="partition JSON with TEST_SET (generic)")
    evaluate.add_argument("--probe-conditions", help="comma list of probe conditions (generic)")
    evaluate.add_argument("--json", type=Path, help="write the full report here")
    evaluate.add_argument("--backend", choices=["torch", "onnx"], default="torch")
    evaluate.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    evaluate.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("var/cache/datasets"),
        help="decoded-dataset cache (default var/cache/datasets)",
    )
    evaluate.set_defaults(handler=_cmd_evaluate)
