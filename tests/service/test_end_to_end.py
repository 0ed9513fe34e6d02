"""The acceptance walk-through over real HTTP with the real clips and the shipped default model.

Enroll J (indoor clip), O and R (one outdoor clip, by track), and three of the four people of the
gallery clip (previewed once, then enrolled together from the preview); then identify the indoor
probe and the two four-person probes. J must match; Y, never enrolled, must be ``unknown`` in every
probe; and every ``match`` must name the person who walked there (from ``ground_truth.json``). Runs
on SQLite and PostgreSQL; the pipeline results are cached per clip, so the second database costs little.

The walk-through runs once per database (a module fixture); one test checks what the service
must do whatever the model, the other the decisions that depend on the model's quality.
"""

import json

import pytest

from models.registry import resolve
from tests.conftest import left_to_right
from tests.service.conftest import DATABASES, ServerProcess, create_key, fresh_database, running_server

WAIT = "wait=900"


def _enroll(client, subject_id: str, clip, track_id: int | None = None, key: str | None = None):
    data = {"track_id": str(track_id)} if track_id is not None else {}
    headers = {"Idempotency-Key": key} if key else {}
    with clip.open("rb") as handle:
        files = {"file": (clip.name, handle, "video/mp4")}
        return client.post(f"/v1/subjects/{subject_id}/enrollments?{WAIT}", files=files, data=data, headers=headers)


def _identify(client, clip, annotate: bool = False):
    query = f"{WAIT}&annotate=true" if annotate else WAIT
    with clip.open("rb") as handle:
        response = client.post(f"/v1/identify?{query}", files={"file": (clip.name, handle, "video/mp4")})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def _x_centre(track: dict) -> float:
    return (track["box"][0] + track["box"][2]) / 2


@pytest.fixture(scope="module", params=DATABASES)
def walkthrough(request, tmp_path_factory, shared_cache, weights_env, videos_dir) -> dict:
    folder = tmp_path_factory.mktemp(f"walkthrough-{request.param}")
    with fresh_database(request.param, folder) as url, running_server(url, folder, shared_cache, weights_env) as server:
        return _walk_through(server, videos_dir)


def _walk_through(server: ServerProcess, videos_dir) -> dict:
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

    # four people side by side, left to right N, G, W, Y: preview the clip once, enroll the first three in
    # one job from the preview (no second pipeline run), never Y
    gallery_order = left_to_right(videos_dir, "gallery_4p.mp4")
    assert gallery_order == "NGWY", gallery_order
    with (videos_dir / "gallery_4p.mp4").open("rb") as handle:
        preview = enroller.post(f"/v1/previews?{WAIT}", files={"file": ("gallery_4p.mp4", handle, "video/mp4")})
    assert preview.status_code == 200, preview.text
    usable = sorted((t for t in preview.json()["result"]["tracks"] if t["usable"]), key=_x_centre)
    assert len(usable) == 4 and all(t["thumbnail"] and t["contact_sheet"] for t in usable)
    people = [
        {"track_id": track["track_id"], "subject_id": subjects[person]}
        for person, track in zip(gallery_order[:3], usable[:3], strict=True)
    ]
    group = enroller.post(f"/v1/enrollments?{WAIT}", json={"preview_job_id": preview.json()["id"], "people": people})
    assert group.status_code == 201, group.text
    assert [e["subject_id"] for e in group.json()["result"]["enrolled"]] == [subjects[p] for p in gallery_order[:3]]

    indoor = _identify(identifier, videos_dir / "walk_indoor_a_probe.mp4")
    probes = {
        clip: _identify(identifier, videos_dir / clip, annotate=clip == "probe2_4p_back.mp4")
        for clip in ("probe1_4p_high.mp4", "probe2_4p_back.mp4")
    }
    order = {clip: left_to_right(videos_dir, clip) for clip in ("walk_indoor_a_probe.mp4", *probes)}
    assert probes["probe1_4p_high.mp4"]["annotated_video"] is None, "made only when asked for"
    video = identifier.get(probes["probe2_4p_back.mp4"]["annotated_video"])
    return {"subjects": subjects, "indoor": indoor, "probes": probes, "order": order, "annotated": video}


def _answered(result: dict) -> list[dict]:
    return [t for t in result["tracks"] if t["decision"] != "insufficient"]


