"""``gaitid bench``: the per-stage benchmarks that live in the ``bench`` package."""

import argparse

from bench import embed as embed_bench
from bench import gallery as gallery_bench
from bench import load as load_bench
from bench import pipeline as pipeline_bench
from bench import stream as stream_bench
from bench import train as train_bench


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    bench = subparsers.add_parser(
        "bench",
        help="benchmark a stage and print a table",
        description="Speed benchmarks, one per stage. They print tables; they are not tests.",
    )
    stages = bench.add_subparsers(dest="stage", metavar="STAGE", required=True)
    embed_bench.register(stages)
    train_bench.register(stages)
    pipeline_bench.register(stages)
    gallery_bench.register(stages)
    stream_bench.register(stages)
    load_bench.register(stages)
