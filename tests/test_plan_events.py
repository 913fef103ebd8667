"""Governance plans: units report task completion through Kafka events.

A plan is started from a YAML file as a supervisor would (``hotline plan start``); the
units' ``PlanTaskReported`` events travel hotline.unit-replies → bridges → the plan's
workflow on the real stack. A repeat changes nothing; a report by a unit that does not
own the task, or for a plan that does not exist, goes to the DLQ with its reason; the
plan closes with its report once every task is done and a review has measured the topic.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kafka import KafkaConsumer, KafkaProducer

from activities.dispatch.config import load_config
from schemas import codec
from tests.live import live_services
from workers.cli.plan import PlanFileError, load_plan, plan_status, start_plan
from workers.runtime.settings import REPO_ROOT, Settings
from workflows.governance import PlanStatus

CONFIG = load_config(REPO_ROOT / "deploy" / "config")

PLAN_YAML = """\
plan_id: {plan_id}
category: order.vendors
title: 夜间占道经营治理
tasks:
  - {{task_id: t1, owner_unit_id: "110105026", description: 设夜市疏导点, due_month: 2026-10}}
  - {{task_id: t2, owner_unit_id: bj-urban-mgmt, description: 联合执法, due_month: 2026-11}}
responsibilities: ["街道: 属地巡查", "城管: 执法"]
policies: ["临时疏导点管理办法"]
review_days: {review_days}
"""


def _plan_file(tmp_path: Path, plan_id: str, review_days: float = 15.0) -> Path:
    path = tmp_path / f"{plan_id}.yaml"
    path.write_text(PLAN_YAML.format(plan_id=plan_id, review_days=review_days),
                    encoding="utf-8")
    return path


def test_plan_file_is_checked_against_the_registry(tmp_path: Path) -> None:
    plan = load_plan(_plan_file(tmp_path, "P-ok"), CONFIG)
    assert [(t.task_id, t.owner_unit_id) for t in plan.tasks] == [
        ("t1", "110105026"), ("t2", "bj-urban-mgmt")]
    assert plan.review_seconds == 15 * 86400
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "plan_id: P-bad\ncategory: no.such\ntitle: x\ntasks:\n"
        "  - {task_id: a, owner_unit_id: nobody, description: d, due_month: 2026-10}\n"
        "  - {task_id: a, owner_unit_id: '110105026', description: d, due_month: 2026-10}\n",
        encoding="utf-8")
    with pytest.raises(PlanFileError) as err:
        load_plan(bad, CONFIG)
    message = str(err.value)
    assert "unknown category 'no.such'" in message
    assert "unknown owner unit 'nobody'" in message
    assert "'a' appears twice" in message
    month = tmp_path / "month.yaml"
    month.write_text(PLAN_YAML.format(plan_id="P-m", review_days=1).replace(
        "2026-10", "2026-13"), encoding="utf-8")
    with pytest.raises(PlanFileError, match="YYYY-MM"):
        load_plan(month, CONFIG)


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[Settings]:
    async with live_services("plan") as settings:
        yield settings


def _report(plan_id: str, task_id: str, unit_id: str, event_id: str | None = None
            ) -> dict[str, Any]:
    return {"event_id": event_id or uuid.uuid4().hex, "plan_id": plan_id,
            "task_id": task_id, "unit_id": unit_id, "at": datetime.now(UTC),
            "note": f"{task_id} 已完成"}


def _send(settings: Settings, records: list[dict[str, Any]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    for record in records:
        producer.send(settings.topic_unit_replies, key=record["plan_id"].encode(),
                      value=codec.encode("PlanTaskReported", record),
                      headers=codec.headers_for("PlanTaskReported")).get(timeout=30)
    producer.close()


def _dead_letters(settings: Settings, want: int, timeout: float = 60) -> list[dict[str, Any]]:
    consumer = KafkaConsumer(settings.topic_dlq, bootstrap_servers=settings.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < want and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                found.extend(codec.decode(m.value).record for m in batch)
    finally:
        consumer.close()
    return found


async def _status_until(settings: Settings, plan_id: str, done: int,
                        timeout: float = 60) -> PlanStatus:
    deadline = time.monotonic() + timeout
    while True:
        status = await plan_status(settings, plan_id)
        if status.done >= done or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.3)


@pytest.mark.stack
async def test_units_report_plan_tasks_through_kafka(live: Settings, tmp_path: Path) -> None:
    s = live
    plan_id = f"P-{uuid.uuid4().hex[:8]}"
    # A review every ~3 s: the plan closes one review after its last task is done.
    plan = load_plan(_plan_file(tmp_path, plan_id, review_days=3 / 86400), CONFIG)
    assert await start_plan(s, plan) == f"governance-plan-{plan_id}"

    first = _report(plan_id, "t1", "110105026", event_id="rep-1")
    # The worker and bridges share this event loop: Kafka clients run on threads.
    await asyncio.to_thread(_send, s, [
        first, dict(first),                         # the repeat changes nothing
        _report(plan_id, "t2", "110105026"),        # t2 belongs to 城管
        _report("P-no-such-plan", "t1", "110105026")])
    status = await _status_until(s, plan_id, done=1)
    assert (status.done, status.tasks, status.completion_rate) == (1, 2, 0.5)
    dead = await asyncio.to_thread(_dead_letters, s, 2)
    reasons = sorted((d["reason"], codec.decode(d["value"]).record["plan_id"]) for d in dead)
    assert reasons == [("REJECTED", plan_id), ("UNKNOWN_CASE", "P-no-such-plan")]
    assert any("owned by bj-urban-mgmt" in (d["error"] or "") for d in dead)

    await asyncio.to_thread(_send, s, [_report(plan_id, "t2", "bj-urban-mgmt")])
    deadline = time.monotonic() + 90
    while not (final := await plan_status(s, plan_id)).closed:
        assert time.monotonic() < deadline, f"plan never closed: {final}"
        await asyncio.sleep(0.5)
    assert final.done == 2 and final.completion_rate == 1.0
    assert final.trend, "the report carries the topic's volume per review"
    # Still exactly two dead letters: the repeat of rep-1 was not refused.
    assert len(await asyncio.to_thread(_dead_letters, s, 3, 3)) == 2
