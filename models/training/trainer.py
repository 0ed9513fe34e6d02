"""The training loop: P×K triplet batches, triplet + cross-entropy, SGD, AMP, DDP, TensorBoard, resume.

Run it with ``gaitid train --config CONFIG.yaml``; on several GPUs with
``torchrun --nproc-per-node N -m service.cli train --config CONFIG.yaml``. Checkpoints are
written in OpenGait's format to ``run_dir/checkpoints/<arch>-<iteration>.pt`` (atomically), and
``--resume`` continues from the newest one with the same batches an uninterrupted run would see.
"""

import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from models.architectures import build_model
from models.checkpoint import read_checkpoint, save_checkpoint, state_dict_of
from models.configs import config_to_dict
from models.data.casia_b import SilhouetteDataset, iter_subject_range
from models.data.records import SequenceRecord
from models.errors import ModelError
from models.training.config import TrainConfig
from models.training.losses import part_cross_entropy, triplet_loss
from models.training.sampling import BatchStream, TripletBatches

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class StepLog:
    """What one logged step reports."""

    iteration: int
    loss: float
    triplet: float
    cross_entropy: float
    lr: float
    sequences_per_second: float


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch; batches are seeded per iteration separately."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parse_subject_range(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise ModelError(f"subject range {text!r} must look like 001-074", code="bad_train_config") from None


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the highest iteration in a run folder."""
    candidates = sorted(checkpoint_dir(run_dir).glob("*-[0-9]*.pt"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return candidates[-1] if candidates else None


def _print_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _discard_line(_: str) -> None:
    pass


class _Distributed:
    """Process-group facts under torchrun (WORLD_SIZE > 1), or a single process."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class Trainer:
    """One training run; construct, then call :meth:`run`."""

    def __init__(self, config: TrainConfig, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.dist = _Distributed()
        # under torchrun only rank 0 reports; the others would repeat every line
        self.log = (log or _print_line) if self.dist.is_main else _discard_line
        seed_everything(config.seed)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = self._device()
        self.model: nn.Module = build_model(config.arch, config.model).to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if config.init_weights is not None:
            self._load_initial_weights(config.init_weights)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=config.optimizer.lr,
            momentum=config.optimizer.momentum,
            weight_decay=config.optimizer.weight_decay,
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(config.optimizer.milestones), gamma=config.optimizer.gamma
        )
        use_scaler = config.amp == "fp16" and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.iteration = 0
        self.history: list[StepLog] = []

    def _load_initial_weights(self, path: Path) -> None:
        """Start a new stage from an earlier run's weights, with a fresh optimizer and schedule.

        This is how a finished schedule is continued with a warm restart of the learning rate
        (``--resume`` would keep the old optimizer state and its decayed rate). A resumed stage
        loads its own checkpoint over these weights, so resuming it stays exact. A stage that trains
        on more subjects (all of CASIA-B after a recipe was validated on 001-074) has a wider
        identity classifier: the subjects the earlier stage knew keep their class weights, the new
        ones start from the fresh initialisation.
        """
        earlier = state_dict_of(read_checkpoint(path), str(path))
        state = self.model.state_dict()
        for name, value in earlier.items():
            target = state.get(name)
            if target is not None and target.shape != value.shape:
                if target.shape[:-1] != value.shape[:-1] or target.shape[-1] < value.shape[-1]:
                    raise ModelError(
                        f"{path}: {name} has shape {list(value.shape)}, this model {list(target.shape)}; "
                        "only the classifier may grow (more training subjects)",
                        code="bad_checkpoint",
                    )
                widened = target.clone()
                widened[..., : value.shape[-1]] = value
                earlier[name] = widened
                self.log(f"{name}: {value.shape[-1]} known classes kept, {target.shape[-1] - value.shape[-1]} new")
        self.model.load_state_dict(earlier)
        self.log(f"initial weights from {path}")

    def _device(self) -> torch.device:
        wanted = self.config.device
        if wanted == "auto":
            wanted = "cuda" if torch.cuda.is_available() else "cpu"
        if wanted == "cuda":
            if not torch.cuda.is_available():
                raise ModelError("training config asks for cuda, but no CUDA device is visible", code="no_cuda")
            return torch.device("cuda", self.dist.local_rank)
        return torch.device("cpu")

    def load_data(self) -> TripletBatches:
        dataset = SilhouetteDataset(self.config.data_root, self.config.cache_dir)
        first, last = parse_subject_range(self.config.train_subjects)
        subjects = list(iter_subject_range(dataset.subjects, first, last))
        if not subjects:
            raise ModelError(f"no subjects {self.config.train_subjects} in {self.config.data_root}", code="bad_dataset")
        started = time.perf_counter()
        records = [r for r in dataset.load(subjects, workers=max(1, self.config.workers)) if len(r.sils) > 0]
        self.log(
            f"loaded {len(records)} sequences of {len(subjects)} subjects "
            f"({sum(len(r.sils) for r in records)} frames) in {time.perf_counter() - started:.1f}s"
        )
        return self.batches_for(records)

    def batches_for(self, records: list[SequenceRecord]) -> TripletBatches:
        """This run's batches from records already decoded (several runs can share one decoding)."""
        classes = len({r.subject for r in records})
        if classes != self.config.model.classes:
            raise ModelError(
                f"model.config.classes is {self.config.model.classes} but the training split has {classes} subjects",
                code="bad_train_config",
            )
        return TripletBatches(records, self.config.sampling, self.config.seed, self.config.footage)

    def resume(self, path: Path | None = None) -> None:
        """Restore model, optimizer, scheduler, scaler and iteration from a checkpoint."""
        path = path or latest_checkpoint(self.config.run_dir)
        if path is None:
            self.log(f"no checkpoint in {checkpoint_dir(self.config.run_dir)}: starting from iteration 0")
            return
        payload = read_checkpoint(path)
        self.model.load_state_dict(state_dict_of(payload, str(path)))
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self._apply_configured_schedule()
        if payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.iteration = int(payload["iteration"])
        self.log(f"resumed from {path} at iteration {self.iteration}")

    def _apply_configured_schedule(self) -> None:
        """Let the config's milestones and gamma win over the ones saved in the checkpoint.

        A scheduler's state dict carries its milestones, so without this a resumed run would keep the
        schedule it was started with even after the config was edited (for example to end a CPU run
        sooner). With an unchanged config this is a no-op, so resume stays exact. Only milestones
        still ahead of the current iteration can change the outcome; the learning rate already in
        the optimizer is left as it is.
        """
        configured = Counter(self.config.optimizer.milestones)
        if configured != self.scheduler.milestones or self.config.optimizer.gamma != self.scheduler.gamma:
            self.log(
                f"learning-rate schedule from the config: milestones {sorted(configured)}, "
                f"gamma {self.config.optimizer.gamma} (checkpoint had {sorted(self.scheduler.milestones)})"
            )
        self.scheduler.milestones = configured
        self.scheduler.gamma = self.config.optimizer.gamma

    def checkpoint_metadata(self) -> dict[str, Any]:
        """What every checkpoint of this run carries beside the weights (full resume points and the GPU driver's
        weights-only files alike): the architecture and its configuration, to rebuild the network from the file."""
        return {"gaitid": {"arch": self.config.arch, "config": config_to_dict(self.config.model)}}

    def save(self) -> Path:
        path = checkpoint_dir(self.config.run_dir) / f"{self.config.arch}-{self.iteration:06d}.pt"
        save_checkpoint(
            path,
            self.model,
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            iteration=self.iteration,
            extra={"scaler": self.scaler.state_dict(), **self.checkpoint_metadata()},
        )
        old = sorted(checkpoint_dir(self.config.run_dir).glob(f"{self.config.arch}-*.pt"))
        for stale in old[: -self.config.keep_checkpoints]:
            stale.unlink()
        return path

    def _step(self, sils: torch.Tensor, labels: torch.Tensor, model: nn.Module) -> tuple[float, float]:
        autocast = self.config.amp in _AMP_DTYPES
        with torch.autocast(self.device.type, dtype=_AMP_DTYPES.get(self.config.amp), enabled=autocast):
            out = model(sils)
        triplet = triplet_loss(out.embeddings, labels, self.config.loss.triplet_margin)
        cross_entropy = part_cross_entropy(out.logits, labels, self.config.loss.label_smoothing)
        loss = self.config.loss.triplet_weight * triplet + self.config.loss.cross_entropy_weight * cross_entropy
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(triplet.detach()), float(cross_entropy.detach())

    def run(self, batches: TripletBatches, stop: int | None = None) -> list[StepLog]:
        """Train until iteration ``stop`` (default: the configured total), checkpointing on the way."""
        stop = self.config.iterations if stop is None else stop
        model: nn.Module = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self.config.compile:
            # the compiled wrapper shares the parameters: checkpoints still save self.model's state
            model = torch.compile(model)
        writer = self._writer()
        if self.dist.is_main:
            self.config.run_dir.mkdir(parents=True, exist_ok=True)
            (self.config.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config.raw, sort_keys=False))
        stream = BatchStream(batches, self.iteration, stop, self.dist.rank)
        loader = torch.utils.data.DataLoader(
            stream,
            batch_size=None,
            num_workers=self.config.workers,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )
        model.train()
        window_started, window_sequences = time.perf_counter(), 0
        for iteration, sils, labels in loader:
            assert iteration == self.iteration, f"batch stream out of step: {iteration} != {self.iteration}"
            sils, labels = sils.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            triplet, cross_entropy = self._step(sils, labels, model)
            self.iteration += 1
            window_sequences += len(labels) * self.dist.world  # every rank trains an equal batch in lockstep
            if self.iteration % self.config.log_every == 0 or self.iteration == stop:
                elapsed = time.perf_counter() - window_started
                entry = StepLog(
                    self.iteration,
                    triplet + cross_entropy,
                    triplet,
                    cross_entropy,
                    self.scheduler.get_last_lr()[0],
                    window_sequences / max(elapsed, 1e-9),
                )
                self.history.append(entry)
                self._report(entry, stop, writer)
                window_started, window_sequences = time.perf_counter(), 0
            if self.dist.is_main and (self.iteration % self.config.checkpoint_every == 0 or self.iteration == stop):
                self.save()
        if writer is not None:
            writer.close()
        return self.history

    def _writer(self) -> Any:
        if not self.dist.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter  # imported late: only training needs it

        return SummaryWriter(str(self.config.run_dir / "tensorboard"), purge_step=self.iteration + 1)

    def _report(self, entry: StepLog, stop: int, writer: Any) -> None:
        if writer is not None:
            writer.add_scalar("loss/total", entry.loss, entry.iteration)
            writer.add_scalar("loss/triplet", entry.triplet, entry.iteration)
            writer.add_scalar("loss/cross_entropy", entry.cross_entropy, entry.iteration)
            writer.add_scalar("lr", entry.lr, entry.iteration)
            writer.add_scalar("speed/sequences_per_second", entry.sequences_per_second, entry.iteration)
        if self.dist.is_main:
            remaining = (stop - entry.iteration) * self.config.sampling.subjects_per_batch
            remaining *= self.config.sampling.sequences_per_subject / max(entry.sequences_per_second, 1e-9)
            self.log(
                f"iter {entry.iteration}/{stop}  loss {entry.loss:.4f} (triplet {entry.triplet:.4f}, "
                f"ce {entry.cross_entropy:.4f})  lr {entry.lr:.4g}  {entry.sequences_per_second:.1f} seq/s  "
                f"eta {remaining / 60:.0f} min"
            )
