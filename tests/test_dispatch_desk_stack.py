"""The dispatch desk end to end on the real stack: Kafka → Temporal → Kafka → PostgreSQL.

A filing the machine is unsure of waits in AWAITING_REVIEW (REVIEW_REQUESTED on
hotline.lifecycle with its candidates, the ledger lists it); ``hotline desk decide`` sends
DispatchDecided on hotline.intake and the case is dispatched where the dispatcher said;
nobody deciding dispatches the top candidate; T2H never waits; bad decisions go to the
DLQ with their reason and change nothing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from activities.dispatch.config import load_config
from tests.live import Topic, live_services, send
from workers.cli.desk import waiting_cases
from workers.cli.main import app
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

AMBIGUOUS = "小黄庄社区门口垃圾堆了三天没人清运"  # 小黄庄 is in 东城 and in 朝阳
AMBIGUOUS_T2H = "小黄庄社区楼道里燃气味很大"  # unsure of the place, but it may endanger
OUTSIDE_T2H = "我在燕郊，楼道里燃气味很大"  # no Beijing unit can act: the desk, first
# The street of 朝阳's 小黄庄 committee, from the registry the worker loads.
CHAOYANG_XIAOHUANGZHUANG = next(
    p.unit_id for p in load_config(Settings().config_dir).registry.places.get("小黄庄社区")
    if p.district == "朝阳区")


@pytest_asyncio.fixture(scope="module")
async def live() -> AsyncIterator[Settings]:
    # The review window (15 min) lasts 18 s: long enough to decide, short enough to expire.
    async with live_services("desk", time_scale=0.02) as settings:
        yield settings


@pytest.fixture
def desk_env(live: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI reads its settings from the environment, as a dispatcher's shell would."""
    monkeypatch.setenv("HOTLINE_TOPIC_PREFIX", live.topic_prefix)
    monkeypatch.setenv("HOTLINE_POSTGRES_DB", live.postgres_db)
    return live


def _filing(cid: str, content: str) -> dict[str, Any]:
    return {"event_id": f"f-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
            "channel": "PHONE", "content": content, "anonymous": True}


def _decision(cid: str, decision: str = "DISPATCH", **fields: Any) -> dict[str, Any]:
    return {"event_id": uuid.uuid4().hex, "complaint_id": cid, "decided_at": datetime.now(UTC),
            "dispatcher_id": "desk-test", "decision": decision, **fields}


async def _file_and_wait_review(s: Settings, lifecycle: Topic, content: str) -> tuple[str, dict]:
    cid = f"DESK-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(send, s, s.topic_intake, cid, "ComplaintFiled", _filing(cid, content))
    requested = await asyncio.to_thread(
        lifecycle.wait_for, lambda n, r: r["complaint_id"] == cid
        and r["event_type"] == "REVIEW_REQUESTED")
    return cid, requested


