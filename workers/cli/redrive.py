"""Re-driving a dead letter to its original topic, at most once.

Re-driving publishes the original bytes (or fixed bytes) to the original topic with the
original key, the ``event-type`` header and a header ``redriven-from: dlq:<partition>:
<offset>``; the bridges then apply it like any message. The re-drive is recorded in the
ledger table ``dlq_redrives`` (migration 003) inside the transaction that waits for the
broker's acknowledgement: a dead letter is re-driven at most once, and a second re-drive
of it is refused and names the first one. The case workflow also drops an event whose
``event_id`` it has seen, so even a message published twice (a crash between the broker's
ack and the ledger commit) is applied once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from schemas.codec import EVENT_TYPE_HEADER, DecodeError, headers_for
from workers.cli.dead_letters import DeadLetter
from workers.cli.output import fmt_time
from workers.runtime.kafka_io import make_producer
from workers.runtime.schema_registry import decode_blocking
from workers.runtime.settings import Settings

__all__ = [
    "REDRIVEN_FROM_HEADER",
    "RedriveRefused",
    "RedriveResult",
    "redrive",
    "redrive_marks",
]

#: Header a re-driven message carries: where on the DLQ it came from.
REDRIVEN_FROM_HEADER = "redriven-from"
SEND_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RedriveResult:
    """What ``redrive`` did with one dead letter.

    Attributes:
        position: The dead letter's position, ``PARTITION:OFFSET``.
        redriven: True when this call published it.
        detail: One line for people: where it went, or why not.
        target: ``topic:partition:offset`` it was published to (by this call or the
            earlier one that makes this call refuse).
        previous: The earlier re-drive's row when refused as already re-driven.
    """

    position: str
    redriven: bool
    detail: str
    target: str | None = None
    previous: dict[str, Any] | None = field(default=None)


class RedriveRefused(Exception):
    """The dead letter cannot be re-driven as asked (nothing was published)."""


_CLAIM = """
INSERT INTO dlq_redrives (dlq_topic, dlq_partition, dlq_offset, dead_letter_id, reason,
    target_topic, event_type, event_id, complaint_id, replaced, value_sha256, redriven_by)
VALUES (%(dlq_topic)s, %(dlq_partition)s, %(dlq_offset)s, %(dead_letter_id)s, %(reason)s,
    %(target_topic)s, %(event_type)s, %(event_id)s, %(complaint_id)s, %(replaced)s,
    %(value_sha256)s, %(redriven_by)s)
ON CONFLICT DO NOTHING
RETURNING 1
"""

_PREVIOUS = """
SELECT dlq_partition, dlq_offset, target_topic, target_partition, target_offset,
       redriven_by, redriven_at, replaced, event_id
