"""A short CPU training run: the loss goes down, and a resumed run continues from the same state."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoint import load_model, read_checkpoint
from models.errors import ModelError
from models.evaluation.casia_b import GALLERY_CONDITIONS, SequenceLabel, protocol_pairs
from models.evaluation.runner import FIT_SEQUENCES_PER_SUBJECT, fit_matching, load_split, sample_per_subject
from models.loading import create_embedder
from models.matching import MatchingTransform
from models.registry import resolve
from models.training.config import TrainConfig, load_train_config
from models.training.trainer import Trainer, latest_checkpoint
from tests.conftest import REPO, SHARED, shared_path

CASIA_B = SHARED / "data" / "casia-b"


@pytest.fixture()
def smoke_config(tmp_path):
    shared_path("data/casia-b", "sil")
    config = load_train_config(REPO / "configs" / "smoke_cpu.yaml", {"run_dir": str(tmp_path / "run")})
    return replace(config, data_root=CASIA_B, cache_dir=tmp_path / "cache")


def _quiet(_: str) -> None:
    pass


@pytest.mark.slow
def test_loss_goes_down(smoke_config):
    trainer = Trainer(smoke_config, log=_quiet)
    history = trainer.run(trainer.load_data())
    losses = [entry.loss for entry in history]
    assert len(losses) == 4
    assert losses[-1] < 0.8 * losses[0], losses
    saved = sorted((smoke_config.run_dir / "checkpoints").glob("*.pt"))
    assert [p.name for p in saved] == ["gaitbase-000020.pt", "gaitbase-000040.pt"]
    _model, shape = load_model("gaitbase", saved[-1])  # the checkpoint is OpenGait-format and loads
    assert shape.channels == (8, 16, 32, 64) and shape.classes == 4
    assert (smoke_config.run_dir / "tensorboard").is_dir()


@pytest.mark.slow
def test_resume_continues_from_the_same_state(smoke_config, tmp_path: Path):
    straight = Trainer(replace(smoke_config, run_dir=tmp_path / "straight", iterations=16), log=_quiet)
    straight.run(straight.load_data())

    interrupted = replace(smoke_config, run_dir=tmp_path / "resumed", iterations=16, checkpoint_every=8)
    first = Trainer(interrupted, log=_quiet)
    first.run(first.load_data(), stop=8)
    second = Trainer(interrupted, log=_quiet)
    second.resume()
    assert second.iteration == 8
    second.run(second.load_data())

    assert second.iteration == straight.iteration == 16
    for (name, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert second.scheduler.state_dict() == straight.scheduler.state_dict()

    shortened = replace(interrupted, optimizer=replace(interrupted.optimizer, milestones=(10,), gamma=0.5))
    third = Trainer(shortened, log=_quiet)
    third.resume(tmp_path / "resumed" / "checkpoints" / "gaitbase-000008.pt")
    third.run(third.load_data(), stop=11)
    base_lr = shortened.optimizer.lr
    assert third.optimizer.param_groups[0]["lr"] == pytest.approx(base_lr * 0.5), "the edited schedule applies"


def assert_trains_like_the_plain_loop(config: TrainConfig, run_dir: Path, **options: bool) -> None:
    """One step with the GPU speed ``options`` on gives the plain loop's loss and weight update, and a
    checkpoint that loads as any OpenGait checkpoint (no compiled wrapper's ``_orig_mod`` keys).

    One step is compared: on the smoke batch, rounding from another convolution algorithm grows to
    percents of the loss within a few steps. The update must agree to 2% of its size (measured on
    this CPU: 0.6% for channels_last alone, 0.02% compiled).
    """
    one_step = replace(config, iterations=1, log_every=1)
    plain = Trainer(replace(one_step, run_dir=run_dir / "plain"), log=_quiet)
    fast = Trainer(replace(one_step, run_dir=run_dir / "fast", **options), log=_quiet)
    start = {name: value.float().clone() for name, value in plain.model.state_dict().items()}
    plain_loss = plain.run(plain.load_data())[0].loss
    fast_loss = fast.run(fast.load_data())[0].loss
    assert fast_loss == pytest.approx(plain_loss, rel=1e-3)
    plain_after, fast_after = plain.model.state_dict(), fast.model.state_dict()
    names = [name for name, value in start.items() if value.is_floating_point()]
    plain_update = torch.cat([(plain_after[n].float().cpu() - start[n].cpu()).flatten() for n in names])
    fast_update = torch.cat([(fast_after[n].float().cpu() - start[n].cpu()).flatten() for n in names])
    assert float((fast_update - plain_update).norm() / plain_update.norm()) < 0.02
    saved = latest_checkpoint(run_dir / "fast")
    assert saved is not None and not any("_orig_mod" in key for key in read_checkpoint(saved)["model"])
    _model, shape = load_model("gaitbase", saved)
    assert shape.channels == config.model.channels


def test_channels_last_steps_train_like_the_plain_loop(smoke_config, tmp_path: Path):
    """``channels_last`` changes the memory layout, not what a step computes or what is saved
    (``compile``, a GPU option whose first CPU compile takes a minute, is checked in test_gpu.py)."""
    assert_trains_like_the_plain_loop(smoke_config, tmp_path, channels_last=True)


def test_a_new_stage_starts_from_earlier_weights_with_a_fresh_optimizer(smoke_config, tmp_path: Path):
    earlier = Trainer(replace(smoke_config, run_dir=tmp_path / "stage1"), log=_quiet)
    with torch.no_grad():
        for parameter in earlier.model.parameters():
            parameter.add_(torch.randn_like(parameter))  # anything a fresh model could not equal
    earlier.iteration = 4800
    saved = earlier.save()

    stage2 = replace(smoke_config, run_dir=tmp_path / "stage2", init_weights=saved)
    later = Trainer(stage2, log=_quiet)
    for (name, a), b in zip(earlier.model.state_dict().items(), later.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{name} was not taken from the earlier stage"
    assert later.iteration == 0 and not later.optimizer.state
    assert later.optimizer.param_groups[0]["lr"] == stage2.optimizer.lr


def test_a_stage_on_more_subjects_keeps_the_known_classes(smoke_config, tmp_path):
    """All 124 subjects after a recipe was validated on 74: the classifier grows, the rest is loaded."""

    earlier = Trainer(smoke_config, log=_quiet)
    saved = earlier.save()
    wider = replace(smoke_config.model, classes=smoke_config.model.classes + 3)
    later = Trainer(replace(smoke_config, run_dir=tmp_path / "wider", init_weights=saved, model=wider), log=_quiet)
    for name, value in earlier.model.state_dict().items():
        grown = later.model.state_dict()[name]
        if grown.shape == value.shape:
            assert torch.equal(grown, value), name
        else:
            assert grown.shape[-1] == value.shape[-1] + 3 and torch.equal(grown[..., : value.shape[-1]], value), name

    narrower = replace(smoke_config.model, classes=smoke_config.model.classes - 1)
    with pytest.raises(ModelError, match="only the classifier may grow"):
        Trainer(replace(smoke_config, run_dir=tmp_path / "narrow", init_weights=saved, model=narrower), log=_quiet)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_repository_configs_parse_and_build(path):
    from models.architectures import build_model
    from models.training.trainer import parse_subject_range

    config = load_train_config(path)
    model = build_model(config.arch, config.model)
    first, last = parse_subject_range(config.train_subjects)
    assert config.model.classes == last - first + 1 or path.name == "smoke_cpu.yaml"
    assert sum(p.numel() for p in model.parameters()) > 0


def test_unknown_config_keys_are_refused(tmp_path):

    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "configs" / "smoke_cpu.yaml").read_text() + "\nlearning_rate: 3\n")
    with pytest.raises(ModelError, match="unknown keys learning_rate"):
        load_train_config(bad)


def test_a_later_stage_states_only_what_changes(tmp_path):
    """``base``: mappings merge at any depth, other values replace; the run's config copy is complete."""
    (tmp_path / "base.yaml").write_text((REPO / "configs" / "smoke_cpu.yaml").read_text())
    (tmp_path / "later.yaml").write_text(
        "base: base.yaml\nrun_dir: var/runs/later\nseed: 7\noptimizer: {milestones: [35]}\n"
        "model: {config: {channels: [8, 16, 32, 32]}}\n"
    )
    base, later = load_train_config(tmp_path / "base.yaml"), load_train_config(tmp_path / "later.yaml")
    assert (later.seed, later.run_dir, later.optimizer.milestones) == (7, Path("var/runs/later"), (35,))
    assert later.optimizer.lr == base.optimizer.lr == 0.05  # the parent's, kept beside the changed milestones
    assert later.model.channels == (8, 16, 32, 32) and later.model.classes == base.model.classes == 4
    assert later.sampling == base.sampling and later.data_root == base.data_root
    assert "base" not in later.raw and later.raw["optimizer"] == {"lr": 0.05, "milestones": [35], "gamma": 0.1}


def test_a_config_extending_itself_is_refused(tmp_path):

    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ModelError, match="its own base"):
        load_train_config(tmp_path / "a.yaml")


