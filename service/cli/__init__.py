"""The ``gaitid`` command line: one entry point for every tool of the product.

Each command lives in its own module with a ``register(subparsers)`` function. Errors that
come from bad input (a missing file, an unusable checkpoint, a malformed array) are printed
as one line ``gaitid: error [code]: message`` and exit with status 2, never a traceback.
"""

import argparse
import sys
from collections.abc import Sequence

from models.errors import ModelError
from pipeline.errors import PipelineError
from service.cli import (
    bench_command,
    client_commands,
    model_commands,
    pipeline_commands,
    service_commands,
    train_commands,
)
from service.cli.errors import CliInputError
from service.errors import ServiceError

_EPILOG = """examples:
  gaitid serve
  gaitid keys create --role admin
  gaitid enroll walk.mp4 --external-id emp-42 --api-key $KEY
  gaitid identify probe.mp4 --api-key $KEY
  gaitid models list
  gaitid embed --arch gaitbase --checkpoint gaitbase.pt --input sils.npy --output emb.npy
  gaitid export --checkpoint gaitbase.pt --arch gaitbase --output gaitbase.onnx
  gaitid bench embed --backends torch,onnx
run `gaitid COMMAND --help` for each command's options."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gaitid",
        description="GaitID: gait recognition as a service — models, pipeline, server and tools.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (service_commands, client_commands, model_commands, pipeline_commands, train_commands, bench_command):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``gaitid`` command; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ModelError, PipelineError, CliInputError, ServiceError) as error:
        print(f"gaitid: error [{error.code}]: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gaitid: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
