"""The ledger is a projection of ``hotline.lifecycle``: rebuilt from offset 0 it is identical.

Real cases run through the worker and bridges (real Temporal, Kafka, PostgreSQL) into a
fresh database; its tables are the reference. Then the projector replays the topic from
offset 0 into a second fresh database, and every event three times, shuffled, into a
third: all three must hold the same rows. A junk message on the topic goes to the DLQ.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from kafka import KafkaConsumer, KafkaProducer

from tests.test_end_to_end import Topic, _filing, _reply, _send
from workers.bridges.main import run_bridges
from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics
from workers.projector.main import Projector, run_projector
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import Settings
from workers.worker.main import run_worker

pytestmark = pytest.mark.stack

# Columns that record when a row was written, not what it says.
_WRITE_TIME = {"updated_at"}
_TABLES = {
    "cases": "complaint_id",
    "case_events": "event_id",
    "dispatches": "dispatch_id",
    "evaluations": "complaint_id",
}


async def snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every ledger table's rows (write-time columns left out), sorted by key."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for table, key in _TABLES.items():
            cur = await conn.execute(f"SELECT * FROM {table} ORDER BY {key}")
            names = [d.name for d in cur.description or []]
            keep = [i for i, n in enumerate(names) if n not in _WRITE_TIME]
            out[table] = [tuple(row[i] for i in keep) for row in await cur.fetchall()]
        rows = await (await conn.execute(
            "SELECT event_id, notice_type, level FROM notices ORDER BY event_id")).fetchall()
        out["notices"] = [tuple(r) for r in rows]
    return out


def _fresh_db(settings: Settings, name: str) -> Settings:
    s = settings.model_copy(update={"postgres_db": name})
    ensure_database(s, name)
    apply_migrations(s.dsn)
    return s


@pytest_asyncio.fixture(scope="module")
async def played() -> AsyncIterator[Settings]:
    """Run a handful of real cases to the end; yields the settings of their ledger."""
    run = uuid.uuid4().hex[:8]
    s = Settings(
        topic_prefix=f"proj{run}.", task_queue=f"proj-{run}", postgres_db=f"proj_{run}",
        consumer_group_prefix=f"proj-{run}", worker_metrics_port=0, bridge_metrics_port=0,
        time_scale=0.0005,
    )
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, s)
    await asyncio.to_thread(ensure_database, s, s.postgres_db)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_worker(s, stop)),
             asyncio.create_task(run_bridges(s, stop))]
    try:
        await _play_cases(s, run)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    yield s


async def _play_cases(s: Settings, run: str) -> None:
    dispatches = Topic(s, s.topic_dispatches)
    lifecycle = Topic(s, s.topic_lifecycle)
    texts = ["望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼",
             "望京街道某小区垃圾没人清运",
             "望京街道夜里有人施工噪音扰民"]
    cids = [f"P{run}-{i}" for i in range(len(texts))]
    for cid, text in zip(cids, texts, strict=True):
        _send(s, s.topic_intake, cid, "ComplaintFiled", {**_filing(cid, text),
                                                         "caller_phone": None})
    direct = f"P{run}-direct"
    _send(s, s.topic_intake, direct, "ComplaintFiled",
          {**_filing(direct, "请问望京街道办事处几点上班"), "answered_directly": True,
           "caller_phone": None})
    for i, cid in enumerate(cids):
        issued = await asyncio.to_thread(
            dispatches.wait_for,
            lambda n, r, cid=cid: n == "DispatchIssued" and r["complaint_id"] == cid)
        replies = s.topic_unit_replies
        _send(s, replies, cid, "DispatchSigned", _reply(issued, signer="王师傅"))
        _send(s, replies, cid, "HandlingCompleted",
              _reply(issued, result="RESOLVED" if i else "PARTLY_RESOLVED",
                     reply_text="已处理"))
        await asyncio.to_thread(
            lifecycle.wait_for,
            lambda n, r, cid=cid: r["complaint_id"] == cid and r["event_type"] == "CALLBACK_DUE")
        _send(s, s.topic_callbacks, cid, "CallbackResult", {
            "event_id": f"cb-{cid}", "complaint_id": cid, "at": datetime.now(UTC),
            "reached": True, "responded": True, "resolved": True,
            "satisfaction": "SATISFIED" if i != 1 else "BASICALLY_SATISFIED", "comment": None})
    for cid in [*cids, direct]:
        await asyncio.to_thread(
            lifecycle.wait_for,
            lambda n, r, cid=cid: r["complaint_id"] == cid and r["event_type"] == "CLOSED",
            120)
    # Let record_step's trailing ledger writes land.
    await asyncio.sleep(2)


def _raw_messages(s: Settings) -> list[Any]:
    consumer = KafkaConsumer(s.topic_lifecycle, bootstrap_servers=s.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=3000)
    try:
        return list(consumer)
    finally:
        consumer.close()


async def test_replay_from_offset_zero_rebuilds_identical_tables(played: Settings) -> None:
    s = played
    reference = await snapshot(s.dsn)
    assert reference["evaluations"] and reference["dispatches"] and reference["notices"] is not None
    # A stray message on the topic must be dead-lettered, not stop the rebuild.
    producer = KafkaProducer(bootstrap_servers=s.kafka_bootstrap, acks="all")
    producer.send(s.topic_lifecycle, key=b"junk", value=b"\xc3\x01garbage").get(30)
    producer.close()

    rebuilt = await asyncio.to_thread(_fresh_db, s, f"{s.postgres_db}_rebuilt")
    rebuilt = rebuilt.model_copy(update={"consumer_group_prefix": f"{s.consumer_group_prefix}-r"})
    applied = await run_projector(rebuilt, asyncio.Event(), idle_timeout_s=5)
    assert applied == len(reference["case_events"])
    assert await snapshot(rebuilt.dsn) == reference

    dlq = Topic(s, s.topic_dlq)
    dead = await asyncio.to_thread(dlq.wait_for, lambda n, r: r["key"] == b"junk")
    assert dead["reason"] in ("MALFORMED", "UNKNOWN_SCHEMA")

    # Run again on the same group: everything committed, nothing new applied.
    again = await run_projector(rebuilt, asyncio.Event(), idle_timeout_s=3)
    assert again == 0


async def test_each_event_three_times_shuffled_gives_identical_tables(played: Settings) -> None:
    s = played
    reference = await snapshot(s.dsn)
    messages = [m for m in await asyncio.to_thread(_raw_messages, s) if m.key != b"junk"]
    assert messages
    tripled = messages * 3
    random.Random(5).shuffle(tripled)
    target = await asyncio.to_thread(_fresh_db, s, f"{s.postgres_db}_shuffled")
    projector = Projector(None, "test")
    async with await psycopg.AsyncConnection.connect(target.dsn) as conn:
        applied = duplicates = 0
        for i in range(0, len(tripled), 7):  # small batches, as polls would bring them
            result = await projector.apply_batch(conn, tripled[i:i + 7])
            applied += result.applied
            duplicates += result.duplicates
    assert applied == len(messages) and duplicates == 2 * len(messages)
    assert await snapshot(target.dsn) == reference
