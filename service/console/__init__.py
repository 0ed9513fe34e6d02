"""The web console: one page served by the API itself at ``/``, every asset from ``/console/``.

Plain HTML, CSS and JavaScript (no build step, nothing fetched from another host), so it works on an
offline host and needs no separate server. It talks to the same ``/v1`` API as any client, with the
API key the user signs in with (kept in the browser session only, sent as ``X-API-Key``).
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"


def install_console(app: FastAPI) -> None:
    app.mount("/console", StaticFiles(directory=STATIC), name="console")

    @app.get("/", include_in_schema=False)
    def console() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})
