"""The workflow's pure pieces, alone: state copies, the ladder's timetable, step builders."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.converter import default

from workers.runtime.temporal import DATA_CONVERTER
from workflows.ladder import active_dispatches, next_checkpoint
from workflows.model import (
    Acceptance,
    Ack,
    CaseRow,
    CaseSnapshot,
    DispatchState,
    EvaluationRow,
    Filing,
    LadderPlan,
    Status,
    StepRecord,
    TierPlan,
    Unit,
)
from workflows.state import SEEN_KEPT, TIMELINE_KEPT, CaseState, restore, snapshot
from workflows.steps import (
    LEAN_DISPATCHES,
    LEAN_EVENTS,
    LEAN_IDS,
    LEAN_REFS,
    NEWEST_FORM,
    StepFacts,
    build_step,
    expand_step,
    lead_unit_id,
    ledger_after,
    merge_steps,
    slim_step,
    step_name,
    with_complaint_id,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _acceptance(lead: str = "110105008") -> Acceptance:
    plan = TierPlan(tier="T7D", deadline_seconds=7 * 86400, sign_for_seconds=7200,
                    callback_seconds=3 * 86400, due_at=T0 + 7 * DAY, sign_by=T0 + 2 * DAY / 24)
    ladder = LadderPlan(warning_fractions=[0.5, 0.8], sign_for_misses_to_district=2,
                        city_after_overdue_fraction=0.5, urges_to_escalate=2, max_returns=2,
                        unreached_attempts=3, unreached_window_seconds=2 * 86400,
                        max_reopens=1, weights={"response": 0.1})
    return Acceptance(outcome="DISPATCH", kind="COMPLAINT", category="housing.lift",
                      category_name="电梯", tier="T7D", reason="rule", district="朝阳区",
                      street="110105008", plan=plan, ladder=ladder,
                      lead=Unit(lead, "望京街道", "street"), caller_hash="h")


def _dispatch(n: int, role: str = "LEAD", **kw: object) -> DispatchState:
    d = DispatchState(dispatch_id=f"C1-d{n}", unit_id=f"u{n}", unit_name=f"unit {n}", role=role,
                      issued_at=T0, sign_by=T0 + timedelta(hours=2), due_at=T0 + 10 * DAY)
    return replace(d, **kw)  # type: ignore[arg-type]


def _handled(*dispatches: DispatchState) -> CaseState:
    acc = _acceptance()
    state = CaseState(acceptance=acc, plan=acc.plan, status=Status.DISPATCHED)
    state.dispatches = {d.dispatch_id: d for d in dispatches}
    state.lead_dispatch_id = dispatches[0].dispatch_id
    return state


FILING = Filing(event_id="e1", complaint_id="C1", filed_at=T0, channel="PHONE",
                content="电梯坏了", latitude=39.9, longitude=116.4)


# --- the ladder ---------------------------------------------------------------------------

def test_the_first_rung_is_the_lead_signing_for() -> None:
    state = _handled(_dispatch(1))
    cp = next_checkpoint(state)
    assert cp is not None and (cp.kind, cp.at, cp.dispatch_id) == (
        "SIGN_FOR", T0 + timedelta(hours=2), "C1-d1")


def test_after_signing_the_rungs_follow_the_deadline_in_order() -> None:
    state = _handled(_dispatch(1, signed_at=T0))
    seen = []
    for _ in range(4):
        cp = next_checkpoint(state)
        assert cp is not None
        seen.append((cp.kind, cp.at - T0))
        if cp.kind == "WARNING":
            state.warnings_sent += 1
        elif cp.kind == "OVERDUE":
            state.round_overdue = True
        else:
            state.city_sent = True
    assert seen == [("WARNING", 5 * DAY), ("WARNING", 8 * DAY), ("OVERDUE", 10 * DAY),
                    ("CITY", 15 * DAY)]
    assert next_checkpoint(state) is None


def test_an_unsigned_assisting_unit_has_its_own_sign_for_rung_until_it_misses_twice() -> None:
    state = _handled(_dispatch(1, signed_at=T0),
                     _dispatch(2, role="ASSISTING", sign_by=T0 + timedelta(hours=1)))
    cp = next_checkpoint(state)
    assert cp is not None and (cp.kind, cp.dispatch_id) == ("SIGN_FOR", "C1-d2")
    state.dispatches["C1-d2"].sign_misses = 2
    cp = next_checkpoint(state)
    assert cp is not None and cp.kind == "WARNING"


def test_moving_the_deadline_moves_every_rung() -> None:
    state = _handled(_dispatch(1, signed_at=T0))
    state.dispatches["C1-d1"].due_at = T0 + 20 * DAY
    cp = next_checkpoint(state)
    assert cp is not None and cp.at == T0 + 10 * DAY  # half of the longer span


def test_active_dispatches_list_the_lead_first_and_skip_closed_ones() -> None:
    state = _handled(_dispatch(3), _dispatch(1, role="ASSISTING"),
                     _dispatch(2, role="ASSISTING", revoked_at=T0))
    assert [d.dispatch_id for d in active_dispatches(state)] == ["C1-d3", "C1-d1"]
    state.dispatches["C1-d3"].completed_at = T0
    assert [d.dispatch_id for d in active_dispatches(state)] == ["C1-d1"]


# --- step builders ------------------------------------------------------------------------

def test_a_step_numbers_its_event_and_records_and_carries_the_case_row() -> None:
    state = _handled(_dispatch(1))
    state.seq = 4
    facts = StepFacts(event_type="SIGNED", status=Status.SIGNED, unit_id="u1",
                      dispatch_id="C1-d1", outbound=[("DispatchRevoked", "u9", {"x": 1})],
                      dispatch_rows=[state.dispatches["C1-d1"]], attributes={"a": "b"})
    step = build_step(state, FILING, facts, T0 + DAY)
    assert step.step == "4-SIGNED"
    [event] = step.lifecycle
    assert (event.event_id, event.seq, event.at, event.status, event.tier) == (
        "C1:4", 4, T0 + DAY, "SIGNED", "T7D")
    assert (event.lead_unit_id, event.street, event.attributes) == ("u1", "110105008",
                                                                      {"a": "b"})
    [out] = step.outbound
    assert out.fields == {"event_id": "C1:4:DispatchRevoked:u9", "x": 1}
    assert step.case.version == 4 and step.case.due_at == T0 + 10 * DAY
    assert (step.case.latitude, step.case.caller_hash) == (39.9, "h")
    assert [r.dispatch_id for r in step.dispatches] == ["C1-d1"]


def test_before_any_dispatch_the_lead_is_the_one_acceptance_chose() -> None:
    acc = _acceptance(lead="bj-heating")
    state = CaseState(acceptance=acc, plan=acc.plan)
    assert lead_unit_id(state) == "bj-heating"
    assert lead_unit_id(CaseState()) is None
    state.seq = 1
    step = build_step(state, FILING, StepFacts("ACCEPTED", Status.ACCEPTED), T0)
    assert step.case.lead_unit_id == "bj-heating" and step.case.due_at is None


def test_a_filed_case_builds_its_row_from_the_filing_alone() -> None:
    state = CaseState(seq=1)
    step = build_step(state, replace(FILING, kind="HELP"), StepFacts("REJECTED",
                                                                      Status.REJECTED), T0)
    assert (step.case.kind, step.case.category, step.case.tier) == ("HELP", None, None)


def test_a_held_step_goes_first_and_keeps_its_evaluation() -> None:
    state = _handled(_dispatch(1))
    state.seq = 1
    evaluation = EvaluationRow(complaint_id="C1", counted=True, responded=True, resolved=True,
                               satisfied=True, satisfaction="SATISFIED", overdue=False,
                               returns=0, escalations=0, reopens=0, score=1.0, evaluated_at=T0)
    held = build_step(state, FILING, StepFacts("EVALUATED", Status.EVALUATED,
                                               evaluation=evaluation), T0)
    state.seq = 2
    closing = build_step(state, FILING, StepFacts("CLOSED", Status.CLOSED), T0)
    merged = merge_steps(held, closing)
    assert [e.seq for e in merged.lifecycle] == [1, 2]
    assert merged.step == "2-CLOSED" and merged.evaluation == evaluation


# --- the lean wire form of a step ---------------------------------------------------------

def _merged_dispatch_step() -> tuple[CaseState, StepRecord]:
    """ACCEPTED held and DISPATCHED carrying it, as a fresh case sends them."""
    state = _handled(_dispatch(1), _dispatch(2, role="ASSISTING"))
    state.seq = 1
    held = build_step(state, FILING, StepFacts("ACCEPTED", Status.ACCEPTED,
                                               attributes={"outcome": "DISPATCH"}), T0)
    state.seq = 2
    issued = [("DispatchIssued", d.unit_id, {
        "complaint_id": "C1", "dispatch_id": d.dispatch_id, "unit_id": d.unit_id,
        "content": "电梯坏了", "kind": "COMPLAINT", "category": "housing.lift",
        "district": "朝阳区", "street": "110105008", "tier": "T7D",
        "issued_at": int(d.issued_at.timestamp() * 1000),
        "sign_by": int(d.sign_by.timestamp() * 1000),
        "due_at": int(d.due_at.timestamp() * 1000)}) for d in state.dispatches.values()]
    step = build_step(state, FILING, StepFacts(
        "DISPATCHED", Status.DISPATCHED, unit_id="u1", dispatch_id="C1-d1", outbound=issued,
        dispatch_rows=list(state.dispatches.values())), T0)
    return state, merge_steps(held, step)


def _size(step: StepRecord) -> int:
    return len(DATA_CONVERTER.payload_converter.to_payloads([step])[0].data)


def test_a_lean_step_expands_to_the_step_it_was_made_from_and_is_smaller() -> None:
    _, step = _merged_dispatch_step()
    lean = slim_step(step)
    assert lean.lean and expand_step(lean) == step
    # The complaint id once, the case row and the second event without the repeats.
    assert (lean.lifecycle[0].event_id, lean.lifecycle[1].tier, lean.case.status) == (
        "", None, "")
    # An issued dispatch keeps only what neither its row nor the case's events say.
    assert lean.outbound[0].fields == {"content": "电梯坏了", "dispatch_id": "C1-d1",
                                       "event_id": 2}
    assert expand_step(lean).outbound[0].fields["event_id"] == "C1:2:DispatchIssued:u1"
    assert _size(lean) < 0.7 * _size(step)
    # A full step passes through both untouched (histories before the lean form).
    assert expand_step(step) is step and slim_step(lean) is lean


def test_a_step_in_the_first_lean_form_still_expands() -> None:
    # As v8 and v9 histories hold them (d2d89af): the outbound records kept every field
    # but the complaint id; a step of a case that ran then may still be retried.
    _, step = _merged_dispatch_step()
    lean = slim_step(step)
    first_form = replace(lean, outbound=[
        replace(o, fields={k: v for k, v in full.fields.items() if k != "complaint_id"}
                | {"event_id": 2}) for o, full in zip(lean.outbound, step.outbound, strict=True)])
    assert first_form != lean and expand_step(first_form) == step


@dataclass(frozen=True)
class _EventBeforeLeanSteps:
    """``LifecycleRecord`` as workers before lean steps decode it: the ids required."""

    event_id: str
    complaint_id: str
    seq: int


def test_a_worker_from_before_lean_steps_cannot_read_one_so_never_misreads_it() -> None:
    _, step = _merged_dispatch_step()
    converter = DATA_CONVERTER.payload_converter
    [payload] = converter.to_payloads([slim_step(step)])
    assert b"event_id\":\"C1" not in payload.data
    lean_event = converter.to_payloads([slim_step(step).lifecycle[0]])
    with pytest.raises(Exception, match=r"event_id|complaint_id"):
        default().payload_converter.from_payloads(lean_event, [_EventBeforeLeanSteps])
    # The full form is what they always read.
    full_event = converter.to_payloads([step.lifecycle[0]])
    assert default().payload_converter.from_payloads(
        full_event, [_EventBeforeLeanSteps])[0].event_id == "C1:1"


def _signed_step(state: CaseState) -> StepRecord:
    state.seq = 3
    state.status = Status.SIGNED
    state.dispatches["C1-d1"].signed_at = T0 + DAY
    return build_step(state, FILING, StepFacts(
        "SIGNED", Status.SIGNED, unit_id="u1", dispatch_id="C1-d1",
        dispatch_rows=[state.dispatches["C1-d1"]]), T0 + DAY)


def _ms(ledger: object) -> object:
    """The rows as the ledger gives them back: timestamps to the millisecond."""
    def cut(row: object) -> object:
        return replace(row, **{f.name: v.replace(microsecond=v.microsecond // 1000 * 1000)  # type: ignore[call-overload]
                               for f in fields(row)  # type: ignore[arg-type]
                               if isinstance(v := getattr(row, f.name), datetime)})
    return replace(ledger, case=cut(ledger.case),  # type: ignore[type-var,attr-defined]
                   dispatches={k: cut(d) for k, d in ledger.dispatches.items()})  # type: ignore[attr-defined]


def test_a_delta_step_leaves_out_what_the_ledger_says_and_expands_with_its_rows() -> None:
    state, dispatched = _merged_dispatch_step()
    ledger = ledger_after(None, dispatched)
    assert ledger is not None and ledger.version == 2
    signed = _signed_step(state)
    delta = slim_step(signed, ledger)
    assert delta.lean and delta.base == 2 and expand_step(delta, ledger) == signed
    # Only what changed: the signature; the case row and the event say nothing repeated.
    row = delta.dispatches[0]
    assert (row.dispatch_id, row.signed_at, row.unit_id, row.due_at.year) == (
        "C1-d1", T0 + DAY, "", 1970)
    assert delta.case is not None and delta.case.channel == "" and delta.lifecycle[0].tier is None
    assert _size(delta) < 0.75 * _size(slim_step(signed))
    # The ledger's own rows (milliseconds), at the base or already at this step (a retry),
    # give the same step to the millisecond, which is all Kafka and the ledger keep.
    after = ledger_after(ledger, signed)
    assert after is not None and after.version == 3
    for rows in (_ms(ledger), _ms(after)):
        again = expand_step(delta, rows)  # type: ignore[arg-type]
        assert _ms(ledger_after(_ms(ledger), again)) == _ms(after)  # type: ignore[arg-type]
        assert again.lifecycle == signed.lifecycle
    with pytest.raises(ValueError, match="ledger"):
        expand_step(delta)


def test_a_delta_step_it_cannot_say_goes_lean_without_the_ledger() -> None:
    state, dispatched = _merged_dispatch_step()
    ledger = ledger_after(None, dispatched)
    signed = _signed_step(state)
    # A column back to None reads as "as the ledger says": the step goes without a base.
    odd = replace(signed, case=replace(signed.case, due_at=None))  # type: ignore[arg-type]
    assert ledger is not None and ledger.case.due_at is not None
    assert slim_step(odd, ledger).base == 0 and expand_step(slim_step(odd, ledger)) == odd


def test_the_ledger_keeps_a_dispatch_s_first_signature_as_its_writer_does() -> None:
    state, dispatched = _merged_dispatch_step()
    ledger = ledger_after(None, dispatched)
    signed = _signed_step(state)
    resigned = replace(signed, dispatches=[replace(signed.dispatches[0],
                                                   signed_at=T0 + 2 * DAY)])
    after = ledger_after(ledger_after(ledger, signed), resigned)
    assert after is not None and after.dispatches["C1-d1"].signed_at == T0 + DAY


def test_a_step_the_lean_form_cannot_say_goes_full() -> None:
    _, step = _merged_dispatch_step()
    # A later event that says None where the one before says a street: the lean form
    # would read it as "the same street", so the step goes as it is.
    odd = replace(step, lifecycle=[step.lifecycle[0], replace(step.lifecycle[1], street=None)])
    assert slim_step(odd) == odd and not slim_step(odd).lean
    # So does a case row that differs from the last event (a filing not yet accepted).
    state = CaseState(seq=1)
    filed = build_step(state, replace(FILING, kind="HELP"),
                       StepFacts("REJECTED", Status.REJECTED), T0)
    assert not slim_step(filed).lean and slim_step(filed) == filed


def test_a_lean_closing_step_keeps_its_evaluation() -> None:
    state = _handled(_dispatch(1))
    state.seq = 1
    evaluation = EvaluationRow(complaint_id="C1", counted=True, responded=True, resolved=True,
                               satisfied=True, satisfaction="SATISFIED", overdue=False,
                               returns=0, escalations=0, reopens=0, score=1.0, evaluated_at=T0)
    state.closed_at = T0
    step = build_step(state, FILING, StepFacts("CLOSED", Status.CLOSED, evaluation=evaluation),
                      T0)
    lean = slim_step(step)
    assert lean.lean and lean.evaluation.complaint_id == "" and expand_step(lean) == step


def _closing_step(state: CaseState) -> StepRecord:
    """CALLBACK, EVALUATED and CLOSED in one step, as a happy-path case closes."""
    evaluation = EvaluationRow(complaint_id="C1", counted=True, responded=True, resolved=True,
                               satisfied=False, satisfaction="UNSATISFIED", overdue=True,
                               returns=1, escalations=0, reopens=0, score=55.0,
                               evaluated_at=T0 + 2 * DAY, lead_unit_id="u1")
    state.overdue = True
    steps = []
    for seq, facts in enumerate((
            StepFacts("CALLBACK", Status.CALLBACK, attributes={"reached": "true"}),
            StepFacts("EVALUATED", Status.EVALUATED, evaluation=evaluation,
                      attributes={"counted": "true", "responded": "true", "resolved": "true",
                                  "satisfied": "false", "score": "55"}),
            StepFacts("CLOSED", Status.CLOSED, attributes={"counted": "true"})), start=7):
        state.seq = seq
        state.closed_at = T0 + 2 * DAY if facts.event_type == "CLOSED" else None
        steps.append(build_step(state, FILING, facts, T0 + 2 * DAY))
    return merge_steps(merge_steps(steps[0], steps[1]), steps[2])


def test_the_events_form_says_a_step_s_time_status_and_evaluation_once() -> None:
    state, dispatched = _merged_dispatch_step()
    ledger = ledger_after(None, dispatched)
    closing = _closing_step(state)
    v1 = slim_step(closing, ledger)
    lean = slim_step(closing, ledger, form=LEAN_EVENTS)
    assert lean.form == LEAN_EVENTS and lean.is_lean and not lean.lean
    assert expand_step(lean, ledger) == closing
    # No name (the last event says it), later events without the step's time, statuses
    # their types name left out, the EVALUATED event's attributes in the evaluation alone.
    assert (lean.step, step_name(lean), step_name(closing)) == ("", "9-CLOSED", "9-CLOSED")
    assert [e.at.year for e in lean.lifecycle] == [2026, 1970, 1970]
    assert [e.status for e in lean.lifecycle] == ["", "", ""]
    assert lean.lifecycle[1].attributes == {}
    assert lean.evaluation is not None and lean.case is not None
    assert (lean.evaluation.evaluated_at.year, lean.evaluation.lead_unit_id,
            lean.evaluation.overdue, lean.case.closed_at) == (1970, None, False, None)
    assert _size(lean) < 0.8 * _size(v1)
    # Expanded from the ledger's own rows (a retry after the write) alike.
    after = ledger_after(ledger, closing)
    assert after is not None and expand_step(lean, after).lifecycle == closing.lifecycle
    # And without a ledger, when the case's rows go whole.
    alone = slim_step(closing, form=LEAN_EVENTS)
    assert alone.form == LEAN_EVENTS and not alone.base and expand_step(alone) == closing


def test_what_the_events_form_cannot_say_goes_in_the_first_lean_form() -> None:
    state, _ = _merged_dispatch_step()
    closing = _closing_step(state)
    # An EVALUATED event whose attributes are not the evaluation's (a score written with
    # more digits than %g keeps): the step goes in the form before.
    odd_event = replace(closing.lifecycle[1], attributes={"score": "55.0"})
    odd = replace(closing, lifecycle=[closing.lifecycle[0], odd_event, closing.lifecycle[2]])
    lean = slim_step(odd, form=LEAN_EVENTS)
    assert expand_step(lean) == odd and lean.lifecycle[1].attributes == {"score": "55.0"}
    # An evaluation that says "not overdue" where its event says overdue: the left-out
    # column would read as the event's, so that step is not sent in the events form.
    assert closing.evaluation is not None
    odd = replace(closing, evaluation=replace(closing.evaluation, overdue=False))
    lean = slim_step(odd, form=LEAN_EVENTS)
    assert lean.form == 0 and lean.lean and expand_step(lean) == odd


@dataclass(frozen=True)
class _StepBeforeTheEventsForm:
    """``StepRecord`` as workers before the events form decode it: the name required."""

    complaint_id: str
    step: str
    lean: bool = False


def test_a_worker_that_does_not_know_the_form_refuses_the_step() -> None:
    state, _ = _merged_dispatch_step()
    lean = slim_step(_closing_step(state), form=LEAN_EVENTS)
    [payload] = DATA_CONVERTER.payload_converter.to_payloads([lean])
    with pytest.raises(Exception, match="step"):
        default().payload_converter.from_payloads([payload], [_StepBeforeTheEventsForm])
    # A newer form than this worker knows is refused too (and retried by another worker).
    with pytest.raises(ValueError, match=f"form {NEWEST_FORM + 1}"):
        expand_step(replace(lean, form=NEWEST_FORM + 1))


def _as_issued(step: StepRecord) -> StepRecord:
    """The step's DispatchIssued records with every field ``ComplaintBase._issued`` writes."""
    roles = {d.dispatch_id: d.role for d in step.dispatches}
    return replace(step, outbound=[replace(o, fields=o.fields | {
        "unit_name": f"unit {o.unit_id}", "role": roles[o.fields["dispatch_id"]],
        "address": None, "caller_phone": None, "attachments": [], "reopened": False})
        for o in step.outbound])


