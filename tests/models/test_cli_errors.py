"""The command line's refusals of bad options and files: exit status 2 and one line with the error code,
before any model is loaded or any data read (``gaitid`` run in this process: the options are parsed and
checked exactly as on a shell)."""

from pathlib import Path

import numpy as np
import pytest

from service.cli import main

CONFIGS = {
    "no_model.yaml": "data: {}\nrun_dir: {d}/run\n",
    "bad_arch.yaml": "model: {arch: resnet-gait}\ndata: {}\nrun_dir: {d}/run\n",
    "unknown_key.yaml": "model: {arch: gaitbase}\ndata: {}\nrun_dir: {d}/run\ncolour: red\n",
    "no_run_dir.yaml": "model: {arch: gaitbase}\ndata: {}\n",
    "broken.yaml": "model: {arch: gaitbase\n",  # YAML's error spans lines: the CLI still prints one
}


@pytest.fixture()
def files(isolated_dirs: Path) -> Path:
    np.save(isolated_dirs / "sils.npy", np.zeros((2, 8, 64, 64), np.uint8))
    for name, text in CONFIGS.items():
        (isolated_dirs / name).write_text(text.replace("{d}", str(isolated_dirs)))
    return isolated_dirs


EMBED = ["embed", "--input", "{d}/sils.npy", "--output", "{d}/out.npy"]


@pytest.mark.parametrize(
    ("argv", "code", "words"),
    [
        ([*EMBED, "--model", "default", "--checkpoint", "{d}/c.pt"], "conflicting_options", "not both"),
        (EMBED, "missing_option", "--model NAME"),
        ([*EMBED, "--checkpoint", "{d}/c.pt"], "missing_option", "needs --arch"),
        (["embed", "--input", "{d}/none.npy", "--output", "{d}/o.npy", "--model", "default"], "input_not_found", ""),
        (["train", "--config", "{d}/none.yaml"], "input_not_found", "none.yaml"),
        (["train", "--config", "{d}/no_model.yaml"], "bad_train_config", "lacks 'model'"),
        (["train", "--config", "{d}/unknown_key.yaml"], "bad_train_config", "unknown keys colour"),
        (["train", "--config", "{d}/no_run_dir.yaml"], "bad_train_config", "lacks 'run_dir'"),
        (["train", "--config", "{d}/bad_arch.yaml"], "unknown_architecture", "resnet-gait"),
        (["train", "--config", "{d}/broken.yaml"], "bad_train_config", "is unreadable: while parsing"),
        (
            ["evaluate", "--data", "{d}", "--model", "default", "--held-out", "070-130"],
            "bad_option",
            "--held-out 070-130 covers every test subject 075-124",
        ),
        (["evaluate", "--data", "{d}", "--model", "default", "--ranking-window-frames", "-6"], "bad_option", "ranking"),
    ],
)
def test_bad_options_and_files_are_one_line_errors(files: Path, capsys, argv: list[str], code: str, words: str):
    status = main([arg.format(d=files) for arg in argv])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert err.startswith(f"gaitid: error [{code}]: ") and len(err.splitlines()) == 1, err
    assert words in err, err
    assert not (files / "out.npy").exists() and not (files / "run").exists(), "nothing was written"


@pytest.mark.parametrize(
    ("card", "words"),
    [
        ("name: mine\narch: [gaitbase\n", "mine.yaml is unreadable"),
        (
            "name: mine\narch: gaitbase\nweights: m.pt\nranking_windows: {frames: 60, stride: 20, longer_than: 30}\n",
            "ranking_windows needs 0 < stride <= frames <= longer_than",
        ),
    ],
)
def test_a_broken_user_model_card_is_a_one_line_error(files: Path, capsys, card: str, words: str):
    (files / "models").mkdir()
    (files / "models" / "mine.yaml").write_text(card)
    status = main(["models", "list"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("gaitid: error [bad_model_card]: ") and len(err.splitlines()) == 1, err
    assert words in err


def test_a_model_the_gallery_cannot_serve_is_refused_at_registration(files: Path, capsys):
    """``models add --metric euclidean``: one line naming why, and no card written (it would fail at enroll)."""
    from models.registry import resolve

    weights = resolve("default").weights
    status = main(["models", "add", "far", "--arch", "gaitbase", "--checkpoint", str(weights), "--metric", "euclidean"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("gaitid: error [model_not_servable]: ") and len(err.splitlines()) == 1, err
    assert "euclidean" in err
    assert not list((files / "models").glob("*.yaml")), "no card was written"


def test_a_registered_checkpoint_card_states_its_shape(files: Path, capsys):
    from models.registry import resolve

    weights = resolve("default").weights
    assert main(["models", "add", "mine", "--arch", "gaitbase", "--checkpoint", str(weights)]) == 0
    spec = resolve("mine")
    assert spec.embedding_shape == (256, 16) and spec.config is not None and spec.config.channels == (16, 32, 64, 64)
