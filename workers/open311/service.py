"""``hotline open311``: an Open311 GeoReport v2 service in front of the hotline.

Citizen apps that speak GeoReport v2 (311 apps, FixMyStreet) list our categories as
services, file requests, and follow them:

- ``GET discovery``, ``GET services``, ``GET services/{code}`` from the config folder;
- ``POST requests`` (API key per client) becomes a ``ComplaintFiled`` on
  ``hotline.intake``, acknowledged by Kafka before the answer; the request's own fields
  (never the caller's contact details) go to ``open311_requests`` in the ledger;
- ``GET requests``, ``GET requests/{id}``, ``GET tokens/{token}`` read the ledger.

``GET /healthz`` (the app answers) and ``GET /readyz`` (Kafka and the ledger answer; 503
naming what is down) are for the kubelet's probes, outside the OpenAPI document and the
rate limit. Every other path ends in ``.json`` or ``.xml``; errors are the spec's
``[{"code": ..., "description": ...}]`` (``<errors>`` in XML). The OpenAPI document is
served at ``/openapi.json`` and kept in ``deploy/open311/openapi.json``.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

import psycopg
import structlog
import uvicorn
from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from fastapi.routing import APIRoute
from prometheus_client import Counter, Histogram
from psycopg_pool import AsyncConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from activities.dispatch.config import HotlineConfig, load_config
from schemas.codec import EncodeError, encode, headers_for
from workers.open311.clients import find_client, load_clients
from workers.open311.ledger import DEFAULT_PAGE_SIZE, Ledger, RequestQuery
from workers.open311.model import (
    BEIJING,
    NO_NUL,
    SPECIFICATION,
    TIER_NAMES,
    ApiClient,
    Open311Error,
    complaint_id_for,
    error_body,
    filing_record,
    parse_request,
    post_form_schema,
    request_view,
    service_definition,
    services,
    to_xml,
)
from workers.open311.rate_limit import SharedRateLimiter, Verdict
from workers.open311.responses import (
    Discovery,
    RequestCreated,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenResult,
    responses,
)
from workers.runtime.health import Answer, Health, KafkaCheck, PostgresCheck
from workers.runtime.kafka_io import make_producer
from workers.runtime.migrate import migrate_or_wait
from workers.runtime.observability import start_metrics_server
from workers.runtime.settings import REPO_ROOT, Settings

log = structlog.get_logger(__name__)

RESPONSES = Counter(
    "hotline_open311_responses_total",
    "Open311 answers by operation (route template) and HTTP status code.",
    ["operation", "code"],
)
RESPONSE_TIME = Histogram(
    "hotline_open311_response_seconds",
    "Time to answer an Open311 request, by operation.",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_METHODS = frozenset({"GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})
FILED = Counter(
    "hotline_open311_requests_filed_total",
    "Service requests filed on hotline.intake through Open311, by client.",
    ["client"],
)

OPENAPI_PATH = REPO_ROOT / "deploy" / "open311" / "openapi.json"
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default GET requests window
MAX_PAGE_SIZE = 1000  # the spec's suggested cap on one answer
MAX_IDS = 100
SEND_TIMEOUT_S = 30.0
FORM_TYPE = "application/x-www-form-urlencoded"
# The kubelet's probes: never rate limited (the kubelet is one address for every pod).
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
# What the rate limit lets through while its database is down (workers/open311/rate_limit.py).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Fmt = Literal["json", "xml"]
# A W3C datetime: a day, or a day and a time with its offset (the spec's
# 2010-04-14T06:37:38-08:00); seconds optional. A day alone starts at 00:00 Beijing time.
W3C_DATETIME = (r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])(T([01]\d|2[0-3]):[0-5]\d"
                r"(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d))?$")
# Module level: FastAPI resolves the handlers' (string) annotations in this namespace.
fmt_param = Annotated[Fmt, PathParam(description="response format")]


# --- the app ---------------------------------------------------------------------------------


def _render(fmt: str, root: str, data: Any, status: int = 200,
            headers: Mapping[str, str] | None = None) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, data), status, headers, media_type="application/xml")
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def _fmt_of(request: Request) -> str:
    return "xml" if request.url.path.endswith(".xml") else "json"


def _error(request: Request, code: int, description: str,
           headers: Mapping[str, str] | None = None) -> Response:
    return _render(_fmt_of(request), "errors", error_body(code, description), code, headers)


def _refusal(request: Request, verdict: Verdict, limited: str) -> Response:
    headers = {"Retry-After": str(verdict.retry_after_s)}
    if verdict.unavailable:
        return _error(request, 503, "the ledger is not reachable; retry later", headers)
    return _error(request, 429, limited, headers)


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _datetime(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        # The pattern admits 2026-02-30: a day past the month's end is its last day.
        year, month, rest = int(text[:4]), int(text[5:7]), text[10:]
        last = calendar.monthrange(year, month)[1]
        try:
            at = datetime.fromisoformat(f"{year:04d}-{month:02d}-{last:02d}{rest}")
        except ValueError:
            raise Open311Error(400, f"{name} is not a W3C datetime: {text!r}") from None
    # A day alone (no time, no offset) is read in Beijing time.
    return at if at.tzinfo is not None else at.replace(tzinfo=BEIJING)


def create_app(settings: Settings, *, config: HotlineConfig | None = None,
               clients: Sequence[ApiClient] | None = None,
               clock: Callable[[], float] | None = None) -> FastAPI:
    """The ASGI app. The ledger pool and Kafka producer open with the app's lifespan.

    ``config`` and ``clients`` default to those of ``settings`` (config folder, keys);
    ``clock`` is the rate limiter's (tests move it by hand; None: the database's).
    """
    config = config or load_config(settings.config_dir)
    clients = list(clients) if clients is not None else load_clients(settings)
    limiter = SharedRateLimiter(settings, clock)
    base_url = (settings.open311_base_url
                or f"http://{settings.open311_host}:{settings.open311_port}").rstrip("/")
    state: dict[str, Any] = {}

    health = Health("open311")

    def _serve_once_current(schema: asyncio.Task[bool]) -> None:
        if not schema.cancelled() and schema.exception() is None and schema.result():
            health.serving()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        health.start()
        # Without migrate_on_start the schema is waited for in the background: uvicorn
        # listens (alive, not ready) meanwhile instead of failing its startup probe.
        schema = asyncio.create_task(migrate_or_wait(settings))
        if settings.migrate_on_start:
            await schema
        pool = AsyncConnectionPool(settings.dsn, min_size=1, max_size=4, open=False,
                                   check=AsyncConnectionPool.check_connection)
        await pool.open(wait=True, timeout=30)
        state["ledger"] = Ledger(pool)
        await limiter.open()
        state["producer"] = await asyncio.to_thread(
            make_producer, settings, client_id="hotline-open311")
        health.add(KafkaCheck(settings, settings.topic_intake), PostgresCheck(settings.dsn))
        schema.add_done_callback(_serve_once_current)
        log.info("open311 ready", base_url=base_url, clients=len(clients))
        try:
            yield
        finally:
            health.begin_shutdown()
            schema.cancel()
            await limiter.close()
            await pool.close()
            await asyncio.to_thread(state["producer"].close, 10)
            await health.close()

    app = FastAPI(
        title="hotline Open311 GeoReport v2",
        version="2",
        description="Open311 GeoReport v2 for the citizen hotline: file and follow requests. "
                    "Statuses: open/closed, with FixMyStreet's extended statuses.",
        lifespan=lifespan, docs_url=None, redoc_url=None,
    )
    app.state.health = health

    @app.middleware("http")
    async def limits(request: Request, call_next: Any) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit()
                                   or int(length) > settings.open311_max_body_bytes):
            return _error(request, 413, f"request body over "
                          f"{settings.open311_max_body_bytes} bytes")
        if request.url.path in PROBE_PATHS:
            probe: Response = await call_next(request)
            return probe
        host = request.client.host if request.client else "unknown"
        verdict = await limiter.hit(f"ip:{host}", write=request.method not in READ_METHODS)
        if not verdict.allowed:
            return _refusal(request, verdict, "too many requests; slow down")
        response: Response = await call_next(request)
        return response

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        # Added last, so outermost: the limits' refusals are counted too.
        started = time.perf_counter()
        response: Response = await call_next(request)
        # The route template, not the path: ids must not become label values.
        route = request.scope.get("route")
        method = request.method if request.method in _METHODS else "OTHER"
        operation = f"{method} {getattr(route, 'path', 'unmatched')}"
        RESPONSES.labels(operation, str(response.status_code)).inc()
        RESPONSE_TIME.labels(operation).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(Open311Error)
    async def on_open311(request: Request, exc: Open311Error) -> Response:
        return _error(request, exc.code, exc.description)

    @app.exception_handler(psycopg.Error)
    async def on_ledger(request: Request, exc: psycopg.Error) -> Response:
        if isinstance(exc, psycopg.DataError):  # a value PostgreSQL cannot take
            return _error(request, 400, f"invalid value: {exc}")
        log.warning("open311 ledger error", error=str(exc))
        return _error(request, 503, "the ledger is not reachable; retry later")

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return _error(request, 400, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        headers = exc.headers
        if exc.status_code == 405:
            # Starlette names only the first route that matched the path; GET and POST
            # requests.{fmt} are two routes, so list every method the path supports.
            methods = {m for r in app.routes if isinstance(r, APIRoute)
                       and r.path_regex.match(request.url.path) for m in r.methods or ()}
            headers = {"Allow": ", ".join(sorted(methods))}
        return _error(request, exc.status_code, str(exc.detail), headers)

    def _probe(answer: Answer) -> Response:
        return Response(json.dumps(answer.body, ensure_ascii=False), answer.status,
                        {"Cache-Control": "no-store"}, media_type="application/json")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        return _probe(health.liveness())

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Response:
        return _probe(await health.readiness())

    @app.get("/discovery.{fmt}", responses=responses(Discovery), response_model=None,
             summary="Service discovery")
    async def discovery(fmt: fmt_param) -> Response:
        return _render(fmt, "discovery", {
            "changeset": "2026-11-22T00:00:00+08:00",
            "contact": "12345 citizen hotline (call 12345)",
            "key_service": "API keys are issued by the hotline centre to each client app",
            "endpoints": [{"specification": SPECIFICATION, "url": base_url,
                           "changeset": "2026-11-22T00:00:00+08:00", "type": "production",
                           "formats": ["application/json", "text/xml"]}],
        })

    @app.get("/services.{fmt}", responses=responses(list[Service]), response_model=None,
             summary="Service list: the hotline's categories")
    async def list_services(fmt: fmt_param) -> Response:
        return _render(fmt, "services", services(config.lexicon))

    @app.get("/services/{service_code}.{fmt}", responses=responses(ServiceDefinition),
             response_model=None, summary="Service definition: a category's attributes")
    async def get_service(service_code: Annotated[str, PathParam(pattern=NO_NUL)],
                          fmt: fmt_param) -> Response:
        category = config.lexicon.category(service_code)
        if category is None:
            raise Open311Error(404, f"service_code {service_code!r} not found")
        return _render(fmt, "service_definition",
                       service_definition(category, config.lexicon, config.registry))

    @app.post("/requests.{fmt}", status_code=201, response_model=None,
              responses=responses(list[RequestCreated], 201, 403, 409, 413),
              openapi_extra={"requestBody": {"required": True, "content": {FORM_TYPE: {
                  "schema": post_form_schema(config.lexicon, config.registry)}}}},
              summary="Create a service request")
    async def post_request(
        request: Request, fmt: fmt_param,
        idempotency_key: Annotated[str | None, Header(
            max_length=128, pattern=r"^[\x21-\x7e]+$",
            description="the same key from the same client files one request, however "
                        "often sent")] = None,
    ) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.open311_max_body_bytes:
                raise Open311Error(413, f"request body over "
                                   f"{settings.open311_max_body_bytes} bytes")
        if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
            raise Open311Error(400, f"the body must be {FORM_TYPE}")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=64, strict_parsing=False)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Open311Error(400, f"unreadable form: {exc}") from None
        form: dict[str, str] = {}
        for k, v in pairs:
            form.setdefault(k, v)
        client = find_client(clients, form.get("api_key"))
        if client is None:
            raise Open311Error(403, "api_key is missing or not valid")
        verdict = await limiter.hit(f"client:{client.name}", write=True)
        if not verdict.allowed:
            return _refusal(request, verdict, f"too many requests from {client.name}; slow down")
        req = parse_request(form, config.lexicon, config.registry)
        cid = complaint_id_for(client.name, idempotency_key)
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        ledger: Ledger = state["ledger"]
        token, requested_at, code, text = await ledger.reserve(cid, client.name, req, now)
        if (code, text) != (req.service_code, req.description):
            raise Open311Error(409, "Idempotency-Key already used for another request")
        try:
            value = encode("ComplaintFiled", filing_record(req, cid, client, requested_at))
        except EncodeError as exc:
            raise Open311Error(400, f"cannot file this request: {exc}") from None
        try:
            future = state["producer"].send(settings.topic_intake, key=cid.encode(),
                                            value=value, headers=headers_for("ComplaintFiled"))
            await asyncio.to_thread(future.get, SEND_TIMEOUT_S)
        except Exception as exc:  # any Kafka failure: the client retries
            log.warning("open311 filing not sent", complaint_id=cid, error=str(exc))
            raise Open311Error(503, "the intake is not reachable; retry with the same "
                               "Idempotency-Key") from None
        await ledger.published(cid)
        FILED.labels(client.name).inc()
        log.info("open311 request filed", complaint_id=cid, client=client.name,
                 service_code=req.service_code)
        category = config.lexicon.category(req.service_code)
        notice = (f"expected within {TIER_NAMES[category.tier]}, sooner when urgent"
                  if category else None)
        return _render(fmt, "service_requests", [{
            "service_request_id": cid, "token": token, "service_notice": notice,
            "account_id": None}], 201)

    @app.get("/requests.{fmt}", responses=responses(list[ServiceRequest]),
             response_model=None, summary="Get service requests")
    async def get_requests(
        fmt: fmt_param,
        service_request_id: Annotated[str | None, Query(
            max_length=4000, pattern=rf"^[^,\u0000]*(,[^,\u0000]*){{0,{MAX_IDS - 1}}}$",
            description=f"comma-separated ids (at most {MAX_IDS}); all other filters are "
                        "then ignored")] = None,
        service_code: Annotated[str | None, Query(
            max_length=2000, pattern=NO_NUL, description="comma-separated service codes")
        ] = None,
        start_date: Annotated[str | None, Query(
            pattern=W3C_DATETIME,
            description="earliest requested_datetime (default: 90 days ago)")] = None,
        end_date: Annotated[str | None, Query(
            pattern=W3C_DATETIME,
            description="latest requested_datetime")] = None,
        status: Annotated[str | None, Query(
            pattern=r"^(open|closed)(,(open|closed))*$",
            description="open, closed or both, comma-separated")] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    ) -> Response:
        ids = _split(service_request_id)
        start, end = _datetime(start_date, "start_date"), _datetime(end_date, "end_date")
        if start is None and end is None and not ids:
            start = datetime.now(UTC) - DEFAULT_WINDOW
        query = RequestQuery(ids=ids, service_codes=_split(service_code), start=start,
                             end=end, statuses=_split(status), page=page,
                             page_size=page_size)
        rows = await state["ledger"].requests(query)
        return _render(fmt, "service_requests",
                       [request_view(r, config.lexicon, config.registry) for r in rows])

    @app.get("/requests/{service_request_id}.{fmt}",
             responses=responses(list[ServiceRequest]), response_model=None,
             summary="Get a service request")
    async def get_request(service_request_id: Annotated[str, PathParam(max_length=128,
                                                                        pattern=NO_NUL)],
                          fmt: fmt_param) -> Response:
        rows = await state["ledger"].requests(RequestQuery(ids=(service_request_id,)))
        if not rows:
            raise Open311Error(404, f"service_request_id {service_request_id!r} not found")
        return _render(fmt, "service_requests",
                       [request_view(rows[0], config.lexicon, config.registry)])

    @app.get("/tokens/{token}.{fmt}", responses=responses(list[TokenResult]),
             response_model=None, summary="Get a service_request_id from a token")
    async def get_token(token: Annotated[str, PathParam(max_length=64, pattern=NO_NUL)],
                        fmt: fmt_param) -> Response:
        found = await state["ledger"].token(token)
        if found is None:
            raise Open311Error(404, f"token {token!r} not found")
        cid, accepted = found
        entry: dict[str, Any] = {"token": token}
        if accepted:
            entry["service_request_id"] = cid
        return _render(fmt, "service_requests", [entry])

    def openapi() -> dict[str, Any]:
        # Invalid input answers 400 with the spec's body, never FastAPI's 422.
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            for operations in doc["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                doc.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def openapi_document(settings: Settings | None = None) -> dict[str, Any]:
    """The OpenAPI document of the service (what ``deploy/open311/openapi.json`` holds)."""
    settings = settings or Settings()
    app = create_app(settings, clients=[])
    return app.openapi()


def write_openapi(path: Path = OPENAPI_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(openapi_document(), ensure_ascii=False, indent=2) + "\n",
                    encoding="utf-8")
    return path


# --- running ---------------------------------------------------------------------------------


def server_config(app: FastAPI, settings: Settings, *, port: int | None = None,
                  lifespan: Literal["on", "off"] = "on") -> uvicorn.Config:
    """How uvicorn serves the app, for ``hotline open311`` and in-process servers alike.

    ``lifespan="off"`` serves without opening Kafka and the ledger (tests of the HTTP layer
    only).
    """
    return uvicorn.Config(
        app, host=settings.open311_host,
        port=settings.open311_port if port is None else port,
        log_level="warning", access_log=False, lifespan=lifespan,
        # The rate limits key on the client's address: behind an ingress that is the one
        # in X-Forwarded-For, believed only from the peers named here.
        proxy_headers=True, forwarded_allow_ips=settings.open311_forwarded_allow_ips)


class Open311Server:
    """The service on a uvicorn server in a thread of this process (tests, the demo).

    ``port=0`` picks a free port; ``url`` is known once started.
    """

    def __init__(self, settings: Settings, *, port: int | None = None,
                 clients: Sequence[ApiClient] | None = None,
                 config: HotlineConfig | None = None,
                 lifespan: Literal["on", "off"] = "on",
                 clock: Callable[[], float] | None = None) -> None:
        self.app = create_app(settings, config=config, clients=clients, clock=clock)
        self.server = uvicorn.Server(server_config(self.app, settings, port=port,
                                                   lifespan=lifespan))
        self.thread = threading.Thread(target=self.server.run, name="open311", daemon=True)
        self.url = ""

    def start(self, timeout: float = 60.0) -> Open311Server:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Open311 server did not start")
            time.sleep(0.05)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @contextlib.contextmanager
    def running(self) -> Iterator[Open311Server]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def main(settings: Settings) -> None:
    """Entry point of ``hotline open311``: serve until SIGINT / SIGTERM."""
    app = create_app(settings)
    metrics = start_metrics_server(settings.open311_metrics_port, health=app.state.health)
    try:
        uvicorn.Server(server_config(app, settings)).run()
    finally:
        if metrics:
            metrics.close()
