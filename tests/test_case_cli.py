"""``hotline case show|escalate|reassign|extension`` and ``hotline overdue`` on the real stack.

Cases start the way production starts them: a ``ComplaintFiled`` on Kafka, through the
bridges, into the worker; units answer on Kafka too. The supervisor commands run as
separate processes against this run's namespace, task queue and database.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.test_dlq_cli import (
    NAME,
    Live,
    Topic,
    cli,
    filing,
    send,
    start_live,
    stop_live,
)

pytestmark = pytest.mark.stack

CASE = "workers.cli.case"
LIFT = "望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼"          # T24H
TRAPPED = "望京街道阜通东大街6号院3号楼电梯困人，里面有老人出不来"        # T2H
GROUP_RENTAL = "望京街道某小区有人群租，一套房住了二十多人，存在安全隐患"  # T7D


def _phone() -> str:
    """A caller number of its own per case, so no case is merged into another."""
    return f"139{uuid.uuid4().int % 10**8:08d}"


@dataclass(frozen=True)
class Running:
    live: Live
    emergency: str  # a T2H case filed at start: overdue by the time the last test runs
    emergency_phone: str


@pytest_asyncio.fixture(scope="module")
async def running() -> AsyncIterator[Running]:
    # time_scale 0.005: T2H is due in 36 s; T24H signs within 18 s, is due in 7 min.
    live, stop, tasks = await start_live("casecli", time_scale=0.005)
    emergency, phone = f"SOS-{uuid.uuid4().hex[:8]}", _phone()
    s = live.settings
    await asyncio.to_thread(send, s, s.topic_intake, emergency, "ComplaintFiled",
                            filing(emergency, TRAPPED, phone))
    try:
        yield Running(live, emergency, phone)
    finally:
        await stop_live(stop, tasks)


async def _show(live: Live, cid: str) -> dict[str, Any]:
    code, out = await cli(live, CASE, "case", "show", cid, "--json")
    assert code == 0, out
    data: dict[str, Any] = json.loads(out)
    return data


async def _file_and_sign(live: Live, content: str,
                         phone: str) -> tuple[str, dict[str, Any]]:
    s = live.settings
    cid = f"CASE-{uuid.uuid4().hex[:8]}"
    dispatches = Topic(s, s.topic_dispatches)
    try:
        await asyncio.to_thread(send, s, s.topic_intake, cid, "ComplaintFiled",
                                filing(cid, content, phone))
        issued = await asyncio.to_thread(
            dispatches.wait_for,
            lambda n, r: n == "DispatchIssued" and r["complaint_id"] == cid)
    finally:
        dispatches.close()
    await asyncio.to_thread(send, s, s.topic_unit_replies, cid, "DispatchSigned", {
        "event_id": f"sign-{cid}", "complaint_id": cid, "dispatch_id": issued["dispatch_id"],
        "unit_id": issued["unit_id"], "at": datetime.now(UTC), "signer": "王师傅"})
    deadline = time.monotonic() + 60
    while (await _show(live, cid))["case"]["status"] != "SIGNED":
        assert time.monotonic() < deadline, "the case was never signed for"
        await asyncio.sleep(0.5)
    return cid, issued


async def test_show_escalate_and_reassign_a_running_case(running: Running) -> None:
    live = running.live
    phone = _phone()
    cid, issued = await _file_and_sign(live, LIFT, phone)

    shown = await _show(live, cid)
    assert shown["source"] == "workflow" and shown["workflow_status"] == "RUNNING"
    case = shown["case"]
    assert (case["tier"], case["lead_unit_id"], case["escalation_level"]) == (
        "T24H", "110105026", "UNIT")
    assert case["due_at"] and case["sign_by"] and case["filed_at"]
    leads = [d["unit_id"] for d in shown["dispatches"] if d["role"] == "LEAD"]
    assert leads == ["110105026"]
    events = [e["event_type"] for e in shown["timeline"]]
    assert events[:2] == ["ACCEPTED", "DISPATCHED"] and "SIGNED" in events
    code, text = await cli(live, CASE, "case", "show", cid)
    assert code == 0 and "timeline" in text and "110105026" in text and "SIGNED" in text
    for output in (json.dumps(shown, ensure_ascii=False), text):
        assert phone not in output and NAME not in output

    # 督办: one level at a time, then no higher than the city.
    code, out = await cli(live, CASE, "case", "escalate", cid, "--by", "王科长", "--reason",
                          "群众多次反映")
    assert code == 0 and "accepted" in out, out
    assert (await _show(live, cid))["case"]["escalation_level"] == "DISTRICT"
    code, out = await cli(live, CASE, "case", "escalate", cid, "--by", "李处长",
                          "--reason", "仍未解决", "--json")
    assert code == 0, out
    decision = json.loads(out)
    assert decision["ack"]["accepted"] is True
    # A retry with the same event id gets the first answer and is applied once.
    code, out = await cli(live, CASE, "case", "escalate", cid, "--by", "李处长",
                          "--reason", "仍未解决", "--event-id", decision["event_id"])
    assert code == 0 and "accepted" in out, out
    shown = await _show(live, cid)
    assert shown["case"]["escalation_level"] == "CITY"
    city = [e for e in shown["timeline"]
            if e["attributes"].get("notice_type") == "CITY_SUPERVISION"]
    assert len(city) == 1 and "仍未解决" in city[0]["reason"]
    code, out = await cli(live, CASE, "case", "escalate", cid, "--by", "李处长", "--reason", "再升")
    assert code == 1 and "STATE_NOT_ALLOWED" in out, out

    # 改派: the lead moves; the old dispatch is revoked.
    code, out = await cli(live, CASE, "case", "reassign", cid, "bj-housing", "--by", "王科长",
                          "--reason", "老旧小区电梯改造，由住建部门牵头")
    assert code == 0 and "accepted" in out, out
    shown = await _show(live, cid)
    assert shown["case"]["lead_unit_id"] == "bj-housing"
    by_unit = {(d["unit_id"], d["role"]): d for d in shown["dispatches"]}
    assert by_unit[(issued["unit_id"], "LEAD")]["revoked_at"] is not None
    assert by_unit[("bj-housing", "LEAD")]["revoked_at"] is None
    code, out = await cli(live, CASE, "case", "reassign", cid, "bj-housing", "--by", "王科长",
                          "--reason", "again")
    assert code == 1 and "already leads" in out, out
    code, out = await cli(live, CASE, "case", "reassign", cid, "no-such-unit", "--by", "王科长",
                          "--reason", "typo")
    assert code == 1 and "UNKNOWN_UNIT" in out, out

    code, out = await cli(live, CASE, "case", "escalate", f"NOPE-{uuid.uuid4().hex[:6]}", "--by",
                          "x", "--reason", "y")
    assert code == 1, out  # not found: 1 (docs/cli.md)


async def test_a_supervisor_grants_a_pending_extension(running: Running) -> None:
    live = running.live
    s = live.settings
    cid, issued = await _file_and_sign(live, GROUP_RENTAL, _phone())
    before = await _show(live, cid)
    assert before["case"]["tier"] == "T7D"

    # More days than the rule grants by itself (3): the request waits for a supervisor.
    await asyncio.to_thread(send, s, s.topic_unit_replies, cid, "ExtensionRequested", {
        "event_id": f"ext-{cid}", "complaint_id": cid, "dispatch_id": issued["dispatch_id"],
        "unit_id": issued["unit_id"], "at": datetime.now(UTC), "extra_days": 5,
        "reason": "需协调多部门联合执法"})
    deadline = time.monotonic() + 60
    while not (await _show(live, cid))["case"]["extension_pending"]:
        assert time.monotonic() < deadline, "the extension request never arrived"
        await asyncio.sleep(0.5)
    code, text = await cli(live, CASE, "case", "show", cid)
    assert "extension pending" in text

    code, out = await cli(live, CASE, "case", "extension", cid, "--grant", "--days", "5", "--by",
                          "张科长", "--reason", "情况复杂")
    assert code == 0 and "accepted" in out, out
    after = await _show(live, cid)
    assert after["case"]["extensions"] == 1 and not after["case"]["extension_pending"]
    assert after["case"]["due_at"] > before["case"]["due_at"]
    decided = [e for e in after["timeline"] if e["event_type"] == "EXTENSION_DECIDED"]
    assert decided and decided[0]["attributes"]["decided_by"] == "张科长"

    code, out = await cli(live, CASE, "case", "extension", cid, "--deny", "--by", "张科长")
    assert code == 1 and "no extension request is pending" in out, out


async def test_overdue_lists_the_emergency_and_show_falls_back_to_the_ledger(
    running: Running,
) -> None:
    live = running.live
    cid = running.emergency
    deadline = time.monotonic() + 120
    while True:
        code, out = await cli(live, CASE, "overdue", "--json")
        assert code == 0, out
        report = json.loads(out)
        listed = {c["complaint_id"]: c for c in report["cases"]}
        if cid in listed:
            break
        assert time.monotonic() < deadline, f"{cid} never listed as overdue: {report}"
        await asyncio.sleep(2)
    row = listed[cid]
    assert row["tier"] == "T2H" and row["overdue_seconds"] > 0
    assert {"district": row["district"] or "—", "tier": "T2H", "count": 1} in [
        g for g in report["by_district_tier"] if g["tier"] == "T2H"]
    assert running.emergency_phone not in out and NAME not in out
    code, out = await cli(live, CASE, "overdue", "--tier", "T24H", "--json")
    assert cid not in {c["complaint_id"] for c in json.loads(out)["cases"]}
    code, text = await cli(live, CASE, "overdue")
    assert code == 0 and cid in text and "T2H" in text

    # The workflow is gone (terminated): `case show` answers from the ledger.
    s = live.settings
    client = await Client.connect(s.temporal_address, namespace=s.temporal_namespace)
    await client.get_workflow_handle(f"complaint-{cid}").terminate("test: workflow gone")
    shown = await _show(live, cid)
    assert shown["source"] == "ledger" and shown["workflow_status"] == "TERMINATED"
    assert shown["case"]["tier"] == "T2H" and shown["timeline"]
    assert shown["timeline"][0]["event_type"] == "ACCEPTED"

    code, out = await cli(live, CASE, "case", "show", f"NOPE-{uuid.uuid4().hex[:6]}")
    assert code == 1  # not found: 1 (docs/cli.md)
