"""Worker and bridges in the test's event loop, on fresh topics and a fresh database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from schemas import codec
from workers.bridges.main import run_bridges
from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics
from workers.runtime.settings import TOPIC_PARTITIONS, Settings
from workers.worker.main import run_worker


def stack_settings() -> Settings:
    """Default settings, with the local stack brought up (a no-op when it is up)."""
    settings = Settings()
    ensure_stack(settings)
    return settings


@contextmanager
def throwaway_topic(settings: Settings, prefix: str, partitions: int) -> Iterator[str]:
    """A topic created for one test (every partition has a leader), deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        # Created outside the inner try: a failed create has nothing to delete, and its
        # error must not be hidden by the delete's.
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        try:
            admin.wait_for_topics([name], timeout_ms=30000)
            yield name
        finally:
            admin.delete_topics([name])
    finally:
        admin.close()


_CREATED: set[str] = set()


def record_created_topics() -> None:
    """From now on, remember every topic this process creates (ensure_topics, tests).

    Only this process's own: another test session running beside this one keeps its
    topics until it ends.
    """
    real = KafkaAdminClient.create_topics
    if getattr(real, "records_topics", False):
        return

    def create_topics(self: KafkaAdminClient, new_topics: list[NewTopic | str], *args: Any,
                      **kwargs: Any) -> Any:
        _CREATED.update(t if isinstance(t, str) else t.name for t in new_topics)
        return real(self, new_topics, *args, **kwargs)

    create_topics.records_topics = True  # type: ignore[attr-defined]
    KafkaAdminClient.create_topics = create_topics  # type: ignore[method-assign]


def delete_created_topics(settings: Settings | None = None) -> list[str]:
    """Delete the topics this process created, except the contract's own (a demo's)."""
    settings = settings or Settings()
    doomed = sorted(_CREATED - {settings.topic(name) for name in TOPIC_PARTITIONS})
    _CREATED.clear()
    if not doomed:
        return []
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in doomed if t in existing]  # a test may have deleted its own
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()
    return doomed


@asynccontextmanager
async def live_services(tag: str, **overrides: Any) -> AsyncIterator[Settings]:
    """The local stack up; topics, database, task queue and consumer groups named after
    ``tag`` and a fresh run id (a running demo is not disturbed); a worker and the bridges
    running until exit.

    Blocking clients in a test (Kafka) must run on threads (``asyncio.to_thread``): a
    blocked loop stalls this worker and these bridges too.
    """
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        topic_prefix=f"{tag}{run}.", task_queue=f"{tag}-{run}", postgres_db=f"{tag}_{run}",
        consumer_group_prefix=f"{tag}-{run}", worker_metrics_port=0, bridge_metrics_port=0,
        **overrides)
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, settings)
    await asyncio.to_thread(ensure_database, settings, settings.postgres_db)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_worker(settings, stop)),
             asyncio.create_task(run_bridges(settings, stop))]
    try:
        yield settings
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)


class Topic:
    """Reads one topic from the start without a consumer group, decoding as it goes."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None,
        )
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def wait_for(self, match: Callable[[str, dict[str, Any]], bool],
                 timeout: float = 60) -> dict[str, Any]:
        """The first record (name, fields) that ``match`` accepts, seen or still to come."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, rec in self.seen:
                if match(name, rec):
                    return rec
            for batch in self.consumer.poll(timeout_ms=300).values():
                for msg in batch:
                    decoded = codec.decode(msg.value)
                    self.seen.append((decoded.name, decoded.record))
        raise AssertionError(f"not seen within {timeout}s; saw {[n for n, _ in self.seen]}")

    def names(self, match: Callable[[dict[str, Any]], bool]) -> list[str]:
        """Names of the records seen so far that ``match`` accepts."""
        return [name for name, rec in self.seen if match(rec)]


def send(settings: Settings, topic: str, key: str, name: str, record: dict[str, Any]) -> None:
    """Produce one Avro record as any upstream system would, acknowledged by the broker."""
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        producer.send(topic, key=key.encode(), value=codec.encode(name, record),
                      headers=codec.headers_for(name)).get(timeout=30)
    finally:
        producer.close()
