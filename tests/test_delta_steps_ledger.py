"""``record_step`` with delta steps on the real ledger (PostgreSQL) and Kafka.

A delta step (patch ``delta-steps``) leaves out the columns the ledger's rows already say;
the activity reads them back. The ledger must come out as the whole steps would leave it,
a retry after the write must change nothing, and a ledger that does not hold the step's
base (restored, rebuilt) must be refused with ``NoLedgerBase`` so the workflow sends the
step whole.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from kafka.admin import KafkaAdminClient
from psycopg_pool import AsyncConnectionPool
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.case import CaseActivities
from activities.dispatch.config import load_config
from activities.publisher import KafkaPublisher
from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics
from workers.runtime.migrate import admin_dsn, apply_migrations
from workers.runtime.settings import Settings
from workflows.ids import complaint_workflow_id
from workflows.model import (
    Acceptance,
    DispatchState,
    EvaluationRow,
    Filing,
    LadderPlan,
    Status,
    StepRecord,
    TierPlan,
    Unit,
)
from workflows.state import CaseState
from workflows.steps import (
    LEAN_DISPATCHES,
    LEAN_EVENTS,
    LEAN_IDS,
    LEAN_REFS,
    NO_LEDGER_BASE,
    StepFacts,
    build_step,
    ledger_after,
    merge_steps,
    slim_step,
)

pytestmark = pytest.mark.stack

T0 = datetime(2026, 12, 6, 9, 0, 0, 123456, tzinfo=UTC)


@pytest_asyncio.fixture(scope="module")
async def ledger() -> AsyncIterator[tuple[Settings, CaseActivities, AsyncConnectionPool]]:
    run = uuid.uuid4().hex[:8]
    s = Settings(topic_prefix=f"delta{run}.", postgres_db=f"delta_{run}")
    await asyncio.to_thread(ensure_stack, Settings())
    await asyncio.to_thread(ensure_topics, s)
    await asyncio.to_thread(ensure_database, s, s.postgres_db)
    await asyncio.to_thread(apply_migrations, s.dsn)
    publisher = KafkaPublisher(s.kafka_bootstrap)
    pool = AsyncConnectionPool(s.dsn, min_size=1, max_size=2, open=False)
    await pool.open()
    acts = CaseActivities(load_config(s.config_dir), publisher, pool,
                          topic_lifecycle=s.topic_lifecycle,
                          topic_dispatches=s.topic_dispatches)
    try:
        yield s, acts, pool
    finally:
        await pool.close()
        publisher.close()
        with psycopg.connect(admin_dsn(s), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{s.postgres_db}" WITH (FORCE)')
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
        try:
            admin.delete_topics([t for t in admin.list_topics()
                                 if t.startswith(s.topic_prefix)])
        finally:
            admin.close()


def _case(cid: str) -> tuple[CaseState, Filing, list[StepRecord]]:
    """A dispatched case's first two steps, whole: DISPATCHED (two units) and SIGNED."""
    plan = TierPlan(tier="T7D", deadline_seconds=7 * 86400.0, sign_for_seconds=7200.0,
                    callback_seconds=86400.0, due_at=T0 + timedelta(days=7),
                    sign_by=T0 + timedelta(hours=2))
    ladder = LadderPlan(warning_fractions=[0.5], sign_for_misses_to_district=2,
                        city_after_overdue_fraction=0.5, urges_to_escalate=2, max_returns=2,
                        unreached_attempts=3, unreached_window_seconds=60.0, max_reopens=1,
                        weights={})
    acc = Acceptance(outcome="DISPATCH", kind="COMPLAINT", category="housing.lift",
                     category_name="电梯", tier="T7D", reason="dispatch", district="朝阳区",
                     street="望京街道", plan=plan, ladder=ladder,
                     lead=Unit("110105026", "望京街道", "street"), caller_hash="h" * 32)
    filing = Filing(event_id="f", complaint_id=cid, filed_at=T0, channel="PHONE",
                    content="电梯坏了", latitude=39.99, longitude=116.47)
    state = CaseState(acceptance=acc, plan=plan, lead_dispatch_id=f"{cid}-d1")
    for n, (unit, role) in enumerate((("110105026", "LEAD"), ("bj-samr", "ASSISTING")), 1):
        state.dispatches[f"{cid}-d{n}"] = DispatchState(
            dispatch_id=f"{cid}-d{n}", unit_id=unit, unit_name=unit, role=role,
            issued_at=T0, sign_by=T0 + timedelta(hours=2), due_at=plan.due_at)
    state.seq, state.status = 1, Status.DISPATCHED
    dispatched = build_step(state, filing, StepFacts(
        "DISPATCHED", Status.DISPATCHED, unit_id="110105026", dispatch_id=f"{cid}-d1",
        dispatch_rows=list(state.dispatches.values())), T0)
    state.seq, state.status = 2, Status.SIGNED
    lead = state.dispatches[f"{cid}-d1"]
    lead.signed_at = T0 + timedelta(minutes=5, microseconds=777)
    signed = build_step(state, filing, StepFacts(
        "SIGNED", Status.SIGNED, unit_id="110105026", dispatch_id=lead.dispatch_id,
        dispatch_rows=[lead]), T0 + timedelta(minutes=5))
    return state, filing, [dispatched, signed]