def test_the_dispatches_form_says_what_units_share_once() -> None:
    _, step = _merged_dispatch_step()
    step = _as_issued(step)
    before = slim_step(step, form=LEAN_EVENTS)
    lean = slim_step(step, form=LEAN_DISPATCHES)
    assert lean.form == LEAN_DISPATCHES and expand_step(lean) == step
    # The lead's record: no dispatch id or role (its row says them); the assisting
    # unit's: not the filing either (the lead's record of the step says it).
    assert [o.fields for o in lean.outbound] == [
        {"content": "电梯坏了", "event_id": 2, "unit_name": "unit u1"},
        {"event_id": 2, "unit_name": "unit u2"}]
    # The assisting row's times are the lead's; the lead's deadline is the case's.
    lead, assisting = lean.dispatches
    assert (lead.issued_at, lead.due_at.year) == (T0, 1970)
    assert (assisting.issued_at.year, assisting.sign_by.year, assisting.unit_id,
            assisting.role) == (1970, 1970, "u2", "ASSISTING")
    assert _size(lean) < _size(before) - 150
    # An assisting record that says something else of the filing keeps it.
    other = replace(step, outbound=[step.outbound[0], replace(
        step.outbound[1], fields=step.outbound[1].fields | {"content": "电梯又坏了"})])
    lean = slim_step(other, form=LEAN_DISPATCHES)
    assert lean.outbound[1].fields == {"content": "电梯又坏了", "event_id": 2,
                                       "unit_name": "unit u2"}
    assert expand_step(lean) == other


