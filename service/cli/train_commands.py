"""``gaitid train`` and ``gaitid evaluate``."""

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cli_common.errors import CliInputError
from cli_common.pipeline_options import add_cache_option, cache_from_args
from cli_common.tables import format_table
from cli_common.weights import WeightsChoice, add_weights_options, weights_from_args
from models.embedder import Embedder
from models.evaluation.casia_b import CasiaBResult, format_casia_b
from models.evaluation.clips import (
    Matching,
    format_clips_report,
    load_protocol,
    matching_from_report,
    run_clips_protocol,
)
from models.evaluation.runner import evaluate_casia_b, evaluate_partition, fit_matching
from models.loading import create_embedder
from models.matching import NO_RANKING_WINDOWS, WHOLE_SEQUENCE, RankingWindows, Windowing
from models.training.config import load_train_config
from models.training.trainer import Trainer, parse_subject_range
from pipeline.defaults import cache_dir
from service.cli.job_progress import Progress
from service.pipeline_settings import pipeline_config
from service.settings import Settings

_RAW = argparse.RawDescriptionHelpFormatter


def _embed_progress(what: str = "sequences") -> Callable[[int, int], None]:
    """Embedding progress on stderr, shown as the client commands show a job's (redrawn in place on a
    terminal, a plain line per tenth in a pipe or log); the count when every one of ``what`` is embedded."""
    progress = Progress(sys.stderr)

    def show(done: int, total: int) -> None:
        progress.show(f"embedding {10 * (done * 10 // total)} %", f"{done}/{total} {what}")
        if done == total:
            progress.clear()
            print(f"embedded {done}/{total} {what}", file=sys.stderr, flush=True)

    return show


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
            f"open-set {name}: {point['scale']} ≥ {point['threshold']:.4f} → FAR {100 * point['far']:.2f}%, "
            f"TAR {100 * point['tar']:.2f}%"
        )
    if "calibration" in report:
        calibration = report["calibration"]
        left_out = calibration.get("left_out")
        fitted = f"; subjects {left_out} left out: they fitted it" if left_out else ""
        print(
            f"calibration: expected calibration error {calibration['ece']:.4f} on {calibration['pairs']} test pairs "
            f"(same and different person weighted equally{fitted})"
        )
        print(
            format_table(["confidence", "share of pairs", "mean confidence", "same person"], _reliability(calibration))
        )
    print(f"{report['sequences']} sequences on {report['embedder']} in {report['seconds']} s")


def _reliability(calibration: dict) -> list[list[str]]:
    return [
        [
            f"{row['low']:.1f}–{row['high']:.1f}",
            f"{row['pairs']:.3f}",
            f"{row['mean_confidence']:.3f}",
            f"{row['same_rate']:.3f}",
        ]
        for row in calibration["reliability"]
    ]


def _casia_b(
    args: argparse.Namespace, choice: WeightsChoice, embedder: Embedder, ranking: RankingWindows
) -> dict[str, Any]:
    """The CASIA-B protocol with the model card's matching, or one fitted on the training split."""
    spec = choice.spec
    windowing = _windowing(args, choice)
    if spec is not None and spec.calibration is not None and not (args.refit or args.held_out):
        transform, calibration, fitted = spec.transform, spec.calibration, None
    else:
        held_out = f" (same-person pairs from held-out {args.held_out})" if args.held_out else ""
        print(f"fitting the matching and calibration on CASIA-B {args.fit_subjects}{held_out}", file=sys.stderr)
        transform, calibration, fitted = fit_matching(
            embedder,
            args.data,
            args.fit_subjects,
            not args.no_centring,
            args.cache_dir,
            _embed_progress(),
            windowing,
            args.held_out,
        )
    report = evaluate_casia_b(
        embedder,
        args.data,
        args.subjects,
        args.cache_dir,
        _embed_progress(),
        transform,
        calibration,
        windowing,
        ranking,
        _embed_progress("long probes' ranking windows"),
        args.held_out,
    )
    if fitted is not None:  # publish stores these with the model
        report["matching_fit"] = {**fitted, "mean": None if transform.mean is None else transform.mean.tolist()}
    _print_casia_b(report)
    return report


def _refuse_full_overlap(held_out: str, test_subjects: str) -> None:
    """Held-out test subjects are left out of the calibration check, so some test subjects must remain."""
    (first, last), (test_first, test_last) = parse_subject_range(held_out), parse_subject_range(test_subjects)
    if first <= test_first and test_last <= last:
        raise CliInputError(
            f"--held-out {held_out} covers every test subject {test_subjects}: none would be left to check "
            "the calibration on",
            code="bad_option",
        )


