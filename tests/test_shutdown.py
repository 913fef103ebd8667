"""SIGTERM on the real processes: the worker drains, the bridges commit only what is durable.

``hotline bridges`` and ``hotline worker`` run as subprocesses against the local stack,
on topics, consumer groups, task queues and databases of their own. The drain time is
cut to a few seconds (``HOTLINE_GRACEFUL_SHUTDOWN_S``) so the tests stay short.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from schemas import codec
from workers.bridges.apply import apply_command
from workers.bridges.main import run_bridges
from workers.bridges.routes import INTAKE, route
from workers.devstack.stack import ensure_stack, ensure_topics
from workers.runtime.migrate import ensure_database
from workers.runtime.settings import Settings
from workers.worker.main import run_worker
from workflows.ids import complaint_workflow_id

pytestmark = pytest.mark.stack

VENV_BIN = Path(sys.executable).parent
DRAIN_S = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.2)


class Process:
    """``hotline <role>`` with extra environment; its output collected by a thread."""

    def __init__(self, role: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([str(VENV_BIN / "hotline"), role],
                                     env={**os.environ, **env}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def logged(self, event: str) -> bool:
        return any(f'"{event}"' in line for line in self.lines)

    def wait_logged(self, event: str, timeout: float = 60) -> None:
        _wait(lambda: self.logged(event) or self.proc.poll() is not None, timeout, event)
        assert self.logged(event), self.tail()

    def tail(self) -> str:
        return "".join(self.lines[-30:])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running(role: str, env: dict[str, str]) -> Iterator[Process]:
    process = Process(role, env)
    try:
        yield process
    finally:
        process.kill()


def _settings(tag: str, **overrides: Any) -> Settings:
    run = uuid.uuid4().hex[:8]
    return Settings(topic_prefix=f"{tag}{run}.", consumer_group_prefix=f"{tag}-{run}",
                    task_queue=f"{tag}-{run}", postgres_db=f"{tag}_{run}",
                    worker_metrics_port=0, bridge_metrics_port=0, **overrides)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {"HOTLINE_TOPIC_PREFIX": settings.topic_prefix,
            "HOTLINE_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
            "HOTLINE_TASK_QUEUE": settings.task_queue,
            "HOTLINE_POSTGRES_DB": settings.postgres_db,
            "HOTLINE_GRACEFUL_SHUTDOWN_S": str(DRAIN_S), **extra}


def _filing(cid: str) -> dict[str, Any]:
    return {"event_id": f"filed-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
            # A place, so it is dispatched at once: a case with no place waits at the
            # desk, and an urge to it waits for its dispatch (the review window).
            "channel": "APP", "content": "望京西园三区小区路灯不亮，晚上看不见路",
            "caller_phone": "13800001111"}


def _send(settings: Settings, records: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """Records onto partition 0 of the intake, in order and in one produce request (so
    one poll fetches them together); their offsets."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             linger_ms=500)
    try:
        sent = [producer.send(settings.topic_intake, key=rec["complaint_id"].encode(),
                              value=codec.encode(name, rec), headers=codec.headers_for(name),
                              partition=0) for name, rec in records]
        producer.flush(30)
        return [future.get(30).offset for future in sent]
    finally:
        producer.close()


def _committed(settings: Settings) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                             group_id=f"{settings.consumer_group_prefix}-intake",
                             enable_auto_commit=False)
    try:
        offset: int | None = consumer.committed(TopicPartition(settings.topic_intake, 0))
        return offset
    finally:
        consumer.close(autocommit=False)


