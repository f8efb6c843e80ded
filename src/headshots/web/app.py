"""The FastAPI application: JSON API, pages, health checks, security headers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from headshots import metrics
from headshots.config import Settings
from headshots.errors import HeadshotsError
from headshots.jobs import worker
from headshots.orders import db
from headshots.runtime import Runtime, build_runtime
from headshots.web import events, pages, redo, team_pages, teams
from headshots.web.api import error_body, router
from headshots.web.guards import RequestGuards
from headshots.web.limits import upload_limiter
from headshots.web.replicate_webhook import build_replicate_webhook_router
from headshots.web.samples import Samples
from headshots.web.schemas import Error, Health, Readiness
from headshots.web.security import Csrf, SecurityHeaders, csrf_key

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# Swagger UI 5 (it reads OpenAPI 3.1), as fastapi-offline ships it: served
# from here, since the Content-Security-Policy allows no outside script.
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"


def create_app(runtime: Runtime | None = None, *, run_consumer: bool | None = None) -> FastAPI:
    """The app.

    Without ``runtime`` one is built from the environment at start-up. The
    job consumer runs inside the app when ``run_consumer`` is true, which is
    the default for the embedded SQLite queue.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = runtime or build_runtime(Settings())
        _install(app, active)
        embedded = run_consumer if run_consumer is not None else active.settings.queue_url is None
        # Changes made by workers elsewhere wake this process's order pages.
        listening = active.changes.listen()
        consumer = None
        if embedded:
            consumer = worker.start(active, embedded=True)
            active.local_consumer = True
            log.info("in-process job consumer started (%d styles at a time)", consumer.threads)
        try:
            yield
        finally:
            if listening is not None:
                listening.set()
            if consumer is not None:
                active.local_consumer = False
                consumer.stop()
            if runtime is None:
                active.close()

    app = FastAPI(
        title="headshots",
        summary="Professional headshots from one selfie.",
        lifespan=lifespan,
        # FastAPI's own pages load Swagger UI from a CDN with an inline
        # script; _add_docs serves the same UI from this app.
        docs_url=None,
        redoc_url=None,
    )
    if runtime is not None:
        _install(app, runtime)
    settings = runtime.settings if runtime else Settings()
    # Added first, so the headers middleware also covers its refusals.
    app.add_middleware(RequestGuards, settings=settings)
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_docs(app)
    # Replicate's completion webhooks (used when HEADSHOTS_PUBLIC_URL is set;
    # polling covers a webhook that never arrives). Mounted before the API,
    # whose /api/webhooks/{provider} would otherwise take the path.
    app.include_router(build_replicate_webhook_router(settings))
    app.include_router(router)
    app.include_router(teams.router)
    app.include_router(team_pages.router)
    app.include_router(redo.router)
    app.include_router(redo.pages)
    app.include_router(pages.router)
    app.include_router(events.router)
    _add_error_handlers(app)
    _add_health(app)
    return app


def _add_docs(app: FastAPI) -> None:
    """/docs: the API's schema in Swagger UI, every file from this app."""
    app.mount("/docs/ui", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(_DOCS_PAGE)


_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>headshots API</title>
<link rel="stylesheet" href="/docs/ui/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="/docs/ui/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


def _install(app: FastAPI, runtime: Runtime) -> None:
    """The parts of the app that need settings: runtime, limiter, CSRF key, samples."""
    app.state.runtime = runtime
    app.state.limiter = upload_limiter(runtime.settings)  # in Redis when the queue is
    app.state.csrf = Csrf(csrf_key(runtime.settings))
    app.state.samples = Samples.of(runtime.settings)


def wants_html(request: Request) -> bool:
    """Browsers get friendly pages; the API and other clients keep JSON errors."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeadshotsError)
    async def headshots_error(request: Request, error: HeadshotsError) -> Response:
        metrics.refused(error.code)
        if wants_html(request):
            return pages.error_page(request, error)
        return JSONResponse(error_body(error), status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in error.errors()
        )
        body = Error(error="invalid_request", detail=f"The request is not valid: {problems}.")
        return JSONResponse(body.model_dump(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        detail = "There is nothing here." if error.status_code == 404 else str(error.detail)
        if wants_html(request):
            page_error = HeadshotsError(
                "There is nothing at this address. Check the link, or start from the home page."
                if error.status_code == 404
                else detail,
                status_code=error.status_code,
            )
            return pages.error_page(request, page_error)
        return JSONResponse(
            Error(error=f"http_{error.status_code}", detail=detail).model_dump(),
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        # Only the type is logged: messages can quote a person's data.
        log.error("internal error on %s: %s", request.url.path, type(error).__name__)
        body = Error(error="internal", detail="Something went wrong on our side. Try again.")
        return JSONResponse(body.model_dump(), status_code=500)


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz")
    def healthz() -> Health:
        return Health(status="ok")

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        return Response(metrics.exposition(runtime), media_type=metrics.CONTENT_TYPE)

    @app.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "A part is not ready."}},
    )
    def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        probes: tuple[tuple[str, Callable[[], object]], ...] = (
            ("database", lambda: db.ping(runtime.database)),
            ("queue", runtime.queue.ping),
            ("storage", runtime.blobs.check),
            ("engine", lambda: _engine_ready(runtime)),
        )
        for name, check in probes:
            try:
                check()
                checks[name] = "ok"
            except HeadshotsError as error:
                checks[name] = error.detail
            except Exception as error:
                checks[name] = f"unavailable ({type(error).__name__})"
        ready = all(value == "ok" for value in checks.values())
        # Which model a local engine runs, and its licence (docs/decisions/0009-flux2-klein.md).
        model = _engine_model(runtime) if checks["engine"] == "ok" else None
        body = Readiness(
            status="ready" if ready else "not ready", checks=checks, model=model or None
        )
        # An engine without a model to name leaves the key out, as it always has.
        answer = body.model_dump(exclude_none=True)
        return JSONResponse(answer, status_code=200 if ready else 503)


def _engine_model(runtime: Runtime) -> dict[str, object] | None:
    from headshots.engines.base import default_engine_name

    return runtime.engine(default_engine_name(runtime.settings)).describe()


def _engine_ready(runtime: Runtime) -> None:
    from headshots.engines.base import default_engine_name

    runtime.engine(default_engine_name(runtime.settings)).check_ready()
