"""Settings: every variable the product reads is documented, and files and the environment both work."""

import argparse
import re

from cli_common.pipeline_options import (
    add_cache_option,
    add_pipeline_options,
    cache_from_args,
    pipeline_config_from_args,
)
from service.pipeline_settings import pipeline_config
from service.settings import Settings, documented_variables, load_settings
from tests.conftest import REPO


def test_every_variable_is_documented_in_env_example():
    text = (REPO / "deploy" / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*(GAITID_[A-Z_]+)=", text, flags=re.MULTILINE))
    missing = sorted(set(documented_variables()) - documented)
    assert not missing, f"not documented in deploy/.env.example: {missing}"


def test_env_example_defaults_parse(tmp_path, monkeypatch):
    for name in documented_variables():
        monkeypatch.delenv(name, raising=False)
    example = (REPO / "deploy" / ".env.example").read_text()
    settings_file = tmp_path / "gaitid.env"
    settings_file.write_text(example)
    monkeypatch.setenv("GAITID_SETTINGS_FILE", str(settings_file))
    assert load_settings() == Settings()


def test_environment_wins_over_file(tmp_path, monkeypatch):
    settings_file = tmp_path / "gaitid.env"
    settings_file.write_text("GAITID_PORT=9000\nGAITID_TOP_K=7\n")
    monkeypatch.setenv("GAITID_SETTINGS_FILE", str(settings_file))
    monkeypatch.setenv("GAITID_PORT", "9100")
    settings = load_settings()
    assert (settings.port, settings.top_k) == (9100, 7)


def test_the_service_and_the_cli_run_the_same_pipeline_by_default(monkeypatch):
    """Both take their defaults from pipeline.defaults: no option or setting drifts, and neither keeps tracks."""
    for name in documented_variables():
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    add_pipeline_options(parser)
    add_cache_option(parser, "the tracks")
    options = parser.parse_args([])
    settings = Settings()
    assert pipeline_config_from_args(options) == pipeline_config(settings)
    assert cache_from_args(options) is None and not settings.pipeline_cache
    monkeypatch.setenv("GAITID_DETECTOR_WEIGHTS", "elsewhere/detector.onnx")  # read by both, each its own way
    assert pipeline_config_from_args(options) == pipeline_config(Settings())
