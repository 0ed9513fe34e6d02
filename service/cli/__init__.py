"""The ``gaitid`` command line: one entry point for every tool of the product.

Each command is defined by a ``configure_*`` function in its own module, named in :data:`COMMANDS`
and imported only when the command runs (``service.cli.lazy``): ``gaitid --help`` and light
commands start without torch or SQLAlchemy. Errors that come from bad input (a missing file, an
unusable checkpoint, a malformed array) are printed as one line ``gaitid: error [code]: message``
and exit with status 2, never a traceback.
"""

import argparse
import sys
from collections.abc import Sequence

from cli_common.errors import CliInputError
from models.errors import ModelError
from pipeline.errors import PipelineError
from service.cli.lazy import Command, add_commands
from service.errors import ServiceError

COMMANDS = (
    Command("serve", "run the REST service", "service.cli.service_commands:configure_serve"),
    Command("worker", "run a Celery job worker (GAITID_JOBS=celery)", "service.cli.service_commands:configure_worker"),
    Command("db", "database migrations (Alembic)", "service.cli.service_commands:configure_db"),
    Command("keys", "create, list and revoke API keys", "service.cli.service_commands:configure_keys"),
    Command("events", "list stream events; prune old ones", "service.cli.event_commands:configure_events"),
    Command("enroll", "enroll a person's walk on a GaitID server", "service.cli.client_commands:configure_enroll"),
    Command(
        "identify",
        "identify the people walking in a video on a GaitID server",
        "service.cli.client_commands:configure_identify",
    ),
    Command(
        "subjects",
        "list, show, rename and delete subjects on a GaitID server",
        "service.cli.subject_commands:configure_subjects",
    ),
    Command("jobs", "list, show and cancel jobs on a GaitID server", "service.cli.job_commands:configure_jobs"),
    Command(
        "embed", "embed silhouette sequences (.npy) with a gait model", "service.cli.model_commands:configure_embed"
    ),
    Command("export", "export a model to one ONNX file", "service.cli.model_commands:configure_export"),
    Command("models", "list, show and register gait models", "service.cli.registry_commands:configure_models"),
    Command(
        "silhouettes",
        "extract per-person silhouette sequences from a video",
        "service.cli.pipeline_commands:configure_silhouettes",
    ),
    Command("train", "train a gait model from a YAML config", "service.cli.train_commands:configure_train"),
    Command(
        "evaluate",
        "evaluate a model on CASIA-B, real clips or a partitioned dataset",
        "service.cli.train_commands:configure_evaluate",
    ),
    Command("bench", "benchmark a stage and print a table", "service.cli.bench_command:configure_bench"),
)

_EPILOG = """examples:
  gaitid serve
  gaitid keys create --role admin
  gaitid enroll walk.mp4 --external-id emp-42 --api-key $KEY
  gaitid identify probe.mp4 --api-key $KEY
  gaitid subjects list --server http://gaitid:8000
  gaitid jobs show JOB_ID
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
    add_commands(parser, COMMANDS, dest="command", metavar="COMMAND")
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
