"""The ledger projector (``hotline projector``): ``hotline.lifecycle`` → PostgreSQL.

Every case step is published as a ``LifecycleEvent`` carrying the ledger rows it wrote, so
the ledger is a projection of the topic and can be rebuilt from offset 0. The projector:

1. polls a batch (its own consumer group, manual commits);
2. decodes each message defensively; bad bytes go to ``hotline.dlq`` (acknowledged by the
   broker) and are never silently dropped;
3. applies the batch in one PostgreSQL transaction: an inbox row per ``event_id``
   (``ON CONFLICT DO NOTHING``) and, only for new events, ``activities.ledger.apply_lifecycle``
   (order-free, version-guarded upserts). An event the database refuses (a data or
   constraint error) is rolled back to its savepoint and dead-lettered;
4. commits ``offset + 1`` per partition only after the transaction committed.

A crash between 3 and 4 redelivers the batch; the inbox drops the repeats. On SIGTERM the
batch in hand is finished and committed (a batch still waiting for the database is
dropped uncommitted), then the process exits 0. ``/metrics``, ``/healthz`` and ``/readyz``
(Kafka and PostgreSQL answer) are served on ``HOTLINE_PROJECTOR_METRICS_PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter
from psycopg import AsyncConnection

from activities.ledger import apply_lifecycle
from schemas import codec
from schemas.registry import ConfluentWire
from workers.runtime.health import Health, KafkaCheck, PostgresCheck
from workers.runtime.kafka_io import (
    DeadLetterPublisher,
    SourceMessage,
    group_id,
    make_consumer,
    make_producer,
)
from workers.runtime.migrate import migrate_or_wait
from workers.runtime.observability import configure_logging, start_metrics_server
from workers.runtime.schema_registry import RegistryUnavailable, decode_value, registry_wire
from workers.runtime.settings import Settings, get_settings

log = structlog.get_logger(__name__)

RECORD = "LifecycleEvent"
GROUP_NAME = "projector"

EVENTS_TOTAL = Counter(
    "hotline_projector_events_total",
    "Lifecycle events seen by the projector, by outcome.",
    ["outcome"],  # applied | duplicate | dead_lettered
)

# Errors that say "this event can never be written" (bad data), as opposed to the
# database being unreachable (retry the whole batch).
_POISON = (psycopg.errors.DataError, psycopg.errors.IntegrityError)


@dataclass
class BatchResult:
    """What one batch did."""

    applied: int = 0
    duplicates: int = 0
    dead_lettered: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail)


class Projector:
    """Applies lifecycle messages to the ledger; the Kafka loop is around it.

    ``apply_batch`` is the whole contract and is used directly by the rebuild test.
    """

    def __init__(self, dlq: DeadLetterPublisher | None, consumer_group: str,
                 wire: ConfluentWire | None = None) -> None:
        self._wire = wire  # the Schema Registry option: the Confluent wire format too
        self._dlq = dlq
        self._group = consumer_group

    async def apply_batch(self, conn: AsyncConnection[Any],
                          messages: Sequence[SourceMessage]) -> BatchResult:
        """Decode and apply ``messages`` in one transaction (committed on return).

        Raises:
            psycopg.OperationalError: the database is unavailable; nothing was committed,
                and the caller retries the batch without committing offsets.
        """
        result = BatchResult()
        decoded: list[tuple[SourceMessage, dict[str, Any]]] = []
        for msg in messages:
            try:
                if msg.value is None:
                    raise codec.DecodeError("MALFORMED", "empty message value")
                rec = await decode_value(self._wire, msg.value, expected=(RECORD,))
            except codec.DecodeError as err:
                await self._dead_letter(msg, err.reason, err.detail, result)
                continue
            decoded.append((msg, rec.record))
        async with conn.transaction():
            for msg, event in decoded:
                try:
                    async with conn.transaction():  # a savepoint: one event's fate
                        cur = await conn.execute(
                            """INSERT INTO projector_inbox (event_id, topic, kafka_partition,
                                   kafka_offset) VALUES (%s, %s, %s, %s)
                               ON CONFLICT (event_id) DO NOTHING""",
                            (event["event_id"], msg.topic, msg.partition, msg.offset),
                        )
                        if cur.rowcount == 0:
                            result.duplicates += 1
                            continue
                        await apply_lifecycle(conn, event)
                        result.applied += 1
                except _POISON as err:
                    await self._dead_letter(msg, "LEDGER_REJECTED", str(err), result)
        EVENTS_TOTAL.labels("applied").inc(result.applied)
        EVENTS_TOTAL.labels("duplicate").inc(result.duplicates)
        return result

    async def _dead_letter(self, msg: SourceMessage, reason: str, detail: str,
                           result: BatchResult) -> None:
        log.warning("lifecycle event dead-lettered", topic=msg.topic, partition=msg.partition,
                    offset=msg.offset, reason=reason, detail=detail)
        result.dead_lettered.append((reason, detail))
        EVENTS_TOTAL.labels("dead_lettered").inc()
        if self._dlq is None:
            raise RuntimeError(f"no DLQ configured for {reason}: {detail}")
        await asyncio.to_thread(self._dlq.publish, msg, reason=reason, error=detail,
                                consumer_group=self._group)


def _offsets(messages: Iterable[Any]) -> dict[TopicPartition, OffsetAndMetadata]:
    last: dict[TopicPartition, int] = {}
    for m in messages:
        tp = TopicPartition(m.topic, m.partition)
        last[tp] = max(last.get(tp, -1), m.offset)
    # kafka-python 3: OffsetAndMetadata(offset, metadata, leader_epoch)
    return {tp: OffsetAndMetadata(off + 1, "", -1) for tp, off in last.items()}


async def run_projector(settings: Settings, stop: asyncio.Event, *,
                        idle_timeout_s: float | None = None,
                        health: Health | None = None) -> int:
    """Consume ``hotline.lifecycle`` into the ledger until ``stop`` is set.

    Args:
        settings: Topics, group prefix, DSN.
        stop: Set to end the loop after the current batch.
        idle_timeout_s: Return once no message came for this long (rebuilds, tests).
        health: Given the projector's checks (Kafka, PostgreSQL); told when it serves.

    Returns:
        How many events were applied (new to the ledger).
    """
    if not await migrate_or_wait(settings, stop):
        return 0
    group = group_id(settings, GROUP_NAME)
    # kafka-python's consumer is not thread-safe: every call goes through one thread.
    kafka_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="projector-kafka")
    loop = asyncio.get_running_loop()

    def on_kafka(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return loop.run_in_executor(kafka_thread, lambda: fn(*args, **kwargs))

    consumer: KafkaConsumer = await on_kafka(make_consumer, settings,
                                             [settings.topic_lifecycle], group)
    producer: KafkaProducer = await asyncio.to_thread(make_producer, settings)
    projector = Projector(DeadLetterPublisher(producer, settings.topic_dlq), group,
                          wire=registry_wire(settings))
    applied = 0
    idle_since = loop.time()
    try:
        async with await AsyncConnection.connect(settings.dsn) as conn:
            log.info("projector ready", topic=settings.topic_lifecycle, group=group)
            if health is not None:
                health.add(KafkaCheck(settings, settings.topic_lifecycle),
                           PostgresCheck(settings.dsn))
                health.serving()
            while not stop.is_set():
                batches = await on_kafka(consumer.poll, timeout_ms=500)
                messages = [m for batch in batches.values() for m in batch]
                if not messages:
                    if idle_timeout_s is not None and loop.time() - idle_since > idle_timeout_s:
                        break
                    continue
                idle_since = loop.time()
                attempt = 0
                result: BatchResult | None = None
                while result is None:
                    try:
                        result = await projector.apply_batch(conn, messages)
                    except (psycopg.OperationalError, RegistryUnavailable) as err:
                        if stop.is_set():  # uncommitted: the next run applies it
                            break
                        attempt += 1
                        delay = min(30.0, 0.5 * 2 ** attempt)
                        log.warning("ledger (or schema registry) unavailable; retrying "
                                    "batch", error=str(err),
                                    delay_s=delay)
                        with contextlib.suppress(TimeoutError):  # wakes on stop
                            await asyncio.wait_for(stop.wait(), delay)
                        if conn.closed:
                            conn = await AsyncConnection.connect(settings.dsn)
                if result is None:
                    break
                # The effect is durable: now, and only now, the offsets.
                await on_kafka(consumer.commit, _offsets(messages))
                applied += result.applied
                log.debug("batch projected", applied=result.applied,
                          duplicates=result.duplicates, dead=len(result.dead_lettered))
    finally:
        await on_kafka(consumer.close)
        await asyncio.to_thread(producer.close, 10)
        kafka_thread.shutdown(wait=True)
    return applied


def main() -> None:
    """Entry point of ``hotline projector``: serve until SIGTERM/SIGINT, then exit 0."""
    settings = get_settings()
    configure_logging(settings)
    health = Health("projector")
    metrics = start_metrics_server(settings.projector_metrics_port, health=health)

    async def _main() -> None:
        stop = asyncio.Event()
        health.start()

        def on_signal() -> None:
            health.begin_shutdown()
            stop.set()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            await run_projector(settings, stop, health=health)
        finally:
            await health.close()

    try:
        asyncio.run(_main())
    finally:
        if metrics is not None:
            metrics.close()
