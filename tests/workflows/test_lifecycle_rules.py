"""One time-skipping test per lifecycle rule of DESIGN.md (issue 3), named after the rule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from activities.case import caller_hash
from tests.workflows.harness import Harness, event_id, reply, update
from workflows.model import (
    UPDATE_CALLBACK,
    UPDATE_COMPLETE,
    UPDATE_DECIDE_DISPATCH,
    UPDATE_DECIDE_EXTENSION,
    UPDATE_ESCALATE,
    UPDATE_REASSIGN,
    UPDATE_REPORT_PROGRESS,
    UPDATE_REQUEST_EXTENSION,
    UPDATE_RETURN_DISPATCH,
    UPDATE_SIGN_FOR,
    UPDATE_SUPPLEMENT,
    UPDATE_URGE,
    UPDATE_WHISTLE,
    CallbackAnswer,
    Complete,
    DispatchDecision,
    Escalate,
    ExtensionDecision,
    Reassign,
    ReportProgress,
    RequestExtension,
    ReturnDispatch,
    SignFor,
    Supplement,
    Urge,
    Whistle,
)

STREET_CASE = "西城区金融街街道某小区门口垃圾堆放三天没人清运"  # T24H, 金融街街道 leads
T7D_CASE = "海淀区中关村街道中关村大街路灯不亮好几天了"  # T7D, 中关村街道 leads
T15D_CASE = "朝阳区某工地老板拖欠工资三个月了"  # T15D, 人社局 leads


def _callback(reached: bool = True, resolved: bool = True,
              satisfaction: str | None = "SATISFIED") -> CallbackAnswer:
    return CallbackAnswer(event_id=event_id(), at=datetime.now(UTC), reached=reached,
                          responded=True, resolved=resolved, satisfaction=satisfaction)


async def _sign_and_complete(h: Harness, handle: object, result: str = "RESOLVED") -> None:
    view = await h.view(handle)  # type: ignore[arg-type]
    assert (await update(handle, UPDATE_SIGN_FOR, reply(view, SignFor))).accepted  # type: ignore[arg-type]
    ack = await update(handle, UPDATE_COMPLETE,  # type: ignore[arg-type]
                       reply(view, Complete, result=result, reply_text="已处理"))
    assert ack.accepted, ack


# --- acceptance outcomes -----------------------------------------------------------------


async def test_unreasonable_request_is_rejected_by_a_person_and_not_assessed(
    harness: Harness,
) -> None:
    # DESIGN.md "Dispatch that fails safe": a demand that looks unreasonable waits at the
    # dispatch desk; a dispatcher rejects it (tests/workflows/test_dispatch_desk.py).
    h = await harness.file("测试电话，没有事情")
    await harness.until(h, "REVIEW_REQUESTED")
    ack = await update(h, UPDATE_DECIDE_DISPATCH, DispatchDecision(
        event_id=event_id(), complaint_id="", decided_at=datetime.now(UTC),
        dispatcher_id="desk-1", decision="REJECT"))
    assert ack.accepted
    result = await h.result()
    assert result.outcome == "REJECTED" and not result.counted
    assert harness.recorder.events(result.complaint_id)[-2:] == ["REJECTED", "CLOSED"]


async def test_duplicate_of_an_open_case_is_merged_and_urges_it(harness: Harness) -> None:
    phone = "13912345678"
    first = await harness.file(STREET_CASE, caller_phone=phone)
    view = await harness.until(first, "DISPATCHED")
    harness.duplicates.open[(caller_hash(b"test", phone) or "", view.category or "",
                             view.street)] = view.complaint_id
    second = await harness.file(STREET_CASE + "，还是没人管", caller_phone=phone)
    result = await second.result()
    assert result.outcome == "MERGED" and not result.counted
    assert harness.recorder.outbound(result.complaint_id, "DispatchIssued") == []
    urged = await harness.until(first, "URGED")
    assert urged.urges == 1
    forwarded = harness.recorder.outbound(view.complaint_id, "SupplementForwarded")
    assert forwarded[-1]["urge"] and result.complaint_id in forwarded[-1]["content"]


# --- escalation by urges -----------------------------------------------------------------


async def test_two_urges_raise_the_case_one_level_at_once(harness: Harness) -> None:
    h = await harness.file(T7D_CASE)
    await harness.until(h, "DISPATCHED")
    for _ in range(2):
        ack = await update(h, UPDATE_URGE, Urge(event_id=event_id(), at=datetime.now(UTC)))
        assert ack.accepted
    view = await harness.until(h, "NOTICE")
    notice = next(e for e in view.timeline if e.event_type == "NOTICE")
    assert notice.attributes == {"notice_type": "URGED", "level": "DISTRICT"}
    assert view.escalation_level == "DISTRICT" and view.urges == 2
    assert len(harness.recorder.outbound(view.complaint_id, "SupplementForwarded")) == 2


async def test_concurrent_urges_escalate_at_most_to_the_city(harness: Harness) -> None:
    """Urges that arrive together each decide to escalate before the others recorded;
    the level stops at CITY instead of failing the workflow task."""
    h = await harness.file(T7D_CASE)
    await harness.until(h, "DISPATCHED")
    acks = await asyncio.wait_for(asyncio.gather(*(
        update(h, UPDATE_URGE, Urge(event_id=event_id(), at=datetime.now(UTC)))
        for _ in range(8))), 60)
    assert all(a.accepted for a in acks)
    view = await harness.view(h)
    assert view.escalation_level == "CITY" and view.urges == 8
    notices = [e.attributes["level"] for e in view.timeline if e.event_type == "NOTICE"]
    assert notices == ["DISTRICT", "CITY"]


async def test_supervisor_escalation_raises_one_level(harness: Harness) -> None:
    h = await harness.file(T7D_CASE)
    await harness.until(h, "DISPATCHED")
    ack = await update(h, UPDATE_ESCALATE, Escalate(event_id=event_id(), decided_by="督办科"))
    assert ack.accepted
    assert (await harness.view(h)).escalation_level == "DISTRICT"


# --- returns -----------------------------------------------------------------------------


async def test_return_is_reviewed_and_redispatched_with_a_revoke(harness: Harness) -> None:
    h = await harness.file(STREET_CASE)
    view = await harness.until(h, "DISPATCHED")
    street_unit, first_dispatch = view.lead_unit_id, view.dispatch_id
    ack = await update(h, UPDATE_RETURN_DISPATCH,
                       reply(view, ReturnDispatch, reason="不属于本街道管辖"))
    assert ack.accepted
    view = await harness.until(h, "REDISPATCHED")
    assert view.lead_unit_id == "110102"  # 西城区人民政府: the next candidate for the place
    assert view.dispatch_id != first_dispatch and view.returns == 1
    revoked = harness.recorder.outbound(view.complaint_id, "DispatchRevoked")
    assert [(r["unit_id"], r["dispatch_id"]) for r in revoked] == [(street_unit, first_dispatch)]
    issued = harness.recorder.outbound(view.complaint_id, "DispatchIssued")
    assert [i["unit_id"] for i in issued] == [street_unit, "110102"]
    # The old unit no longer holds the case.
    stale = await update(h, UPDATE_SIGN_FOR, SignFor(
        event_id=event_id(), dispatch_id=first_dispatch or "", unit_id=street_unit or "",
        at=datetime.now(UTC)))
    assert not stale.accepted and stale.reason == "UNIT_NOT_HOLDING"


async def test_after_two_returns_the_city_coordinates_and_no_return_is_accepted(
    harness: Harness,
) -> None:
    h = await harness.file(STREET_CASE)
    view = await harness.until(h, "DISPATCHED")
    for n in (1, 2):
        assert (await update(h, UPDATE_RETURN_DISPATCH,
                             reply(view, ReturnDispatch, reason="不归我们管"))).accepted
        view = await harness.until(h, "REDISPATCHED", count=n)
    assert view.lead_unit_id == "bj-gov-services"
    notices = [e.attributes for e in view.timeline if e.event_type == "NOTICE"]
    assert {"notice_type": "CITY_COORDINATION", "level": "CITY"} in notices
    third = await update(h, UPDATE_RETURN_DISPATCH, reply(view, ReturnDispatch, reason="再退"))
    assert not third.accepted and third.reason == "LIMIT_REACHED"
    assert (await harness.view(h)).lead_unit_id == "bj-gov-services"


async def test_supervisor_reassigns_through_an_update(harness: Harness) -> None:
    h = await harness.file(STREET_CASE)
    await harness.until(h, "DISPATCHED")
    ack = await update(h, UPDATE_REASSIGN, Reassign(
        event_id=event_id(), unit_id="bj-chengguan", decided_by="市级派单员", reason="执法类"))
    assert ack.accepted
    assert (await harness.view(h)).lead_unit_id == "bj-chengguan"
    unknown = await update(h, UPDATE_REASSIGN, Reassign(
        event_id=event_id(), unit_id="no-such-unit", decided_by="x"))
    assert not unknown.accepted and unknown.reason == "UNKNOWN_UNIT"


# --- extensions --------------------------------------------------------------------------


async def test_extension_within_rule_days_is_granted_and_moves_every_timer(
    harness: Harness,
) -> None:
    h = await harness.file(T7D_CASE)
    view = await harness.until(h, "DISPATCHED")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor))
    before = view.due_at
    ack = await update(h, UPDATE_REQUEST_EXTENSION,
                       reply(view, RequestExtension, extra_days=2, reason="需协调产权单位"))
    assert ack.accepted
    view = await harness.until(h, "EXTENSION_DECIDED")
    assert before and view.due_at and view.due_at - before >= timedelta(days=2)
    assert view.extensions == 1
    decided = harness.recorder.outbound(view.complaint_id, "ExtensionDecided")
    assert decided[0]["granted"] and decided[0]["decided_by"] == "rule"
    # Timers moved: at the old deadline nothing is overdue.
    await harness.env.sleep(before - await harness.env.get_current_time() + timedelta(hours=1))
    view = await harness.view(h)
    assert not view.overdue
    assert [e.attributes["notice_type"] for e in view.timeline
            if e.event_type == "NOTICE"].count("OVERDUE") == 0
    # A second extension is refused.
    again = await update(h, UPDATE_REQUEST_EXTENSION,
                         reply(view, RequestExtension, extra_days=1, reason="再延"))
    assert not again.accepted and again.reason == "LIMIT_REACHED"


async def test_long_extension_waits_for_a_supervisor_decision(harness: Harness) -> None:
    h = await harness.file(T7D_CASE)
    view = await harness.until(h, "DISPATCHED")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor))
    await update(h, UPDATE_REQUEST_EXTENSION,
                 reply(view, RequestExtension, extra_days=6, reason="需要招标"))
    view = await harness.until(h, "EXTENSION_REQUESTED")
    assert view.extension_pending and view.extensions == 0
    ack = await update(h, UPDATE_DECIDE_EXTENSION, ExtensionDecision(
        event_id=event_id(), granted=False, decided_by="区督办", reason="不符合延期条件"))
    assert ack.accepted
    view = await harness.until(h, "EXTENSION_DECIDED")
    assert not view.extension_pending and view.extensions == 0
    denied = harness.recorder.outbound(view.complaint_id, "ExtensionDecided")[0]
    assert not denied["granted"] and denied["decided_by"] == "区督办"


async def test_extension_is_refused_for_short_tiers_and_beyond_the_tier_length(
    harness: Harness,
) -> None:
    h = await harness.file(STREET_CASE)  # T24H
    view = await harness.until(h, "DISPATCHED")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor))
    ack = await update(h, UPDATE_REQUEST_EXTENSION,
                       reply(view, RequestExtension, extra_days=1, reason="忙"))
    assert not ack.accepted and "T24H" in ack.detail
    h2 = await harness.file(T7D_CASE)
    view2 = await harness.until(h2, "DISPATCHED")
    await update(h2, UPDATE_SIGN_FOR, reply(view2, SignFor))
    too_long = await update(h2, UPDATE_REQUEST_EXTENSION,
                            reply(view2, RequestExtension, extra_days=8, reason="太忙"))
    assert not too_long.accepted and too_long.reason == "LIMIT_REACHED"


# --- co-handling ---------------------------------------------------------------------------


async def test_whistle_calls_units_in_and_they_must_sign_in_time(harness: Harness) -> None:
    h = await harness.file(STREET_CASE)
    view = await harness.until(h, "DISPATCHED")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor))
    ack = await update(h, UPDATE_WHISTLE, reply(
        view, Whistle, units=["bj-chengguan", "bj-urban-mgmt"], reason="需执法和城管协同"))
    assert ack.accepted
    view = await harness.until(h, "WHISTLED")
    assisting = [d for d in view.dispatches if d.role == "ASSISTING"]
    assert sorted(d.unit_id for d in assisting) == ["bj-chengguan", "bj-urban-mgmt"]
    issued = harness.recorder.outbound(view.complaint_id, "DispatchIssued")
    assert sorted(i["unit_id"] for i in issued if i["role"] == "ASSISTING") == [
        "bj-chengguan", "bj-urban-mgmt"]
    # One assisting unit signs, the other misses its sign-for limit (1 h for T24H).
    signed = await update(h, UPDATE_SIGN_FOR, reply(view, SignFor, dispatch=assisting[0]))
    assert signed.accepted, signed
    await harness.env.sleep(timedelta(minutes=70))
    view = await harness.view(h)
    late = [e for e in view.timeline if e.event_type == "NOTICE"
            and e.attributes["notice_type"] == "SIGN_OVERDUE"]
    assert [e.unit_id for e in late] == [assisting[1].unit_id]


async def test_case_completes_when_the_lead_completes_with_assisting_replies_attached(
    harness: Harness,
) -> None:
    h = await harness.file(STREET_CASE)
    view = await harness.until(h, "DISPATCHED")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor))
    await update(h, UPDATE_WHISTLE, reply(view, Whistle, units=["bj-chengguan"], reason="执法"))
    view = await harness.until(h, "WHISTLED")
    helper = next(d for d in view.dispatches if d.role == "ASSISTING")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor, dispatch=helper))
    ack = await update(h, UPDATE_COMPLETE, reply(view, Complete, dispatch=helper,
                                                 result="RESOLVED", reply_text="已取缔占道"))
    assert ack.accepted
    assert (await harness.view(h)).status == "SIGNED"  # an assistant's reply does not complete
    await update(h, UPDATE_COMPLETE, reply(view, Complete, result="RESOLVED",
                                            reply_text="垃圾已清运"))
    view = await harness.until(h, "COMPLETED")
    completed = next(e for e in view.timeline if e.event_type == "COMPLETED")
    assert completed.attributes["assist:bj-chengguan"] == "已取缔占道"


async def test_supplement_is_forwarded_to_every_unit_holding_the_case(harness: Harness) -> None:
    h = await harness.file(STREET_CASE)
    view = await harness.until(h, "DISPATCHED")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor))
    await update(h, UPDATE_WHISTLE, reply(view, Whistle, units=["bj-chengguan"], reason="执法"))
    await harness.until(h, "WHISTLED")
    ack = await update(h, UPDATE_SUPPLEMENT, Supplement(
        event_id=event_id(), at=datetime.now(UTC), content="垃圾堆旁边还有建筑垃圾",
        attachments=["https://files.example/photo1.jpg"]))
    assert ack.accepted
    forwarded = harness.recorder.outbound(view.complaint_id, "SupplementForwarded")
    assert sorted(f["unit_id"] for f in forwarded) == sorted([view.lead_unit_id or "",
                                                               "bj-chengguan"])
    assert all(f["attachments"] == ["https://files.example/photo1.jpg"] for f in forwarded)


async def test_a_supplement_right_behind_its_filing_waits_for_the_dispatch(
    harness: Harness,
) -> None:
    # Found by the reliability suite: the bridge delivers a supplement as soon as the
    # case exists; it reached the case before acceptance and failed its workflow task.
    h = await harness.file(STREET_CASE)
    ack = await update(h, UPDATE_SUPPLEMENT, Supplement(
        event_id=event_id(), at=datetime.now(UTC), content="门口还堆了建筑垃圾"))
    assert ack.accepted and not ack.duplicate, ack
    cid = (await harness.view(h)).complaint_id
    assert harness.recorder.events(cid)[:3] == ["ACCEPTED", "DISPATCHED", "SUPPLEMENTED"]
    assert len(harness.recorder.outbound(cid, "SupplementForwarded")) == 1


async def test_a_reply_before_acceptance_is_refused_and_the_case_goes_on(
    harness: Harness,
) -> None:
    # A unit reply or a supervisor's decision that reaches a case still being accepted
    # (no dispatch exists yet) used to fail the workflow task for ever.
    from temporalio.client import WorkflowUpdateFailedError

    h = await harness.file(STREET_CASE)
    early = ReturnDispatch(event_id=event_id(), dispatch_id="d-none", unit_id="110102001",
                           at=datetime.now(UTC), reason="不归我管")
    try:
        ack = await update(h, UPDATE_RETURN_DISPATCH, early)
    except WorkflowUpdateFailedError as err:
        assert "still being accepted" in str(err.cause)
    else:  # acceptance won the race: an unknown dispatch is refused as usual
        assert not ack.accepted
    view = await harness.until(h, "DISPATCHED")
    assert view.status == "DISPATCHED"


# --- progress, callback and reopen ---------------------------------------------------------


async def test_first_contact_counts_as_response_when_the_citizen_is_never_reached(
    harness: Harness,
) -> None:
    h = await harness.file(T7D_CASE)
    view = await harness.until(h, "DISPATCHED")
    await update(h, UPDATE_SIGN_FOR, reply(view, SignFor))
    await update(h, UPDATE_REPORT_PROGRESS,
                 reply(view, ReportProgress, text="已电话联系市民", contacted_citizen=True))
    await update(h, UPDATE_COMPLETE, reply(view, Complete, result="PARTLY_RESOLVED",
                                            reply_text="已报修"))
    for attempt in (1, 2, 3):  # the citizen never picks up: three tries, then evaluate
        await harness.until(h, "CALLBACK_DUE", count=attempt)
        await update(h, UPDATE_CALLBACK, _callback(reached=False, resolved=False,
                                                   satisfaction=None))
    result = await h.result()
    assert result.counted and result.responded and not result.resolved


async def test_unsatisfied_citizen_reopens_once_to_the_lead_with_tier_at_most_t7d(
    harness: Harness,
) -> None:
    h = await harness.file(T15D_CASE)
    view = await harness.until(h, "DISPATCHED")
    assert view.tier == "T15D"
    lead = view.lead_unit_id
    await _sign_and_complete(harness, h)
    await harness.until(h, "CALLBACK_DUE")
    await update(h, UPDATE_CALLBACK, _callback(resolved=False, satisfaction="UNSATISFIED"))
    view = await harness.until(h, "REOPENED")
    assert view.lead_unit_id == lead and view.tier == "T7D" and view.reopens == 1
    # The case's state says REOPENED as soon as the workflow decides it; the step that
    # issues the new dispatch is recorded by an activity a moment later.
    issued = harness.recorder.outbound(view.complaint_id, "DispatchIssued")
    for _ in range(100):
        if len(issued) > 1:
            break
        await asyncio.sleep(0.05)
        issued = harness.recorder.outbound(view.complaint_id, "DispatchIssued")
    reissued = issued[-1]
    assert reissued["reopened"] and reissued["tier"] == "T7D"
    # Second round: still unsatisfied, but no second reopen.
    await _sign_and_complete(harness, h, result="PARTLY_RESOLVED")
    await harness.until(h, "CALLBACK_DUE", count=2)
    await update(h, UPDATE_CALLBACK, _callback(resolved=False, satisfaction="UNSATISFIED"))
    result = await h.result()
    assert result.counted and not result.resolved and not result.satisfied
    evaluation = next(s.evaluation for s in harness.recorder.steps
                      if s.evaluation and s.complaint_id == result.complaint_id)
    assert evaluation.reopens == 1


async def test_callback_answer_outside_a_callback_is_refused(harness: Harness) -> None:
    h = await harness.file(T7D_CASE)
    await harness.until(h, "DISPATCHED")
    ack = await update(h, UPDATE_CALLBACK, _callback())
    assert not ack.accepted and ack.reason == "STATE_NOT_ALLOWED"
