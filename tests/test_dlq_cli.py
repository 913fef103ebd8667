"""``hotline dlq list|show|redrive`` on the real stack.

The worker and the bridges run in this process against the real Temporal dev server,
Kafka broker and PostgreSQL, with fresh topics, task queue, groups and database. The
commands run through typer's test runner (in a thread, as a separate process would) with
the environment that points them at this run's topics and database.

The story: a unit's sign-for arrives before the case (UNKNOWN_CASE, dead-lettered); once
the case is filed, re-driving the dead letter applies it and the case moves; re-driving it
again is refused. A progress report with a wrong dispatch id is fixed by a script and
re-driven from a file, once. Bytes that do not decode are not re-driven.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from kafka import KafkaConsumer, KafkaProducer

from schemas import codec
from workers.bridges.main import run_bridges
from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import Settings
from workers.worker.main import run_worker

pytestmark = pytest.mark.stack

DLQ = "workers.cli.dlq"
PHONE = "13800001111"
NAME = "张先生"


# --- shared with tests/test_case_cli.py -------------------------------------------------


@dataclass(frozen=True)
class Live:
    """A running worker and bridges on fresh topics and a fresh database."""

    settings: Settings

    @property
    def env(self) -> dict[str, str]:
        """What a CLI process of this run would have in its environment."""
        s = self.settings
        return {"HOTLINE_TOPIC_PREFIX": s.topic_prefix, "HOTLINE_POSTGRES_DB": s.postgres_db,
                "HOTLINE_TASK_QUEUE": s.task_queue,
                "HOTLINE_CONSUMER_GROUP_PREFIX": s.consumer_group_prefix}


async def start_live(tag: str, time_scale: float) -> tuple[Live, asyncio.Event, list[Any]]:
    """Stack up, fresh topics and database, and a worker and bridges running."""
    run = uuid.uuid4().hex[:8]
    settings = Settings(
        topic_prefix=f"{tag}{run}.", task_queue=f"{tag}-{run}", postgres_db=f"{tag}_{run}",
        consumer_group_prefix=f"{tag}-{run}", worker_metrics_port=0, bridge_metrics_port=0,
        time_scale=time_scale,
    )
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, settings)
    await asyncio.to_thread(ensure_database, settings, settings.postgres_db)
    await asyncio.to_thread(apply_migrations, settings.dsn)
    stop, ready = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(run_worker(settings, stop)),
             asyncio.create_task(run_bridges(settings, stop, ready=ready))]
    await asyncio.wait_for(ready.wait(), 90)
    return Live(settings), stop, tasks


async def stop_live(stop: asyncio.Event, tasks: Sequence[Any]) -> None:
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)


async def cli(live: Live, module: str, *args: str) -> tuple[int, str]:
    """Run ``python -m module ARGS`` in its own process, as ``hotline ...`` would.

    Returns:
        The exit status and standard output (standard error is attached to failures).
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        env={**os.environ, **live.env, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    code = proc.returncode
    assert code is not None
    if code not in (0, 1, 2, 3):
        raise AssertionError(f"{module} {args} exited {code}:\n{err.decode()}")
    return code, out.decode() + (err.decode() if code else "")


class Topic:
    """Reads one topic from the start, decoding as it goes (no consumer group)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None,
        )
        self.seen: list[tuple[str, dict[str, Any], list[tuple[str, bytes]]]] = []

    def wait_for(self, match: Callable[[str, dict[str, Any]], bool],
                 timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, rec, _ in self.seen:
                if match(name, rec):
                    return rec
            for batch in self.consumer.poll(timeout_ms=300).values():
                for msg in batch:
                    decoded = codec.decode(msg.value)
                    self.seen.append((decoded.name, decoded.record, list(msg.headers)))
        raise AssertionError(f"not seen within {timeout}s; saw {[n for n, _, _ in self.seen]}")

    def close(self) -> None:
        self.consumer.close()


def send(settings: Settings, topic: str, key: str, name: str,
         record: dict[str, Any]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        producer.send(topic, key=key.encode(), value=codec.encode(name, record),
                      headers=codec.headers_for(name)).get(timeout=30)
    finally:
        producer.close()


def filing(cid: str, content: str, phone: str = PHONE) -> dict[str, Any]:
    """A ``ComplaintFiled``; one caller filing the same problem twice is merged (重复件)."""
    return {
        "event_id": f"f-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
        "channel": "PHONE", "kind": None, "content": content, "caller_phone": phone,
        "caller_name": NAME, "anonymous": False, "district": "朝阳区", "street": "望京街道",
        "address": "阜通东大街6号院", "latitude": None, "longitude": None,
        "category_hint": None, "urgency_hint": None, "answered_directly": False,
        "attachments": [],
    }


async def ledger_value(settings: Settings, sql: str, args: tuple[Any, ...],
                       until: Callable[[Any], bool], timeout: float = 60) -> Any:
    """Poll the ledger until ``sql``'s first column satisfies ``until``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    async with await psycopg.AsyncConnection.connect(settings.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute(sql, args)).fetchone()
            last = row[0] if row else None
            if row is not None and until(last):
                return last
            await asyncio.sleep(0.3)
    raise AssertionError(f"ledger value for {args} stayed {last!r}")


# --- this module ------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[Live]:
    # 1 h sign-for (T24H) is 18 s: the test signs well within it.
    running, stop, tasks = await start_live("dlqcli", time_scale=0.005)
    try:
        yield running
    finally:
        await stop_live(stop, tasks)


async def _dead_letter_for(live: Live, key: str, reason: str | None) -> dict[str, Any]:
    """Wait for a dead letter with ``key`` (and ``reason``); returns ``list --json``'s entry."""
    deadline = time.monotonic() + 60
    while True:
        code, out = await cli(live, DLQ, "list", "--key", key, "--json",
                              *(("--reason", reason) if reason else ()))
        assert code == 0, out
        entries = json.loads(out)
        if entries:
            assert len(entries) == 1, entries
            return dict(entries[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"no {reason} dead letter for {key}")
        await asyncio.sleep(0.5)


async def test_a_reply_before_its_case_is_redriven_once_after_the_case_is_filed(
    live: Live,
) -> None:
    s = live.settings
    cid = f"DLQ-{uuid.uuid4().hex[:8]}"
    sign_event = f"sign-{cid}"
    # The unit's system signs for a dispatch the hotline has not issued yet (a race
    # between two systems): the bridge cannot find the case.
    await asyncio.to_thread(send, s, s.topic_unit_replies, cid, "DispatchSigned", {
        "event_id": sign_event, "complaint_id": cid, "dispatch_id": f"{cid}-d1",
        "unit_id": "110105026", "at": datetime.now(UTC), "signer": "王师傅"})
    entry = await _dead_letter_for(live, cid, "UNKNOWN_CASE")
    position = entry["position"]
    assert entry["topic"] == s.topic_unit_replies
    assert entry["event_type"] == "hotline.events.DispatchSigned"
    assert entry["redriven"] is None

    # The table names the position, the reason and where it came from.
    code, out = await cli(live, DLQ, "list", "--reason", "UNKNOWN_CASE", "--since", "1h")
    assert code == 0 and position in out and "UNKNOWN_CASE" in out and cid in out
    code, out = await cli(live, DLQ, "list", "--until", "2000-01-01", "--json")
    assert code == 0 and json.loads(out) == []

    code, out = await cli(live, DLQ, "show", position, "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["reason"] == "UNKNOWN_CASE" and shown["error"]
    assert shown["original"]["record"] == "DispatchSigned"
    assert shown["original"]["decoded"]["event_id"] == sign_event
    code, text = await cli(live, DLQ, "show", position)
    assert code == 0 and "UNKNOWN_CASE" in text and "DispatchSigned" in text

    # Re-driving before the case exists just dead-letters it again: nothing to fix yet,
    # so the test files the case first, as the operator would.
    dispatches = Topic(s, s.topic_dispatches)
    lifecycle = Topic(s, s.topic_lifecycle)
    try:
        lift = "望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼"
        await asyncio.to_thread(send, s, s.topic_intake, cid, "ComplaintFiled",
                                filing(cid, lift))
        issued = await asyncio.to_thread(
            dispatches.wait_for,
            lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
        assert (issued["dispatch_id"], issued["unit_id"]) == (f"{cid}-d1", "110105026")

        code, out = await cli(live, DLQ, "redrive", position, "--by", "值班员李", "--json")
        assert code == 0, out
        [result] = json.loads(out)
        assert result["redriven"] is True
        assert result["target"].startswith(f"{s.topic_unit_replies}:")

        # The case moves: the sign-for is applied.
        signed = await asyncio.to_thread(
            lifecycle.wait_for,
            lambda n, r: r["complaint_id"] == cid and r["event_type"] == "SIGNED")
        assert signed["unit_id"] == "110105026"
        status = await ledger_value(
            s, "SELECT status FROM cases WHERE complaint_id = %s", (cid,),
            lambda v: v == "SIGNED")
        assert status == "SIGNED"

        # A second re-drive of the same dead letter is refused, and names the first.
        code, out = await cli(live, DLQ, "redrive", position, "--json")
        assert code == 1
        [again] = json.loads(out)
        assert again["redriven"] is False and "already re-driven" in again["detail"]
        assert again["target"] == result["target"]
        assert again["previous"]["redriven_by"] == "值班员李"
        entry = await _dead_letter_for(live, cid, "UNKNOWN_CASE")
        assert entry["redriven"]["redriven_by"] == "值班员李"

        # The re-driven message carries where it came from; it was published once.
        redriven = await asyncio.to_thread(
            _headers_of_event, s, s.topic_unit_replies, sign_event)
        assert len(redriven) == 2  # the original and the one re-drive
        assert ("redriven-from", f"dlq:{position}".encode()) in redriven[1]
        rows = await ledger_value(
            s, "SELECT count(*) FROM dlq_redrives WHERE event_id = %s", (sign_event,),
            lambda v: v is not None)
        assert rows == 1
    finally:
        dispatches.close()
        lifecycle.close()


def _headers_of_event(settings: Settings, topic: str, event_id: str) -> list[
        list[tuple[str, bytes]]]:
    """Headers of every message on ``topic`` whose record has ``event_id``."""
    consumer = KafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=3000)
    found = []
    try:
        for msg in consumer:
            try:
                if codec.decode(msg.value).record.get("event_id") == event_id:
                    found.append(list(msg.headers))
            except codec.DecodeError:
                continue
    finally:
        consumer.close()
    return found


async def test_a_fixed_message_from_a_file_is_applied_once(live: Live, tmp_path: Path) -> None:
    s = live.settings
    cid = f"FIX-{uuid.uuid4().hex[:8]}"
    lifecycle = Topic(s, s.topic_lifecycle)
    dispatches = Topic(s, s.topic_dispatches)
    try:
        await asyncio.to_thread(send, s, s.topic_intake, cid, "ComplaintFiled",
                                filing(cid, "望京街道某小区垃圾没人清运，臭味很大"))
        issued = await asyncio.to_thread(
            dispatches.wait_for,
            lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
        reply = {"complaint_id": cid, "unit_id": issued["unit_id"], "at": datetime.now(UTC)}
        await asyncio.to_thread(send, s, s.topic_unit_replies, cid, "DispatchSigned", {
            **reply, "event_id": f"sign-{cid}", "dispatch_id": issued["dispatch_id"],
            "signer": None})
        # A unit system bug: the progress report names a dispatch that does not exist.
        await asyncio.to_thread(send, s, s.topic_unit_replies, cid, "ProgressReported", {
            **reply, "event_id": f"progress-{cid}", "dispatch_id": f"{cid}-d9",
            "text": "已联系市民（电话13800001111），明日清运", "contacted_citizen": True})
        entry = await _dead_letter_for(live, cid, "UNIT_NOT_HOLDING")
        position = entry["position"]

        code, out = await cli(live, DLQ, "show", position, "--json")
        assert code == 0
        shown = json.loads(out)
        # Personal data stays out of the output, even inside free text.
        assert PHONE not in out and NAME not in out
        assert "***" in shown["original"]["decoded"]["text"]

        # The fix script: the right dispatch id, and a new event id (the case has already
        # refused the old one, and remembers it).
        original = codec.decode(base64.b64decode(shown["value_b64"])).record
        fixed = {**original, "dispatch_id": issued["dispatch_id"],
                 "event_id": f"{original['event_id']}-fixed"}
        fixed_file = tmp_path / "fixed.avro"
        fixed_file.write_bytes(codec.encode("ProgressReported", fixed))

        code, out = await cli(live, DLQ, "redrive", position, "--value-file",
                              str(fixed_file), "--by", "ops")
        assert code == 0, out
        assert "fixed message" in out and "1 re-driven" in out
        progressed = await asyncio.to_thread(
            lifecycle.wait_for,
            lambda n, r: r["complaint_id"] == cid and r["event_type"] == "PROGRESS")
        assert progressed["status"] == "IN_PROGRESS"

        code, out = await cli(live, DLQ, "redrive", position, "--value-file",
                              str(fixed_file))
        assert code == 1 and "already re-driven" in out
        # The refused re-drive published nothing: the fixed event is on the topic once.
        copies = await asyncio.to_thread(
            _headers_of_event, s, s.topic_unit_replies, fixed["event_id"])
        assert len(copies) == 1
        assert ("redriven-from", f"dlq:{position}".encode()) in copies[0]
        replaced = await ledger_value(
            s, "SELECT replaced FROM dlq_redrives WHERE dlq_partition = %s "
               "AND dlq_offset = %s", tuple(int(p) for p in position.split(":")),
            lambda v: v is not None)
        assert replaced is True
    finally:
        lifecycle.close()
        dispatches.close()


async def test_bytes_that_do_not_decode_are_not_redriven(live: Live) -> None:
    s = live.settings
    key = f"junk-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    await asyncio.to_thread(
        lambda: producer.send(s.topic_intake, key=key.encode(),
                              value=b"\xc3\x01not avro at all").get(30))
    producer.close()
    # MALFORMED or UNKNOWN_SCHEMA, as the codec reads the bytes after the marker.
    entry = await _dead_letter_for(live, key, None)
    assert entry["reason"] in ("MALFORMED", "UNKNOWN_SCHEMA")
    code, out = await cli(live, DLQ, "show", entry["position"])
    assert code == 0 and "does not decode" in out
    code, out = await cli(live, DLQ, "redrive", entry["position"])
    assert code == 1 and "do not decode" in out
    code, out = await cli(live, DLQ, "redrive", "--all", "--reason", entry["reason"],
                          "--key", key, "--dry-run")
    assert code == 0 and "would re-drive" in out
    code, out = await cli(live, DLQ, "show", "0:999999")
    assert code == 1
