"""Kafka plumbing shared by the hotline processes: client factories and the DLQ publisher.

kafka-python is blocking. Producers are thread-safe and may be shared; a consumer
belongs to one thread (STYLE.md). Callers on an event loop run these calls in a thread.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer

from schemas.codec import EVENT_TYPE_HEADER, encode, headers_for
from workers.runtime.security import kafka_security_config
from workers.runtime.settings import Settings

log = logging.getLogger(__name__)

# Header the DLQ record carries with the original event type, beside its own event-type.
ORIGINAL_EVENT_TYPE_HEADER = "original-event-type"
DEAD_LETTER_RECORD = "DeadLetter"
# Dead letters are for people: keep the error text readable, not a whole traceback.
MAX_ERROR_CHARS = 4000
# The codec holds every *_id to 128 printable characters.
MAX_ID_CHARS = 128
MAX_EVENT_TYPE_CHARS = 256


class SourceMessage(Protocol):
    """The parts of a ``kafka.consumer.fetcher.ConsumerRecord`` the DLQ needs."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]] | None: ...


def group_id(settings: Settings, name: str) -> str:
    """Consumer group for one of a process's consumers, e.g. ``hotline-intake``."""
    return f"{settings.consumer_group_prefix}-{name}"


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Producer settings: every write acknowledged by all in-sync replicas, idempotent."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": "hotline-producer",
        "acks": "all",
        # Idempotence keeps the broker from writing a retried batch twice.
        "enable_idempotence": True,
        # A short linger batches a burst of sends without delaying a lone DLQ write much.
        "linger_ms": 5,
    }
    config.update(kafka_security_config(settings))
    config.update(overrides)
    return config


def consumer_config(settings: Settings, group: str, **overrides: Any) -> dict[str, Any]:
    """Consumer settings: manual commits after the effect is durable, start at earliest."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": f"hotline-{group}",
        "group_id": group,
        # Offsets are committed by hand once Temporal (or the DLQ) has the message.
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # Small batches: one batch is applied before the next poll, and a batch must finish
        # well inside max_poll_interval_ms or the member is dropped from the group.
        "max_poll_records": 200,
        "max_poll_interval_ms": 300_000,
        # A topic that appears, or gains partitions, is seen (and assigned) within 30 s,
        # not the library's 5 minutes.
        "metadata_max_age_ms": 30_000,
    }
    config.update(kafka_security_config(settings))
    config.update(overrides)
    return config


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A connected producer (blocks while bootstrapping; raises ``NoBrokersAvailable``)."""
    return KafkaProducer(**producer_config(settings, **overrides))


def make_consumer(
    settings: Settings,
    topics: Sequence[str],
    group: str,
    *,
    listener: Any = None,
    **overrides: Any,
) -> KafkaConsumer:
    """A consumer subscribed to ``topics`` in ``group`` (blocks while bootstrapping).

    Args:
        settings: Process settings (bootstrap servers).
        topics: Full topic names, prefix included.
        group: Consumer group id.
        listener: Optional ``kafka.ConsumerRebalanceListener``.
        **overrides: Any other kafka-python consumer option.
    """
    consumer = KafkaConsumer(**consumer_config(settings, group, **overrides))
    # The group's first assignment is made from this consumer's metadata. Without the
    # topics' partitions in it, a topic created moments ago is assigned to no one, and
    # kafka-python can miss the update that should make it rejoin (KAFKA-3949 is handled
    # for pattern subscriptions only): the consumer then idles until the metadata ages.
    unknown = [topic for topic in topics if not consumer.partitions_for_topic(topic)]
    if unknown:
        log.warning("topics not on the broker yet; consuming them once they appear: %s",
                    unknown)
    consumer.subscribe(topics=list(topics), listener=listener)
    return consumer


