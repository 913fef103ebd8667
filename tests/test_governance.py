"""Monthly evaluation: rankings equal a plain Python reference computed from raw events.

A generated set of ``LifecycleEvent`` records (real Avro bytes) is projected into a fresh
database by the projector; the activity computes, stores and publishes the rankings on a
fresh ``hotline.governance`` topic. The reference below reads only the raw events. The
workflows are checked on the time-skipping server with activities stubbed by name.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import pytest_asyncio
from kafka import KafkaConsumer
from psycopg_pool import AsyncConnectionPool
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.dispatch.config import HotlineConfig, load_config
from activities.governance import (
    GovernanceActivities,
    GovernanceError,
    load_governance_config,
    priority_streets,
    topic_candidates,
    unit_group,
)
from activities.publisher import KafkaPublisher
from schemas import codec
from workers.devstack.stack import ensure_database, ensure_topics
from workers.projector.main import Projector
from workers.runtime.migrate import apply_migrations
from workers.runtime.settings import REPO_ROOT, Settings
from workflows.governance import (
    GovernancePlanWorkflow,
    HotspotScanInput,
    HotspotScanWorkflow,
    MonthlyEvaluationInput,
    MonthlyEvaluationWorkflow,
    PlanInput,
    PlanTask,
    TaskReport,
    TopicVolumeRequest,
)
from workflows.governance_model import (
    GovernanceCaseResult,
    HotspotRef,
    MonthRequest,
    RankingSummary,
    ScanRequest,
)

CONFIG_DIR = REPO_ROOT / "deploy" / "config"
MONTH = "2026-09"
BEIJING = ZoneInfo("Asia/Shanghai")
UNITS = ["110105026", "110101001", "110101002", "110101003",  # streets
         "bj-housing", "bj-samr", "bj-waterworks", "bj-heating"]  # departments/utilities


@dataclass
class Msg:
    """The ``SourceMessage`` fields the projector reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None = None