def _count(record: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("hotline_bridge_messages_total",
                                      {"topic": INTAKE, "record": record, "outcome": outcome})
    return value or 0.0


async def _run_id(client: Client, cid: str) -> str:
    description = await client.get_workflow_handle(complaint_workflow_id(cid)).describe()
    return description.run_id


async def _runs(client: Client, cid: str) -> int:
    query = f'WorkflowId = "{complaint_workflow_id(cid)}"'
    return len([w async for w in client.list_workflows(query)])


async def test_bridges_on_sigterm_commit_what_is_durable_and_lose_nothing() -> None:
    """A batch in hand at SIGTERM: the filings land, the update still waiting on the case
    (no worker polls) is cancelled after the drain time and not committed; the process
    exits 0. Re-consumed with a worker, the update is applied once, the filings are
    duplicates and no case gets a second run."""
    s = _settings("shut")
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, s)
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    run = uuid.uuid4().hex[:6]
    a, b, c = (f"SHUT-{run}-{n}" for n in "ABC")
    port = _free_port()
    with running("bridges", _env(s, HOTLINE_BRIDGE_METRICS_PORT=str(port))) as bridges:
        await asyncio.to_thread(bridges.wait_logged, "bridges ready")
        [filed_a] = await asyncio.to_thread(_send, s, [("ComplaintFiled", _filing(a))])
        await asyncio.to_thread(_wait, lambda: _committed(s) == filed_a + 1, 30, "A committed")
        urge = {"event_id": f"urged-{a}", "complaint_id": a, "at": datetime.now(UTC),
                "content": "还没修好"}
        urged_a, _, filed_c = await asyncio.to_thread(
            _send, s, [("ComplaintUrged", urge), ("ComplaintFiled", _filing(b)),
                       ("ComplaintFiled", _filing(c))])
        # B and C started (their lanes do not wait for A's update): durable effects.
        deadline = time.monotonic() + 30
        runs: dict[str, str] = {}
        while len(runs) < 2:
            assert time.monotonic() < deadline, bridges.tail()
            for cid in (b, c):
                try:
                    runs[cid] = await _run_id(client, cid)
                except Exception:
                    await asyncio.sleep(0.2)
        runs[a] = await _run_id(client, a)
        assert (await asyncio.to_thread(_get, port, "/readyz"))[0] == 200

        bridges.proc.send_signal(signal.SIGTERM)
        status, body = await asyncio.to_thread(_get, port, "/readyz")
        assert (status, body["state"]) == (503, "stopping")
        code = await asyncio.to_thread(bridges.proc.wait, DRAIN_S + 30)
        await asyncio.to_thread(bridges._reader.join, 5)
        assert code == 0, bridges.tail()
        assert bridges.logged("drain time over; message left for redelivery"), bridges.tail()
        assert bridges.logged("bridges stopped")
    # Committed up to the update, not past it, though B and C after it were applied.
    assert await asyncio.to_thread(_committed, s) == urged_a

    before = {(r, o): _count(r, o) for r in ("ComplaintFiled", "ComplaintUrged")
              for o in ("applied", "duplicate", "refused", "dead_lettered")}
    await asyncio.to_thread(ensure_database, s, s.postgres_db)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_worker(s, stop)),
             asyncio.create_task(run_bridges(s, stop))]
    try:
        await asyncio.to_thread(_wait, lambda: _committed(s) == filed_c + 1, 60,
                                "re-consumed to the end")
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    delta = {key: _count(*key) - n for key, n in before.items()}
    handled = sum(delta[("ComplaintUrged", o)] for o in ("applied", "refused", "dead_lettered"))
    assert (handled, delta[("ComplaintUrged", "duplicate")]) == (1, 0)
    assert delta[("ComplaintFiled", "duplicate")] == 2  # B and C, fetched again
    assert delta[("ComplaintFiled", "applied")] == 0  # A was committed: not fetched again
    for cid, run_id in runs.items():
        assert await _run_id(client, cid) == run_id
        assert await _runs(client, cid) == 1


async def _waiting_on_lock(s: Settings, table: str, timeout: float = 30) -> None:
    """Until some session waits for a lock on ``table``."""
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                (table,))
            row = await cur.fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"nothing waited on the {table} lock within {timeout} s")


async def test_the_worker_on_sigterm_lets_its_running_activity_finish() -> None:
    """The accept activity is held by a table lock; SIGTERM comes; readiness turns 503,
    the worker waits; the lock goes; the activity completes (not cancelled) and the
    worker exits 0."""
    s = _settings("drain")
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, s)
    await asyncio.to_thread(ensure_database, s, s.postgres_db)
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    cid = f"DRAIN-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    env = _env(s, HOTLINE_WORKER_METRICS_PORT=str(port), HOTLINE_TEMPORAL_SDK_METRICS_PORT="0",
               HOTLINE_LEDGER_METRICS_INTERVAL="0", HOTLINE_GRACEFUL_SHUTDOWN_S="20")
    with running("worker", env) as worker:
        await asyncio.to_thread(worker.wait_logged, "worker ready")
        await asyncio.to_thread(_wait, lambda: _get(port, "/readyz")[0] == 200, 20, "ready")
        lock = await psycopg.AsyncConnection.connect(s.dsn)
        try:
            # accept looks for the caller's open cases first: it waits on this lock.
            await lock.execute("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE")
            command = route(INTAKE, "ComplaintFiled", _filing(cid))
            await apply_command(client, s, command)
            # accept runs as a local activity (patch local-accept): Temporal does not list
            # it as pending, but PostgreSQL shows it waiting on the lock.
            await _waiting_on_lock(s, "cases")
            worker.proc.send_signal(signal.SIGTERM)
            status, body = await asyncio.to_thread(_get, port, "/readyz")
            assert (status, body["state"]) == (503, "stopping")
            await asyncio.sleep(1.5)
            assert worker.proc.poll() is None, "the worker left its activity behind"
        finally:
            await lock.rollback()
            await lock.close()
        code = await asyncio.to_thread(worker.proc.wait, 30)
        assert code == 0, worker.tail()
        assert worker.logged("worker stopped"), worker.tail()
    history = await client.get_workflow_handle(complaint_workflow_id(cid)).fetch_history()
    kinds = [e.event_type for e in history.events]
    # The local activity's result is recorded as a marker when its workflow task completes.
    assert EventType.EVENT_TYPE_MARKER_RECORDED in kinds, kinds
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in kinds, kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED not in kinds
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED not in kinds
