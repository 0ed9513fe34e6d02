"""The ``--model`` / ``--checkpoint`` + ``--arch`` options: which gait network a command runs.

``gaitid embed``, ``gaitid export``, ``gaitid evaluate`` and ``gaitid bench embed`` take them alike.
"""

import argparse
from dataclasses import dataclass
from pathlib import Path

from cli_common.errors import CliInputError
from models.configs import ARCHITECTURE_NAMES, MATCHING_FEATURES, ArchConfig, make_config
from models.registry import ModelSpec, resolve


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
