"""Liveness and readiness of a hotline process: ``/healthz`` and ``/readyz``.

- ``/healthz`` answers 200 while the process's event loop turns (a heartbeat task beats
  every second; 503 once it has been silent for ``stall_s``). Kubernetes restarts a pod
  whose loop is stuck, never one that is merely cut off from a server.
- ``/readyz`` answers 200 only while the process serves and every server it needs
  answers a cheap call: Temporal ``DescribeNamespace`` on the process's own client, Kafka
  ``ListOffsets`` of one partition of the process's topic, PostgreSQL ``SELECT 1``. Else
  503 with a JSON body naming what is down. Answers are cached for ``cache_s`` seconds,
  so a probe costs at most one round of calls however often it comes. Readiness turns
  503 as soon as shutdown starts (:meth:`Health.begin_shutdown`).

The worker, the bridges and the projector serve both paths on their metrics port
(:func:`workers.runtime.observability.start_metrics_server`); the Open311 app serves
them as routes of its own.

Checks run on the process's event loop (the Temporal client belongs to it); Kafka's
blocking client runs on a thread of its own and PostgreSQL's on a connection of its own,
so a busy pool never reads as an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import psycopg
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from workers.runtime.security import kafka_security_config
from workers.runtime.settings import Settings

# Dependency names as the /readyz body spells them.
TEMPORAL = "temporal"
KAFKA = "kafka"
POSTGRES = "postgres"

STARTING = "starting"
SERVING = "serving"
STOPPING = "stopping"


class Check(Protocol):
    """One dependency of a process: ``probe`` raises when it does not answer."""

    dependency: str

    async def probe(self, timeout: float) -> None: ...

    async def close(self) -> None: ...


def _why(exc: BaseException) -> str:
    if isinstance(exc, RPCError):
        return f"{exc.status.name}: {exc.message}"[:300]
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if text.startswith(name):  # kafka-python's errors name themselves
        return text[:300]
    return f"{name}: {text}"[:300] if text else name


@dataclass
class TemporalCheck:
    """``DescribeNamespace`` on the process's connected client (no retries)."""

    client: Client
    namespace: str
    dependency: str = TEMPORAL

    async def probe(self, timeout: float) -> None:
        await self.client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=self.namespace),
            timeout=timedelta(seconds=timeout))

    async def close(self) -> None:
        return None


@dataclass
class PostgresCheck:
    """``SELECT 1`` on a connection of its own (a full pool must not read as an outage)."""

    dsn: str
    dependency: str = POSTGRES
    _conn: psycopg.AsyncConnection[Any] | None = field(default=None, repr=False)

    async def probe(self, timeout: float) -> None:
        try:
            await self._select_one(timeout)
        except Exception:
            # A connection the server or a proxy dropped while idle: one fresh try.
            await self.close()
            await self._select_one(timeout)

    async def _select_one(self, timeout: float) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self.dsn, autocommit=True, connect_timeout=max(1, int(timeout)))
        await self._conn.execute("SELECT 1")

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