async def _rows(pool: AsyncConnectionPool, cid: str) -> dict[str, list[tuple[Any, ...]]]:
    """The case's ledger rows (not ``updated_at``: when a row was written, not what it
    says), with the complaint id spelled X so two cases compare."""
    queries = {
        "cases": "SELECT * FROM cases WHERE complaint_id = %s",
        "dispatches": "SELECT * FROM dispatches WHERE complaint_id = %s ORDER BY dispatch_id",
        "events": "SELECT * FROM case_events WHERE complaint_id = %s ORDER BY seq",
        "evaluations": "SELECT * FROM evaluations WHERE complaint_id = %s",
    }
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with pool.connection() as conn:
        for table, sql in queries.items():
            cur = await conn.execute(sql, (cid,))
            names = [d.name for d in cur.description or []]
            out[table] = [tuple(str(v).replace(cid, "X") for n, v in zip(names, row, strict=True)
                                if n != "updated_at") for row in await cur.fetchall()]
    return out


async def _record(acts: CaseActivities, step: StepRecord, cid: str | None = None) -> None:
    """Run record_step; ``cid``: for the case's workflow, whose id says it (the ids form
    leaves it out of the step)."""
    env = ActivityEnvironment()
    if cid is not None:
        env.info = replace(env.info, workflow_id=complaint_workflow_id(cid))
    await env.run(acts.record_step, step)


async def test_delta_steps_leave_the_ledger_as_whole_steps_do_and_repeat_safely(
    ledger: tuple[Settings, CaseActivities, AsyncConnectionPool],
) -> None:
    _, acts, pool = ledger
    whole_id, delta_id = f"W-{uuid.uuid4().hex[:8]}", f"D-{uuid.uuid4().hex[:8]}"
    _, _, whole = _case(whole_id)
    for step in whole:
        await _record(acts, slim_step(step))
    _, _, steps = _case(delta_id)
    first, signed = steps
    await _record(acts, slim_step(first))
    delta = slim_step(signed, ledger_after(None, first))
    assert delta.base == 1 and delta.case is not None and delta.case.channel == ""
    await _record(acts, delta)
    # A retry after the ledger was written reads the step's own version: the same rows.
    await _record(acts, delta)
    got, want = await _rows(pool, delta_id), await _rows(pool, whole_id)
    assert got == want
    assert len(got["cases"]) == 1 and len(got["dispatches"]) == 2 and len(got["events"]) == 2
    assert got["cases"][0][1] == "2"  # the version: the signed step's seq


async def test_a_ledger_without_the_step_s_base_is_refused_so_the_step_goes_whole(
    ledger: tuple[Settings, CaseActivities, AsyncConnectionPool],
) -> None:
    _, acts, pool = ledger
    cid = f"N-{uuid.uuid4().hex[:8]}"
    _, _, (first, signed) = _case(cid)
    delta = slim_step(signed, ledger_after(None, first))
    # No row at all (the ledger restored from before the case).
    with pytest.raises(ApplicationError) as err:
        await _record(acts, delta)
    assert err.value.type == NO_LEDGER_BASE and err.value.non_retryable
    # A row at another version (reset ahead of the step) is refused too.
    await _record(acts, slim_step(first))
    with pytest.raises(ApplicationError) as err:
        await _record(acts, replace(delta, base=7))
    assert err.value.type == NO_LEDGER_BASE
    # The same step whole is what the workflow sends then.
    await _record(acts, slim_step(signed))
    async with pool.connection() as conn:
        version = await (await conn.execute(
            "SELECT version FROM cases WHERE complaint_id = %s", (cid,))).fetchone()
    assert version == (2,)


