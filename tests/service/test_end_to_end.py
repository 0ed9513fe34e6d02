"""The acceptance walk-through over real HTTP with the real clips and the shipped default model.

Enroll J (indoor clip), O and R (one outdoor clip, by track), and three of the four people of the
gallery clip (picked by track); then identify the indoor probe and the two four-person probes.
J must match; Y, never enrolled, must be ``unknown`` in every probe. Runs on SQLite and PostgreSQL;
the pipeline results are cached per clip, so the second database costs little.
"""

import json

import pytest

from tests.service.conftest import ServerProcess, create_key

WAIT = "wait=900"


def _enroll(client, subject_id: str, clip, track_id: int | None = None, key: str | None = None):
    data = {"track_id": str(track_id)} if track_id is not None else {}
    headers = {"Idempotency-Key": key} if key else {}
    with clip.open("rb") as handle:
        files = {"file": (clip.name, handle, "video/mp4")}
        return client.post(f"/v1/subjects/{subject_id}/enrollments?{WAIT}", files=files, data=data, headers=headers)


def _identify(client, clip):
    with clip.open("rb") as handle:
        response = client.post(f"/v1/identify?{WAIT}", files={"file": (clip.name, handle, "video/mp4")})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _x_centre(track: dict) -> float:
    return (track["box"][0] + track["box"][2]) / 2


@pytest.mark.slow
def test_enroll_and_identify_real_clips(server: ServerProcess, videos_dir, record_property):
    admin = create_key(server.env, "admin")
    with server.client(admin) as root:
        enroll_key = root.post("/v1/keys", json={"role": "enroll", "name": "enroller"}).json()["key"]
        identify_key = root.post("/v1/keys", json={"role": "identify", "name": "door"}).json()["key"]
    enroller, identifier = server.client(enroll_key), server.client(identify_key)
    subjects = {}
    for person in "JORNGW":
        response = enroller.post("/v1/subjects", json={"external_id": f"person-{person}", "name": person})
        assert response.status_code == 201, response.text
        subjects[person] = response.json()["id"]

    response = _enroll(enroller, subjects["J"], videos_dir / "walk_indoor_a_enroll.mp4")
    assert response.status_code == 201, response.text
    assert response.json()["result"]["track"]["good_frames"] >= 15

    # two people in one clip: 409 lists the tracks; O walks first, R second
    refused = _enroll(enroller, subjects["O"], videos_dir / "walk_outdoor.mp4")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "multiple_tracks"
    usable = sorted(
        (t for t in refused.json()["error"]["details"]["tracks"] if t["usable"]), key=lambda t: t["start_s"]
    )
    assert len(usable) == 2
    for person, track in zip("OR", usable, strict=True):
        first = _enroll(
            enroller, subjects[person], videos_dir / "walk_outdoor.mp4", track["track_id"], f"walk-{person}"
        )
        again = _enroll(
            enroller, subjects[person], videos_dir / "walk_outdoor.mp4", track["track_id"], f"walk-{person}"
        )
        assert first.status_code == again.status_code == 201, first.text
        assert first.json()["id"] == again.json()["id"]  # idempotent: the same job, not a second enrollment
        assert enroller.get(f"/v1/subjects/{subjects[person]}").json()["sequences"] == 1

    # four people side by side, left to right N, G, W, Y: enroll the first three, never Y
    refused = _enroll(enroller, subjects["N"], videos_dir / "gallery_4p.mp4")
    assert refused.status_code == 409, refused.text
    usable = sorted((t for t in refused.json()["error"]["details"]["tracks"] if t["usable"]), key=_x_centre)
    assert len(usable) == 4
    for person, track in zip("NGW", usable[:3], strict=True):
        response = _enroll(enroller, subjects[person], videos_dir / "gallery_4p.mp4", track["track_id"])
        assert response.status_code == 201, response.text

    confusion = {}
    indoor = _identify(identifier, videos_dir / "walk_indoor_a_probe.mp4")
    answers = [t for t in indoor["tracks"] if t["decision"] != "insufficient"]
    confusion["walk_indoor_a_probe.mp4"] = [_row(t, "J") for t in answers]
    unknown_y = {}
    for clip, y_is in (("probe1_4p_high.mp4", min), ("probe2_4p_back.mp4", max)):
        tracks = [t for t in _identify(identifier, videos_dir / clip)["tracks"] if t["decision"] != "insufficient"]
        assert len(tracks) == 4, tracks
        # probe1: left to right Y, G, W, N (high camera); probe2: N, G, W, Y (back view)
        order = "YGWN" if y_is is min else "NGWY"
        confusion[clip] = [_row(t, order[i]) for i, t in enumerate(sorted(tracks, key=_x_centre))]
        unknown_y[clip] = y_is(tracks, key=_x_centre)["decision"]
    record_property("confusion", json.dumps(confusion))
    print(json.dumps(confusion, indent=1))
    assert len(answers) == 1 and answers[0]["decision"] == "match" and answers[0]["subject"]["id"] == subjects["J"]
    assert unknown_y == {"probe1_4p_high.mp4": "unknown", "probe2_4p_back.mp4": "unknown"}, unknown_y


def _row(track: dict, truth: str) -> dict:
    """One line of the confusion table: who walked, what the service answered, the top candidates."""
    return {
        "truth": truth,
        "decision": track["decision"],
        "subject": track["subject"] and track["subject"]["name"],
        "score": track["score"],
        "candidates": [(c["subject"]["name"], c["score"]) for c in track["candidates"][:3]],
    }
