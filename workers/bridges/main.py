"""Kafka → Temporal bridges: intake, unit replies and callbacks into the case workflows.

``hotline bridges`` runs one :class:`~workers.bridges.consumer.TopicBridge` per inbound
topic (:data:`~workers.bridges.routes.BRIDGES`) over one shared Temporal client and one
DLQ producer, until SIGTERM/SIGINT: then each bridge finishes its batch in hand (up to
``HOTLINE_GRACEFUL_SHUTDOWN_S``), commits what was applied and leaves its group, the DLQ
producer is flushed, and the process exits 0. ``/healthz`` and ``/readyz`` are served on
the metrics port (ready: Temporal and Kafka answer; 503 from SIGTERM on). Where to look:

- :mod:`workers.bridges.routes`    which record becomes which workflow start or update;
- :mod:`workers.bridges.apply`     the Temporal call for one command;
- :mod:`workers.bridges.outcomes`  what became of a message (applied, duplicate, DLQ
  reason, retry) and how Temporal's errors sort into those;
- :mod:`workers.bridges.consumer`  the consumer loop, offsets, retries, the DLQ write, and
  the table of failure cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Sequence

import structlog
from kafka import KafkaProducer
from temporalio.client import Client

from workers.bridges.consumer import TopicBridge, until_connected
from workers.bridges.routes import BRIDGES
from workers.runtime.health import Health, KafkaCheck, TemporalCheck
from workers.runtime.kafka_io import make_producer
from workers.runtime.observability import configure_logging, start_metrics_server, temporal_runtime
from workers.runtime.security import temporal_connect_options
from workers.runtime.settings import Settings, get_settings
from workers.runtime.temporal import connect_temporal

log = structlog.get_logger("hotline.bridges")


async def _connect_temporal(settings: Settings, stop: asyncio.Event) -> Client | None:
    temporal_connect_options(settings)  # outside the retry: a bad setting stops here
    return await until_connected(
        lambda: connect_temporal(settings, runtime=temporal_runtime(), timeout=None),
        stop, "temporal", address=settings.temporal_address)


async def _connect_producer(settings: Settings, stop: asyncio.Event) -> KafkaProducer | None:
    return await until_connected(
        lambda: asyncio.to_thread(make_producer, settings, client_id="hotline-bridges"),
        stop, "kafka producer", bootstrap=settings.kafka_bootstrap)


async def _announce_ready(
    bridges: Sequence[TopicBridge], ready: asyncio.Event | None, health: Health | None
) -> None:
    await asyncio.gather(*(b.ready.wait() for b in bridges))
    log.info(
        "bridges ready",
        topics=[b.topic for b in bridges],
        groups=[b.group for b in bridges],
    )
    if health is not None:
        health.serving()
    if ready is not None:
        ready.set()


async def run_bridges(
    settings: Settings,
    stop: asyncio.Event,
    *,
    ready: asyncio.Event | None = None,
    retry_budget_s: float = 60.0,
    health: Health | None = None,
) -> None:
    """Run the three bridges until ``stop`` is set.

    Logs ``bridges ready`` (and sets ``ready``) once every consumer has joined its group
    and received its assignment. On stop, each bridge finishes its in-flight batch
    (within ``settings.graceful_shutdown_s``), commits what was applied and closes; then
    the DLQ producer is flushed and closed.

    Args:
        settings: Process settings (addresses, topic prefix, group prefix, task queue).
        stop: Set it to stop.
        ready: Optional event set together with the ``bridges ready`` line.
        retry_budget_s: How long one batch retries a transient failure before it goes
            back to polling (and fetches the message again).
        health: Given the bridges' checks (Temporal, Kafka); told when they serve and
            when they stop.

    Raises:
        Exception: Only a bug in a bridge loop; the other bridges are stopped first.
    """
    client = await _connect_temporal(settings, stop)
    if client is None:
        return
    producer = await _connect_producer(settings, stop)
    if producer is None:
        return
    bridges = [
        TopicBridge(
            name=name,
            settings=settings,
            client=client,
            producer=producer,
            stop=stop,
            retry_budget_s=retry_budget_s,
        )
        for name in BRIDGES
    ]
    if health is not None:
        health.add(TemporalCheck(client, settings.temporal_namespace),
                   KafkaCheck(settings, settings.topic_intake))
    tasks = [asyncio.create_task(b.run(), name=f"bridge-{b.name}") for b in bridges]
    announcer = asyncio.create_task(_announce_ready(bridges, ready, health))
    log.info(
        "bridges starting",
        topics=[b.topic for b in bridges],
        dlq=settings.topic_dlq,
        temporal=settings.temporal_address,
        namespace=settings.temporal_namespace,
    )
    failure: BaseException | None = None
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                failure = task.exception()
                log.error(
                    "bridge failed; stopping the others",
                    bridge=task.get_name(),
                    exc_info=failure,
                )
                break
    finally:
        stop.set()
        if health is not None:
            health.begin_shutdown()
        await asyncio.gather(*tasks, return_exceptions=True)
        announcer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await announcer
        await asyncio.to_thread(_close_producer, producer)
        # temporalio's Client has no close(); dropping the reference releases the
        # connection before the loop ends.
        del client
        log.info("bridges stopped")
    if failure is not None:
        raise failure


def _close_producer(producer: KafkaProducer) -> None:
    try:
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=10)


async def _serve(settings: Settings, health: Health) -> None:
    stop = asyncio.Event()
    health.start()

    def on_signal() -> None:
        health.begin_shutdown()  # not ready from the first moment of the drain
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await run_bridges(settings, stop, health=health)
    finally:
        await health.close()


def main() -> None:
    """Entry point of ``hotline bridges``: serve until SIGTERM/SIGINT, then exit 0."""
    settings = get_settings()
    configure_logging(settings)
    health = Health("bridges")
    metrics = start_metrics_server(settings.bridge_metrics_port, health=health)
    if metrics is not None:
        log.info("metrics served", port=metrics.port)
    try:
        asyncio.run(_serve(settings, health))
    finally:
        if metrics is not None:
            metrics.close()
