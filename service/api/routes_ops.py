"""Operations: liveness, readiness and Prometheus metrics (no API key needed)."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from service.api.deps import Context
from service.api.schemas import Health
from service.db.migrate import require_migrated
from service.errors import NotReadyError
from service.jobs.store import active_jobs
from service.metrics import GALLERY_SIZE, JOBS_ACTIVE

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up and serving HTTP."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(ctx: Context) -> JSONResponse:
    """Ready to take work: database reachable and migrated, gallery index loaded, gait model loaded."""
    checks: dict[str, str] = {}
    try:
        with ctx.sessions() as session:
            session.execute(text("SELECT 1"))
        require_migrated(ctx.settings.database_url)
        checks["database"] = "ok"
    except NotReadyError as error:
        checks["database"] = str(error)
    except Exception as error:  # any driver error means "not ready", reported, never raised
        checks["database"] = f"unreachable: {type(error).__name__}"
    checks["gallery"] = ctx.gallery.status() if ctx.gallery_loaded else "not loaded"
    checks["model"] = f"ok ({ctx.recognizer.model_key})" if ctx.recognizer.loaded else "not loaded"
    ready = all(v.startswith("ok") for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(ctx: Context) -> Response:
    """Prometheus text format."""
    GALLERY_SIZE.labels(ctx.recognizer.model_key).set(len(ctx.gallery))
    with ctx.sessions() as session:
        JOBS_ACTIVE.set(active_jobs(session))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