def generate_events(seed: int = 12345, cases: int = 600) -> list[dict[str, Any]]:
    """Closed cases around September 2026 (Beijing time), with evaluations."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    # Aug 25 → Oct 6 UTC, so cases fall on both sides of both month boundaries.
    start = datetime(2026, 8, 25, tzinfo=UTC)
    for i in range(cases):
        cid = f"G-{i:05d}"
        unit = rnd.choice(UNITS)
        kind = rnd.choices(["COMPLAINT", "HELP", "PRAISE", "CONSULTATION"], [6, 3, 1, 1])[0]
        filed = start + timedelta(minutes=rnd.randrange(0, 42 * 24 * 60))
        evaluated = filed + timedelta(hours=rnd.randrange(1, 200))
        if i < 8:  # pinned to the boundaries: 00:00 Beijing is 16:00 UTC the day before
            evaluated = datetime(2026, 8, 31, 16, tzinfo=UTC) + timedelta(
                milliseconds=(-1) ** i * (i // 2))
        counted = rnd.random() > 0.1
        responded = rnd.random() < 0.97
        resolved = responded and rnd.random() < 0.8
        satisfied = (resolved and rnd.random() < 0.9) or rnd.random() < 0.1
        case_row = {
            "complaint_id": cid, "version": 2, "status": "CLOSED", "filed_at": filed,
            "channel": "PHONE", "kind": kind, "category": "housing.lift", "tier": "T7D",
            "district": "朝阳区", "street": "望京街道", "lead_unit_id": unit, "due_at": None,
            "overdue": False, "escalation_level": "UNIT", "closed_at": evaluated,
            "outcome": "DISPATCH", "caller_hash": None,
        }
        evaluation = {
            "complaint_id": cid, "counted": counted, "responded": responded,
            "resolved": resolved, "satisfied": satisfied,
            "satisfaction": "SATISFIED" if satisfied else "UNSATISFIED", "overdue": False,
            "returns": 0, "escalations": 0, "reopens": 0, "score": 0.0,
            "evaluated_at": evaluated, "lead_unit_id": unit,
        }
        base = {"complaint_id": cid, "tier": None, "kind": None, "category": None,
                "district": None, "street": None, "lead_unit_id": unit, "unit_id": None,
                "dispatch_id": None, "reason": None, "escalation_level": "UNIT",
                "overdue": False, "attributes": {}, "dispatch_rows": []}
        events.append({**base, "event_id": f"{cid}:1", "seq": 1, "at": filed,
                       "event_type": "ACCEPTED", "status": "ACCEPTED",
                       "case_row": {**case_row, "version": 1, "status": "ACCEPTED",
                                    "closed_at": None},
                       "evaluation_row": None})
        events.append({**base, "event_id": f"{cid}:2", "seq": 2, "at": evaluated,
                       "event_type": "EVALUATED", "status": "CLOSED", "case_row": case_row,
                       "evaluation_row": evaluation})
    return events


def reference_rankings(events: list[dict[str, Any]], month: str, weights: dict[str, float],
                       config: HotlineConfig) -> dict[str, list[tuple[Any, ...]]]:
    """Plain Python over the raw events: (rank, unit, cases, rates, score, praise)."""
    first = datetime.strptime(month, "%Y-%m").replace(tzinfo=BEIJING)
    nxt = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=BEIJING)
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    praise: dict[str, int] = defaultdict(int)
    seen: set[str] = set()
    for ev in events:
        ev_row, case = ev["evaluation_row"], ev["case_row"]
        if ev_row and ev_row["counted"] and first <= ev_row["evaluated_at"] < nxt:
            t = tally[ev_row["lead_unit_id"]]
            t[0] += 1
            t[1] += ev_row["responded"]
            t[2] += ev_row["resolved"]
            t[3] += ev_row["satisfied"]
        if (case and case["complaint_id"] not in seen and case["kind"] == "PRAISE"
                and first <= case["filed_at"] < nxt):
            seen.add(case["complaint_id"])
            praise[case["lead_unit_id"]] += 1
    groups: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for unit, (n, r, s, sat) in tally.items():
        u = config.registry.get(unit)
        assert u is not None
        score = 100 * (weights["response"] * r / n + weights["resolution"] * s / n
                       + weights["satisfaction"] * sat / n)
        groups[unit_group(u.kind)].append((unit, n, r / n, s / n, sat / n, score,
                                           praise[unit]))
    out = {}
    for g, rows in groups.items():
        rows.sort(key=lambda x: (-x[5], -x[1], x[0]))
        out[g] = [(i + 1, *row) for i, row in enumerate(rows)]
    return out


def test_governance_config_is_validated(tmp_path: Path) -> None:
    cfg = load_governance_config(CONFIG_DIR / "governance.yaml")
    assert cfg.priority_streets.top_n == 10 and cfg.hotspots.window == timedelta(hours=72)
    bad = tmp_path / "governance.yaml"
    text = (CONFIG_DIR / "governance.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("multiplier: 2.5", "multiplier: 0.5")
                   .replace("window: 72h", "window: 3 weeks"), encoding="utf-8")
    with pytest.raises(GovernanceError) as err:
        load_governance_config(bad)
    assert "hotspots.multiplier" in str(err.value) and "hotspots.window" in str(err.value)


@pytest_asyncio.fixture(scope="module")
async def ledger() -> AsyncIterator[tuple[Settings, list[dict[str, Any]]]]:
    run = uuid.uuid4().hex[:8]
    s = Settings(topic_prefix=f"gov{run}.", postgres_db=f"gov_{run}")
    await asyncio.to_thread(ensure_topics, s)
    await asyncio.to_thread(ensure_database, s, s.postgres_db)
    await asyncio.to_thread(apply_migrations, s.dsn)
    events = generate_events()
    msgs = [Msg(s.topic_lifecycle, 0, i, ev["complaint_id"].encode(),
                codec.encode("LifecycleEvent", ev)) for i, ev in enumerate(events)]
    async with await psycopg.AsyncConnection.connect(s.dsn) as conn:
        result = await Projector(None, "test").apply_batch(conn, msgs)
    assert result.applied == len(events)
    yield s, events


@pytest.mark.stack
async def test_rankings_equal_the_reference_and_are_published(
    ledger: tuple[Settings, list[dict[str, Any]]],
) -> None:
    s, events = ledger
    config = load_config(CONFIG_DIR)
    gov = load_governance_config(CONFIG_DIR / "governance.yaml")
    weights = config.rules.weights.model_dump()
    publisher = KafkaPublisher(s.kafka_bootstrap)
    pool = AsyncConnectionPool(s.dsn, min_size=1, max_size=2, open=False)
    await pool.open()
    try:
        acts = GovernanceActivities(config, gov, pool, publisher,
                                    topic_governance=s.topic_governance)
        summary = await acts.compute_monthly_rankings(MonthRequest(MONTH))
        again = await acts.compute_monthly_rankings(MonthRequest(MONTH))  # idempotent
    finally:
        await pool.close()
        publisher.close()
    expected = reference_rankings(events, MONTH, weights, config)
    assert summary.groups == {g: len(r) for g, r in expected.items()} == again.groups
    assert set(expected) == {"streets", "departments"}
    async with await psycopg.AsyncConnection.connect(s.dsn) as conn:
        rows = await (await conn.execute(
            """SELECT unit_group, rank, unit_id, cases, response_rate, resolution_rate,
                      satisfaction_rate, score, praise FROM monthly_rankings
                WHERE month = %s ORDER BY unit_group, rank, unit_id""", (MONTH,))).fetchall()
    stored: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for g, *rest in rows:
        stored[g].append(tuple(rest))
    for g, ref in expected.items():
        assert [r[:3] for r in stored[g]] == [r[:3] for r in ref]
        for got, want in zip(stored[g], ref, strict=True):
            assert got[3:7] == pytest.approx(want[3:7], abs=1e-9)
            assert got[7] == want[7]

    consumer = KafkaConsumer(s.topic_governance, bootstrap_servers=s.kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=3000)
    published = [codec.decode(m.value, expected=("MonthlyRanking",)).record
                 for m in consumer]
    consumer.close()
    by_group = {r["group"]: r for r in published}  # the repeat carries the same event id
    assert {r["event_id"] for r in published} == {f"ranking:{MONTH}:{g}" for g in expected}
    for g, ref in expected.items():
        assert [(e["rank"], e["unit_id"], e["cases"], e["praise"])
                for e in by_group[g]["entries"]] == [(r[0], r[1], r[2], r[7]) for r in ref]


@pytest.mark.stack
async def test_priority_streets_and_topic_candidates(
    ledger: tuple[Settings, list[dict[str, Any]]],
) -> None:
    s, events = ledger
    gov = load_governance_config(CONFIG_DIR / "governance.yaml")
    first = datetime(2026, 9, 1, tzinfo=BEIJING)
    nxt = datetime(2026, 10, 1, tzinfo=BEIJING)
    in_month = {ev["complaint_id"] for ev in events
                if ev["case_row"] and first <= ev["case_row"]["filed_at"] < nxt}
    async with await psycopg.AsyncConnection.connect(s.dsn) as conn:
        streets = await priority_streets(conn, MONTH, gov)
        topics = await topic_candidates(conn, MONTH, gov)
    assert [(p.rank, p.street, p.cases) for p in streets["volume"]] == [
        (1, "望京街道", len(in_month))]
    assert [(t.rank, t.category, t.volume, t.units) for t in topics] == [
        (1, "housing.lift", len(in_month), len(UNITS))]


# --- workflows, activities stubbed by name ------------------------------------------------


@activity.defn(name="compute_monthly_rankings")
async def _rankings(request: MonthRequest) -> RankingSummary:
    assert request.at is not None
    return RankingSummary(request.month or "2000-01", {"streets": 3}, 1)


@activity.defn(name="compute_monthly_topics")
async def _topics(request: MonthRequest) -> list[str]:
    return ["environment.rubbish"]


@activity.defn(name="scan_hotspots")
async def _scan(request: ScanRequest) -> list[HotspotRef]:
    return [HotspotRef("w1", "望京街道", "market.vendor", 12)]


@activity.defn(name="open_governance_case")
async def _open(ref: HotspotRef) -> GovernanceCaseResult:
    return GovernanceCaseResult(ref.warning_id, f"HOT-{ref.warning_id}", True)


async def test_governance_workflows(time_env: WorkflowEnvironment) -> None:
    queue = f"gov-{uuid.uuid4().hex[:8]}"
    async with Worker(time_env.client, task_queue=queue,
                      workflows=[MonthlyEvaluationWorkflow, HotspotScanWorkflow],
                      activities=[_rankings, _topics, _scan, _open],
                      max_cached_workflows=0):
        monthly = await time_env.client.execute_workflow(
            MonthlyEvaluationWorkflow.run, MonthlyEvaluationInput(MONTH),
            id=f"monthly-{uuid.uuid4().hex}", task_queue=queue)
        scan = await time_env.client.execute_workflow(
            HotspotScanWorkflow.run, HotspotScanInput(),
            id=f"scan-{uuid.uuid4().hex}", task_queue=queue)
    assert monthly.month == MONTH and monthly.topics == ["environment.rubbish"]
    assert [c.complaint_id for c in scan.cases] == ["HOT-w1"]


_volumes = iter([30, 22, 15, 9, 5, 4, 3])


@activity.defn(name="topic_volume")
async def _volume(request: TopicVolumeRequest) -> int:
    return next(_volumes)


async def test_governance_plan_tracks_tasks_and_volume_until_done(
    time_env: WorkflowEnvironment,
) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    queue = f"plan-{uuid.uuid4().hex[:8]}"
    plan = PlanInput(
        "P1", "order.vendors", "夜间占道经营治理",
        tasks=[PlanTask("t1", "110105026", "夜市疏导点", "2026-10"),
               PlanTask("t2", "bj-urban-mgmt", "联合执法", "2026-11")],
        responsibilities=["街道: 属地巡查"], policies=["临时疏导点管理办法"])
    async with Worker(time_env.client, task_queue=queue,
                      workflows=[GovernancePlanWorkflow], activities=[_volume],
                      max_cached_workflows=0):
        handle = await time_env.client.start_workflow(
            GovernancePlanWorkflow.run, plan, id=f"plan-{uuid.uuid4().hex}", task_queue=queue)
        first = await handle.execute_update(
            GovernancePlanWorkflow.report_task, TaskReport("e1", "t1", "110105026", "done"))
        again = await handle.execute_update(
            GovernancePlanWorkflow.report_task, TaskReport("e1", "t1", "110105026", "done"))
        assert first.done == again.done == 1 and first.completion_rate == 0.5
        with pytest.raises(WorkflowUpdateFailedError):  # not the owner of t2
            await handle.execute_update(
                GovernancePlanWorkflow.report_task, TaskReport("e2", "t2", "110105026"))
        await time_env.sleep(timedelta(days=31))  # two half-monthly reviews
        for _ in range(100):  # the reviews' activities run in real time
            mid = await handle.query(GovernancePlanWorkflow.status)
            if len(mid.trend) >= 2:
                break
            await asyncio.sleep(0.1)
        assert [n for _, n in mid.trend] == [30, 22]
        await handle.execute_update(
            GovernancePlanWorkflow.report_task, TaskReport("e3", "t2", "bj-urban-mgmt"))
        result = await handle.result()
    assert result.closed and result.completion_rate == 1.0
    # The half month in which t2 was done, then a whole half month after the last task.
    assert [n for _, n in result.trend] == [30, 22, 15, 9]


@pytest.mark.stack
async def test_schedules_install_is_idempotent() -> None:
    from temporalio.client import Client

    from workers.cli.governance import HOTSPOT_SCHEDULE_ID, install_schedules

    s = Settings(task_queue=f"sched-{uuid.uuid4().hex[:8]}")
    gov = load_governance_config(CONFIG_DIR / "governance.yaml")
    prefix = f"test-{uuid.uuid4().hex[:8]}-"
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    first: list[str] = []
    try:
        first = await install_schedules(s, gov, id_prefix=prefix)
        second = await install_schedules(s, gov, id_prefix=prefix)
        assert all("created" in line for line in first)
        assert all("updated" in line for line in second) and len(second) == 2
        desc = await client.get_schedule_handle(prefix + HOTSPOT_SCHEDULE_ID).describe()
        # The server stores a cron as a structured calendar: minute 5 of every hour.
        (calendar,) = desc.schedule.spec.calendars
        assert [r.start for r in calendar.minute] == [5]
    finally:
        for line in first:
            await client.get_schedule_handle(line.split(":")[0]).delete()