def _windowing(args: argparse.Namespace, choice: WeightsChoice) -> Windowing:
    """The card's way of embedding long walks, unless --window-frames says otherwise."""
    if args.window_frames is None:
        return choice.spec.windowing if choice.spec is not None else WHOLE_SEQUENCE
    try:
        return Windowing(args.window_frames, args.window_stride or max(1, args.window_frames // 2))
    except ValueError as error:
        raise CliInputError(str(error), code="bad_option") from None


def _ranking(args: argparse.Namespace, choice: WeightsChoice) -> RankingWindows:
    """The card's ranking windows, unless --ranking-window-frames says otherwise."""
    if args.ranking_window_frames is None:
        return choice.spec.ranking if choice.spec is not None else NO_RANKING_WINDOWS
    if args.ranking_window_frames == 0:
        return NO_RANKING_WINDOWS
    frames = args.ranking_window_frames
    try:
        return RankingWindows(frames, max(1, frames // 2), frames * 3 // 2)
    except ValueError as error:
        raise CliInputError(str(error), code="bad_option") from None


def _clips(
    args: argparse.Namespace, choice: WeightsChoice, embedder: Embedder, ranking: RankingWindows
) -> dict[str, Any]:
    """The real-clip protocol with the model card's matching and thresholds (or those of --matching-from)."""
    if args.matching_from is not None:
        matching = matching_from_report(args.matching_from)
    elif choice.spec is not None:
        spec = choice.spec
        matching = Matching(spec.transform, spec.calibration, spec.thresholds, spec.windowing, spec.ranking)
    else:
        raise CliInputError(
            "--dataset clips with --checkpoint needs --matching-from EVAL.json (a CASIA-B evaluation of it)",
            code="missing_option",
        )
    matching = replace(matching, windowing=_windowing(args, choice)) if args.window_frames is not None else matching
    if args.ranking_window_frames is not None:
        matching = replace(matching, ranking=ranking)
    if not matching.thresholds:
        raise CliInputError(f"{choice.label} has no open-set thresholds to decide with", code="no_threshold")
    if not args.protocol.is_file():
        raise CliInputError(f"clip protocol {args.protocol} does not exist", code="input_not_found")
    report = run_clips_protocol(
        embedder,
        matching,
        pipeline_config(Settings()),
        args.data,
        load_protocol(args.protocol),
        cache_from_args(args),
        lambda clip: print(f"pipeline: {clip}", file=sys.stderr, flush=True),
    )
    print(format_clips_report(report))
    return report


def _cmd_evaluate(args: argparse.Namespace) -> int:
    choice = weights_from_args(args)
    if args.dataset == "casia-b" and args.held_out:
        _refuse_full_overlap(args.held_out, args.subjects)
    ranking = _ranking(args, choice)
    backend = args.backend or Settings().embed_backend  # measure what the service would run
    embedder = create_embedder(choice.arch, choice.weights, backend=backend, device=args.device, config=choice.config)
    matching = choice.config.matching if choice.config else "embedding"
    if args.dataset == "casia-b":
        report = _casia_b(args, choice, embedder, ranking)
    elif args.dataset == "clips":
        report = _clips(args, choice, embedder, ranking)
    else:
        if not args.partition:
            raise CliInputError("--dataset generic needs --partition PARTITION.json", code="missing_option")
        if not args.probe_conditions:
            raise CliInputError("--dataset generic needs --probe-conditions", code="missing_option")
        report = evaluate_partition(
            embedder, args.data, args.partition, args.probe_conditions.split(","), args.cache_dir, _embed_progress()
        )
        for metric in ("euclidean", "cosine"):
            scores = report[metric]
            print(
                f"{metric}: rank-1 {scores['rank1']:.2f}  rank-5 {scores['rank5']:.2f}  "
                f"rank-10 {scores['rank10']:.2f}  mAP {scores['mAP']:.2f}  mINP {scores['mINP']:.2f}"
            )
    report["model"] = choice.label
    report["matching"] = matching  # publish puts it in the model card with the thresholds measured here
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def configure_train(train: argparse.ArgumentParser) -> None:
    train.description = (
        "Train with P×K triplet batches, triplet + cross-entropy losses, SGD and a multi-step\n"
        "schedule. Checkpoints (OpenGait format) go to RUN_DIR/checkpoints, TensorBoard logs to\n"
        "RUN_DIR/tensorboard. Several GPUs: torchrun --nproc-per-node N -m service.cli train ..."
    )
    train.epilog = (
        "examples:\n  gaitid train --config configs/gaitbase_cpu.yaml\n"
        "  gaitid train --config configs/gaitbase_cpu.yaml --resume      # continue exactly\n"
        "  gaitid train --config configs/gaitbase_cpu.yaml --resume-from training-state/gaitbase-cpu.pt\n"
        "  gaitid train --config configs/gaitbase_casiab.yaml --iterations 1000 --run-dir var/runs/try"
    )
    train.add_argument("--config", type=Path, required=True)
    train.add_argument("--resume", action="store_true", help="continue from the newest checkpoint of the run")
    train.add_argument("--resume-from", type=Path, help="continue exactly from this checkpoint (another run's)")
    train.add_argument("--iterations", type=int, help="override the total number of iterations")
    train.add_argument("--run-dir", type=Path, help="override the run folder")
    train.set_defaults(handler=_cmd_train)


def configure_evaluate(evaluate: argparse.ArgumentParser) -> None:
    evaluate.description = (
        "CASIA-B: gallery nm-01..04, probes NM/BG/CL, rank-1 per probe view averaged over the\n"
        "other gallery views (identical view excluded), euclidean (raw embedding) and cosine (after the\n"
        "matching transform), open-set thresholds on the calibrated confidence, and the calibration's\n"
        "expected error. A model without a calibration gets one fitted on the training split (--fit-subjects).\n"
        "clips: the real-clip protocol (--protocol): enrol people from real videos, identify them in\n"
        "others through the service's pipeline and decisions; confusion table, decisions, open-set pass.\n"
        "generic: rank-1/5/10, mAP and mINP on the TEST_SET of a partition file."
    )
    evaluate.epilog = (
        "examples:\n"
        "  gaitid evaluate --dataset casia-b --data ../shared/data/casia-b --model default --json out.json\n"
        "  gaitid evaluate --dataset casia-b --data ../shared/data/casia-b --checkpoint m.pt --arch gaitbase "
        "--fit-subjects 001-064 --held-out 065-074 --json m.json\n"
        "  gaitid evaluate --dataset clips --data ../shared/videos --model default --json clips.json\n"
        "  gaitid evaluate --dataset generic --data DATA --partition part.json --probe-conditions nm-05,nm-06 "
        "--checkpoint m.pt --arch gaitbase"
    )
    add_weights_options(evaluate)
    evaluate.add_argument("--dataset", choices=["casia-b", "clips", "generic"], default="casia-b")
    evaluate.add_argument("--data", type=Path, required=True, help="dataset folder (packed or OpenGait layout)")
    evaluate.add_argument("--subjects", default="075-124", help="CASIA-B test subjects (default 075-124)")
    evaluate.add_argument(
        "--fit-subjects", default="001-074", help="CASIA-B subjects the matching is fitted on (default 001-074)"
    )
    evaluate.add_argument(
        "--held-out",
        metavar="SUBJECTS",
        help="subjects the model was not trained on (e.g. 065-074 for a model trained on 001-064): the "
        "calibration's same-person pairs come from them, its different-person pairs from --fit-subjects "
        "(implies --refit); test subjects among them stay in the rank-1 and open-set tables and are left out "
        "of the calibration check",
    )
    evaluate.add_argument(
        "--no-centring", action="store_true", help="fit only the calibration, without the centring transform"
    )
    evaluate.add_argument("--refit", action="store_true", help="fit the matching even if the model card has one")
    evaluate.add_argument(
        "--window-frames",
        type=int,
        help="embed walks in windows of this many frames, averaged (default: the model card's; 0: whole)",
    )
    evaluate.add_argument("--window-stride", type=int, help="frames between window starts (default: half a window)")
    evaluate.add_argument(
        "--ranking-window-frames",
        type=int,
        metavar="FRAMES",
        help="rank the gallery by the best window of this many frames (every half window) of probes longer than "
        "one and a half windows; scores and decisions stay the whole walk's (default: the model card's; 0: off)",
    )
    evaluate.add_argument(
        "--protocol", type=Path, default=Path("configs/protocols/clips.yaml"), help="the real-clip protocol (clips)"
    )
    evaluate.add_argument(
        "--matching-from",
        type=Path,
        help="a CASIA-B evaluation JSON whose fitted matching and thresholds --checkpoint uses (clips)",
    )
    add_cache_option(evaluate, "the clips' tracks (--dataset clips)")
    evaluate.add_argument("--partition", type=Path, help="partition JSON with TEST_SET (generic)")
    evaluate.add_argument("--probe-conditions", help="comma list of probe conditions (generic)")
    evaluate.add_argument("--json", type=Path, help="write the full report here")
    evaluate.add_argument(
        "--backend",
        choices=["torch", "onnx"],
        help="runtime of the gait model (default: the service's, GAITID_EMBED_BACKEND, onnx unless set)",
    )
    evaluate.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    evaluate.add_argument(
        "--cache-dir",
        type=Path,
        default=cache_dir() / "datasets",
        help="decoded-dataset cache (default $GAITID_CACHE_DIR/datasets, now %(default)s)",
    )
    evaluate.set_defaults(handler=_cmd_evaluate)
