"""The command line starts without its heavy libraries, and the benchmarks sit below it.

``gaitid --help`` must not import torch or SQLAlchemy (seconds of start-up for a page of text): each
command's module is imported only when the command runs. The ``bench`` package must not import
``service.cli``, which runs the benchmarks (an import cycle up the layers); both use ``cli_common``,
which imports neither, and ``service.cli`` imports a benchmark only when its stage runs.
"""

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.cli import COMMANDS, main
from service.cli.bench_command import STAGES
from tests.conftest import REPO

HEAVY = ("torch", "sqlalchemy")


def _loaded_by(code: str) -> tuple[str, set[str]]:
    """What ``code`` printed before its last line, and the top-level packages it had imported by the end."""
    script = f"import sys\n{code}\nprint()\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "COLUMNS": "200"}  # help lines unwrapped
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed, _, modules = result.stdout.rstrip("\n").rpartition("\n")
    return printed, set(modules.split())


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"]], ids=" ".join)
def test_help_lists_every_command_without_torch_or_sqlalchemy(argv: list[str]) -> None:
    code = f"from service.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    printed, loaded = _loaded_by(code)
    assert not loaded & set(HEAVY), f"gaitid {' '.join(argv)} imported {sorted(loaded & set(HEAVY))}"
    for command in STAGES if argv[0] == "bench" else COMMANDS:
        assert command.name in printed and command.help in printed, printed


def test_listing_models_reads_the_cards_without_torch() -> None:
    """The registry reads model cards with models.configs, torch-free; only loading a network needs torch."""
    printed, loaded = _loaded_by("from service.cli import main\nmain(['models', 'list'])")
    assert "default" in printed and "gaitbase" in printed, printed
    assert not loaded & set(HEAVY), f"gaitid models list imported {sorted(loaded & set(HEAVY))}"


def test_the_benchmarks_do_not_import_the_command_line() -> None:
    stages = ", ".join(f"bench.{path.stem}" for path in sorted((REPO / "bench").glob("[!_]*.py")))
    printed, loaded = _loaded_by(f"import {stages}\nprint('service.cli' in sys.modules)")
    assert "torch" in loaded and "faiss" in loaded, "the stages' own imports ran"
    assert printed.strip() == "False", "importing the benchmarks imported service.cli"


def _imports(path: Path, module_level_only: bool) -> Iterator[str]:
    """The absolute module names ``path`` imports: at module level only, or anywhere in it."""
    tree = ast.parse(path.read_text())
    for node in tree.body if module_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _offenders(folder: str, forbidden: tuple[str, ...], module_level_only: bool) -> list[str]:
    return [
        f"{path.relative_to(REPO)}: {name}"
        for path in sorted((REPO / folder).rglob("*.py"))
        for name in _imports(path, module_level_only)
        if any(name == f or name.startswith(f"{f}.") for f in forbidden)
    ]


def test_imports_go_down_the_layers_only() -> None:
    assert _offenders("bench", ("service.cli",), module_level_only=False) == []
    assert _offenders("cli_common", ("service", "bench"), module_level_only=False) == []
    assert _offenders("service/cli", ("bench",), module_level_only=True) == []
    # the models and the pipeline know nothing of the service (the device machine runs models/ without it)
    assert _offenders("models", ("service", "bench", "cli_common"), module_level_only=False) == []
    assert _offenders("pipeline", ("service", "bench", "cli_common"), module_level_only=False) == []


@pytest.mark.parametrize("argv", [[c.name] for c in COMMANDS] + [["bench", s.name] for s in STAGES], ids=" ".join)
def test_every_command_and_stage_defines_its_options(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: gaitid {' '.join(argv)} [-h]"), printed
    assert "options:" in printed and printed.count("\n") > 5, printed
