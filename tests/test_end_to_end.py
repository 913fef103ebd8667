"""Kafka → Temporal → Kafka → PostgreSQL on the real local stack.

The worker and the bridges run in this process against the real Temporal dev server,
Kafka broker and PostgreSQL; the test plays the call centre, the unit and the callback
centre with real Avro messages. Topics, task queue, consumer groups and database are
fresh per run, so a running demo is not disturbed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from kafka import KafkaProducer

from tests.live import Topic, live_services
from tests.live import send as _send
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[Settings]:
    """The stack up, fresh topics/database, and a worker and bridges running."""
    # T24H: due in 43 s, sign-for in 1.8 s
    async with live_services("e2e", time_scale=0.0005) as settings:
        yield settings


def _filing(cid: str, content: str) -> dict[str, Any]:
    return {
        "event_id": f"f-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
        "channel": "PHONE", "kind": None, "content": content, "caller_phone": "13800001111",
        "caller_name": "张先生", "anonymous": False, "district": "朝阳区", "street": "望京街道",
        "address": "阜通东大街6号院", "latitude": None, "longitude": None,
        "category_hint": None, "urgency_hint": None, "answered_directly": False,
        "attachments": [],
    }


def _reply(issued: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "complaint_id": issued["complaint_id"],
            "dispatch_id": issued["dispatch_id"], "unit_id": issued["unit_id"],
            "at": datetime.now(UTC), **fields}


async def _ledger_row(settings: Settings, sql: str, args: tuple[Any, ...],
                      timeout: float = 60) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(settings.dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (await conn.execute(sql, args)).fetchone()
            if row is not None:
                return tuple(row)
            await asyncio.sleep(0.3)
    raise AssertionError(f"no ledger row for {args}")


async def test_complaint_travels_kafka_temporal_kafka_postgres(live: Settings) -> None:
    s = live
    cid = f"E2E-{uuid.uuid4().hex[:8]}"
    dispatches = Topic(s, s.topic_dispatches)
    lifecycle = Topic(s, s.topic_lifecycle)

    _send(s, s.topic_intake, cid, "ComplaintFiled",
          {**_filing(cid, "望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼"),
           "channel": "APP", "latitude": 39.99612, "longitude": 116.47385})
    issued = await asyncio.to_thread(
        dispatches.wait_for,
        lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
    assert issued["unit_id"] == "110105026" and issued["tier"] == "T24H"
    assert issued["caller_phone"] == "13800001111"

    replies = s.topic_unit_replies
    _send(s, replies, cid, "DispatchSigned", _reply(issued, signer="王师傅"))
    _send(s, replies, cid, "ProgressReported",
          _reply(issued, text="已联系市民，维修中", contacted_citizen=True))
    _send(s, replies, cid, "HandlingCompleted",
          _reply(issued, result="RESOLVED", reply_text="电梯已修复并通过检测"))
    await asyncio.to_thread(
        lifecycle.wait_for,
        lambda n, r: r["complaint_id"] == cid and r["event_type"] == "CALLBACK_DUE")
    _send(s, s.topic_callbacks, cid, "CallbackResult", {
        "event_id": f"cb-{cid}", "complaint_id": cid, "at": datetime.now(UTC),
        "reached": True, "responded": True, "resolved": True,
        "satisfaction": "BASICALLY_SATISFIED", "comment": "修好了"})

    closed = await asyncio.to_thread(
        lifecycle.wait_for,
        lambda n, r: r["complaint_id"] == cid and r["event_type"] == "CLOSED")
    assert closed["status"] == "CLOSED"
    row = await _ledger_row(
        s, "SELECT counted, responded, resolved, satisfied, score FROM evaluations "
           "WHERE complaint_id = %s", (cid,))
    assert row == (True, True, True, True, 100.0)
    case = await _ledger_row(
        s, "SELECT status, tier, lead_unit_id, latitude, longitude FROM cases "
           "WHERE complaint_id = %s AND status = 'CLOSED'", (cid,))
    # The app's location reaches the ledger (hotspots near one point use it).
    assert case == ("CLOSED", "T24H", "110105026", 39.99612, 116.47385)
    dispatch = await _ledger_row(
        s, "SELECT signed_at IS NOT NULL, completed_at IS NOT NULL, result FROM dispatches "
           "WHERE complaint_id = %s", (cid,))
    assert dispatch == (True, True, "RESOLVED")
    seqs = sorted(r["seq"] for n, r in lifecycle.seen if r["complaint_id"] == cid)
    assert seqs == list(range(1, len(seqs) + 1))


async def test_bad_messages_go_to_the_dead_letter_topic_and_good_ones_pass(
    live: Settings,
) -> None:
    s = live
    dlq = Topic(s, s.topic_dlq)
    dispatches = Topic(s, s.topic_dispatches)
    good = f"E2E-{uuid.uuid4().hex[:8]}"
    ghost = f"GHOST-{uuid.uuid4().hex[:8]}"

    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    producer.send(s.topic_intake, key=b"junk", value=b"\xc3\x01not avro at all").get(30)
    producer.close()
    _send(s, s.topic_unit_replies, ghost, "DispatchSigned", {
        "event_id": uuid.uuid4().hex, "complaint_id": ghost, "dispatch_id": f"{ghost}-d1",
        "unit_id": "110105026", "at": datetime.now(UTC), "signer": None})
    _send(s, s.topic_intake, good, "ComplaintFiled", _filing(good, "望京街道某小区垃圾没人清运"))

    malformed = await asyncio.to_thread(
        dlq.wait_for, lambda n, r: r["key"] == b"junk")
    assert malformed["reason"] in ("MALFORMED", "UNKNOWN_SCHEMA")
    assert malformed["value"] == b"\xc3\x01not avro at all"
    assert malformed["topic"] == s.topic_intake
    unknown = await asyncio.to_thread(
        dlq.wait_for, lambda n, r: r["key"] == ghost.encode())
    assert unknown["reason"] == "UNKNOWN_CASE"
    # The good filing behind them was not held up.
    issued = await asyncio.to_thread(
        dispatches.wait_for,
        lambda n, r: n == "DispatchIssued" and r["complaint_id"] == good)
    assert issued["category"] == "environment.rubbish"

    # A reply from a unit that does not hold the case: refused, case unharmed.
    _send(s, s.topic_unit_replies, good, "DispatchSigned", {
        "event_id": uuid.uuid4().hex, "complaint_id": good,
        "dispatch_id": issued["dispatch_id"], "unit_id": "bj-power",
        "at": datetime.now(UTC), "signer": None})
    refused = await asyncio.to_thread(
        dlq.wait_for, lambda n, r: r["key"] == good.encode())
    assert refused["reason"] == "UNIT_NOT_HOLDING"


async def test_a_unit_that_misses_its_deadline_gets_district_then_city_notices(
    live: Settings,
) -> None:
    s = live
    cid = f"E2E-{uuid.uuid4().hex[:8]}"
    dispatches = Topic(s, s.topic_dispatches)
    # T2H at this scale: sign for within 0.45 s, due in 3.6 s, city at 5.4 s.
    _send(s, s.topic_intake, cid, "ComplaintFiled",
          _filing(cid, "望京街道阜通东大街6号院从早上开始停水了，老人孩子没水用"))
    issued = await asyncio.to_thread(
        dispatches.wait_for, lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
    assert issued["tier"] == "T2H"

    def notice(kind: str) -> Callable[[str, dict[str, Any]], bool]:
        return lambda n, r: (n == "SupervisionNotice" and r["complaint_id"] == cid
                             and r["notice_type"] == kind)

    overdue = await asyncio.to_thread(dispatches.wait_for, notice("OVERDUE"))
    city = await asyncio.to_thread(dispatches.wait_for, notice("CITY_SUPERVISION"))
    assert overdue["level"] == "DISTRICT" and city["level"] == "CITY"
    assert overdue["unit_id"] == city["unit_id"] == issued["unit_id"]
    assert overdue["at"] >= issued["due_at"] and city["at"] > overdue["at"]
    kinds = [r["notice_type"] for n, r in dispatches.seen
             if n == "SupervisionNotice" and r["complaint_id"] == cid]
    assert kinds.index("WARNING") < kinds.index("OVERDUE") < kinds.index("CITY_SUPERVISION")
    # The ledger marks the case overdue at city level.
    row = await _ledger_row(
        s, "SELECT overdue, escalation_level FROM cases WHERE complaint_id = %s "
           "AND escalation_level = 'CITY'", (cid,))
    assert row == (True, "CITY")
    _send(s, s.topic_intake, cid, "ComplaintWithdrawn", {
        "event_id": uuid.uuid4().hex, "complaint_id": cid, "at": datetime.now(UTC),
        "reason": "test over"})
