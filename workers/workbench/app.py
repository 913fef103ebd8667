"""The workbench's ASGI app: sessions, CSRF, sign-in, security headers, metrics, pages.

The role pages live in :mod:`~workers.workbench.unit_pages` (inbox, case page, unit
actions) and :mod:`~workers.workbench.oversight_pages` (review queue, supervision); this
module wires them to one :class:`Workbench` (pool, producer, reads) opened with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from psycopg_pool import AsyncConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from activities.dispatch.config import HotlineConfig, load_config
from workers.runtime.health import Answer, Health, KafkaCheck, PostgresCheck
from workers.runtime.kafka_io import make_producer
from workers.runtime.migrate import migrate_or_wait
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect_temporal
from workers.workbench.accounts import AccountStore
from workers.workbench.context import (
    HERE,
    HOME,
    LOGINS,
    RESPONSE_TIME,
    RESPONSES,
    LoginRequired,
    Workbench,
    templates,
    when,
)
from workers.workbench.i18n import pick_lang, translator
from workers.workbench.oversight_pages import register as register_oversight
from workers.workbench.photos import (
    CACHE_CONTROL,
    MAX_PHOTOS,
    FolderPhotoStore,
    PhotoStore,
    PhotoUnavailable,
)
from workers.workbench.photos_s3 import S3PhotoStore
from workers.workbench.reads import LedgerReads
from workers.workbench.session import COOKIE, LANG_COOKIE, Session, Sessions
from workers.workbench.unit_pages import register as register_units

log = structlog.get_logger(__name__)


def base_url(settings: Settings) -> str:
    return (settings.workbench_base_url
            or f"http://{settings.workbench_host}:{settings.workbench_port}").rstrip("/")


def photo_store(settings: Settings, url: str) -> PhotoStore:
    """The bucket when one is named (HOTLINE_WORKBENCH_S3_BUCKET), else the folder.

    Raises:
        PhotoConfigError: The S3 settings do not fit together.
    """
    if settings.workbench_s3_bucket:
        return S3PhotoStore.from_settings(settings, url)
    return FolderPhotoStore(settings.workbench_photo_dir, url, settings.workbench_photo_max_bytes)


def image_sources(settings: Settings) -> str:
    """CSP img-src: the workbench, and the bucket's public origin when photos live there."""
    public = settings.workbench_s3_public_base_url if settings.workbench_s3_bucket else None
    if not public:
        return "'self' data:"
    scheme, _, rest = public.partition("://")
    return f"'self' data: {scheme}://{rest.split('/', 1)[0]}"


