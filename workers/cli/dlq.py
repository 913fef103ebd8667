"""``hotline dlq list|show|redrive``: read the dead-letter topic and re-drive fixed messages.

Reading needs no consumer group: the commands assign every partition of ``hotline.dlq``
and read from the first offset that can match (``--since`` seeks by timestamp), so they
never move a group's offsets and may run while the bridges do.

A dead letter is addressed by its position on the DLQ topic, ``PARTITION:OFFSET`` (as
``list`` prints it; ``dlq:PARTITION:OFFSET`` is accepted too).

Re-driving publishes the original bytes (or fixed bytes from ``--value-file``) to the
original topic with the original key, the ``event-type`` header and a header
``redriven-from: dlq:<partition>:<offset>``; the bridges then apply it like any message.
The re-drive is recorded in the ledger table ``dlq_redrives`` (migration 003) inside the
transaction that waits for the broker's acknowledgement: a dead letter is re-driven at most
once, and a second ``redrive`` of it is refused (exit 1) and names the first one. What
still fails lands on the DLQ again, at a new position, and can be fixed and re-driven in
turn. The case workflow also drops an event whose ``event_id`` it has seen, so even a
message published twice (a crash between the broker's ack and the ledger commit) is
applied once.

Personal data (caller phone and name) is never printed: decoded records are redacted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from rich.table import Table

from schemas.codec import EVENT_TYPE_HEADER, DecodeError, decode, headers_for
from workers.cli.output import (
    console,
    err_console,
    fmt_time,
    mask_text,
    print_json,
    redact,
    run_as_process,
)
from workers.runtime.kafka_io import make_producer
from workers.runtime.security import kafka_security_config
from workers.runtime.settings import Settings

__all__ = [
    "REDRIVEN_FROM_HEADER",
    "DeadLetter",
    "RedriveResult",
    "app",
    "fetch_dead_letter",
    "parse_position",
    "parse_when",
    "read_dead_letters",
    "redrive",
]

#: Header a re-driven message carries: where on the DLQ it came from.
REDRIVEN_FROM_HEADER = "redriven-from"

# How long reading the DLQ may take before the command gives up (a broker that is away).
READ_TIMEOUT_S = 60.0
POLL_MS = 500
SEND_TIMEOUT_S = 30.0
# --since seeks by the messages' timestamps; the margin covers producer clock skew (the
# record's own `at` decides what matches).
SEEK_MARGIN = timedelta(minutes=5)

app = typer.Typer(
    no_args_is_help=True,
    help="Dead letters: list and inspect hotline.dlq, re-drive fixed messages once.",
)


# --------------------------------------------------------------------------------------
# Options


_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time from ``--since``/``--until``.

    Accepts a duration back from now (``90s``, ``15m``, ``2h``, ``3d``, ``1w``) or an ISO
    8601 date or date-time; a date-time without an offset is local time.

    Raises:
        typer.BadParameter: Neither form.
    """
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        return now - timedelta(**{_UNITS[unit]: amount})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: expected a duration such as 30m, 2h, 3d or an ISO date-time "
            "such as 2026-11-22T08:00"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # local time, as an operator types it
    return when.astimezone(UTC)


# --------------------------------------------------------------------------------------
# Reading the DLQ


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


_POSITION = re.compile(r"^(?:dlq:)?(\d+):(\d+)$")


