"""/healthz and /readyz on real servers: ready with the stack, 503 naming what is down.

Temporal is reached through a TCP relay this test owns, so it can go away after the
client connected, as a Temporal outage looks to a running process. Kafka and PostgreSQL
are pointed at a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from temporalio.client import Client

from workers.devstack.stack import ensure_stack
from workers.open311.service import Open311Server
from workers.runtime.health import Health, KafkaCheck, PostgresCheck, TemporalCheck
from workers.runtime.migrate import admin_dsn, ensure_database, migrate_or_wait
from workers.runtime.observability import start_metrics_server
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


class Relay:
    """Forwards a local port to ``host:port`` until closed (then every link drops)."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, host: str, port: int) -> Relay:
        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            writer.close()

        async def link(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection(host, port)
            self._writers |= {writer, up_writer}
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        self._server = await asyncio.start_server(link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()


async def test_readiness_is_ready_with_the_stack_and_names_what_is_down() -> None:
    settings = Settings()
    await asyncio.to_thread(ensure_stack, settings)
    relay = await Relay().start(settings.temporal_host, settings.temporal_port)
    client = await Client.connect(f"127.0.0.1:{relay.port}",
                                  namespace=settings.temporal_namespace)
    dead = _free_port()
    cut_off = settings.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{dead}"})
    health = Health("test", cache_s=0).start()
    health.add(TemporalCheck(client, settings.temporal_namespace),
               KafkaCheck(settings, settings.topic_intake), PostgresCheck(settings.dsn))
    stranded = Health("stranded", cache_s=0).start()
    stranded.add(KafkaCheck(cut_off, cut_off.topic_intake),
                 PostgresCheck(make_conninfo(settings.dsn, port=str(dead))))
    port, other = _free_port(), _free_port()
    servers = [start_metrics_server(port, "127.0.0.1", health=health),
               start_metrics_server(other, "127.0.0.1", health=stranded)]
    url = f"http://127.0.0.1:{port}"
    try:
        status, body = await asyncio.to_thread(_get, f"{url}/readyz")
        assert (status, body["state"]) == (503, "starting")  # not serving yet
        health.serving()
        status, body = await asyncio.to_thread(_get, f"{url}/readyz")
        assert status == 200, body
        assert body["checked"] == ["temporal", "kafka", "postgres"] and body["down"] == {}
        assert (await asyncio.to_thread(_get, f"{url}/healthz"))[0] == 200
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as resp:
            assert b"python_info" in resp.read()  # the metrics still on the same port

        stranded.serving()
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{other}/readyz")
        assert status == 503
        assert set(body["down"]) == {"kafka", "postgres"}, body
        assert "refused" in body["down"]["postgres"]

        await relay.close()  # Temporal goes away under a connected client
        status, body = await asyncio.to_thread(_get, f"{url}/readyz")
        assert status == 503
        assert set(body["down"]) == {"temporal"}, body
        assert (await asyncio.to_thread(_get, f"{url}/healthz"))[0] == 200  # alive still

        health.begin_shutdown()
        status, body = await asyncio.to_thread(_get, f"{url}/readyz")
        assert (status, body["state"]) == (503, "stopping")
    finally:
        for server in servers:
            assert server is not None
            server.close()
        await health.close()
        await stranded.close()


async def test_answers_are_cached_so_probes_stay_cheap() -> None:
    settings = Settings()
    await asyncio.to_thread(ensure_stack, settings)
    health = Health("cached", cache_s=60).start()
    health.add(PostgresCheck(settings.dsn))
    health.serving()
    try:
        first = await health.readiness()
        assert first.status == 200
        assert await health.readiness() is first
        assert await asyncio.to_thread(health.readiness_from_thread) is first
    finally:
        await health.close()


def test_open311_serves_healthz_and_readyz_outside_the_rate_limit_and_the_api() -> None:
    settings = Settings(open311_rate_per_minute=1)
    ensure_stack(settings)
    with Open311Server(settings, port=0, clients=[]).running() as server:
        for _ in range(3):  # a limit of one a minute: probes are not counted
            status, body = _get(f"{server.url}/readyz")
            assert status == 200, body
            assert body["checked"] == ["kafka", "postgres"]
        assert _get(f"{server.url}/healthz")[0] == 200
        _, document = _get(f"{server.url}/openapi.json")
        assert not {"/healthz", "/readyz"} & set(document["paths"])


async def test_without_migrate_on_start_a_process_waits_for_hotline_migrate() -> None:
    settings = Settings(postgres_db=f"mig_{uuid.uuid4().hex[:8]}", migrate_on_start=False)
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_database, settings, settings.postgres_db)
    try:
        waiting = asyncio.create_task(migrate_or_wait(settings, poll_s=0.2))
        await asyncio.sleep(1.0)
        assert not waiting.done(), "started on an empty ledger"
        env = {**os.environ, "HOTLINE_POSTGRES_DB": settings.postgres_db}
        check = await asyncio.to_thread(
            subprocess.run, [str(VENV_BIN / "hotline"), "migrate", "--check"], env=env,
            capture_output=True, text=True, timeout=60)
        assert check.returncode == 1 and "pending migrations: 001_ledger" in check.stderr
        done = await asyncio.to_thread(
            subprocess.run, [str(VENV_BIN / "hotline"), "migrate"], env=env,
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "001_ledger" in done.stdout
        assert await asyncio.wait_for(waiting, 10) is True
    finally:
        with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{settings.postgres_db}" WITH (FORCE)')