async def _listed(s: Settings, cid: str, timeout: float = 30) -> dict[str, Any]:
    """The case as ``hotline desk list`` shows it, once the ledger has it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = await asyncio.to_thread(waiting_cases, s, 100)
        found = [c for c in listed if c["complaint_id"] == cid]
        if found:
            return found[0]
        await asyncio.sleep(0.3)
    raise AssertionError(f"{cid} never listed at the desk")


async def _status(s: Settings, cid: str, want: str, timeout: float = 30) -> str | None:
    """The case's status in the ledger once it is ``want`` (or the last seen at timeout):
    record_step writes the ledger after Kafka, so a status read at once may be behind."""
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as conn:
        while True:
            row = await (await conn.execute("SELECT status FROM cases WHERE complaint_id = %s",
                                            (cid,))).fetchone()
            status = row[0] if row else None
            if status == want or time.monotonic() >= deadline:
                return status
            await asyncio.sleep(0.3)


async def test_a_dispatcher_sends_the_case_to_the_street_it_belongs_to(desk_env: Settings) -> None:
    s = desk_env
    lifecycle = Topic(s, s.topic_lifecycle)
    dispatches = Topic(s, s.topic_dispatches)
    cid, requested = await _file_and_wait_review(s, lifecycle, AMBIGUOUS)
    assert requested["status"] == "AWAITING_REVIEW" and requested["candidates"]
    assert "several districts" in requested["reason"]
    # record_step publishes to Kafka first, then writes the ledger.
    mine = await _listed(s, cid)
    assert [c["unit_id"] for c in mine["candidates"]] == [
        c["unit_id"] for c in requested["candidates"]]

    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "desk", "decide", cid, "--unit", CHAOYANG_XIAOHUANGZHUANG, "--dispatcher", "desk-7",
        "--note", "朝阳的小黄庄", "--wait", "30", "--json"])
    assert result.exit_code == 0, result.output
    assert f'"lead_unit_id": "{CHAOYANG_XIAOHUANGZHUANG}"' in result.output
    issued = await asyncio.to_thread(
        dispatches.wait_for, lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
    assert issued["unit_id"] == CHAOYANG_XIAOHUANGZHUANG
    decided = await asyncio.to_thread(
        lifecycle.wait_for, lambda n, r: r["complaint_id"] == cid
        and r["event_type"] == "REVIEW_DECIDED")
    assert decided["attributes"]["dispatcher_id"] == "desk-7"


async def test_danger_outside_beijing_is_listed_first_at_the_desk(live: Settings) -> None:
    s = live
    lifecycle = Topic(s, s.topic_lifecycle)
    earlier, _ = await _file_and_wait_review(s, lifecycle, AMBIGUOUS)
    urgent, requested = await _file_and_wait_review(s, lifecycle, OUTSIDE_T2H)
    assert "no Beijing unit can act there" in requested["reason"]
    await _listed(s, earlier)
    await _listed(s, urgent)
    order = [c["complaint_id"] for c in await asyncio.to_thread(waiting_cases, s, 100)]
    assert order.index(urgent) < order.index(earlier)


async def test_nobody_deciding_dispatches_the_top_candidate_and_marks_it(live: Settings) -> None:
    s = live
    lifecycle = Topic(s, s.topic_lifecycle)
    dispatches = Topic(s, s.topic_dispatches)
    cid, requested = await _file_and_wait_review(s, lifecycle, AMBIGUOUS)
    top = requested["candidates"][0]["unit_id"]
    await asyncio.to_thread(lifecycle.wait_for, lambda n, r: r["complaint_id"] == cid
                            and r["event_type"] == "REVIEW_EXPIRED", 90)
    issued = await asyncio.to_thread(
        dispatches.wait_for, lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
    assert issued["unit_id"] == top


async def test_a_case_that_may_endanger_someone_is_dispatched_at_once(live: Settings) -> None:
    s = live
    lifecycle = Topic(s, s.topic_lifecycle)
    dispatches = Topic(s, s.topic_dispatches)
    cid = f"DESK-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(send, s, s.topic_intake, cid, "ComplaintFiled",
                            _filing(cid, AMBIGUOUS_T2H))
    issued = await asyncio.to_thread(
        dispatches.wait_for, lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
    assert issued["tier"] == "T2H"
    await asyncio.to_thread(lifecycle.wait_for, lambda n, r: r["complaint_id"] == cid
                            and r["event_type"] == "DISPATCHED")
    assert "REVIEW_REQUESTED" not in [
        r["event_type"] for n, r in lifecycle.seen if r["complaint_id"] == cid]


async def test_bad_decisions_go_to_the_dlq_with_their_reason_and_change_nothing(
    live: Settings,
) -> None:
    s = live
    lifecycle = Topic(s, s.topic_lifecycle)
    dlq = Topic(s, s.topic_dlq)

    def dead(cid: str, reason: str) -> Any:
        return asyncio.to_thread(dlq.wait_for, lambda n, r: r["key"] == cid.encode()
                                 and r["reason"] == reason)

    # A case that does not exist.
    ghost = f"DESK-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(send, s, s.topic_intake, ghost, "DispatchDecided", _decision(ghost))
    await dead(ghost, "UNKNOWN_CASE")

    # A unit not in the registry: refused on the case's lifecycle too; the case still waits.
    cid, _ = await _file_and_wait_review(s, lifecycle, AMBIGUOUS)
    await asyncio.to_thread(send, s, s.topic_intake, cid, "DispatchDecided",
                            _decision(cid, unit_id="no-such-unit"))
    await dead(cid, "UNKNOWN_UNIT")
    await asyncio.to_thread(lifecycle.wait_for, lambda n, r: r["complaint_id"] == cid
                            and r["event_type"] == "REPLY_REFUSED")
    assert await _status(s, cid, "AWAITING_REVIEW") == "AWAITING_REVIEW"

    # Rejected by a dispatcher: the case closes; a second decision finds it closed.
    await asyncio.to_thread(send, s, s.topic_intake, cid, "DispatchDecided",
                            _decision(cid, "REJECT", note="重复来电"))
    await asyncio.to_thread(lifecycle.wait_for, lambda n, r: r["complaint_id"] == cid
                            and r["event_type"] == "CLOSED")
    await asyncio.to_thread(send, s, s.topic_intake, cid, "DispatchDecided", _decision(cid))
    await dead(cid, "CASE_CLOSED")
    assert await _status(s, cid, "CLOSED") == "CLOSED"

    # A case that is not at the desk (dispatched at once).
    t2h = f"DESK-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(send, s, s.topic_intake, t2h, "ComplaintFiled",
                            _filing(t2h, AMBIGUOUS_T2H))
    await asyncio.to_thread(lifecycle.wait_for, lambda n, r: r["complaint_id"] == t2h
                            and r["event_type"] == "DISPATCHED")
    await asyncio.to_thread(send, s, s.topic_intake, t2h, "DispatchDecided", _decision(t2h))
    await dead(t2h, "STATE_NOT_ALLOWED")
    assert await _status(s, t2h, "DISPATCHED") == "DISPATCHED"