@pytest.mark.slow
def test_walkthrough_enrolls_by_track_and_answers_every_walker(walkthrough, record_property):
    """Whatever the model: every walker gets a decision with candidates, enrolled subjects are listed."""
    assert len(_answered(walkthrough["indoor"])) == 1
    confusion = {"walk_indoor_a_probe.mp4": [_row(t, "J") for t in _answered(walkthrough["indoor"])]}
    for clip, result in walkthrough["probes"].items():
        tracks = sorted(_answered(result), key=_x_centre)
        assert len(tracks) == len(walkthrough["order"][clip]), result["tracks"]
        confusion[clip] = [_row(t, person) for t, person in zip(tracks, walkthrough["order"][clip], strict=True)]
        for track in tracks:
            assert track["decision"] in ("match", "unknown") and len(track["candidates"]) == 5
            names = [c["subject"]["name"] for c in track["candidates"]]
            assert len(set(names)) == 5 and set(names) <= set("JORNGW")  # one entry per subject, best first
            scores = [c["score"] for c in track["candidates"]]
            assert track["score"] == scores[0]  # the decision reads the first candidate
            windows = [c["window_score"] for c in track["candidates"]]
            if track["good_frames"] <= resolve("default").ranking.longer_than:
                assert scores == sorted(scores, reverse=True) and windows == [None] * 5
            else:  # ordered by each subject's best window; the scores stay the whole walk's
                assert windows == sorted(windows, reverse=True), track["candidates"]
    record_property("confusion", json.dumps(confusion))
    print(json.dumps(confusion, indent=1))


@pytest.mark.slow
def test_an_identification_shows_every_walker_in_pictures(walkthrough, tmp_path, videos_dir):
    """Each answered track has its thumbnail and contact sheet; the annotated video plays the whole clip
    (at most 15 frames a second: every n-th frame of a faster one)."""
    from pipeline.decode import VideoSource
    from service.jobs.artefacts import VIDEO_MAX_FPS

    result = walkthrough["probes"]["probe2_4p_back.mp4"]
    assert all(t["thumbnail"] and t["contact_sheet"] for t in _answered(result))
    video = walkthrough["annotated"]
    assert video.status_code == 200 and video.headers["content-type"] == "video/webm", video.text[:300]
    (tmp_path / "annotated.webm").write_bytes(video.content)
    with VideoSource(videos_dir / "probe2_4p_back.mp4") as original:
        every = max(1, round(original.info.fps / VIDEO_MAX_FPS))
    with VideoSource(tmp_path / "annotated.webm") as annotated:
        assert annotated.info.width <= 640
        assert sum(1 for _ in annotated.frames()) == len(range(0, result["frames"], every))


@pytest.mark.slow
def test_default_model_matches_j_and_never_the_unenrolled_person(walkthrough):
    answers = _answered(walkthrough["indoor"])
    assert answers[0]["decision"] == "match" and answers[0]["subject"]["id"] == walkthrough["subjects"]["J"]
    for clip, result in walkthrough["probes"].items():
        tracks = sorted(_answered(result), key=_x_centre)
        y = tracks[walkthrough["order"][clip].index("Y")]
        assert y["decision"] == "unknown", (clip, y)


@pytest.mark.slow
def test_every_match_names_the_person_who_walked(walkthrough):
    """A ``match`` is a claim about who walked: each one, in every probe, names the true subject."""
    names = {subject_id: person for person, subject_id in walkthrough["subjects"].items()}
    results = {"walk_indoor_a_probe.mp4": walkthrough["indoor"], **walkthrough["probes"]}
    wrong, matches = [], 0
    for clip, result in results.items():
        tracks = sorted(_answered(result), key=_x_centre)
        order = walkthrough["order"][clip]
        assert len(tracks) == len(order), (clip, result["tracks"])
        for track, truth in zip(tracks, order, strict=True):
            if track["decision"] == "match":
                matches += 1
                if names[track["subject"]["id"]] != truth:
                    wrong.append((clip, truth, _row(track, truth)))
    assert not wrong, f"matched to the wrong subject: {wrong}"
    assert matches >= 1  # J's, at least (checked above): the loop did look at matches


def _row(track: dict, truth: str) -> dict:
    """One line of the confusion table: who walked, what the service answered, the top candidates."""
    return {
        "truth": truth,
        "decision": track["decision"],
        "subject": track["subject"] and track["subject"]["name"],
        "score": track["score"],
        "candidates": [(c["subject"]["name"], c["score"]) for c in track["candidates"][:3]],
    }
