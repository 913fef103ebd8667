"""Reading the dead-letter topic ``hotline.dlq`` without a consumer group.

The reader assigns every partition and reads from the first offset that can match
(``since`` seeks by timestamp) up to the end offsets taken when reading started, so it
never moves a group's offsets and may run while the bridges do. A dead letter is addressed
by its position on the DLQ topic, ``PARTITION:OFFSET``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from schemas.codec import DecodeError, decode
from workers.runtime.security import kafka_security_config
from workers.runtime.settings import Settings

__all__ = ["DeadLetter", "fetch_dead_letter", "read_dead_letters"]

# How long reading the DLQ may take before the command gives up (a broker that is away).
READ_TIMEOUT_S = 60.0
POLL_MS = 500
# --since seeks by the messages' timestamps; the margin covers producer clock skew (the
# record's own `at` decides what matches).
SEEK_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class DeadLetter:
    """One message of the DLQ topic, decoded.

    Attributes:
        partition: Its partition on the DLQ topic.
        offset: Its offset on the DLQ topic.
        record: The ``DeadLetter`` record (topic, partition, offset, key, value,
            event_type, reason, error, consumer_group, at, event_id); empty when the DLQ
            message itself does not decode.
        problem: Why the DLQ message itself does not decode, else ``None``.
        timestamp: The Kafka timestamp of the DLQ message.
    """

    partition: int
    offset: int
    record: dict[str, Any]
    problem: str | None = None
    timestamp: datetime | None = None

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def at(self) -> datetime | None:
        at = self.record.get("at")
        return at if isinstance(at, datetime) else self.timestamp

    @property
    def reason(self) -> str:
        return str(self.record.get("reason") or "UNDECODABLE_DEAD_LETTER")

    @property
    def key_text(self) -> str | None:
        key = self.record.get("key")
        return None if key is None else bytes(key).decode("utf-8", errors="replace")

    @property
    def source(self) -> str:
        r = self.record
        if not r:
            return "?"
        return f"{r.get('topic')}:{r.get('partition')}:{r.get('offset')}"


def _consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id="hotline-dlq-cli",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=POLL_MS,
        **kafka_security_config(settings),
    )


def _partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + READ_TIMEOUT_S
    while True:
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return [TopicPartition(topic, p) for p in sorted(parts)]
        if time.monotonic() > deadline:
            raise LookupError(f"topic {topic} not found (is HOTLINE_TOPIC_PREFIX right?)")
        time.sleep(0.2)


def _to_dead_letter(message: Any) -> DeadLetter:
    ts = None
    if getattr(message, "timestamp", None) is not None and message.timestamp >= 0:
        ts = datetime.fromtimestamp(message.timestamp / 1000, UTC)
    try:
        decoded = decode(message.value, expected=("DeadLetter",))
    except DecodeError as exc:
        return DeadLetter(message.partition, message.offset, {}, f"{exc.reason}: {exc.detail}",
                          ts)
    return DeadLetter(message.partition, message.offset, dict(decoded.record), None, ts)


def _drain(
    consumer: KafkaConsumer, ends: Mapping[TopicPartition, int]
) -> Iterable[Any]:
    """Every message up to the end offsets taken when reading started."""
    pending = {tp for tp, end in ends.items() if consumer.position(tp) < end}
    deadline = time.monotonic() + READ_TIMEOUT_S
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"reading the DLQ did not reach its end within {READ_TIMEOUT_S:.0f} s"
            )
        batch = consumer.poll(timeout_ms=POLL_MS)
        for tp, messages in batch.items():
            for message in messages:
                if message.offset < ends[tp]:
                    yield message
        pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}


def read_dead_letters(
    settings: Settings,
    *,
    reasons: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    topic: str | None = None,
    key: str | None = None,
    limit: int | None = None,
) -> list[DeadLetter]:
    """The dead letters that match every filter, oldest first.

    Args:
        settings: Broker, security and topic prefix.
        reasons: Keep these reason codes (any of them); empty keeps all.
        since: Keep dead letters written at or after this time.
        until: Keep dead letters written before this time.
        topic: Keep those from this original topic (full name, or the contract name
            without the prefix).
        key: Keep those whose original key (the complaint id) is this.
        limit: Keep only the most recent ``limit`` matches.

    Raises:
        LookupError: The DLQ topic does not exist.
        TimeoutError: The broker did not deliver the topic in time.
    """
    wanted_reasons = {r.upper() for r in reasons}
    wanted_topics = {topic, settings.topic(topic)} if topic else set()
    consumer = _consumer(settings)
    try:
        tps = _partitions(consumer, settings.topic_dlq)
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        starts = consumer.beginning_offsets(tps)
        seek_to: dict[TopicPartition, int] = dict(starts)
        if since is not None:
            stamp = int((since - SEEK_MARGIN).timestamp() * 1000)
            found = consumer.offsets_for_times(dict.fromkeys(tps, stamp))
            for tp in tps:
                hit = found.get(tp)
                seek_to[tp] = hit.offset if hit is not None else ends[tp]
        for tp in tps:
            consumer.seek(tp, seek_to[tp])
        out: list[DeadLetter] = []
        for message in _drain(consumer, ends):
            letter = _to_dead_letter(message)
            at = letter.at
            if wanted_reasons and letter.reason.upper() not in wanted_reasons:
                continue
            if since is not None and (at is None or at < since):
                continue
            if until is not None and (at is None or at >= until):
                continue
            if wanted_topics and letter.record.get("topic") not in wanted_topics:
                continue
            if key is not None and letter.key_text != key:
                continue
            out.append(letter)
    finally:
        consumer.close()
    out.sort(key=lambda d: (d.at or datetime.min.replace(tzinfo=UTC), d.partition, d.offset))
    if limit is not None and limit >= 0:
        out = out[-limit:] if limit else []
    return out


def fetch_dead_letter(settings: Settings, partition: int, offset: int) -> DeadLetter:
    """The dead letter at ``partition:offset`` of the DLQ topic.

    Raises:
        LookupError: No such partition, or no message at that offset (never written, or
            removed by retention).
    """
    consumer = _consumer(settings)
    try:
        tps = _partitions(consumer, settings.topic_dlq)
        tp = TopicPartition(settings.topic_dlq, partition)
        if tp not in tps:
            raise LookupError(
                f"{settings.topic_dlq} has partitions 0..{len(tps) - 1}, not {partition}"
            )
        consumer.assign([tp])
        start = consumer.beginning_offsets([tp])[tp]
        end = consumer.end_offsets([tp])[tp]
        if not start <= offset < end:
            raise LookupError(
                f"no dead letter at {partition}:{offset} "
                f"(partition {partition} holds offsets {start}..{end - 1})"
                if end > start
                else f"no dead letter at {partition}:{offset} (partition {partition} is empty)"
            )
        consumer.seek(tp, offset)
        for message in _drain(consumer, {tp: offset + 1}):
            if message.offset == offset:
                return _to_dead_letter(message)
        raise LookupError(f"no dead letter at {partition}:{offset} (removed by compaction?)")
    finally:
        consumer.close()
