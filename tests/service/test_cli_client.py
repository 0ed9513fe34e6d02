"""The ``gaitid`` client commands against one real server: subjects, jobs and events; what enroll and
identify print while they wait and when a video is cut short; what a failed enrollment leaves; Ctrl-C.

One server on SQLite for the module, with the session's pipeline cache. Commands that only read or
change records run in this process (``service.cli.main`` with capsys, their stderr a pipe as in a
log); those whose output on a pipe or whose signal handling is tested run as a user runs them, in a
subprocess. Jobs that must still be running when the command stops get a clip nobody has processed:
a copy of a real clip with a ``free`` box appended (ignored by decoders, new to the cache).
"""

import os
import signal
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.cli import main
from service.db.engine import make_engine, make_session_factory
from tests.conftest import REPO, run_cli, within
from tests.service.conftest import ServerProcess, create_key, fresh_database, running_server, silhouettes_npy
from tests.service.test_webhooks import add_event, add_stream


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_cache, weights_env) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("cli-client")
    with fresh_database("sqlite", folder) as url, running_server(url, folder, shared_cache, weights_env) as process:
        yield process


@pytest.fixture(scope="module")
def env(server: ServerProcess) -> dict[str, str]:
    """What a user exports before running the client."""
    return {"GAITID_SERVER": server.url, "GAITID_API_KEY": create_key(server.env, "admin")}


@pytest.fixture(scope="module")
def api(server: ServerProcess, env: dict[str, str]) -> Iterator[httpx.Client]:
    """The same server read behind the command line's back."""
    with server.client(env["GAITID_API_KEY"]) as client:
        yield client


def _gaitid(env: dict[str, str], capsys, *argv: str) -> tuple[int, str, str]:
    """``gaitid ARGV --server ... --api-key ...`` in this process: exit status, stdout, stderr."""
    status = main([*argv, "--server", env["GAITID_SERVER"], "--api-key", env["GAITID_API_KEY"]])
    printed = capsys.readouterr()
    return status, printed.out, printed.err


def _error_code(status: int, err: str) -> str:
    """The code of the one-line error a failed command ends with."""
    assert status == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("gaitid: error ["), err
    return last.removeprefix("gaitid: error [").split("]")[0]


def _unseen_copy(clip: Path, folder: Path) -> Path:
    """``clip`` with a ``free`` box of random bytes appended: the same video, content no cache has seen."""
    tag = uuid.uuid4().bytes
    copy = folder / f"unseen-{clip.name}"
    copy.write_bytes(clip.read_bytes() + struct.pack(">I", 8 + len(tag)) + b"free" + tag)
    return copy


def test_subjects_are_listed_shown_renamed_and_deleted(env, api, capsys, tmp_path):
    walk = tmp_path / "walk.npy"
    walk.write_bytes(silhouettes_npy(seed=3))
    status, out, err = _gaitid(env, capsys, "enroll", str(walk), "--external-id", "emp-cli", "--name", "Ann")
    assert status == 0 and out.startswith("enrolled subject ") and "30 good frames" in out, err
    subject_id = out.split()[2].rstrip(":")
    assert f"created subject {subject_id} (emp-cli)" in err

    status, out, _ = _gaitid(env, capsys, "subjects", "list", "--external-id", "emp-cli")
    assert status == 0 and subject_id in out and "Ann" in out and "subjects 1–1 of 1" in out, out
    status, out, _ = _gaitid(env, capsys, "subjects", "show", subject_id)
    assert status == 0 and "walk.npy" in out and "sequences 1–1 of 1" in out, out

    status, out, _ = _gaitid(env, capsys, "subjects", "rename", subject_id, "Ann Lee")
    assert status == 0 and "'Ann Lee'" in out and api.get(f"/v1/subjects/{subject_id}").json()["name"] == "Ann Lee"

    status, _, err = _gaitid(env, capsys, "subjects", "delete", subject_id)
    assert _error_code(status, err) == "confirmation_needed" and "1 enrolled walk " in err
    assert api.get(f"/v1/subjects/{subject_id}").status_code == 200  # nothing deleted without --yes
    status, out, _ = _gaitid(env, capsys, "subjects", "delete", subject_id, "--yes", "--json")
    assert status == 0 and f'"id": "{subject_id}"' in out
    status, _, err = _gaitid(env, capsys, "subjects", "show", subject_id)
    assert _error_code(status, err) == "subject_not_found"


def test_jobs_are_listed_shown_and_a_finished_one_not_cancelled(env, api, capsys):
    subject = api.post("/v1/subjects", json={"name": "jobs"}).json()["id"]
    enrolled = api.post(
        f"/v1/subjects/{subject}/enrollments", params={"wait": 120}, files={"file": ("w.npy", silhouettes_npy(seed=6))}
    )
    assert enrolled.status_code == 201, enrolled.text
    job_id = enrolled.json()["id"]

    status, out, _ = _gaitid(env, capsys, "jobs", "list", "--status", "succeeded")
    assert status == 0 and job_id in out and "enroll" in out, out
    status, out, _ = _gaitid(env, capsys, "jobs", "list", "--status", "cancelled", "--json")
    assert status == 0 and job_id not in out and '"items": [' in out, out
    status, out, _ = _gaitid(env, capsys, "jobs", "show", job_id)
    assert status == 0 and "succeeded" in out and f"enrolled subject {subject}: sequence" in out, out
    status, _, err = _gaitid(env, capsys, "jobs", "cancel", job_id)
    assert _error_code(status, err) == "job_finished"