def _same_subject(records) -> np.ndarray:
    """Which of the protocol pairs of ``records`` are of one subject."""
    labels = [SequenceLabel(r.subject, r.condition, r.view) for r in records]
    return protocol_pairs(np.eye(len(records)), labels)[1]


@pytest.mark.slow
def test_a_trained_checkpoint_is_evaluated_published_and_registered(
    smoke_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The path a new default takes: checkpoint → ``gaitid evaluate`` → ``gaitid models publish`` → the registry."""
    import json

    import yaml

    from tests.conftest import run_cli

    trainer = Trainer(smoke_config, log=_quiet)
    trainer.iteration = 40
    checkpoint = trainer.save()
    report = tmp_path / "eval.json"
    evaluated = run_cli(
        "evaluate", "--dataset", "casia-b", "--data", str(CASIA_B), "--subjects", "075-076",
        "--fit-subjects", "001-002", "--held-out", "075", "--checkpoint", str(checkpoint), "--arch", "gaitbase",
        "--cache-dir", str(tmp_path / "cache"), "--json", str(report), "--ranking-window-frames", "20",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    # progress in a pipe: plain lines (a terminal's \r redraws would run together in a log)
    assert "\r" not in evaluated.stderr and "embedded 48/48 sequences\n" in evaluated.stderr, evaluated.stderr
    evaluation = json.loads(report.read_text())
    assert {"NM", "BG", "CL"} <= set(evaluation) and set(evaluation["open_set"]) == {"far_1e-2", "far_1e-3"}
    # matching fitted on the training split (2 subjects × 24 sequences); the calibration's same-person pairs
    # from every sequence of subject 075, never trained on, which its check on the test split leaves out
    fitted, calibration = evaluation["matching_fit"], evaluation["calibration"]
    assert (fitted["subjects"], fitted["sequences"]) == ("001-002", 48) and np.shape(fitted["mean"]) == (256, 16)
    held_out = load_split(CASIA_B, "075", tmp_path / "cache")
    assert (fitted["held_out"], fitted["held_out_sequences"]) == ("075", len(held_out)) and len(held_out) > 24
    checked = load_split(CASIA_B, "076", tmp_path / "cache")
    assert calibration["left_out"] == "075" and calibration["pairs"] == len(_same_subject(checked))
    fit_sample = sample_per_subject(load_split(CASIA_B, "001-002", tmp_path / "cache"), FIT_SEQUENCES_PER_SUBJECT)
    assert fitted["pairs"] == int((~_same_subject(fit_sample)).sum() + _same_subject(held_out).sum())
    with pytest.raises(ModelError, match="overlap the fit subjects") as overlapping:  # refused before embedding
        fit_matching(None, CASIA_B, "001-002", cache_dir=tmp_path / "cache", held_out="002-003")
    assert overlapping.value.code == "bad_option"
    assert calibration["slope"] > 0 and 0 <= calibration["ece"] <= 1 and calibration["reliability"]
    assert all(0 <= p["threshold"] <= 1 and p["scale"] == "confidence" for p in evaluation["open_set"].values())
    assert "expected calibration error" in evaluated.stdout

    stage = tmp_path / "stage2.yaml"
    stage.write_text((REPO / "configs" / "smoke_cpu.yaml").read_text() + "init_weights: runs/stage1/last.pt\nseed: 5\n")
    out = tmp_path / "published"
    clips = tmp_path / "clips.json"  # the shape of a `gaitid evaluate --dataset clips --json` report
    scores = {"similarity": 0.8, "confidence": 0.99}
    appearance = {"clip": "c.mp4", "person": "J", "track": {"id": 1, "good_frames": 120}, "top1": "J"}
    appearance |= {"genuine": scores, "best_impostor": {"subject": "R", **scores}, "decisions": {"far_1e-2": "match J"}}
    point = {"decision_right": 1, "false_matches": 0, "open_set_removed_unknown": "1/1", "open_set_others_changed": 0}
    summary = {"appearances": 1, "found": 1, "top1_right": 1, "far_1e-2": point}
    ranking = {"frames": 60, "stride": 30, "longer_than": 90}
    clips.write_text(json.dumps({"appearances": [appearance], "summary": summary, "ranking_windows": ranking}))
    published = run_cli(
        "models", "publish", "mini", "--checkpoint", str(checkpoint), "--arch", "gaitbase", "--version", "7",
        "--evaluation", str(report), "--config", str(stage), "--trained-on", "a test CPU, 1 s",
        "--output-dir", str(out), "--clips", str(clips),
    )  # fmt: skip
    assert published.returncode == 0, published.stderr

    card = yaml.safe_load((out / "mini.yaml").read_text())
    assert card["version"] == "7" and card["config"]["channels"] == [8, 16, 32, 64]
    for point, values in evaluation["open_set"].items():
        assert card["thresholds"][point] == pytest.approx(values["threshold"], abs=1e-6)
    assert card["description"] == (
        f"CASIA-B rank-1 NM/BG/CL {evaluation['NM']:.1f}/{evaluation['BG']:.1f}/{evaluation['CL']:.1f}"
    )
    assert card["transform"] == "mini.transform.npz" and card["calibration"]["slope"] == calibration["slope"]
    # the probes longer than 30 frames were ranked by their best 20-frame window
    probes = [r for r in load_split(CASIA_B, "075-076", tmp_path / "cache") if r.condition not in GALLERY_CONDITIONS]
    assert evaluation["ranking_windows"]["probes"] == sum(len(r.sils) > 30 for r in probes) > 0
    assert card["ranking_windows"] == {"frames": 20, "stride": 10, "longer_than": 30}
    document = (out / "mini.md").read_text()
    assert "seed 5" in document and "Started from: `runs/stage1/last.pt`" in document
    assert "Evaluated with: `gaitid evaluate --dataset casia-b --subjects 075-076 --held-out 075`" in document
    assert f"expected calibration error **{calibration['ece']:.4f}**" in document
    assert f"all {len(held_out)} sequences of subjects 075, held out of the model's training" in document
    assert "across views, both classes weighted equally; subjects 075, which fitted it, left out)" in document
    assert "Top-1 right for 1 of 1 probe appearances (1 with a usable track). Walks over 90 frames rank" in document
    assert "| c.mp4 | J | J | 0.990 / 0.8000 | R 0.990 / 0.8000 | far_1e-2: match J |" in document
    assert f"**{evaluation['metrics']['euclidean']['means']['CL']:.2f}**" in document
    weights = torch.load(out / "mini.pt", weights_only=True)
    assert weights["iteration"] == 40
    assert all(v.dtype == torch.float16 for v in weights["model"].values() if v.is_floating_point())
    # its last layer maps 64 channels to each part's 256 values: the transform keeps a basis of those
    # 64 directions, and the published model's real embeddings score the same in vectors a quarter as long
    assert "so the same scores come from vectors 1,024 long instead of 4,096" in document
    monkeypatch.setenv("GAITID_MODELS_DIR", str(out))
    spec = resolve("mini")
    assert spec.transform.basis.shape == (16, 256, 64) and spec.transform.vector_length((256, 16)) == 1024
    walks = [r.sils for r in load_split(CASIA_B, "076", tmp_path / "cache")[:8]]
    embedded = create_embedder(spec.arch, spec.weights, config=spec.config).embed(walks)
    unprojected = MatchingTransform(spec.transform.mean)
    np.testing.assert_allclose(
        spec.transform.similarity(embedded, embedded), unprojected.similarity(embedded, embedded), atol=1e-4
    )

    listed = run_cli("models", "list", env={"GAITID_MODELS_DIR": str(out)})
    assert listed.returncode == 0 and "mini" in listed.stdout, listed.stdout + listed.stderr
    shown = run_cli("models", "show", "mini", env={"GAITID_MODELS_DIR": str(out)})
    assert shown.returncode == 0 and "thresholds are confidences" in shown.stdout, shown.stdout + shown.stderr
