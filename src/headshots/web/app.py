"""The FastAPI application: API, health checks, the local checkout page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from headshots.config import Settings
from headshots.errors import HeadshotsError
from headshots.jobs.queue import make_consumer
from headshots.orders import db
from headshots.orders.db import transaction
from headshots.orders.models import Order
from headshots.payments.local import LocalPayments
from headshots.runtime import Runtime, build_runtime
from headshots.web.api import error_body, receive_payment, router

log = logging.getLogger(__name__)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def create_app(runtime: Runtime | None = None, *, run_consumer: bool | None = None) -> FastAPI:
    """The app.

    Without ``runtime`` one is built from the environment at start-up. The
    job consumer runs inside the app when ``run_consumer`` is true, which is
    the default for the embedded SQLite queue.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active = runtime or build_runtime(Settings())
        app.state.runtime = active
        embedded = run_consumer if run_consumer is not None else active.settings.queue_url is None
        consumer = None
        if embedded:
            consumer = make_consumer(active.queue, active.settings, embedded=True)
            consumer.start()
            log.info("in-process job consumer started (%d workers)", active.settings.concurrency)
        try:
            yield
        finally:
            if consumer is not None:
                consumer.stop(graceful=True)
            if runtime is None:
                active.close()

    app = FastAPI(
        title="headshots",
        summary="Professional headshots from one selfie.",
        lifespan=lifespan,
    )
    if runtime is not None:
        app.state.runtime = runtime
    app.include_router(router)
    _add_error_handlers(app)
    _add_health(app)
    _add_local_checkout(app)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeadshotsError)
    async def headshots_error(request: Request, error: HeadshotsError) -> JSONResponse:
        return JSONResponse(error_body(error), status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in error.errors()
        )
        return JSONResponse(
            {"error": "invalid_request", "detail": f"The request is not valid: {problems}."},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = "There is nothing here." if error.status_code == 404 else str(error.detail)
        return JSONResponse(
            {"error": f"http_{error.status_code}", "detail": detail},
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        # Only the type is logged: messages can quote a person's data.
        log.error("internal error on %s: %s", request.url.path, type(error).__name__)
        return JSONResponse(
            {"error": "internal", "detail": "Something went wrong on our side. Try again."},
            status_code=500,
        )


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
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
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )


def _engine_ready(runtime: Runtime) -> None:
    from headshots.engines.base import default_engine_name

    engine = runtime.engine(default_engine_name(runtime.settings))
    check = getattr(engine, "check_ready", None)
    if check is not None:
        check()


def _add_local_checkout(app: FastAPI) -> None:
    """The embedded provider's test checkout page (no money moves)."""

    def find(runtime: Runtime, session_id: str) -> Order | None:
        from sqlalchemy import select

        if not session_id.startswith("lcs_") or len(session_id) > 64:
            return None
        with transaction(runtime.sessions) as session:
            return session.scalars(
                select(Order).where(Order.checkout_session_id == session_id)
            ).first()

    @app.get("/pay/local/{session_id}", response_class=HTMLResponse, include_in_schema=False)
    def local_checkout(request: Request, session_id: str) -> Response:
        runtime: Runtime = request.app.state.runtime
        order = find(runtime, session_id)
        context: dict[str, Any] = {"order": order, "session_id": session_id}
        status = 200 if order is not None and not order.is_tombstone else 404
        return templates.TemplateResponse(
            request, "local_checkout.html", context, status_code=status
        )

    @app.post("/pay/local/{session_id}", include_in_schema=False)
    def local_pay(request: Request, session_id: str) -> Response:
        runtime: Runtime = request.app.state.runtime
        payments = runtime.payments
        order = find(runtime, session_id)
        if not isinstance(payments, LocalPayments) or order is None or order.is_tombstone:
            return JSONResponse(
                {"error": "not_found", "detail": "This test checkout does not exist."},
                status_code=404,
            )
        payload, headers = payments.confirmation(
            session_id=session_id,
            order_id=order.id,
            amount_cents=order.amount_cents,
            currency=order.currency,
        )
        receive_payment(runtime, payload, headers)
        return RedirectResponse(f"/orders/{order.id}?paid=1", status_code=303)