def test_a_revocation_in_the_dispatches_form_says_its_time_by_the_row() -> None:
    state, dispatched = _merged_dispatch_step()
    ledger = ledger_after(None, dispatched)
    state.seq = 3
    d2 = state.dispatches["C1-d2"]
    d2.revoked_at = T0 + DAY
    revoked = build_step(state, FILING, StepFacts(
        "REVOKED", Status.DISPATCHED, dispatch_rows=[d2], outbound=[(
            "DispatchRevoked", "u2", {"complaint_id": "C1", "dispatch_id": "C1-d2",
                                      "unit_id": "u2", "at": int((T0 + DAY).timestamp() * 1000),
                                      "reason": "the lead unit completed the case"})]),
        T0 + DAY)
    lean = slim_step(revoked, ledger, form=LEAN_DISPATCHES)
    assert lean.base == 2 and expand_step(lean, ledger) == revoked
    assert lean.outbound[0].fields == {"event_id": 3,
                                       "reason": "the lead unit completed the case"}


def test_the_ids_form_leaves_the_step_s_own_ids_and_times_to_the_rest() -> None:
    _, step = _merged_dispatch_step()
    step = _as_issued(step)
    assert step.case is not None and step.case.due_at is not None
    due = step.case.due_at.isoformat()
    dispatched = replace(step.lifecycle[1], attributes={"unit_name": "unit u1", "due_at": due})
    step = replace(step, lifecycle=[step.lifecycle[0], dispatched])
    before = slim_step(step, form=LEAN_DISPATCHES)
    lean = slim_step(step, form=LEAN_IDS)
    assert lean.form == LEAN_IDS and expand_step(lean) == step
    # The records' event ids are the step's seq, the rows' issue time the step's time,
    # the DISPATCHED event's deadline the case row's.
    assert all("event_id" not in o.fields for o in lean.outbound)
    assert [d.issued_at.year for d in lean.dispatches] == [1970, 1970]
    assert lean.lifecycle[1].attributes == {"unit_name": "unit u1", "due_at": ""}
    assert _size(lean) < _size(before) - 80
    # The complaint id goes too where the workflow's id says it (ComplaintBase._send).
    bare = replace(lean, complaint_id="")
    assert with_complaint_id(bare, "complaint-C1") == lean
    with pytest.raises(ValueError, match="complaint"):
        expand_step(bare)
    with pytest.raises(ValueError, match="not a case"):
        with_complaint_id(bare, "governance-plan-7")