def create_app(settings: Settings, *, config: HotlineConfig | None = None) -> FastAPI:
    """The ASGI app; the ledger pool, Kafka producer and Temporal client open with it."""
    url = base_url(settings)
    secure = settings.workbench_secure_cookies or url.startswith("https://")
    secret = (settings.workbench_secret_key.get_secret_value()
              if settings.workbench_secret_key else secrets.token_urlsafe(32))
    wb = Workbench(
        settings=settings,
        config=config or load_config(settings.config_dir, with_model=False),
        sessions=Sessions(secret, settings.workbench_session_minutes * 60, secure),
        photos=photo_store(settings, url),
        templates=templates())
    max_body = settings.workbench_photo_max_bytes * MAX_PHOTOS + 1024 * 1024
    csp = (f"default-src 'self'; img-src {image_sources(settings)}; style-src 'self'; "
           "script-src 'self'; frame-ancestors 'none'; form-action 'self'")

    health = Health("workbench")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        health.start()
        # Applies the ledger's migrations, or waits for `hotline migrate` (the k8s Job).
        await migrate_or_wait(settings)
        pool = AsyncConnectionPool(settings.dsn, min_size=1, max_size=8, open=False,
                                   check=AsyncConnectionPool.check_connection)
        await pool.open(wait=True, timeout=30)
        try:
            temporal = await connect_temporal(settings)
        except Exception as exc:  # pages still work; the request text is then missing
            log.warning("workbench without Temporal: request texts unavailable",
                        error=f"{type(exc).__name__}: {exc}")
            temporal = None
        wb.state.update(pool=pool, reads=LedgerReads(pool, temporal),
                        accounts=AccountStore(pool, settings.workbench_login_max_failures,
                                              settings.workbench_login_lock_minutes),
                        producer=await asyncio.to_thread(
                            make_producer, settings, client_id="hotline-workbench"))
        # Temporal is not a readiness dependency: without it only the request's text is
        # missing from the case page.
        health.add(KafkaCheck(settings, settings.topic_unit_replies), PostgresCheck(settings.dsn))
        health.serving()
        if isinstance(wb.photos, S3PhotoStore):
            why = await asyncio.to_thread(wb.photos.reachable)
            if why:  # pages work without it; completing with photos is refused until it is
                log.warning("workbench photo bucket not reachable", bucket=wb.photos.bucket,
                            error=why)
        log.info("workbench ready", base_url=url)
        try:
            yield
        finally:
            health.begin_shutdown()
            await pool.close()
            await asyncio.to_thread(wb.state["producer"].close, 10)
            await health.close()

    app = FastAPI(title="hotline workbench", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.state.workbench = wb
    app.state.health = health
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def frame(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                    ) -> Response:
        started = time.perf_counter()
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return Response("request body too large", 413)
        loaded = wb.sessions.load(request.cookies.get(COOKIE))
        request.state.session = loaded or Session.fresh()
        request.state.lang = pick_lang(request.query_params.get("lang"),
                                       request.cookies.get(LANG_COOKIE))
        response = await call_next(request)
        if loaded is None or request.state.session is not loaded:
            wb.sessions.store(response, request.state.session)
        if request.query_params.get("lang") == request.state.lang:
            response.set_cookie(LANG_COOKIE, request.state.lang, max_age=365 * 86400,
                                httponly=True, samesite="strict", secure=secure)
        response.headers.update({
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin"})
        if not request.url.path.startswith(("/static/", "/photos/")):
            response.headers["Cache-Control"] = "no-store"
        route = getattr(request.scope.get("route"), "path", "unmatched")
        RESPONSES.labels(route, str(response.status_code)).inc()
        RESPONSE_TIME.labels(route).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        if request.method == "POST":
            return Response("sign in first", 403)
        return RedirectResponse("/login", 303)

    @app.exception_handler(StarletteHTTPException)
    async def error_page(request: Request, exc: StarletteHTTPException) -> Response:
        return wb.render(request, "error.html", exc.status_code, code=exc.status_code)

    def probe(answer: Answer) -> Response:
        return Response(json.dumps(answer.body, ensure_ascii=False), answer.status,
                        {"Cache-Control": "no-store"}, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return probe(health.liveness())

    @app.get("/readyz")
    async def readyz() -> Response:
        return probe(await health.readiness())

    @app.get("/")
    async def home(request: Request) -> Response:
        account = await wb.account(request)
        return RedirectResponse(HOME[account.role], 303)

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        return wb.render(request, "login.html", message=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await wb.form(request)
        username = str(form.get("username") or "").strip()[:128]
        password = str(form.get("password") or "")[:1024]
        client = request.client.host if request.client else "unknown"
        t = translator(request.state.lang)
        locked = await wb.accounts.locked_until(username, client)
        if locked is not None:
            LOGINS.labels("locked").inc()
            return wb.render(request, "login.html", 429, message=t("locked", until=when(locked)))
        account = await wb.accounts.authenticate(username, password, client)
        if account is None:
            LOGINS.labels("failed").inc()
            log.info("workbench sign-in failed", username=username, client=client)
            locked = await wb.accounts.locked_until(username, client)
            message = t("locked", until=when(locked)) if locked else t("bad_login")
            return wb.render(request, "login.html", 429 if locked else 401, message=message)
        LOGINS.labels("ok").inc()
        log.info("workbench sign-in", username=username, role=account.role,
                 unit_id=account.unit_id)
        request.state.session = Session.fresh(account.username)
        return RedirectResponse(HOME[account.role], 303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await wb.form(request)
        request.state.session = Session.fresh()
        return RedirectResponse("/login", 303)

    @app.get("/photos/{name}")
    async def photo(name: str) -> Response:
        try:
            found = await asyncio.to_thread(wb.photos.read, name)
        except PhotoUnavailable:
            raise HTTPException(503) from None
        if found is None:
            raise HTTPException(404)
        return Response(found.data, media_type=found.media_type,
                        headers={"Cache-Control": CACHE_CONTROL})

    register_units(app, wb)
    register_oversight(app, wb)
    return app
