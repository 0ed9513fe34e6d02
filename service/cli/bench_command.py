"""``gaitid bench``: the per-stage benchmarks of the ``bench`` package.

A stage's module (with its torch, FAISS or server imports) is imported only when that stage runs;
the ``bench`` package itself never imports the command line (both use ``cli_common``).
"""

import argparse

from service.cli.lazy import Command, add_commands

STAGES = (
    Command("embed", "embedding speed: backend × frames × batch", "bench.embed:configure"),
    Command("train", "training-step speed per network width", "bench.train:configure"),
    Command("pipeline", "per-stage pipeline speed on a video", "bench.pipeline:configure"),
    Command("gallery", "gallery index: build, memory, latency, recall per size × kind", "bench.gallery:configure"),
    Command("stream", "sustained fps per live stream and frame-to-event latency", "bench.stream:configure"),
    Command("load", "the embedded default under a burst of identify uploads and reads", "bench.load:configure"),
)


def configure_bench(bench: argparse.ArgumentParser) -> None:
    bench.description = "Speed benchmarks, one per stage. They print tables; they are not tests."
    add_commands(bench, STAGES, dest="stage", metavar="STAGE")