def test_events_are_listed_with_their_filters(server, env, api, capsys):
    subject = api.post("/v1/subjects", json={"name": "Eve", "external_id": "emp-eve"}).json()["id"]
    engine = make_engine(server.env["GAITID_DATABASE_URL"])
    try:
        sessions = make_session_factory(engine)
        stream = add_stream(sessions, "gate")
        matched, unknown = add_event(sessions, stream, "match", subject), add_event(sessions, stream, "unknown")
    finally:
        engine.dispose()

    status, out, _ = _gaitid(env, capsys, "events", "list", "--stream", stream)
    rows = out.splitlines()
    assert status == 0 and rows[-1] == "events 1–2 of 2", out
    assert rows[2].split()[0] == str(unknown) and rows[3].split()[0] == str(matched), out  # the newest first
    assert "gate" in rows[3] and "match" in rows[3] and "emp-eve" in rows[3], out
    status, out, _ = _gaitid(env, capsys, "events", "list", "--decision", "unknown", "--subject", subject)
    assert status == 0 and out.strip() == "no events", out
    status, out, _ = _gaitid(env, capsys, "events", "list", "--subject", subject, "--since", "2025-01-31", "--json")
    assert status == 0 and '"total": 1' in out and f'"id": {matched}' in out, out
    status, out, _ = _gaitid(env, capsys, "events", "list", "--since", "2999-01-01T00:00+01:00")
    assert status == 0 and out.strip() == "no events", out
    status, _, err = _gaitid(env, capsys, "events", "list", "--since", "yesterday")
    assert _error_code(status, err) == "bad_option"


def test_a_truncated_video_is_identified_with_a_warning_and_plain_progress_lines(env, videos_dir):
    """On a pipe (as in a log) the progress is one line per stage, never ``\\r`` redraws; the warning
    about the cut-off video comes before the table."""
    done = run_cli("identify", str(videos_dir / "bad" / "truncated.mp4"), env=env)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and done.stderr.endswith("\n"), repr(done.stderr)
    lines = done.stderr.splitlines()
    assert lines[0] == "uploading truncated.mp4 (335.8 kB)", lines
    job_lines = [line for line in lines if line.startswith("job ")]
    assert job_lines and job_lines[0].endswith(": queued") and len(set(job_lines)) == len(job_lines), lines
    assert lines[-1].startswith("gaitid: warning: the video ended early") and "57 frames" in lines[-1], lines
    assert done.stdout.startswith("track ") and "(threshold " in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("clip", "code"),
    [("no_person.mp4", "no_walking_person"), ("empty.mp4", "empty_upload")],
    ids=["the job fails", "the upload is refused"],
)
def test_a_failed_enrollment_leaves_no_subject_behind(env, api, capsys, videos_dir, clip, code):
    before = api.get("/v1/subjects").json()["total"]
    status, _, err = _gaitid(env, capsys, "enroll", str(videos_dir / "bad" / clip), "--external-id", f"ghost-{clip}")
    assert _error_code(status, err) == code
    assert "removed subject " in err, err
    assert api.get("/v1/subjects", params={"external_id": f"ghost-{clip}"}).json()["total"] == 0
    assert api.get("/v1/subjects").json()["total"] == before


# `gaitid` with Python's own Ctrl-C handler, as in a terminal: a suite started in the background by a
# non-interactive shell (`make test &`, nohup) inherits SIGINT ignored, and Python keeps it ignored
_WITH_CTRL_C = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from service.cli import main; sys.exit(main())"
)


def test_ctrl_c_leaves_the_job_running_and_says_how_to_follow_or_cancel_it(env, api, capsys, videos_dir, tmp_path):
    video = _unseen_copy(videos_dir / "toward_camera.mp4", tmp_path)
    command = subprocess.Popen(
        [sys.executable, "-c", _WITH_CTRL_C, "identify", str(video)],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        running = within(120, lambda: _first_line(command, ": pipeline"), "the job's pipeline stage line")
        command.send_signal(signal.SIGINT)
        out, err = command.communicate(timeout=60)
    finally:
        command.kill()
    job_id = running.split()[1].rstrip(":")
    assert command.returncode == 130, err
    assert f"`gaitid jobs show {job_id}`" in err and f"`gaitid jobs cancel {job_id}`" in err, err
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "running"  # not cancelled behind the user's back

    status, out, _ = _gaitid(env, capsys, "jobs", "cancel", job_id)
    assert status == 0 and out.strip() == f"cancelled identify job {job_id}", out
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"


def test_a_wait_that_runs_out_keeps_the_job_and_its_new_subject(env, api, capsys, videos_dir, tmp_path):
    """The job goes on after ``--wait``: the subject created for it stays, since the job may still enroll into it."""
    video = _unseen_copy(videos_dir / "toward_camera.mp4", tmp_path)
    status, _, err = _gaitid(env, capsys, "enroll", str(video), "--external-id", "emp-slow", "--wait", "0")
    assert _error_code(status, err) == "timeout" and "gaitid jobs cancel " in err, err
    job_id = err.split("gaitid jobs cancel ")[1].split("`")[0]
    assert api.get("/v1/subjects", params={"external_id": "emp-slow"}).json()["total"] == 1
    assert _gaitid(env, capsys, "jobs", "cancel", job_id)[0] == 0


def _first_line(command: subprocess.Popen[str], containing: str) -> str:
    assert command.stderr is not None
    for line in command.stderr:
        if containing in line:
            return line
    raise AssertionError(f"the command ended (status {command.wait()}) without a line containing {containing!r}")
