"""Every error code the code can give is named by a test, or listed here with the reason it is not.

The codes are read from the source (``service/``, ``pipeline/``, ``models/``, ``cli_common/``): ``code = "..."`` class
attributes and assignments (``error_code`` too), ``code=`` arguments, the second argument of an
``...Error(message, "code")`` call, and ``{"code": "..."}`` literals. A test "names" a code when the
code appears as a string in a test module other than this one. Run this file as a script to list the
codes and where each is raised and named: ``.venv/bin/python -m tests.test_error_code_coverage``.
"""

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO

SOURCES = ("service", "pipeline", "models", "cli_common")
CODE = re.compile(r"^[a-z][a-z0-9_]*$")

# Codes no test provokes, each with why. A code leaves this list when a test names it (the test
# below then fails until it is removed from here), and a new code must be tested or listed here.
UNTESTED: dict[str, str] = {
    # defaults of base classes that every raise overrides with a specific code: unreachable today
    "bad_checkpoint": "CheckpointError's default; every raise in models/checkpoint.py passes its own code",
    "conflict": "ConflictError's default; every raise passes its own code (job_finished, own_key, ...)",
    "not_ready": "NotReadyError's default; service/db/migrate.py raises it with not_migrated",
    "unprocessable": "UnprocessableError's default, and the API's fallback for a Pipeline/ModelError without a "
    "code; every raise passes one, and both base classes have a default code",
    "job_failed": "the answer's code for a failed job without an error code; process_job always records one",
    # reachable, not provoked by a test yet
    "http_error": "an HTTP error status the API's handler does not map (FastAPI raises none on these routes), "
    "or the CLI client reading an error answer without a JSON error body (e.g. a proxy's 502)",
    "no_threshold": "a model card without calibrated thresholds and no GAITID_MATCH_THRESHOLD; needs a user "
    "model card built from a checkpoint (and, for the CLI, a clips protocol run)",
    "track_unusable": "enrolling a track the quality gates rejected: no clip small enough for a test has one "
    "(bad/truncated.mp4's only track is kept); the four-person clips take minutes of pipeline time",
}


@functools.cache
def _sources() -> list[tuple[str, ast.Module]]:
    """Every source module of ``SOURCES``, parsed once: ``(path relative to the repository, tree)``."""
    paths = [path for package in SOURCES for path in sorted((REPO / package).rglob("*.py"))]
    return [(str(path.relative_to(REPO)), ast.parse(path.read_text(), str(path))) for path in paths]


def raised_codes() -> dict[str, list[str]]:
    """Each error code in the sources, with the ``file:line`` places that give it."""
    found: dict[str, list[str]] = defaultdict(list)
    for where, tree in _sources():
        for node in ast.walk(tree):
            for value in _code_values(node):
                for leaf in _strings(value):
                    found[leaf.value].append(f"{where}:{leaf.lineno}")
            if _calls(node, "get_or_404") and isinstance(what := node.args[-1], ast.Constant):
                found[f"{what.value}_not_found"].append(f"{where}:{node.lineno}")  # <what>_not_found
    return dict(found)


def _strings(value: ast.expr) -> list[ast.Constant]:
    """The code-like strings of an expression: ``"x"``, ``job.error_code or "job_failed"``, the default of
    ``error.get("code", "http_error")`` or ``getattr(error, "code", "unprocessable")`` (not the keys looked up)."""
    keys = {
        id(arg)
        for call in ast.walk(value)
        if isinstance(call, ast.Call)
        for arg in (call.args[:1] if getattr(call.func, "attr", "") == "get" else call.args[1:2])
    } | {id(item.slice) for item in ast.walk(value) if isinstance(item, ast.Subscript)}  # job["status"]
    return [
        leaf
        for leaf in ast.walk(value)
        if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str) and CODE.match(leaf.value)
        if id(leaf) not in keys
    ]


