"""For a GPU session of a few minutes: train several configs at once on one GPU, each sized to a deadline.

Not part of the installed product (it imports only ``models/``, so it runs on a device machine
without the service's dependencies). How the GPU stages in ``configs/gaitbase_gpu_*.yaml`` were run.

CASIA-B 001-074 is decoded once in this process; each config then trains in a forked child until a
shared deadline. A child sizes its own schedule from its measured speed: total iterations = what it
can finish before the deadline, learning-rate drops at fixed fractions of that total, re-estimated
every chunk until the first drop. Each child writes its effective config (fixed iteration count and
milestones, so `gaitid train --config` can repeat it), its log and its final weights into one tar.

    python3 tools/gpu_train_budget.py --deadline 465 --hard-stop 505 --out $OUT A.yaml B.yaml
    python3 tools/gpu_train_budget.py --chunk 1000 --deadline 225 --hard-stop 248 --out $OUT A.yaml

Its data folder (``--data``, CASIA-B packed 001-074, about 46 MB) must travel with the checkout.
"""

import argparse
import io
import multiprocessing as mp
import os
import sys
import tarfile
import time
import traceback
from collections import Counter
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, os.getcwd())

import torch
import yaml

from models.checkpoint import save_checkpoint
from models.data.casia_b import SilhouetteDataset, iter_subject_range
from models.training.config import load_train_config
from models.training.trainer import Trainer, parse_subject_range

T0 = time.time()
RECORDS: list = []
FRACTIONS = (0.6, 0.85)


def child(config_path: str, deadline: float, hard_stop: float, out: str, chunk: int) -> None:
    name = Path(config_path).stem
    lines: list[str] = []

    def say(line: str) -> None:
        text = f"{time.time() - T0:7.1f}s {name}: {line}"
        lines.append(text)
        print(text, flush=True)

    try:
        config = load_train_config(config_path)
        trainer = Trainer(config, log=say)
        batches = trainer.batches_for(RECORDS)
        start = trainer.iteration
        try:
            trainer.run(batches, stop=start + 10)
        except Exception as error:  # any compile failure: fall back to eager steps
            say(f"compiled step failed ({type(error).__name__}: {str(error)[:300]}); eager from here")
            config = replace(config, compile=False)
            trainer = Trainer(config, log=say)
            trainer.run(batches, stop=start + 10)
        total = config.iterations
        milestones = list(config.optimizer.milestones)
        while trainer.iteration < total:
            began, first = time.time(), trainer.iteration
            stop = min(total, trainer.iteration + chunk)
            if milestones and trainer.iteration >= milestones[0]:
                stop = total
            trainer.run(batches, stop=stop)
            rate = (trainer.iteration - first) / max(time.time() - began, 1e-6)
            if trainer.iteration < milestones[0]:
                total = int(trainer.iteration + rate * (deadline - time.time()))
                total = max(total, trainer.iteration + 1)
                milestones = [max(int(total * f), trainer.iteration + 1) for f in FRACTIONS]
                trainer.scheduler.milestones = Counter(milestones)
                say(f"{rate:.2f} it/s: total {total}, milestones {milestones}")
            if time.time() > hard_stop:
                say(f"hard stop at iteration {trainer.iteration} of {total}")
                break
        raw = dict(config.raw)
        raw["iterations"] = trainer.iteration
        raw["optimizer"] = {**raw.get("optimizer", {}), "milestones": milestones}
        weights = Path(out) / f"{name}.pt"
        trainer.model.to(memory_format=torch.contiguous_format)
        save_checkpoint(
            weights,
            trainer.model,
            iteration=trainer.iteration,
            extra=trainer.checkpoint_metadata(),
        )
        say(f"saved {weights.name} at iteration {trainer.iteration}")
        effective = yaml.safe_dump(raw, sort_keys=False).encode()
    except Exception:
        say(traceback.format_exc())
        effective, weights = b"", None
    with tarfile.open(Path(out) / f"{name}.tar", "w") as tar:
        for member, data in (("config.yaml", effective), ("log.txt", "\n".join(lines).encode())):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if weights is not None and weights.exists():
            tar.add(weights, arcname=weights.name)
            weights.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--deadline", type=float, required=True, help="seconds from start to end training")
    parser.add_argument("--hard-stop", type=float, required=True, help="seconds from start: stop regardless")
    parser.add_argument("--out", required=True)
    parser.add_argument("--data", default=".gpu/casia-b")
    parser.add_argument("--chunk", type=int, default=300, help="iterations between speed re-estimates")
    args = parser.parse_args()
    dataset = SilhouetteDataset(Path(args.data), None)
    # one decoding serves every config: they train on the first one's subjects (checked per run)
    subjects = list(
        iter_subject_range(dataset.subjects, *parse_subject_range(load_train_config(args.configs[0]).train_subjects))
    )
    RECORDS.extend(r for r in dataset.load(subjects, workers=16) if len(r.sils) > 0)
    print(f"{time.time() - T0:7.1f}s decoded {len(RECORDS)} sequences of {len(subjects)} subjects", flush=True)
    context = mp.get_context("fork")
    children = [
        context.Process(target=child, args=(path, T0 + args.deadline, T0 + args.hard_stop, args.out, args.chunk))
        for path in args.configs
    ]
    for process in children:
        process.start()
    for process in children:
        process.join()
    print(f"{time.time() - T0:7.1f}s all done", flush=True)


if __name__ == "__main__":
    main()
