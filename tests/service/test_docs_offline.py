"""``/docs`` and ``/redoc`` work on an offline host: every script, style and icon they load is served by
the app itself (FastAPI's defaults load them from a public CDN)."""

import re
from pathlib import Path

import httpx

from service.api.app import create_app
from service.db.migrate import upgrade
from service.settings import Settings
from tests.service.conftest import serve_in_process


def test_the_documentation_pages_load_nothing_from_elsewhere(tmp_path: Path):
    database = f"sqlite:///{tmp_path / 'gaitid.db'}"
    upgrade(database)
    app = create_app(Settings(database_url=database, data_dir=tmp_path / "data"))  # type: ignore[call-arg]
    with serve_in_process(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200 and "text/html" in html.headers["content-type"]
            assert not re.findall(r"https?://", html.text), f"{page} names another host"
            assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
            assert any(a.endswith(".js") for a in assets), assets
            for asset in assets:
                answer = client.get(asset)
                assert answer.status_code == 200 and len(answer.content) > 100, f"{page}: {asset} {answer.status_code}"
        assert client.get("/openapi.json").json()["info"]["title"] == "GaitID"