def test_the_references_form_names_dispatches_by_suffix_and_units_by_their_rows() -> None:
    state, dispatched = _merged_dispatch_step()
    ledger = ledger_after(None, dispatched)
    signed = _signed_step(state)
    before = slim_step(signed, ledger, form=LEAN_IDS)
    lean = slim_step(signed, ledger, form=LEAN_REFS)
    assert lean.form == LEAN_REFS and expand_step(lean, ledger) == signed
    assert lean.dispatches[0].dispatch_id == "-d1"
    assert (lean.lifecycle[0].dispatch_id, lean.lifecycle[0].unit_id) == ("-d1", None)
    # The signature changed nothing of the case row: no row at all.
    assert before.case == CaseRow() and lean.case is None
    assert _size(lean) < _size(before) - 25  # more with longer complaint ids
    # record_step reads the ledger's rows by whole ids: with_complaint_id gives them back.
    assert with_complaint_id(lean, "complaint-C1").dispatches[0].dispatch_id == "C1-d1"
    # A dispatch id that is not the case's own keeps its whole spelling.
    odd = replace(signed, dispatches=[replace(signed.dispatches[0], dispatch_id="X-d1")],
                  lifecycle=[replace(signed.lifecycle[0], dispatch_id="X-d1")])
    lean = slim_step(odd, form=LEAN_REFS)
    assert lean.dispatches[0].dispatch_id == "X-d1" and expand_step(lean) == odd
    # An event with its dispatch but no unit would read as the row's unit: that step goes
    # in the leanest form before that says it (the ids form), not the first lean one.
    odd = replace(signed, lifecycle=[replace(signed.lifecycle[0], unit_id=None)])
    lean = slim_step(odd, ledger, form=LEAN_REFS)
    assert (lean.form, lean.base) == (LEAN_IDS, 2) and expand_step(lean, ledger) == odd


