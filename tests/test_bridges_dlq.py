"""The bridges on the real stack: what cannot be applied lands on the DLQ, duplicates don't.

Real Kafka and the real Temporal dev server; no worker runs. The task queue is fresh and
unpolled, so a case the bridge starts just sits there: enough to see starts, duplicates,
unknown and closed cases as Temporal reports them. Topics and groups are fresh per run.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY
from temporalio.client import Client

from schemas import codec
from workers.bridges.main import run_bridges
from workers.devstack.stack import ensure_stack, ensure_topics
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

VENV_BIN = Path(sys.executable).parent


def _fresh_settings(tag: str) -> Settings:
    run = uuid.uuid4().hex[:8]
    return Settings(
        topic_prefix=f"{tag}{run}.", consumer_group_prefix=f"{tag}-{run}",
        task_queue=f"{tag}-{run}-unpolled", bridge_metrics_port=0,
    )


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[Settings]:
    """Stack up, fresh topics, and the bridges running in this process."""
    settings = _fresh_settings("dlq")
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, settings)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_bridges(settings, stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 60)
    try:
        yield settings
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)  # a clean stop: no exception, no hang


@pytest_asyncio.fixture(scope="module")
async def temporal(live: Settings) -> Client:
    return await Client.connect(live.temporal_address, namespace=live.temporal_namespace)


class Topic:
    """Reads a topic from the start without a consumer group, decoding as it goes."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = KafkaConsumer(
            topic, bootstrap_servers=settings.kafka_bootstrap, auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None,
        )
        self.seen: list[tuple[dict[str, Any], list[tuple[str, bytes]]]] = []

    def wait_for(self, match: Callable[[dict[str, Any]], bool],
                 timeout: float = 60) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record, headers in self.seen:
                if match(record):
                    return record, headers
            for batch in self.consumer.poll(timeout_ms=300).values():
                for msg in batch:
                    self.seen.append((codec.decode(msg.value).record, list(msg.headers)))
        raise AssertionError(f"no match within {timeout}s; saw {len(self.seen)} records")


def _produce(settings: Settings, topic: str, key: bytes, value: bytes,
             headers: list[tuple[str, bytes]] | None = None) -> tuple[int, int]:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    try:
        meta = producer.send(topic, key=key, value=value, headers=headers or []).get(30)
    finally:
        producer.close()
    return meta.partition, meta.offset


def _send(settings: Settings, topic: str, key: str, name: str,
          record: dict[str, Any]) -> tuple[int, int]:
    return _produce(settings, topic, key.encode(), codec.encode(name, record),
                    codec.headers_for(name))


def _filing(cid: str, event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "complaint_id": cid, "filed_at": datetime.now(UTC),
            "channel": "APP", "content": "小区路灯不亮", "caller_phone": "13800001111"}


def _committed(settings: Settings, group: str, topic: str, partition: int) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=group,
                             enable_auto_commit=False)
    try:
        result: int | None = consumer.committed(TopicPartition(topic, partition))
        return result
    finally:
        consumer.close(autocommit=False)


async def _eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.3)


async def test_a_malformed_message_is_dead_lettered_and_committed(live: Settings) -> None:
    s = live
    dlq = Topic(s, s.topic_dlq)
    value = b"\xc3\x01" + codec.fingerprint("ComplaintFiled") + b"\x02garbage"
    partition, offset = await asyncio.to_thread(
        _produce, s, s.topic_intake, b"junk-1", value,
        [("event-type", b"hotline.events.ComplaintFiled")])

    record, headers = await asyncio.to_thread(dlq.wait_for, lambda r: r["key"] == b"junk-1")
    assert record["reason"] == "MALFORMED"
    assert record["value"] == value
    assert (record["topic"], record["partition"], record["offset"]) == (
        s.topic_intake, partition, offset)
    assert record["event_id"] == f"dlq:{s.topic_intake}:{partition}:{offset}"
    assert record["consumer_group"] == f"{s.consumer_group_prefix}-intake"
    assert record["event_type"] == "hotline.events.ComplaintFiled"
    assert ("event-type", b"hotline.events.DeadLetter") in headers
    # The offset is committed once the dead letter is acknowledged.
    group = f"{s.consumer_group_prefix}-intake"
    await _eventually(lambda: _committed(s, group, s.topic_intake, partition) == offset + 1)


