"""kill -9 during an enrollment and an identify job, then restart on the same database.

No acknowledged enrollment is lost, the gallery index equals the database, and the interrupted
jobs run again to the end (or fail with a reason) — never stay "running" forever.
"""

import pytest

from tests.service.conftest import create_key, db_scalar, npy_upload, running_server, wait_for_job

# clips short enough that the pipeline runs (killed, then again) cost seconds, yet long enough that the
# enrollment is still running when the poll sees it start: one walker for 6 s, and 2 s of sky
ENROLL_CLIP = "toward_camera.mp4"
IDENTIFY_CLIP = "bad/no_person.mp4"


@pytest.mark.slow
def test_kill_9_mid_job_then_restart(database_url, tmp_path, weights_env, videos_dir):
    # a cached pipeline result would finish the job before it can be killed: this test needs its own cache
    with running_server(database_url, tmp_path, tmp_path / "cache", weights_env) as server:
        key = create_key(server.env, "admin")
        client = server.client(key)
        subject = client.post("/v1/subjects", json={"name": "durable"}).json()["id"]
        acknowledged = client.post(f"/v1/subjects/{subject}/enrollments?wait=120", files=npy_upload())
        assert acknowledged.status_code == 201, acknowledged.text
        enroll = client.post(f"/v1/subjects/{subject}/enrollments", files=_video(videos_dir, ENROLL_CLIP))
        identify = client.post("/v1/identify", files=_video(videos_dir, IDENTIFY_CLIP))
        assert enroll.status_code == identify.status_code == 202
        wait_for_job(client, enroll.json()["id"], lambda j: j["status"] == "running" and j["progress"] > 0.05)
        server.kill()  # SIGKILL in the middle of the enrollment's pipeline, identify still queued
        server.start()
        enrolled = wait_for_job(client, enroll.json()["id"], lambda j: j["status"] not in ("queued", "running"))
        identified = wait_for_job(client, identify.json()["id"], lambda j: j["status"] not in ("queued", "running"))
        # the kill landed mid-run (the job started twice), and the enrollment ran again to its own end:
        # enrolled, or refused for a reason of its input
        attempts = db_scalar(database_url, "SELECT attempts FROM jobs WHERE id = :id", id=enroll.json()["id"])
        assert attempts == 2, f"the enrollment ran {attempts} time(s): the kill did not interrupt it"
        assert enrolled["status"] == "succeeded" or enrolled["error"]["code"] == "no_walking_person", enrolled
        assert identified["status"] == "succeeded" and identified["result"]["tracks"] == [], identified
        expected = 1 + (enrolled["status"] == "succeeded")  # the acknowledged one is never lost
        assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == expected
        assert db_scalar(database_url, "SELECT count(*) FROM sequences") == expected
        assert client.get("/readyz").json()["checks"]["gallery"] == f"ok ({expected} sequences)"
        server.kill()  # once more at an idle moment: the index is rebuilt equal to the database
        server.start()
        assert db_scalar(database_url, "SELECT count(*) FROM sequences") == expected
        assert client.get("/readyz").json()["checks"]["gallery"] == f"ok ({expected} sequences)"
        client.close()


def _video(videos_dir, name: str) -> dict:
    return {"file": (name, (videos_dir / name).read_bytes(), "video/mp4")}
