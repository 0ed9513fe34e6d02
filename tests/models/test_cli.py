"""The ``gaitid`` command line as a user runs it: help, embed, models, bench."""

import numpy as np
import pytest

from service.cli import main
from tests.conftest import run_cli

TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


@pytest.mark.parametrize("command", [[], ["embed"], ["export"], ["models"], ["models", "add"], ["bench", "embed"]])
def test_every_command_has_help_with_an_example(command, capsys):
    # in this process (argparse prints the help and exits 0 exactly as on a shell): a CLI start costs seconds
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0, capsys.readouterr().err
    assert "example" in capsys.readouterr().out


@pytest.mark.parametrize("arch", ["gaitbase", "deepgaitv2"])
def test_embed_reproduces_reference_embeddings(arch, opengait_dir, fixture_array, tmp_path):
    output = tmp_path / "emb.npy"
    result = run_cli(
        "embed",
        "--arch",
        arch,
        "--checkpoint",
        str(opengait_dir / f"{arch}_random.pt"),
        "--input",
        str(opengait_dir / "input_sils_64x64.npy"),
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    embeddings = np.load(output)
    assert embeddings.dtype == np.float32 and embeddings.shape == (2, 256, 16)
    np.testing.assert_allclose(embeddings, fixture_array(f"{arch}_embeddings.npy"), **TOLERANCE)


def test_embed_single_sequence_and_onnx_backend(opengait_dir, fixture_array, tmp_path):
    single = tmp_path / "one.npy"
    np.save(single, fixture_array("input_sils_64x64.npy")[1])  # [N, 64, 64]
    output = tmp_path / "emb.npy"
    result = run_cli(
        "embed",
        "--arch",
        "gaitbase",
        "--checkpoint",
        str(opengait_dir / "gaitbase_random.pt"),
        "--input",
        str(single),
        "--output",
        str(output),
        "--backend",
        "onnx",
        env={"GAITID_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr
    assert "onnxruntime CPU" in result.stdout
    np.testing.assert_allclose(np.load(output)[0], fixture_array("gaitbase_embeddings.npy")[1], **TOLERANCE)


def test_embed_strips_trailing_padding_frames(opengait_dir, fixture_array, tmp_path):
    output = tmp_path / "emb.npy"
    padded = tmp_path / "padded.npy"
    np.save(padded, fixture_array("input_sils_lengths.npy")[:2])  # 5 and 30 real frames, padded to 300
    result = run_cli(
        "embed",
        "--arch",
        "gaitbase",
        "--checkpoint",
        str(opengait_dir / "gaitbase_random.pt"),
        "--input",
        str(padded),
        "--output",
        str(output),
    )
    assert result.returncode == 0, result.stderr
    assert "of 5, 30 frames" in result.stdout
    np.testing.assert_allclose(np.load(output), fixture_array("gaitbase_embeddings_lengths.npy")[:2], **TOLERANCE)


def _embed_with_reference_gaitbase(path, opengait_dir, tmp_path):
    """``gaitid embed`` of ``path`` with the OpenGait reference GaitBase checkpoint."""
    checkpoint = str(opengait_dir / "gaitbase_random.pt")
    output = str(tmp_path / "out.npy")
    return run_cli("embed", "--arch", "gaitbase", "--checkpoint", checkpoint, "--input", str(path), "--output", output)


@pytest.mark.parametrize(
    ("array", "code"),
    [
        (np.zeros((2, 30, 64, 64), np.float32), "bad_silhouettes"),
        (np.zeros((64, 64), np.uint8), "bad_silhouettes"),
        (np.full((30, 32, 32), 255, np.uint8), "bad_silhouettes"),
        (np.full((3, 64, 64), 255, np.uint8), "bad_silhouettes"),  # fewer than 5 frames
    ],
)
def test_embed_bad_inputs_are_one_line_errors(array, code, opengait_dir, tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    result = _embed_with_reference_gaitbase(path, opengait_dir, tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"gaitid: error [{code}]"), result.stderr


def test_embed_input_that_is_not_npy(tmp_path, opengait_dir):
    path = tmp_path / "text.npy"
    path.write_text("not an array")
    result = _embed_with_reference_gaitbase(path, opengait_dir, tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("gaitid: error [bad_input]"), result.stderr


def test_models_add_list_show_and_embed_by_name(opengait_dir, fixture_array, tmp_path):
    env = {"GAITID_MODELS_DIR": str(tmp_path / "models")}
    bundled = run_cli("models", "list", env=env)
    assert bundled.returncode == 0 and "ref" not in bundled.stdout
    assert any(line.startswith("default ") and " bundled " in line for line in bundled.stdout.splitlines())
    added = run_cli(
        "models",
        "add",
        "ref",
        "--arch",
        "deepgaitv2",
        "--checkpoint",
        str(opengait_dir / "deepgaitv2_random.pt"),
        "--threshold-far-1e2",
        "0.75",
        env=env,
    )
    assert added.returncode == 0, added.stderr
    listed = run_cli("models", "list", env=env)
    assert "ref" in listed.stdout and "deepgaitv2" in listed.stdout and "far_1e-2=0.7500" in listed.stdout
    shown = run_cli("models", "show", "ref", env=env)
    assert "arch: deepgaitv2" in shown.stdout
    output = tmp_path / "emb.npy"
    embedded = run_cli(
        "embed",
        "--model",
        "ref",
        "--input",
        str(opengait_dir / "input_sils_64x64.npy"),
        "--output",
        str(output),
        env=env,
    )
    assert embedded.returncode == 0, embedded.stderr
    np.testing.assert_allclose(np.load(output), fixture_array("deepgaitv2_embeddings.npy"), **TOLERANCE)


def test_models_add_refuses_a_checkpoint_that_does_not_load(opengait_dir, tmp_path):
    env = {"GAITID_MODELS_DIR": str(tmp_path / "models")}
    result = run_cli(
        "models",
        "add",
        "wrong",
        "--arch",
        "gaitbase",
        "--checkpoint",
        str(opengait_dir / "deepgaitv2_random.pt"),
        env=env,
    )
    assert result.returncode == 2 and "checkpoint_mismatch" in result.stderr
    assert not (tmp_path / "models" / "wrong.yaml").exists()


def test_unknown_model_lists_the_available_ones(tmp_path):
    result = run_cli(
        "embed",
        "--model",
        "nope",
        "--input",
        "x.npy",
        "--output",
        "y.npy",
        env={"GAITID_MODELS_DIR": str(tmp_path / "models")},
    )
    assert result.returncode == 2 and result.stderr.startswith("gaitid: error [unknown_model]: unknown model 'nope'")


def test_bench_embed_prints_a_table():
    result = run_cli(
        "bench",
        "embed",
        "--arch",
        "gaitbase",
        "--lengths",
        "5",
        "--batches",
        "1,2",
        "--min-seconds",
        "0",
        "--backends",
        "torch,onnx",
    )
    assert result.returncode == 0, result.stderr
    table = result.stdout.split("\n\n")[-1].splitlines()
    assert table[0].split() == ["backend", "frames", "batch", "ms/seq", "seq/s", "ms/frame"]
    rows = [line.split() for line in table[2:]]
    assert len(rows) == 4
    assert {" ".join(r[:2]) for r in rows} == {"torch-cpu fp32", "onnxruntime CPU"}
    assert all(float(r[-3]) > 0 for r in rows)
