"""The dispatch desk (派单复核, DESIGN.md "Dispatch that fails safe"), on the time-skipping
server: unsure cases wait in AWAITING_REVIEW for a dispatcher's DispatchDecided; the top
candidate goes when the window ends; T2H never waits; bad decisions are refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from activities.dispatch.registry import CITY_CENTRE_ID
from activities.governance.hotspots import Hotspot, governance_filing
from tests.workflows.harness import CONFIG, Harness, event_id, update
from workflows.model import (
    UPDATE_DECIDE_DISPATCH,
    UPDATE_SUPPLEMENT,
    UPDATE_WITHDRAW,
    DispatchDecision,
    Supplement,
    Withdraw,
)

UNREASONABLE = "测试电话，没有事情"
AMBIGUOUS = "小黄庄社区门口垃圾堆了三天没人清运"  # 小黄庄 is in 东城 and 朝阳
AMBIGUOUS_T2H = "小黄庄社区楼道里燃气味很大"  # unsure of the place, but it may endanger
OUTSIDE_T2H = "我在燕郊，楼道里燃气味很大"
WINDOW = CONFIG.rules.review.window


def _decision(decision: str, **kw: object) -> DispatchDecision:
    return DispatchDecision(event_id=event_id(), complaint_id="", decided_at=datetime.now(UTC),
                            dispatcher_id="desk-7", decision=decision, **kw)  # type: ignore[arg-type]


def _street_of(name: str, district: str) -> str:
    return next(p.unit_id for p in CONFIG.registry.places.get(name) if p.district == district)


async def test_an_unsure_case_waits_with_its_candidates_and_a_dispatcher_rejects_it(
    harness: Harness,
) -> None:
    h = await harness.file(UNREASONABLE)
    view = await harness.until(h, "REVIEW_REQUESTED")
    assert view.status == "AWAITING_REVIEW" and view.dispatches == []
    step = await harness.recorded(view.complaint_id, "REVIEW_REQUESTED")
    [event] = step.lifecycle
    assert event.candidates and event.candidates[0].score < CONFIG.rules.review.min_confidence
    assert "unreasonable" in event.attributes["reason"]
    ack = await update(h, UPDATE_DECIDE_DISPATCH, _decision("REJECT", note="测试电话"))
    assert ack.accepted
    result = await h.result()
    assert result.outcome == "REJECTED" and not result.counted
    assert harness.recorder.events(result.complaint_id) == [
        "REVIEW_REQUESTED", "REVIEW_DECIDED", "REJECTED", "CLOSED"]
    assert harness.recorder.outbound(result.complaint_id, "DispatchIssued") == []


async def test_a_dispatcher_names_the_street_and_the_deadline_still_counts_from_acceptance(
    harness: Harness,
) -> None:
    street = _street_of("小黄庄社区", "朝阳区")
    h = await harness.file(AMBIGUOUS)
    view = await harness.until(h, "REVIEW_REQUESTED")
    accepted_at = view.timeline[0].at
    await harness.env.sleep(timedelta(minutes=5))
    ack = await update(h, UPDATE_DECIDE_DISPATCH,
                       _decision("DISPATCH", unit_id=street, tier="T7D"))
    assert ack.accepted, ack
    view = await harness.until(h, "DISPATCHED")
    assert view.lead_unit_id == street and view.tier == "T7D"
    [issued] = harness.recorder.outbound(view.complaint_id, "DispatchIssued")
    assert issued["unit_id"] == street and issued["tier"] == "T7D"
    assert view.due_at is not None
    # T7D counts working days from acceptance, not from the dispatcher's decision.
    assert view.due_at - accepted_at >= timedelta(days=7)
    events = harness.recorder.events(view.complaint_id)
    assert events[:3] == ["REVIEW_REQUESTED", "REVIEW_DECIDED", "DISPATCHED"]


async def test_when_nobody_decides_the_top_candidate_is_dispatched_and_marked(
    harness: Harness,
) -> None:
    h = await harness.file(AMBIGUOUS)
    await harness.until(h, "REVIEW_REQUESTED")
    step = await harness.recorded(h.id.removeprefix("complaint-"), "REVIEW_REQUESTED")
    top = step.lifecycle[0].candidates[0]  # type: ignore[index]
    await harness.env.sleep(WINDOW + timedelta(seconds=1))
    view = await harness.until(h, "DISPATCHED")
    assert view.lead_unit_id == top.unit_id
    await harness.recorded(view.complaint_id, "DISPATCHED")
    assert harness.recorder.events(view.complaint_id)[:3] == [
        "REVIEW_REQUESTED", "REVIEW_EXPIRED", "DISPATCHED"]


async def test_a_case_that_may_endanger_someone_never_waits(harness: Harness) -> None:
    h = await harness.file(AMBIGUOUS_T2H)
    view = await harness.until(h, "DISPATCHED")
    assert view.tier == "T2H"
    assert "REVIEW_REQUESTED" not in harness.recorder.events(view.complaint_id)


async def test_danger_outside_beijing_goes_to_a_dispatcher_at_once(harness: Harness) -> None:
    # No Beijing unit can act in 燕郊: a person sends the caller to the local service.
    h = await harness.file(OUTSIDE_T2H)
    view = await harness.until(h, "REVIEW_REQUESTED")
    assert view.status == "AWAITING_REVIEW" and view.dispatches == [] and view.tier == "T2H"
    step = await harness.recorded(view.complaint_id, "REVIEW_REQUESTED")
    [event] = step.lifecycle
    reason = event.attributes["reason"]
    assert "outside Beijing (燕郊)" in reason and "local emergency service" in reason
    # Unattended, the city centre (not a Beijing gas company) calls the caller back.
    assert event.candidates and event.candidates[0].unit_id == CITY_CENTRE_ID


async def test_danger_outside_beijing_left_alone_goes_to_the_city_centre_soon(
    harness: Harness,
) -> None:
    h = await harness.file(OUTSIDE_T2H)
    await harness.until(h, "REVIEW_REQUESTED")
    urgent = CONFIG.rules.review.window_for("T2H")
    assert urgent < WINDOW
    await harness.env.sleep(urgent + timedelta(seconds=1))
    view = await harness.until(h, "DISPATCHED")  # (queries do not skip time)
    assert view.lead_unit_id == CITY_CENTRE_ID and view.tier == "T2H"


async def test_a_decision_for_an_unknown_unit_is_refused_and_the_case_still_waits(
    harness: Harness,
) -> None:
    h = await harness.file(AMBIGUOUS)
    await harness.until(h, "REVIEW_REQUESTED")
    bad = _decision("DISPATCH", unit_id="no-such-unit")
    ack = await update(h, UPDATE_DECIDE_DISPATCH, bad)
    assert not ack.accepted and ack.reason == "UNKNOWN_UNIT"
    again = await update(h, UPDATE_DECIDE_DISPATCH, bad)  # Kafka redelivers
    assert again.duplicate and not again.accepted
    view = await harness.until(h, "REPLY_REFUSED")
    assert view.status == "AWAITING_REVIEW" and view.dispatches == []
    ok = await update(h, UPDATE_DECIDE_DISPATCH,
                      _decision("DISPATCH", unit_id=_street_of("小黄庄社区", "东城区")))
    assert ok.accepted
    await harness.until(h, "DISPATCHED")


async def test_a_decision_for_a_case_not_awaiting_review_is_refused(harness: Harness) -> None:
    h = await harness.file("西城区金融街街道某小区门口垃圾堆放三天没人清运")
    view = await harness.until(h, "DISPATCHED")
    ack = await update(h, UPDATE_DECIDE_DISPATCH, _decision("REJECT"))
    assert not ack.accepted and ack.reason == "STATE_NOT_ALLOWED"
    after = await harness.until(h, "REPLY_REFUSED")
    assert after.status == view.status and after.lead_unit_id == view.lead_unit_id


async def test_a_supplement_waits_for_the_decision_and_reaches_the_unit(
    harness: Harness,
) -> None:
    h = await harness.file(AMBIGUOUS)
    await harness.until(h, "REVIEW_REQUESTED")
    pending = asyncio.create_task(update(h, UPDATE_SUPPLEMENT, Supplement(
        event_id=event_id(), at=datetime.now(UTC), content="就在小区南门", attachments=[])))
    await asyncio.sleep(0.3)  # the supplement reaches the case while it waits at the desk
    assert not pending.done()
    ok = await update(h, UPDATE_DECIDE_DISPATCH,
                      _decision("DISPATCH", unit_id=_street_of("小黄庄社区", "朝阳区")))
    assert ok.accepted
    assert (await pending).accepted
    view = await harness.until(h, "SUPPLEMENTED")
    [forwarded] = harness.recorder.outbound(view.complaint_id, "SupplementForwarded")
    assert forwarded["unit_id"] == view.lead_unit_id


async def test_a_case_withdrawn_at_the_desk_closes_undispatched(harness: Harness) -> None:
    h = await harness.file(UNREASONABLE)
    await harness.until(h, "REVIEW_REQUESTED")
    ack = await update(h, UPDATE_WITHDRAW, Withdraw(event_id=event_id(), at=datetime.now(UTC),
                                                    reason="不用了"))
    assert ack.accepted
    result = await h.result()
    assert not result.counted
    events = harness.recorder.events(result.complaint_id)
    assert "DISPATCHED" not in events and events[-1] == "CLOSED"


async def test_a_hotspots_governance_case_is_led_by_its_street(harness: Harness) -> None:
    """未诉先办 (DESIGN.md): the street where the hotspot is leads; the department whose
    remit the problem is (here the traffic police, for parking) assists."""
    hotspot = Hotspot(
        warning_id="HW-test", district="朝阳区", street="望京街道",
        category="traffic.parking", window_start=datetime(2026, 11, 1, tzinfo=UTC),
        window_end=datetime(2026, 11, 4, tzinfo=UTC), count=14, baseline=2.0, score=7.0)
    filing = governance_filing(hotspot, "交通/违法停车", datetime.now(UTC))
    h = await harness.file(filing.content, complaint_id=f"HOT-{uuid.uuid4().hex[:8]}",
                           **{k: getattr(filing, k) for k in (
                               "district", "street", "category_hint", "kind",
                               "anonymous", "governance")})
    view = await harness.until(h, "DISPATCHED")
    wangjing = next(p.unit_id for p in CONFIG.registry.places.get("望京街道")
                    if p.kind == "name")
    assert view.lead_unit_id == wangjing
    issued = harness.recorder.outbound(view.complaint_id, "DispatchIssued")
    assert {(d["unit_id"], d["role"]) for d in issued} == {
        (wangjing, "LEAD"), ("bj-traffic-police", "ASSISTING")}
    accepted = next(e for e in view.timeline if e.event_type == "ACCEPTED")
    assert "governance case: the street leads" in accepted.attributes["reason"]


async def test_an_ordinary_parking_complaint_records_why_its_street_leads(
    harness: Harness,
) -> None:
    """The routing table names the traffic police for parking; the dispatch model's lead
    head, sure a ground lock at a compound's gate is the street's matter (P 0.97), gives it
    to the street with the police assisting, and the case says so. Not a governance case.
    (Cars parked on the road itself are the police's to most writers: 20 of 25.)"""
    h = await harness.file("望京街道花家地北里小区门口有人违法装了个地锁，占了公共车位",
                           district="朝阳区")
    view = await harness.until(h, "DISPATCHED")
    assert view.lead_unit_id == "110105026"  # 望京街道
    issued = harness.recorder.outbound(view.complaint_id, "DispatchIssued")
    assert ("bj-traffic-police", "ASSISTING") in {(d["unit_id"], d["role"]) for d in issued}
    accepted = next(e for e in view.timeline if e.event_type == "ACCEPTED")
    assert "the learned model reads a matter in the street's territory" in \
        accepted.attributes["reason"]
    assert "governance" not in accepted.attributes["reason"]