def resume_partitions(consumer: KafkaConsumer, partitions: Sequence[Any]) -> None:
    """``consumer.resume(*partitions)``, and make sure they are fetched again.

    kafka-python (3.0.12) keeps the records it had already fetched for a partition that
    is paused, to hand them out after ``resume`` (KAFKA-7548). Records it had parsed are
    handed back only if its one in-line slot is ``None``, but that slot keeps the last
    drained batch instead of clearing it, so they are never handed back. The partition is
    also never fetched again while they are kept: it stalls for good. Dropping them is
    safe: they were never returned, so the partition's position is still that of the
    first of them, and the next fetch starts there.
    """
    consumer.resume(*partitions)
    fetcher = getattr(consumer, "_fetcher", None)
    for name in ("_paused_partition_records", "_paused_completed_fetches"):
        parked = getattr(fetcher, name, None)
        if not isinstance(parked, dict):
            continue  # a kafka-python without the parking: nothing to undo
        for tp in partitions:
            kept = parked.pop(tp, None)
            drain = getattr(kept, "drain", None)
            if drain is not None:
                drain()


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> str | None:
    """The last value of header ``name`` as text, or ``None`` if it is absent or empty."""
    found: str | None = None
    for key, value in headers or ():
        if key == name and value:
            found = value.decode("utf-8", errors="replace")
    return found


def dead_letter_record(
    message: SourceMessage,
    *,
    reason: str,
    error: str,
    consumer_group: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The ``DeadLetter`` record for a consumed message.

    ``event_id`` is ``dlq:<topic>:<partition>:<offset>``: a message redelivered after a
    failed commit dead-letters under the same id, so DLQ readers can drop repeats.

    Text that came from outside (the event-type header, error details) is cleaned so the
    record always encodes: a dead letter that cannot be written would block its partition.
    """
    event_id = f"dlq:{message.topic}:{message.partition}:{message.offset}"
    if len(event_id) > MAX_ID_CHARS:  # topic names may have up to 249 characters
        digest = hashlib.sha256(message.topic.encode()).hexdigest()[:16]
        event_id = f"dlq:{digest}:{message.partition}:{message.offset}"
    event_type = header_value(message.headers, EVENT_TYPE_HEADER)
    return {
        "event_id": event_id,
        "at": at or datetime.now(UTC),
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "key": message.key,
        "value": message.value if message.value is not None else b"",
        "event_type": _clean(event_type, MAX_EVENT_TYPE_CHARS) if event_type else None,
        "reason": _clean(reason, MAX_ID_CHARS) or "UNKNOWN",
        "error": _clean(error, MAX_ERROR_CHARS),
        "consumer_group": consumer_group,
    }


def _clean(text: str, limit: int) -> str:
    """``text`` without NUL characters (the codec refuses them), at most ``limit`` long."""
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dead_letter_headers(record: Mapping[str, Any]) -> list[tuple[str, bytes]]:
    """Headers of a DLQ message: its own event type, plus the original one if known."""
    headers = list(headers_for(DEAD_LETTER_RECORD))
    original = record.get("event_type")
    if original:
        headers.append((ORIGINAL_EVENT_TYPE_HEADER, str(original).encode()))
    return headers


class DeadLetterPublisher:
    """Writes ``DeadLetter`` records and waits for the broker's acknowledgement.

    ``publish`` blocks; it returns only once the record is durable (``acks=all``), so the
    caller may then commit the source offset. Any failure raises.
    """

    def __init__(self, producer: KafkaProducer, topic: str, *, timeout_s: float = 30.0) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout_s = timeout_s

    @property
    def topic(self) -> str:
        return self._topic

    def publish(
        self, message: SourceMessage, *, reason: str, error: str, consumer_group: str
    ) -> dict[str, Any]:
        """Dead-letter ``message``; returns the record written.

        Raises:
            kafka.errors.KafkaError: The write was not acknowledged in time.
        """
        record = dead_letter_record(
            message, reason=reason, error=error, consumer_group=consumer_group
        )
        future = self._producer.send(
            self._topic,
            key=message.key,
            value=encode(DEAD_LETTER_RECORD, record),
            headers=dead_letter_headers(record),
        )
        future.get(timeout=self._timeout_s)
        return record
