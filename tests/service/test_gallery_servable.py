"""The gallery serves what the model card says: its embedding shape, and only the metric it matches by."""

from dataclasses import replace
from pathlib import Path

import pytest

from models.configs import make_config
from models.errors import ModelError
from models.matching import MatchingTransform
from models.registry import resolve
from service.context import ServiceContext
from service.db.migrate import upgrade
from service.gallery.index import IndexConfig
from service.gallery.servable import served_shape
from service.settings import Settings


def test_the_gallery_takes_the_shape_of_the_model_card():
    default = resolve("default")
    assert served_shape(default) == (256, 16)
    eight_parts = replace(
        default, config=make_config("gaitbase", {"parts": 8, "embedding_dim": 128}), transform=MatchingTransform()
    )
    assert served_shape(eight_parts) == (128, 8)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"metric": "euclidean"}, "asks for the euclidean metric"),
        (
            {"config": make_config("gaitbase", {"parts": 16, "embedding_dim": 100}), "transform": MatchingTransform()},
            "needs a multiple of 256",
        ),
        (
            {"config": make_config("gaitbase", {"parts": 8, "embedding_dim": 128})},
            "the transform is for [256, 16] embeddings",
        ),
    ],
)
def test_a_model_the_gallery_cannot_serve_is_refused_in_one_line(change: dict, words: str):
    spec = replace(resolve("default"), **change)
    with pytest.raises(ModelError) as refused:
        served_shape(spec)
    assert refused.value.code == "model_not_servable" and words in str(refused.value)
    assert len(str(refused.value).splitlines()) == 1


def test_an_exact_gallery_serves_any_shape():
    spec = replace(
        resolve("default"),
        config=make_config("gaitbase", {"parts": 16, "embedding_dim": 100}),
        transform=MatchingTransform(),
    )
    assert served_shape(spec, IndexConfig(kind="flat")) == (100, 16)


def test_the_service_refuses_to_start_with_a_model_it_cannot_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "models"
    folder.mkdir()
    weights = resolve("default").weights
    (folder / "far.yaml").write_text(f"name: far\narch: gaitbase\nweights: {weights}\nmetric: euclidean\n")
    monkeypatch.setenv("GAITID_MODELS_DIR", str(folder))
    database = f"sqlite:///{tmp_path / 'gaitid.db'}"
    upgrade(database)
    with pytest.raises(ModelError, match="far@1 asks for the euclidean metric") as refused:
        ServiceContext.create(Settings(database_url=database, data_dir=tmp_path / "data", model="far"))  # type: ignore[call-arg]
    assert refused.value.code == "model_not_servable"