FROM dlq_redrives
WHERE (dlq_topic = %s AND dlq_partition = %s AND dlq_offset = %s) OR dead_letter_id = %s
ORDER BY redriven_at
LIMIT 1
"""


def _check_table(conn: Any) -> None:
    row = conn.execute("SELECT to_regclass('dlq_redrives') IS NOT NULL").fetchone()
    if not row or not row[0]:
        raise RedriveRefused(
            "the ledger has no dlq_redrives table: apply the migrations first (the worker "
            "applies them at start; locally `hotline stack up`)"
        )


def _event_headers(event_type: str | None, position: str) -> list[tuple[str, bytes]]:
    headers: list[tuple[str, bytes]] = []
    if event_type:
        try:
            headers = list(headers_for(event_type))
        except ValueError:
            headers = [(EVENT_TYPE_HEADER, event_type.encode())]
    headers.append((REDRIVEN_FROM_HEADER, f"dlq:{position}".encode()))
    return headers


def redrive(
    settings: Settings,
    letter: DeadLetter,
    *,
    value: bytes | None = None,
    by: str = "cli",
    force: bool = False,
    producer: KafkaProducer | None = None,
) -> RedriveResult:
    """Re-publish one dead letter to its original topic, at most once.

    Args:
        settings: Broker, security, topic prefix and the ledger DSN.
        letter: The dead letter (from :func:`fetch_dead_letter`).
        value: Replacement bytes (a fixed message); the original bytes when ``None``.
        by: Who re-drives it, recorded in ``dlq_redrives``.
        force: Publish bytes that do not decode as a contract event (they will most
            likely come straight back to the DLQ).
        producer: A producer to reuse; one is made (and closed) when ``None``.

    Returns:
        ``redriven=True`` with the target position, or ``redriven=False`` with the earlier
        re-drive when this dead letter (or another copy of the same original message) was
        re-driven before.

    Raises:
        RedriveRefused: The DLQ message does not decode, the bytes do not decode (without
            ``force``), or the ledger lacks the table.
        kafka.errors.KafkaError: The broker did not acknowledge (nothing is recorded).
    """
    import psycopg

    if not letter.record:
        raise RedriveRefused(f"dead letter {letter.position} does not decode: {letter.problem}")
    record = letter.record
    payload = bytes(value if value is not None else record["value"])
    event_type = record.get("event_type")
    event_id = complaint_id = None
    try:
        decoded = decode_blocking(settings, payload)
        event_type = decoded.full_name
        event_id = decoded.record.get("event_id")
        complaint_id = decoded.record.get("complaint_id")
    except DecodeError as exc:
        if not force:
            what = "the replacement bytes" if value is not None else "the original bytes"
            raise RedriveRefused(
                f"{what} of {letter.position} do not decode ({exc.reason}: {exc.detail}); "
                "fix them and pass --value-file, or --force to send them anyway"
            ) from None
    target_topic = str(record["topic"])
    key = record.get("key")
    claim = {
        "dlq_topic": settings.topic_dlq,
        "dlq_partition": letter.partition,
        "dlq_offset": letter.offset,
        "dead_letter_id": str(record.get("event_id") or f"dlq:{settings.topic_dlq}:"
                              f"{letter.position}"),
        "reason": letter.reason,
        "target_topic": target_topic,
        "event_type": event_type,
        "event_id": event_id,
        "complaint_id": complaint_id,
        "replaced": value is not None,
        "value_sha256": hashlib.sha256(payload).hexdigest(),
        "redriven_by": by,
    }
    own_producer = producer is None
    with psycopg.connect(settings.dsn, connect_timeout=10) as conn:
        _check_table(conn)
        with conn.transaction():
            # The row is claimed before the send and committed after the broker's ack:
            # a concurrent re-drive of the same dead letter waits on the key, then sees it.
            if conn.execute(_CLAIM, claim).fetchone() is None:
                prev = conn.execute(
                    _PREVIOUS, (settings.topic_dlq, letter.partition, letter.offset,
                                claim["dead_letter_id"]),
                ).fetchone()
                previous = _previous_dict(prev)
                target = (f"{previous['target_topic']}:{previous['target_partition']}:"
                          f"{previous['target_offset']}" if previous else None)
                same = previous and (previous["dlq_partition"], previous["dlq_offset"]) == (
                    letter.partition, letter.offset)
                where = ("" if same or not previous else
                         f" (as dead letter {previous['dlq_partition']}:"
                         f"{previous['dlq_offset']}, a copy of the same message)")
                when = fmt_time(previous["redriven_at"]) if previous else "?"
                by_whom = previous["redriven_by"] if previous else "?"
                return RedriveResult(
                    letter.position, False,
                    f"already re-driven{where} on {when} by {by_whom} to {target}; "
                    "if it failed again it is on the DLQ at a new position",
                    target, previous,
                )
            sender = producer or make_producer(settings, client_id="hotline-dlq-redrive")
            try:
                meta = sender.send(
                    target_topic, key=key, value=payload,
                    headers=_event_headers(event_type, letter.position),
                ).get(timeout=SEND_TIMEOUT_S)
            finally:
                if own_producer:
                    sender.close(timeout=10)
            conn.execute(
                "UPDATE dlq_redrives SET target_partition = %s, target_offset = %s "
                "WHERE dlq_topic = %s AND dlq_partition = %s AND dlq_offset = %s",
                (meta.partition, meta.offset, settings.topic_dlq, letter.partition,
                 letter.offset),
            )
    target = f"{target_topic}:{meta.partition}:{meta.offset}"
    what = "fixed message" if value is not None else "original message"
    short = (event_type or "?").rsplit(".", 1)[-1]
    return RedriveResult(
        letter.position, True,
        f"re-drove the {what} ({short}, complaint {complaint_id or '?'}) to {target}",
        target,
    )


def _previous_dict(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    names = ("dlq_partition", "dlq_offset", "target_topic", "target_partition",
             "target_offset", "redriven_by", "redriven_at", "replaced", "event_id")
    return dict(zip(names, row, strict=True))


def redrive_marks(settings: Settings) -> dict[tuple[int, int], dict[str, Any]] | None:
    """Re-drives recorded for the DLQ topic, by position; ``None`` if the ledger is away."""
    import psycopg

    try:
        with psycopg.connect(settings.dsn, connect_timeout=5) as conn:
            exists = conn.execute("SELECT to_regclass('dlq_redrives') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                return {}
            rows = conn.execute(
                "SELECT dlq_partition, dlq_offset, target_topic, target_partition, "
                "target_offset, redriven_by, redriven_at, replaced FROM dlq_redrives "
                "WHERE dlq_topic = %s", (settings.topic_dlq,),
            ).fetchall()
    except psycopg.Error:
        return None
    names = ("target_topic", "target_partition", "target_offset", "redriven_by",
             "redriven_at", "replaced")
    return {(r[0], r[1]): dict(zip(names, r[2:], strict=True)) for r in rows}