async def test_a_ledger_that_lost_a_dispatch_row_is_refused_not_filled_with_placeholders(
    ledger: tuple[Settings, CaseActivities, AsyncConnectionPool],
) -> None:
    """The case row is at the step's base, but the dispatch row the step leaves columns
    out of is gone (a restore without it): writing the delta would put an empty unit and
    1970 deadlines into the ledger and onto the topic."""
    _, acts, pool = ledger
    cid = f"L-{uuid.uuid4().hex[:8]}"
    _, _, (first, signed) = _case(cid)
    await _record(acts, slim_step(first))
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM dispatches WHERE dispatch_id = %s", (f"{cid}-d1",))
    delta = slim_step(signed, ledger_after(None, first))
    assert delta.base == 1 and not delta.dispatches[0].unit_id  # left out
    with pytest.raises(ApplicationError) as err:
        await _record(acts, delta)
    assert err.value.type == NO_LEDGER_BASE and f"{cid}-d1" in str(err.value)
    await _record(acts, slim_step(signed))  # what the workflow sends then: whole
    async with pool.connection() as conn:
        unit = await (await conn.execute(
            "SELECT unit_id FROM dispatches WHERE dispatch_id = %s", (f"{cid}-d1",))).fetchone()
    assert unit == ("110105026",)


def _closed(state: CaseState, filing: Filing) -> StepRecord:
    """The case's close after SIGNED, as a happy-path case sends it: CALLBACK, EVALUATED
    and CLOSED in one step."""
    at = T0 + timedelta(hours=3, microseconds=321)
    evaluation = EvaluationRow(complaint_id=filing.complaint_id, counted=True, responded=True,
                               resolved=True, satisfied=True, satisfaction="SATISFIED",
                               score=100.0, evaluated_at=at, lead_unit_id="110105026")
    steps = []
    for seq, facts in enumerate((
            StepFacts("CALLBACK", Status.CALLBACK, attributes={"reached": "true"}),
            StepFacts("EVALUATED", Status.EVALUATED, evaluation=evaluation, attributes={
                "counted": "true", "responded": "true", "resolved": "true",
                "satisfied": "true", "score": "100"}),
            StepFacts("CLOSED", Status.CLOSED, attributes={"counted": "true"})), 3):
        state.seq, state.status = seq, facts.status
        state.closed_at = at if facts.event_type == "CLOSED" else None
        steps.append(build_step(state, filing, facts, at))
    return merge_steps(merge_steps(steps[0], steps[1]), steps[2])


@pytest.mark.parametrize("form", [LEAN_EVENTS, LEAN_DISPATCHES, LEAN_IDS, LEAN_REFS])
async def test_steps_in_the_leaner_forms_leave_the_ledger_as_whole_steps_do(
    ledger: tuple[Settings, CaseActivities, AsyncConnectionPool], form: int,
) -> None:
    _, acts, pool = ledger
    whole_id, lean_id = f"W-{uuid.uuid4().hex[:8]}", f"E-{uuid.uuid4().hex[:8]}"
    state, filing, whole = _case(whole_id)
    for step in (*whole, _closed(state, filing)):
        await _record(acts, step)
    state, filing, (first, signed) = _case(lean_id)
    closed = _closed(state, filing)
    rows = None
    for step in (first, signed, closed):
        lean = slim_step(step, rows, form=form)
        assert lean.form == form and not lean.step
        if form >= LEAN_IDS:  # as the workflow sends it
            lean = replace(lean, complaint_id="")
        await _record(acts, lean, lean_id)
        rows = ledger_after(rows, step)
    # The evaluation's time and lead unit, and the close time, were left out of the last.
    lean = slim_step(closed, ledger_after(ledger_after(None, first), signed), form=form)
    assert lean.evaluation is not None and lean.evaluation.evaluated_at.year == 1970
    # (The references form sends no case row at all: nothing else of it changed.)
    assert (lean.case is None) if form >= LEAN_REFS else (
        lean.case is not None and lean.case.closed_at is None)
    await _record(acts, lean, lean_id)  # a retry after the write: nothing changes
    got, want = await _rows(pool, lean_id), await _rows(pool, whole_id)
    assert got == want
    assert len(got["events"]) == 5 and len(got["evaluations"]) == 1
    if form == LEAN_DISPATCHES:
        # The assisting unit's row said its times by the lead's: written all the same.
        assert slim_step(first, form=form).dispatches[1].issued_at.year == 1970
        assert len(got["dispatches"]) == 2