def _calls(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name and bool(node.args)


def _code_values(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Assign | ast.AnnAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else "" for t in targets]
        if node.value is not None and any(name in ("code", "error_code") for name in names):
            return [node.value]
        if isinstance(node.value, ast.Dict) and any(name.endswith("_CODES") for name in names):
            return [v for v in node.value.values if v is not None]  # _HTTP_CODES = {404: "not_found", ...}
        if isinstance(node.value, ast.Tuple) and any(isinstance(t, ast.Tuple) for t in targets):
            return [  # status, code = 404, "not_found"
                value
                for target in targets
                if isinstance(target, ast.Tuple)
                for element, value in zip(target.elts, node.value.elts, strict=False)
                if isinstance(element, ast.Name) and element.id in ("code", "error_code")
            ]
    if isinstance(node, ast.Call):
        values = [k.value for k in node.keywords if k.arg in ("code", "error_code")]
        name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        if name.endswith("Error") and len(node.args) >= 2:
            values.append(node.args[1])
        return values
    if isinstance(node, ast.Dict):
        pairs = zip(node.keys, node.values, strict=True)
        return [v for k, v in pairs if isinstance(k, ast.Constant) and k.value == "code"]
    return []


def error_classes() -> dict[str, str]:
    """Each error class of the sources with a ``code`` class attribute: ``{"VideoTooLongError": "video_too_long"}``."""
    classes: dict[str, str] = {}
    for _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    for value in _code_values(statement):
                        for leaf in _strings(value):
                            classes[node.name] = leaf.value
    return classes


def named_by_tests() -> dict[str, list[str]]:
    """The codes the test modules (but this one) name, with the files naming each: in a string, or as the
    error class that carries the code (``pytest.raises(VideoTooLongError)``)."""
    classes = error_classes()
    named: dict[str, list[str]] = defaultdict(list)
    for path in sorted((REPO / "tests").rglob("*.py")):
        if path.resolve() == Path(__file__).resolve():
            continue
        where = str(path.relative_to(REPO))
        for node in ast.walk(ast.parse(path.read_text(), where)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for word in set(re.findall(r"[a-z][a-z0-9_]*", node.value)):
                    named[word].append(where)
            elif isinstance(node, ast.Name | ast.Attribute):
                name = node.id if isinstance(node, ast.Name) else node.attr
                if name in classes and isinstance(node.ctx, ast.Load):
                    named[classes[name]].append(where)
    return dict(named)


def test_the_extractor_finds_codes_of_every_form():
    codes = raised_codes()
    assert "video_unreadable" in codes  # a class attribute
    assert "not_found" in codes  # status, code = 404, "not_found"
    assert "interrupted" in codes  # job.error_code = "interrupted"
    assert "idempotency_key_reused" in codes  # code="..."
    assert "track_not_found" in codes  # JobFailedError(message, "track_not_found", ...)
    assert "job_failed" in codes  # code=job.error_code or "job_failed"
    assert "webhook_not_found" in codes  # get_or_404(session, Webhook, webhook_id, "webhook")
    assert "method_not_allowed" in codes  # _HTTP_CODES
    assert "Errno" not in codes and "utf-8" not in codes
    assert error_classes()["VideoTooLongError"] == "video_too_long"


def test_every_error_code_is_named_by_a_test_or_listed_untested():
    codes, named = raised_codes(), named_by_tests()
    untested = sorted(code for code in codes if code not in named and code not in UNTESTED)
    assert not untested, f"error codes no test names (test them, or list them in UNTESTED with why): {untested}"
    stale = sorted(code for code in UNTESTED if code in named or code not in codes)
    assert not stale, f"listed as untested but named by a test, or no longer in the code: {stale}"


if __name__ == "__main__":
    codes, named = raised_codes(), named_by_tests()
    for code in sorted(codes):
        tests = sorted(set(named.get(code, [])))
        state = f"named by {', '.join(tests)}" if tests else f"UNTESTED: {UNTESTED.get(code, 'not listed')}"
        print(f"{code:28} raised at {', '.join(codes[code][:3])}\n{'':28} {state}")
