"""``gaitid bench train``: training-step speed (forward + backward + SGD) per network width.

Uses random binary silhouettes and the real losses and optimizer, so the numbers are what a
training run gets minus data loading. Widths scale GaitBase's 64-128-256-512 channels.
"""

import argparse
import time

import numpy as np
import torch

from bench.report import BenchReport
from cli_common.errors import CliInputError
from models.architectures import build_model
from models.configs import ARCHITECTURE_NAMES, make_config
from models.training.losses import part_cross_entropy, triplet_loss

FULL_CHANNELS = (64, 128, 256, 512)


def _time_steps(
    arch: str, width: float, frames: int, subjects: int, per_subject: int, steps: int, device: torch.device, amp: str
) -> float:
    """Seconds per training step, after one warm-up step."""
    channels = [max(4, round(c * width)) for c in FULL_CHANNELS]
    model = build_model(arch, make_config(arch, {"channels": channels, "classes": subjects})).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    batch = subjects * per_subject
    sils = torch.from_numpy((rng.random((batch, frames, 64, 44)) > 0.5).astype(np.float32)).to(device)
    labels = torch.arange(subjects, device=device).repeat_interleave(per_subject)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(sils)
        loss = triplet_loss(out.embeddings, labels, 0.2) + part_cross_entropy(out.logits, labels, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def _run(args: argparse.Namespace) -> int:
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CliInputError("--device cuda asked for, but no CUDA device is visible", code="no_cuda")
    device = torch.device(args.device)
    widths = [float(w) for w in args.widths.split(",")]
    frame_counts = [int(f) for f in args.frames.split(",")]
    print(
        f"gaitid bench train: {args.arch}, batch {args.subjects}x{args.per_subject}, {args.device} {args.amp}, "
        f"torch threads {torch.get_num_threads()}",
        flush=True,
    )
    report = BenchReport(["arch", "width", "frames", "batch", "it/s", "seq/s"])
    for width in widths:
        for frames in frame_counts:
            seconds = _time_steps(
                args.arch, width, frames, args.subjects, args.per_subject, args.steps, device, args.amp
            )
            batch = args.subjects * args.per_subject
            row = [args.arch, width, frames, batch, f"{1 / seconds:.3f}", f"{batch / seconds:.2f}"]
            report.add(row)
    report.print_table()
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.epilog = (
        "examples:\n  gaitid bench train\n  gaitid bench train --widths 1 --frames 30 --device cuda --amp bf16"
    )
    parser.add_argument("--arch", choices=ARCHITECTURE_NAMES, default="gaitbase")
    parser.add_argument("--widths", default="1,0.5,0.25", help="channel multipliers (default 1,0.5,0.25)")
    parser.add_argument("--frames", default="30", help="frames per training clip (default 30)")
    parser.add_argument("--subjects", type=int, default=8, help="P, subjects per batch")
    parser.add_argument("--per-subject", type=int, default=4, help="K, sequences per subject")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per cell")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none")
    parser.set_defaults(handler=_run)
