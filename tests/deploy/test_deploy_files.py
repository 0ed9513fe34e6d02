"""The deployment files: compose validated, Dockerfile checked, every variable documented.

No Docker engine here: the compose file is validated with `docker compose config` when the
compose plugin exists, and always against the Compose specification's JSON schema (taken from
the pinned docker-compose 1.29.2 wheel on the package registry).
"""

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from service.settings import documented_variables
from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / ".env.example"


@pytest.fixture(scope="session")
def compose_schema(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("compose-schema")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "docker-compose==1.29.2", "-d", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    wheels = list(folder.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        pytest.skip(f"Compose schema unavailable (pip download docker-compose failed): {result.stderr[-300:]}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        return yaml.safe_load(wheel.read("compose/config/compose_spec.json"))


def _documented() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))


def test_compose_matches_the_specification(compose_schema):
    document = yaml.safe_load(COMPOSE.read_text())
    jsonschema.Draft201909Validator(compose_schema).validate(document)
    services = document["services"]
    assert {"api", "worker", "postgres", "redis", "migrate", "prometheus"} <= set(services)
    assert services["migrate"]["command"] == ["db", "upgrade"]
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["prometheus"]["profiles"] == ["prometheus"]
    for mount in services["prometheus"]["volumes"]:
        assert (REPO / mount.split(":")[0]).exists(), mount


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker command")
def test_docker_compose_config_when_available(tmp_path):
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here")
    shutil.copy(ENV_EXAMPLE, tmp_path / ".env")
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(tmp_path / ".env"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


def test_every_variable_is_documented():
    compose_variables = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    missing = sorted((compose_variables | set(documented_variables())) - _documented())
    assert not missing, f"not documented in deploy/.env.example: {missing}"


def _final_stage(dockerfile: str) -> str:
    return re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[-1]


def test_dockerfile_runs_as_non_root_and_references_existing_files():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", dockerfile, flags=re.MULTILINE)) >= 2, "multi-stage build expected"
    final = _final_stage(dockerfile)
    users = re.findall(r"^USER (\S+)", final, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "the image must run as an unprivileged user"
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert re.search(r"^ARG DETECTOR_MODEL", dockerfile, flags=re.MULTILINE)
    assert "onnxruntime-gpu" in dockerfile and "faiss-gpu" in dockerfile
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, flags=re.MULTILINE):
        *sources, _target = line.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "var" in ignored and ".venv" in ignored, "weights, data and the venv must not enter the build context"
    image_env = dict(re.findall(r"(GAITID_[A-Z_]+)=(\S+)", final))
    for variable in image_env:
        assert variable in documented_variables(), variable
    assert Path(image_env["GAITID_DETECTOR_WEIGHTS"]).is_absolute()