# --- state copies -------------------------------------------------------------------------

def test_snapshot_and_restore_carry_every_snapshot_field() -> None:
    state = _handled(_dispatch(1, signed_at=T0), _dispatch(2, role="ASSISTING"))
    state.status = Status.IN_PROGRESS
    state.seq, state.urges, state.returns, state.level = 9, 1, 1, "DISTRICT"
    state.excluded_units = ["u0"]
    state.seen = {"e1": Ack(accepted=True)}
    state.indexed = {"HotlineStatus": "IN_PROGRESS"}
    state.timers_version = 5  # within one run only
    carried = snapshot(state)
    assert carried.status == "IN_PROGRESS"
    assert [d.dispatch_id for d in carried.dispatches] == ["C1-d1", "C1-d2"]
    back = restore(carried)
    for f in fields(CaseSnapshot):
        if f.name not in ("status", "dispatches"):
            assert getattr(back, f.name) == getattr(state, f.name), f.name
    assert back.status is Status.IN_PROGRESS and back.dispatches == state.dispatches
    assert back.timers_version == 0
    # Copies, not shared lists: the new run's changes do not reach the old snapshot.
    back.excluded_units.append("u1")
    assert carried.excluded_units == ["u0"]


def test_the_snapshot_keeps_only_the_recent_timeline() -> None:
    state = _handled(_dispatch(1))
    for seq in range(1, TIMELINE_KEPT + 11):
        state.seq = seq
        state.timeline.extend(build_step(state, FILING, StepFacts("URGED", Status.DISPATCHED),
                                         T0).lifecycle)
    kept = snapshot(state).timeline
    assert len(kept) == TIMELINE_KEPT and kept[0].seq == 11


def test_remembered_answers_are_bounded_oldest_first() -> None:
    state = CaseState()
    for i in range(SEEN_KEPT + 2):
        state.remember(f"e{i}", Ack(accepted=True))
    assert len(state.seen) == SEEN_KEPT and "e0" not in state.seen and "e1" not in state.seen
    assert f"e{SEEN_KEPT + 1}" in state.seen
