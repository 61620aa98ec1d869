"""The FastAPI application: citizen pages (:mod:`signer.web.citizen`) and the
health-centre API (:mod:`signer.web.centre`) over one ledger.

    create_app(settings) -> FastAPI     # tests, and uvicorn through factory()

Routes reach what they share through :func:`portal_of` (``app.state.portal``):
the ledger connection, the portal keys, the code sender, the clock. The clock
is passed in (tests move time); nothing reads the time behind its back.
Database calls are short and run on the event loop's thread (one connection
per process; uvicorn's ``--workers`` gives one per worker); slow work (the
code hash, signing jobs) runs in threads or child processes.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from signer.ledger import Ledger
from signer.web.keys import PortalKeys
from signer.web.security import SafeJSONResponse, SecurityHeaders
from signer.web.settings import SETTINGS_ENV, PortalSettings
from verifier.errors import PassportError

Clock = Callable[[], float]


def templates_dir() -> Path:
    return Path(str(resources.files("templates").joinpath("portal")))


@dataclass
class Portal:
    """What every request may use. One per process."""

    settings: PortalSettings
    ledger: Ledger
    keys: PortalKeys
    clock: Clock
    templates: Jinja2Templates
    #: extensions set by the routers' own start-up (sender, job runner, ...)
    extra: dict[str, Any] = field(default_factory=dict)


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


#: Hooks the routers register: called with the Portal after it opens, and
#: (async) before it closes. Keeps app.py ignorant of what each router runs.
StartHook = Callable[[Portal], None]
StopHook = Callable[[Portal], Any]


def create_app(settings: PortalSettings, *, clock: Clock = time.time) -> FastAPI:
    from signer.web import centre, citizen

    starts: list[StartHook] = [citizen.on_start, centre.on_start]
    stops: list[StopHook] = [centre.on_stop, citizen.on_stop]

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ledger = Ledger.open(settings.ledger, actor="portal")
        if ledger.db.dialect == "sqlite":
            # WAL + NORMAL for the portal's own small writes (sessions, rate hits, access
            # log): durable across a crash of the process; the batch runs keep FULL
            ledger.db.conn.execute("PRAGMA synchronous = NORMAL")
        portal = Portal(
            settings=settings,
            ledger=ledger,
            keys=PortalKeys(ledger.key.portal),
            clock=clock,
            templates=Jinja2Templates(directory=str(templates_dir())),
        )
        app.state.portal = portal
        try:
            for start in starts:
                start(portal)
            yield
        finally:
            for stop in stops:
                result = stop(portal)
                if hasattr(result, "__await__"):
                    await result
            ledger.close()

    app = _PortalApp(
        https=settings.https,
        default_response_class=SafeJSONResponse,
        title="vn-dcc health-centre API",
        version="1",
        description="Submit records files, follow jobs, fetch results and revoke certificates "
        "(docs/centre-api.md). Citizens use the HTML pages at / (docs/portal.md).",
        lifespan=lifespan,
        docs_url=None,  # no Swagger UI: it needs a CDN and inline script
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )

    @app.exception_handler(PassportError)
    async def passport_error(request: Request, exc: PassportError) -> JSONResponse:
        # a refused input the routes did not translate themselves: a 400, never a 500
        return SafeJSONResponse({"error": "invalid", "detail": str(exc)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the refused input back ("input", "ctx"): a lone
        # surrogate there made the response itself fail (a 500); the caller has its input
        detail = [{k: v for k, v in error.items() if k in ("loc", "msg", "type")} for error in exc.errors()]
        return SafeJSONResponse({"detail": jsonable_encoder(detail)}, status_code=422)

    app.mount("/static", StaticFiles(directory=str(templates_dir() / "static")), name="static")
    app.include_router(citizen.router)
    app.include_router(centre.router)
    return app


class _PortalApp(FastAPI):
    """FastAPI with the security headers OUTSIDE Starlette's error middleware, so
    that even a 500 carries them (``add_middleware`` would place them inside)."""

    def __init__(self, *, https: bool, **kwargs: Any) -> None:
        self._https = https
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> Any:
        return SecurityHeaders(super().build_middleware_stack(), https=self._https)


def factory() -> FastAPI:
    """For ``uvicorn --factory signer.web.app:factory`` (what ``signer serve`` runs):
    the settings come from ``$VNDCC_PORTAL_SETTINGS`` (JSON, no secrets)."""
    return create_app(PortalSettings.from_env(os.environ[SETTINGS_ENV]))
