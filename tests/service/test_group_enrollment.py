"""Preview a video's tracks with pictures, then enroll any of them as people in one job, without a second
pipeline run; what jobs leave to look at (thumbnails, contact sheets) and what the API refuses.

Real server, real clips, the default pipeline (its results cached for the session), SQLite: the
PostgreSQL path of the same jobs is the end-to-end walk-through's.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import ServerProcess, create_key, fresh_database, running_server

WAIT = {"wait": "900"}
CLIP = "walk_indoor_a_enroll.mp4"  # one walker


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_cache, weights_env) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("group-enrollment")
    with fresh_database("sqlite", folder) as url, running_server(url, folder, shared_cache, weights_env) as process:
        yield process


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client(create_key(server.env, "enroll")) as client:
        yield client


def _upload(client: httpx.Client, path: str, clip: Path) -> httpx.Response:
    with clip.open("rb") as handle:
        return client.post(path, params=WAIT, files={"file": (clip.name, handle, "video/mp4")})


@pytest.fixture(scope="module")
def preview(client: httpx.Client, videos_dir: Path) -> dict:
    response = _upload(client, "/v1/previews", videos_dir / CLIP)
    assert response.status_code == 200, response.text
    return response.json()


def _refused(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status and response.json()["error"]["code"] == code, response.text
    return response.json()["error"]


def test_a_preview_shows_each_track_with_a_thumbnail_and_contact_sheet(client: httpx.Client, preview: dict):
    assert preview["kind"] == "preview" and preview["status"] == "succeeded"
    (track,) = [t for t in preview["result"]["tracks"] if t["usable"]]
    assert track["good_frames"] >= 15 and track["box"] is not None
    picture = client.get(track["thumbnail"])
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/jpeg"
    assert picture.content[:2] == b"\xff\xd8" and len(picture.content) > 1000
    sheet = client.get(track["contact_sheet"])
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/png"
    assert sheet.content[:8] == b"\x89PNG\r\n\x1a\n"
    _refused(client.get(f"/v1/jobs/{preview['id']}/artefacts/track-99.jpg"), 404, "artefact_not_found")


def test_a_previews_silhouettes_stay_inside(client: httpx.Client, preview: dict, server: ServerProcess):
    (track,) = [t["track_id"] for t in preview["result"]["tracks"] if t["usable"]]
    kept = Path(server.env["GAITID_DATA_DIR"]) / "artefacts" / preview["id"] / f"track-{track}.npy"
    assert kept.is_file(), "the preview keeps the silhouettes a later enrollment reads"
    _refused(client.get(f"/v1/jobs/{preview['id']}/artefacts/track-{track}.npy"), 404, "artefact_not_found")
    _refused(client.get(f"/v1/jobs/{preview['id']}/artefacts/track-{track}.jpg%0A"), 404, "artefact_not_found")


def test_who_may_cancel_a_preview(client: httpx.Client, preview: dict, server: ServerProcess):
    """Whoever may start a job of its kind: a preview is enrollment work, not identification."""
    with server.client(create_key(server.env, "identify")) as identifier:
        _refused(identifier.delete(f"/v1/jobs/{preview['id']}"), 403, "forbidden")
    _refused(client.delete(f"/v1/jobs/{preview['id']}"), 409, "job_finished")  # allowed, but it has ended


def test_a_repeated_group_enrollment_returns_the_first_job(client: httpx.Client, preview: dict):
    (track,) = [t["track_id"] for t in preview["result"]["tracks"] if t["usable"]]
    body = {"preview_job_id": preview["id"], "people": [{"track_id": track, "name": "Kim", "external_id": "emp-kim"}]}
    key = {"Idempotency-Key": "group-kim"}
    first = client.post("/v1/enrollments", params=WAIT, json=body, headers=key)
    again = client.post("/v1/enrollments", params=WAIT, json=body, headers=key)  # not refused: emp-kim is its own
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["id"] == again.json()["id"]
    assert [s["name"] for s in client.get("/v1/subjects", params={"name": "Kim"}).json()["items"]] == ["Kim"]
    other = {**body, "people": [{"track_id": track, "name": "Lee"}]}
    _refused(client.post("/v1/enrollments", json=other, headers=key), 422, "idempotency_key_reused")


def test_previewed_tracks_are_enrolled_as_new_and_existing_subjects_in_one_job(client: httpx.Client, preview: dict):
    (track,) = [t["track_id"] for t in preview["result"]["tracks"] if t["usable"]]
    existing = client.post("/v1/subjects", json={"name": "Jane"}).json()["id"]
    people = [{"track_id": track, "name": "Joe", "external_id": "emp-joe", "metadata": {"team": "night"}}]
    first = client.post("/v1/enrollments", params=WAIT, json={"preview_job_id": preview["id"], "people": people})
    assert first.status_code == 201, first.text
    (enrolled,) = first.json()["result"]["enrolled"]
    joe = client.get(f"/v1/subjects/{enrolled['subject_id']}").json()
    assert (joe["name"], joe["external_id"], joe["metadata"], joe["sequences"]) == (
        "Joe",
        "emp-joe",
        {"team": "night"},
        1,
    )
    assert enrolled["track"]["track_id"] == track and enrolled["track"]["good_frames"] >= 15

    # the same track again, into an existing subject: the preview's silhouettes, no upload, no pipeline
    again = client.post(
        "/v1/enrollments",
        params=WAIT,
        json={"preview_job_id": preview["id"], "people": [{"track_id": track, "subject_id": existing}]},
    )
    assert again.status_code == 201, again.text
    assert again.json()["stage"] == "done" and client.get(f"/v1/subjects/{existing}").json()["sequences"] == 1
    (sequence,) = client.get(f"/v1/subjects/{existing}/sequences").json()["items"]
    assert sequence["frames"] == enrolled["track"]["good_frames"]
    sheet = client.get(sequence["contact_sheet"])  # the gallery's picture of the walk, kept with the sequence
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/png"
    assert client.delete(f"/v1/subjects/{existing}/sequences/{sequence['id']}").status_code == 204
    _refused(client.get(sequence["contact_sheet"]), 404, "sheet_not_found")


def test_a_group_enrollment_refuses_what_it_could_not_do(client: httpx.Client, preview: dict, videos_dir: Path):
    (track,) = [t["track_id"] for t in preview["result"]["tracks"] if t["usable"]]

    def enroll(people: list[dict], preview_id: str = preview["id"]) -> httpx.Response:
        return client.post("/v1/enrollments", params=WAIT, json={"preview_job_id": preview_id, "people": people})

    _refused(enroll([{"track_id": track}], "no-such-preview"), 404, "preview_not_found")
    _refused(enroll([{"track_id": 999}]), 422, "track_not_found")
    _refused(enroll([{"track_id": track, "subject_id": "no-such-subject"}]), 404, "subject_not_found")
    client.post("/v1/subjects", json={"name": "Taken", "external_id": "emp-taken"})
    _refused(enroll([{"track_id": track, "external_id": "emp-taken"}]), 409, "external_id_taken")
    _refused(enroll([{"track_id": track}, {"track_id": track}]), 422, "invalid_request")
    _refused(enroll([{"track_id": track, "subject_id": "x", "name": "both"}]), 422, "invalid_request")
    _refused(enroll([]), 422, "invalid_request")
    # a preview that failed (not a video) cannot be enrolled from
    failed = _upload(client, "/v1/previews", videos_dir / "bad" / "text.mp4")
    assert failed.status_code == 422, failed.text
    _refused(enroll([{"track_id": 1}], failed.json()["job"]["id"]), 409, "preview_not_ready")


def test_an_enrollment_from_a_preview_whose_silhouettes_are_gone_fails_clearly(
    client: httpx.Client, server: ServerProcess, videos_dir: Path
):
    fresh = _upload(client, "/v1/previews", videos_dir / CLIP).json()
    (track,) = [t["track_id"] for t in fresh["result"]["tracks"] if t["usable"]]
    for kept in (Path(server.env["GAITID_DATA_DIR"]) / "artefacts" / fresh["id"]).glob("*.npy"):
        kept.unlink()  # as when retention removed the preview between the check and the job
    gone = client.post(
        "/v1/enrollments", params=WAIT, json={"preview_job_id": fresh["id"], "people": [{"track_id": track}]}
    )
    error = _refused(gone, 422, "preview_expired")
    assert "preview the video again" in error["message"]
    assert not [s for s in client.get("/v1/subjects").json()["items"] if s["name"] == ""], "no empty subject left"
