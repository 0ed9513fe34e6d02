"""Settings: every variable the product reads is documented, and files and the environment both work."""

import re

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