async def test_a_reply_for_an_unknown_case_is_dead_lettered(live: Settings) -> None:
    s = live
    dlq = Topic(s, s.topic_dlq)
    ghost = f"GHOST-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(_send, s, s.topic_unit_replies, ghost, "DispatchSigned", {
        "event_id": uuid.uuid4().hex, "complaint_id": ghost, "dispatch_id": f"{ghost}-d1",
        "unit_id": "110105026", "at": datetime.now(UTC)})
    record, _ = await asyncio.to_thread(dlq.wait_for, lambda r: r["key"] == ghost.encode())
    assert record["reason"] == "UNKNOWN_CASE"
    assert record["consumer_group"] == f"{s.consumer_group_prefix}-unit-replies"
    assert record["event_type"] == "hotline.events.DispatchSigned"


async def test_a_duplicate_filing_never_makes_a_second_run(
    live: Settings, temporal: Client,
) -> None:
    s = live
    dlq = Topic(s, s.topic_dlq)
    cid = f"DUP-{uuid.uuid4().hex[:8]}"
    wid = f"complaint-{cid}"
    duplicates = REGISTRY.get_sample_value("hotline_bridge_messages_total", {
        "topic": "hotline.intake", "record": "ComplaintFiled", "outcome": "duplicate"}) or 0.0

    await asyncio.to_thread(_send, s, s.topic_intake, cid, "ComplaintFiled",
                            _filing(cid, f"f-{cid}"))
    await asyncio.to_thread(_send, s, s.topic_intake, cid, "ComplaintFiled",
                            _filing(cid, f"f-{cid}"))
    # Same key, same partition: once this marker is dead-lettered, both filings are done.
    await asyncio.to_thread(_produce, s, s.topic_intake, cid.encode(), b"marker-1")
    marker, _ = await asyncio.to_thread(dlq.wait_for, lambda r: r["value"] == b"marker-1")
    assert marker["reason"] == "MALFORMED"
    first = await temporal.get_workflow_handle(wid).describe()
    assert first.workflow_type == "ComplaintWorkflow" and first.task_queue == s.task_queue
    assert not [r for r, _ in dlq.seen if r["key"] == cid.encode() and r is not marker]
    after = REGISTRY.get_sample_value("hotline_bridge_messages_total", {
        "topic": "hotline.intake", "record": "ComplaintFiled", "outcome": "duplicate"})
    assert after == duplicates + 1

    # Closed case: an update is dead-lettered CASE_CLOSED; a filing is still a duplicate.
    await temporal.get_workflow_handle(wid).terminate("test: close the case")
    await asyncio.to_thread(_send, s, s.topic_intake, cid, "ComplaintUrged", {
        "event_id": f"u-{cid}", "complaint_id": cid, "at": datetime.now(UTC)})
    closed, _ = await asyncio.to_thread(
        dlq.wait_for, lambda r: r["key"] == cid.encode() and r["reason"] == "CASE_CLOSED")
    assert closed["event_type"] == "hotline.events.ComplaintUrged"
    await asyncio.to_thread(_send, s, s.topic_intake, cid, "ComplaintFiled",
                            _filing(cid, f"f2-{cid}"))
    await asyncio.to_thread(_produce, s, s.topic_intake, cid.encode(), b"marker-2")
    await asyncio.to_thread(dlq.wait_for, lambda r: r["value"] == b"marker-2")
    latest = await temporal.get_workflow_handle(wid).describe()
    assert latest.run_id == first.run_id  # no second run after the case closed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_cli_logs_ready_serves_metrics_and_stops_on_sigterm() -> None:
    settings = _fresh_settings("cli")
    ensure_stack(Settings())
    ensure_topics(settings)
    port = _free_port()
    env = {
        **os.environ,
        "HOTLINE_TOPIC_PREFIX": settings.topic_prefix,
        "HOTLINE_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "HOTLINE_TASK_QUEUE": settings.task_queue,
        "HOTLINE_BRIDGE_METRICS_PORT": str(port),
    }
    proc = subprocess.Popen([str(VENV_BIN / "hotline"), "bridges"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if '"bridges ready"' in line:
                break
        ready = [json.loads(line) for line in lines if '"bridges ready"' in line]
        assert ready, "".join(lines[-20:])
        assert ready[0]["topics"] == [settings.topic_intake, settings.topic_unit_replies,
                                      settings.topic_callbacks]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert "hotline_bridge_apply_seconds" in text
        assert "hotline_dlq_messages_total" in text
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        lines.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert '"bridges stopped"' in "".join(lines)
    assert proc.returncode == 0, "".join(lines[-20:])