class KafkaCheck:
    """``ListOffsets`` of partition 0 of ``topic``, on a group-less consumer of its own.

    kafka-python blocks and its consumer is not thread-safe, so the consumer lives on one
    thread; a call still running there (the broker away) is not queued behind, the probe
    fails at once instead.
    """

    dependency = KAFKA

    def __init__(self, settings: Settings, topic: str) -> None:
        self._settings = settings
        self._partition = TopicPartition(topic, 0)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-health")
        self._consumer: KafkaConsumer | None = None
        self._running: Future[None] | None = None

    def _list_offsets(self, timeout: float) -> None:
        ms = int(timeout * 1000)
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._settings.kafka_bootstrap, client_id="hotline-health",
                group_id=None, enable_auto_commit=False, bootstrap_timeout_ms=ms,
                **kafka_security_config(self._settings))
        self._consumer.end_offsets([self._partition], timeout_ms=ms)

    async def probe(self, timeout: float) -> None:
        if self._running is not None and not self._running.done():
            raise TimeoutError("the previous check has not answered yet")
        self._running = self._executor.submit(self._list_offsets, timeout)
        await asyncio.wait_for(asyncio.wrap_future(self._running), timeout + 0.5)

    def _close_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close(autocommit=False)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(loop.run_in_executor(self._executor,
                                                        self._close_consumer), 5)
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status code and JSON body."""

    status: int
    body: dict[str, Any]


class Health:
    """The liveness and readiness of one process; see the module docstring.

    Life cycle: ``start()`` on the process's loop (heartbeat), ``add(check)`` for each
    dependency once its client exists, ``serving()`` when the process does its work,
    ``begin_shutdown()`` from the signal handler, ``close()`` last.
    """

    def __init__(self, process: str, *, cache_s: float = 2.0, timeout_s: float = 2.0,
                 stall_s: float = 30.0) -> None:
        self.process = process
        self._cache_s = cache_s
        self._timeout_s = timeout_s
        self._stall_s = stall_s
        self._checks: list[Check] = []
        self._state = STARTING
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._beat_at: float | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._cached: tuple[float, Answer] | None = None
        self._in_flight: asyncio.Future[Answer] | None = None

    # --- life cycle (on the process's loop) ---------------------------------------------

    def start(self) -> Health:
        """Bind to the running loop and start the heartbeat."""
        self._loop = asyncio.get_running_loop()
        self._beat_at = time.monotonic()
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="health-heartbeat")
        return self

    async def _beat(self) -> None:
        while True:
            self._beat_at = time.monotonic()
            await asyncio.sleep(1.0)

    def add(self, *checks: Check) -> None:
        self._checks.extend(checks)
        self._cached = None

    def serving(self) -> None:
        with self._lock:
            if self._state == STARTING:
                self._state = SERVING
            self._cached = None

    def begin_shutdown(self) -> None:
        """Readiness answers 503 from now on (safe from any thread or signal handler)."""
        with self._lock:
            self._state = STOPPING

    @property
    def state(self) -> str:
        return self._state

    async def close(self) -> None:
        """Stop the heartbeat and close the checks' own connections."""
        self.begin_shutdown()
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for check in self._checks:
            with contextlib.suppress(Exception):
                await check.close()
        self._loop = None

    # --- answers ------------------------------------------------------------------------

    def liveness(self) -> Answer:
        """200 while the loop beats (or has not started yet); 503 once it stalled."""
        body: dict[str, Any] = {"process": self.process, "state": self._state}
        if self._beat_at is not None and self._loop is not None:
            silent = time.monotonic() - self._beat_at
            if silent > self._stall_s:
                body["detail"] = f"event loop silent for {silent:.0f} s"
                return Answer(503, {"status": "stalled", **body})
        return Answer(200, {"status": "alive", **body})

    async def readiness(self) -> Answer:
        """200 when serving and every dependency answers, else 503 naming what is down."""
        if self._state != SERVING:
            return Answer(503, {"status": "not ready", "process": self.process,
                                "state": self._state, "down": {}})
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.ensure_future(self._check_all())
        answer = await asyncio.shield(self._in_flight)
        if self._state != SERVING:  # shutdown began while the checks ran
            return Answer(503, {**answer.body, "status": "not ready", "state": self._state})
        return answer

    async def _check_all(self) -> Answer:
        checks: Sequence[Check] = list(self._checks)
        results = await asyncio.gather(*(self._one(c) for c in checks))
        down = {c.dependency: why for c, why in zip(checks, results, strict=True)
                if why is not None}
        body = {"status": "ready" if not down else "not ready", "process": self.process,
                "state": self._state, "checked": [c.dependency for c in checks],
                "down": down}
        answer = Answer(200 if not down else 503, body)
        self._cached = (time.monotonic(), answer)
        return answer

    async def _one(self, check: Check) -> str | None:
        try:
            await asyncio.wait_for(check.probe(self._timeout_s), self._timeout_s + 1)
        except Exception as exc:
            return _why(exc)
        return None

    def readiness_from_thread(self) -> Answer:
        """:meth:`readiness` for a caller on another thread (the metrics server's)."""
        loop = self._loop
        if self._state != SERVING or loop is None or loop.is_closed():
            return Answer(503, {"status": "not ready", "process": self.process,
                                "state": self._state, "down": {}})
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        future = asyncio.run_coroutine_threadsafe(self.readiness(), loop)
        try:
            return future.result(timeout=self._timeout_s + 3)
        except Exception as exc:
            future.cancel()
            return Answer(503, {"status": "not ready", "process": self.process,
                                "state": self._state,
                                "down": {"event loop": _why(exc)}})