def parse_position(text: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` (or ``dlq:PARTITION:OFFSET``) as two integers.

    Raises:
        typer.BadParameter: Another shape.
    """
    match = _POSITION.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r}: expected PARTITION:OFFSET such as 0:42")
    return int(match.group(1)), int(match.group(2))


# --------------------------------------------------------------------------------------
# Re-drive


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
        decoded = decode(payload)
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


# --------------------------------------------------------------------------------------
# Presentation


def _short_type(event_type: Any) -> str:
    return str(event_type).rsplit(".", 1)[-1] if event_type else "—"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _summary(letter: DeadLetter, mark: dict[str, Any] | None) -> dict[str, Any]:
    r = letter.record
    return {
        "position": letter.position,
        "at": letter.at.isoformat() if letter.at else None,
        "reason": letter.reason,
        "event_type": r.get("event_type"),
        "key": letter.key_text,
        "topic": r.get("topic"),
        "partition": r.get("partition"),
        "offset": r.get("offset"),
        "consumer_group": r.get("consumer_group"),
        "error": mask_text(str(r.get("error") or letter.problem or "")),
        "value_bytes": len(r.get("value") or b""),
        "redriven": _mark_json(mark),
    }


def _mark_json(mark: dict[str, Any] | None) -> dict[str, Any] | None:
    if not mark:
        return None
    out = dict(mark)
    if isinstance(out.get("redriven_at"), datetime):
        out["redriven_at"] = out["redriven_at"].isoformat()
    return out


def _mark_text(mark: dict[str, Any] | None, marks_known: bool) -> str:
    if not marks_known:
        return "?"
    if not mark:
        return ""
    return f"→ {mark['target_partition']}:{mark['target_offset']}" + (
        " (fixed)" if mark.get("replaced") else ""
    )


def _letters_table(
    letters: Sequence[DeadLetter], marks: Mapping[tuple[int, int], dict[str, Any]] | None,
    title: str,
) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("position", "dead-lettered", "reason", "event", "key", "from",
                   "error", "re-driven"):
        table.add_column(column, no_wrap=column != "error", overflow="fold")
    for letter in letters:
        r = letter.record
        mark = (marks or {}).get((letter.partition, letter.offset))
        source = f"{r.get('topic')}:{r.get('partition')}:{r.get('offset')}" if r else "?"
        table.add_row(
            letter.position, fmt_time(letter.at), letter.reason, _short_type(r.get("event_type")),
            letter.key_text or "—", source,
            _clip(mask_text(str(r.get("error") or letter.problem or "")), 70),
            _mark_text(mark, marks is not None),
        )
    return table


def _settings() -> Settings:
    # Fresh from the environment on every command (tests change it between invocations).
    return Settings()


def _fail(message: str, code: int = 1) -> typer.Exit:
    err_console().print(message, markup=False, style="red", soft_wrap=True)
    return typer.Exit(code)


# --------------------------------------------------------------------------------------
# Commands


@app.command("list")
def list_command(
    reason: list[str] = typer.Option(
        [], "--reason", "-r",
        help="Only this reason code (repeatable): UNKNOWN_CASE, MALFORMED, ...",
    ),
    since: str | None = typer.Option(
        None, help="Dead-lettered at or after: 2h, 3d, or 2026-11-22T08:00 (local time)."
    ),
    until: str | None = typer.Option(None, help="Dead-lettered before (same forms)."),
    topic: str | None = typer.Option(
        None, help="Only messages from this topic (e.g. hotline.unit-replies)."
    ),
    key: str | None = typer.Option(None, help="Only messages with this key (complaint id)."),
    limit: int = typer.Option(100, min=0, help="Show the most recent N matches."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """List dead letters, oldest first, with their reason, origin and re-drive state."""
    settings = _settings()
    start = parse_when(since) if since else None
    end = parse_when(until) if until else None
    try:
        letters = read_dead_letters(settings, reasons=reason, since=start, until=end,
                                    topic=topic, key=key, limit=limit)
    except (LookupError, TimeoutError) as exc:
        raise _fail(str(exc)) from None
    marks = redrive_marks(settings)
    if as_json:
        print_json([_summary(d, (marks or {}).get((d.partition, d.offset))) for d in letters])
        return
    out = console()
    out.print(_letters_table(letters, marks, f"{settings.topic_dlq}: {len(letters)} dead "
                             f"letter{'s' if len(letters) != 1 else ''}"))
    if marks is None:
        err_console().print("(ledger not reachable: re-drive state unknown)")
    if letters:
        counts: dict[str, int] = {}
        for d in letters:
            counts[d.reason] = counts.get(d.reason, 0) + 1
        out.print("by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@app.command("show")
def show_command(
    position: str = typer.Argument(..., help="PARTITION:OFFSET on the DLQ (from `list`)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """Show one dead letter: where it came from, the error, and the decoded original."""
    settings = _settings()
    partition, offset = parse_position(position)
    try:
        letter = fetch_dead_letter(settings, partition, offset)
    except (LookupError, TimeoutError) as exc:
        raise _fail(str(exc)) from None
    marks = redrive_marks(settings)
    mark = (marks or {}).get((partition, offset))
    r = letter.record
    original: dict[str, Any] = {}
    if r:
        try:
            decoded = decode(bytes(r["value"]))
            original = {"record": decoded.name, "decoded": redact(decoded.record)}
        except DecodeError as exc:
            raw = bytes(r["value"])
            original = {"record": None, "decode_error": f"{exc.reason}: {exc.detail}",
                        "head_hex": raw[:48].hex(" ")}
    if as_json:
        data = _summary(letter, mark)
        data["error"] = mask_text(str(r.get("error") or letter.problem or ""))
        data["dead_letter_id"] = r.get("event_id")
        data["value_b64"] = base64.b64encode(bytes(r.get("value") or b"")).decode()
        data["original"] = original
        print_json(data)
        return
    out = console()
    table = Table(show_header=False, title=f"dead letter {letter.position} on "
                  f"{settings.topic_dlq}", title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("dead-lettered", fmt_time(letter.at)),
        ("reason", letter.reason),
        ("from", letter.source),
        ("key", letter.key_text or "—"),
        ("event type", str(r.get("event_type") or "—")),
        ("consumer group", str(r.get("consumer_group") or "—")),
        ("dead letter id", str(r.get("event_id") or "—")),
        ("value", f"{len(r.get('value') or b'')} bytes"),
        ("re-driven", _mark_text(mark, marks is not None) or "no"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    out.print("[bold]error[/bold]")
    out.print(mask_text(str(r.get("error") or letter.problem or "")), markup=False)
    if "decoded" in original:
        out.print(f"[bold]original {original['record']} (personal data redacted)[/bold]")
        out.print(json.dumps(original["decoded"], ensure_ascii=False, indent=2), markup=False)
    elif original:
        out.print(f"[bold]original does not decode[/bold]: {original['decode_error']}",
                  markup=False)
        out.print(f"first bytes: {original['head_hex']}", markup=False)


@app.command("redrive")
def redrive_command(
    positions: list[str] = typer.Argument(
        None, help="PARTITION:OFFSET of each dead letter to re-drive."
    ),
    value_file: Path | None = typer.Option(
        None, "--value-file", exists=True, dir_okay=False, readable=True,
        help="Replacement bytes (a fixed message, e.g. from a fix script); one position only.",
    ),
    all_matching: bool = typer.Option(
        False, "--all", help="Re-drive every dead letter that matches the filters below."
    ),
    reason: list[str] = typer.Option([], "--reason", "-r", help="With --all: reason code."),
    since: str | None = typer.Option(None, help="With --all: dead-lettered at or after."),
    until: str | None = typer.Option(None, help="With --all: dead-lettered before."),
    topic: str | None = typer.Option(None, help="With --all: original topic."),
    key: str | None = typer.Option(None, help="With --all: original key (complaint id)."),
    by: str = typer.Option("cli", help="Who re-drives (recorded in the ledger)."),
    force: bool = typer.Option(
        False, help="Send bytes that do not decode as a contract event anyway."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be re-driven."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of text."),
) -> None:
    """Re-publish dead letters to their original topic, each at most once.

    Exit status 1 when any named dead letter was refused (already re-driven, or its
    bytes do not decode); with --all, those already re-driven are skipped and reported.
    """
    settings = _settings()
    positions = positions or []
    if bool(positions) == all_matching:
        raise _fail("name dead letters as PARTITION:OFFSET, or use --all with filters", 2)
    if value_file is not None and len(positions) != 1:
        raise _fail("--value-file replaces the bytes of exactly one dead letter", 2)
    value = value_file.read_bytes() if value_file is not None else None
    try:
        if all_matching:
            letters = read_dead_letters(
                settings, reasons=reason, since=parse_when(since) if since else None,
                until=parse_when(until) if until else None, topic=topic, key=key,
            )
        else:
            letters = [fetch_dead_letter(settings, *parse_position(p)) for p in positions]
    except (LookupError, TimeoutError) as exc:
        raise _fail(str(exc)) from None

    results: list[RedriveResult] = []
    failed = False
    producer = None if dry_run or not letters else make_producer(
        settings, client_id="hotline-dlq-redrive")
    try:
        for letter in letters:
            if dry_run:
                results.append(RedriveResult(
                    letter.position, False,
                    f"would re-drive {_short_type(letter.record.get('event_type'))} "
                    f"({letter.reason}) to {letter.record.get('topic')}"))
                continue
            try:
                result = redrive(settings, letter, value=value, by=by, force=force,
                                 producer=producer)
            except RedriveRefused as exc:
                result = RedriveResult(letter.position, False, str(exc))
                failed = True
            else:
                if not result.redriven and not all_matching:
                    failed = True
            results.append(result)
    finally:
        if producer is not None:
            producer.close(timeout=10)
    if as_json:
        print_json([{**asdict(r), "previous": _mark_json(r.previous)} for r in results])
    else:
        out = console()
        for r in results:
            style = "green" if r.redriven else ("yellow" if r.previous else "red")
            out.print(f"[{style}]{r.position}[/{style}] {mask_text(r.detail)}")
        done = sum(r.redriven for r in results)
        out.print(f"{done} re-driven, {len(results) - done} not re-driven"
                  + (" (dry run)" if dry_run else ""))
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    run_as_process(app)
