"""The Open311 rate limit, shared by replicas through PostgreSQL, with a sliding window.

Two apps (two TestClients, each with its own lifespan, pools and limiter) stand for two
pods; they share a fresh database on the local stack. The sliding window is tested with
a clock the test moves; one test uses the database's own clock, as production does.
The database going away is a real one: its connections are refused and killed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import cache

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from activities.dispatch.config import HotlineConfig, load_config
from tests.live import stack_settings
from workers.open311.model import ApiClient
from workers.open311.rate_limit import RETRY_AFTER_S
from workers.open311.service import Open311Server, create_app
from workers.runtime.migrate import admin_dsn, apply_migrations, ensure_database
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

KEY = "rate-limit-key-0123456789"
LIMIT = 3
WINDOW_START = 60 * 31_666_667.0  # a minute's first second (2030-03-17)


@cache
def _config() -> HotlineConfig:
    return load_config(Settings().config_dir)


class Clock:
    """The limiter's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def settings() -> Iterator[Settings]:
    """A fresh migrated database on the local stack, dropped afterwards."""
    base = stack_settings()
    s = base.model_copy(update={"postgres_db": f"o311rl_{uuid.uuid4().hex[:8]}",
                                "open311_rate_per_minute": LIMIT})
    ensure_database(s, s.postgres_db)
    apply_migrations(s.dsn)
    try:
        yield s
    finally:
        with psycopg.connect(admin_dsn(s), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{s.postgres_db}" WITH (FORCE)')


@contextmanager
def replicas(settings: Settings, addresses: tuple[str, ...],
             clock: Clock | None) -> Iterator[list[TestClient]]:
    """One app per address (its lifespan run: ledger, Kafka producer, limiter), each
    called from that address."""
    with ExitStack() as stack:
        yield [stack.enter_context(TestClient(
            create_app(settings, config=_config(), clients=[ApiClient("civic", KEY)],
                       clock=clock), client=(address, 40000)))
            for address in addresses]


def _post(client: TestClient) -> httpx.Response:
    # A valid key, an unknown service code: counted, then refused before any filing.
    return client.post("/requests.json", data={"api_key": KEY, "service_code": "no.such",
                                               "description": "x"})


def _retry_after(resp: httpx.Response) -> int:
    assert resp.status_code == 429, resp.text
    assert resp.json() == [{"code": 429, "description": resp.json()[0]["description"]}]
    return int(resp.headers["retry-after"])


def test_two_replicas_share_one_address_limit_on_the_database_clock(
        settings: Settings) -> None:
    with replicas(settings, ("198.51.100.1", "198.51.100.1"), clock=None) as (a, b):
        assert [a.get("/services.json").status_code for _ in range(2)] == [200, 200]
        assert b.get("/discovery.json").status_code == 200  # each pod alone is under 3
        limited = b.get("/services.json")
        # At most the rest of this minute and a third of the next: the counter spreads the
        # previous minute's hits evenly over it, so they fade by 1/LIMIT at the latest.
        assert 1 <= _retry_after(limited) <= 60 + 60 // LIMIT + 1
        assert limited.json()[0]["description"] == "too many requests; slow down"
        assert a.get("/services.xml").status_code == 429
        assert b.get("/healthz").status_code == 200  # probes are never counted


def test_two_replicas_share_one_api_client_limit(settings: Settings) -> None:
    clock = Clock(WINDOW_START + 30)
    addresses = ("198.51.100.2", "198.51.100.3", "198.51.100.4")
    with replicas(settings, addresses, clock) as (a, b, c):
        assert [_post(a).status_code, _post(a).status_code, _post(b).status_code] == [404] * 3
        limited = _post(b)  # two addresses under their limit, one client over its own
        wait = _retry_after(limited)
        assert limited.json()[0]["description"] == "too many requests from civic; slow down"
        # Full for this minute: the next opens once 30 s of it and a third of the next
        # have passed (the 3 hits then weigh 2), 50 s; whole seconds, strictly after.
        assert wait in (50, 51)
        clock.now += wait - 2
        early = _post(c)  # a third address, far under its own limit
        assert early.status_code == 429 and "from civic" in early.json()[0]["description"]
        clock.now += 2
        assert _post(c).status_code == 404


def test_the_window_slides_where_a_fixed_minute_would_reset(settings: Settings) -> None:
    clock = Clock(WINDOW_START + 50)
    with replicas(settings, ("198.51.100.5",), clock) as (a,):
        assert [a.get("/services.json").status_code for _ in range(LIMIT)] == [200] * LIMIT
        clock.now = WINDOW_START + 70  # a new minute, but the last 60 s held 3 hits
        limited = a.get("/services.json")
        # The 3 hits weigh 5/6 of 3 now, 2 once a third of this minute is past: 10 s.
        wait = _retry_after(limited)
        assert wait in (10, 11)
        clock.now += wait - 1.5
        assert a.get("/services.json").status_code == 429  # refusals are not counted...
        clock.now += 1.5
        assert a.get("/services.json").status_code == 200  # ...so waiting is enough
        clock.now = WINDOW_START + 180  # nothing in the last 60 s (nor the 60 before)
        codes = [a.get("/services.json").status_code for _ in range(LIMIT + 1)]
        assert codes == [200] * LIMIT + [429]


@contextmanager
def _database_refusing(settings: Settings) -> Iterator[None]:
    with psycopg.connect(admin_dsn(settings), autocommit=True) as admin:
        name = settings.postgres_db
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_without_its_database_reads_pass_and_writes_are_refused(settings: Settings) -> None:
    clock = Clock(WINDOW_START + 3600)
    with replicas(settings, ("198.51.100.6",), clock) as (a,):
        with _database_refusing(settings):
            started = time.monotonic()
            reads = [a.get("/services.json").status_code for _ in range(LIMIT + 2)]
            refused = _post(a)
            assert time.monotonic() - started < 5  # one budget, then no more waiting
        assert reads == [200] * (LIMIT + 2)  # over the limit, but not counted: let through
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == str(RETRY_AFTER_S)
        assert refused.json() == [{"code": 503,
                                   "description": "the ledger is not reachable; retry later"}]
        # Back: once the limiter asks again, writes are judged (and counted) again.
        deadline = time.monotonic() + 15
        while (code := _post(a).status_code) == 503 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert code == 404
        codes = [a.get("/services.json").status_code for _ in range(LIMIT)]
        assert codes == [200, 200, 429]


@pytest.mark.parametrize(("trusted", "limited_per_client"), [("127.0.0.1", True),
                                                             ("10.9.9.9", False)])
def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
        settings: Settings, trusted: str, limited_per_client: bool) -> None:
    # A real uvicorn: its proxy-headers handling is what is tested.
    s = settings.model_copy(update={"open311_forwarded_allow_ips": trusted})
    clock = Clock(WINDOW_START + 7200 + (0 if limited_per_client else 600))
    server = Open311Server(s, port=0, config=_config(), clients=[], clock=clock)
    with server.running():
        def get(client: str) -> int:
            return httpx.get(f"{server.url}/services.json",
                             headers={"X-Forwarded-For": client}).status_code
        first = [get("203.0.113.1") for _ in range(LIMIT + 1)]
        other = get("203.0.113.2")
    assert first == [200] * LIMIT + [429]
    # Trusted: the second citizen is someone else; untrusted: everyone is the proxy.
    assert other == (200 if limited_per_client else 429)
