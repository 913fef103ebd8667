"""Pure builders of what one lifecycle step writes: its event, ledger rows and records.

``ComplaintWorkflow._record`` numbers the step, calls :func:`build_step` and hands the
result to the ``record_step`` activity; nothing here touches Temporal, so each builder is
unit-tested alone (``tests/workflows/test_steps.py``).
"""

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from workflows.ids import complaint_id_of
from workflows.model import (
    LEFT_OUT,
    CaseRow,
    DispatchRow,
    DispatchState,
    EvaluationRow,
    Filing,
    LedgerRows,
    LifecycleRecord,
    Outbound,
    ReviewCandidate,
    Status,
    StepRecord,
)
from workflows.state import CaseState

# record_step's error type for a delta step whose base the ledger does not hold.
NO_LEDGER_BASE = "NoLedgerBase"
# The wire forms after the first lean one (``StepRecord.form``), each leaner than the one
# before: the events form (PATCH_LEAN_EVENTS), the dispatches form
# (PATCH_LEAN_DISPATCHES), the ids form (PATCH_LEAN_IDS) and the references form
# (PATCH_LEAN_REFS). A worker refuses a step in a form newer than it knows.
LEAN_EVENTS = 2
LEAN_DISPATCHES = 3
LEAN_IDS = 4
LEAN_REFS = 5
NEWEST_FORM = LEAN_REFS

# (record name, unit id, fields) of one outbound Kafka record, before its event id.
OutboundSpec = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class StepFacts:
    """What the workflow says about one step; the state says the rest."""

    event_type: str
    status: Status
    unit_id: str | None = None
    dispatch_id: str | None = None
    reason: str | None = None
    outbound: list[OutboundSpec] = field(default_factory=list)
    dispatch_rows: list[DispatchState] = field(default_factory=list)
    evaluation: EvaluationRow | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    candidates: list[ReviewCandidate] | None = None


def lead_unit_id(state: CaseState) -> str | None:
    """The unit that leads now: the lead dispatch's, else the one acceptance chose."""
    lead = state.dispatches.get(state.lead_dispatch_id)
    if lead is not None:
        return lead.unit_id
    acc = state.acceptance
    return acc.lead.unit_id if acc and acc.lead else None


def build_step(state: CaseState, filing: Filing, facts: StepFacts, now: datetime) -> StepRecord:
    """The step numbered ``state.seq``: its lifecycle event, case row, dispatch rows and
    outbound records (each with an event id unique to the step, record and unit)."""
    acc = state.acceptance
    cid = filing.complaint_id
    seq = state.seq
    lead = state.dispatches.get(state.lead_dispatch_id)
    lead_unit = lead_unit_id(state)
    tier = state.plan.tier if state.plan else None
    event = LifecycleRecord(
        event_id=f"{cid}:{seq}", complaint_id=cid, seq=seq, at=now,
        event_type=facts.event_type, status=facts.status.value, tier=tier,
        kind=acc.kind if acc else None, category=acc.category if acc else None,
        district=acc.district if acc else None, street=acc.street if acc else None,
        lead_unit_id=lead_unit, unit_id=facts.unit_id, dispatch_id=facts.dispatch_id,
        reason=facts.reason, escalation_level=state.level, overdue=state.overdue,
        attributes=dict(facts.attributes), candidates=facts.candidates,
    )
    case = CaseRow(
        complaint_id=cid, version=seq, status=facts.status.value, filed_at=filing.filed_at,
        channel=filing.channel, kind=acc.kind if acc else filing.kind,
        category=acc.category if acc else None, tier=tier,
        district=acc.district if acc else None, street=acc.street if acc else None,
        lead_unit_id=lead_unit, due_at=lead.due_at if lead else None,
        overdue=state.overdue, escalation_level=state.level,
        closed_at=state.closed_at, outcome=acc.outcome if acc else None,
        caller_hash=acc.caller_hash if acc else None,
        latitude=filing.latitude, longitude=filing.longitude,
    )
    return StepRecord(
        complaint_id=cid, step=f"{seq}-{facts.event_type}", lifecycle=[event],
        outbound=[
            Outbound(record=name, unit_id=unit,
                     fields={"event_id": f"{cid}:{seq}:{name}:{unit}", **fields})
            for name, unit, fields in facts.outbound
        ],
        case=case, dispatches=[d.row(cid) for d in facts.dispatch_rows],
        evaluation=facts.evaluation,
    )


def merge_steps(held: StepRecord, step: StepRecord) -> StepRecord:
    """A held step and the one that carries it, as one ``record_step`` (held first)."""
    return replace(
        step, lifecycle=[*held.lifecycle, *step.lifecycle],
        outbound=[*held.outbound, *step.outbound],
        dispatches=[*held.dispatches, *step.dispatches],
        evaluation=step.evaluation or held.evaluation,
    )


# --- the lean wire form of a step (PATCH_LEAN_STEPS) ----------------------------------
# Every step repeats the case: each lifecycle event its classification, the case row the
# last event's, every row the complaint id. A lean step leaves out what the activity
# can put back from the rest of the step; :func:`slim_step` only sends it lean when
# :func:`expand_step` gives back exactly the step it was made from.

_EVENT_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(LifecycleRecord)}
# A later event of the same step says these as the event before it does.
_INHERITED = ("tier", "kind", "category", "district", "street", "lead_unit_id",
              "escalation_level", "overdue")
# The case row says these as the step's last event does.
_CASE_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(CaseRow)}
_CASE_FROM_EVENT = ("kind", "category", "tier", "district", "street", "lead_unit_id",
                    "overdue", "escalation_level")


def _outbound_event_id(cid: str, out: Outbound) -> int | None:
    """The step seq in an outbound record's event id, when it is the usual one."""
    event_id = out.fields.get("event_id")
    head, tail = f"{cid}:", f":{out.record}:{out.unit_id}"
    if (isinstance(event_id, str) and event_id.startswith(head) and event_id.endswith(tail)
            and event_id[len(head):-len(tail)].isdigit()):
        return int(event_id[len(head):-len(tail)])
    return None


# Every outbound record names its case and unit; a DispatchIssued also says these as the
# step's last lifecycle event does,
_OUTBOUND_FROM_EVENT = ("kind", "category", "district", "street", "tier")
# ... and these, in epoch milliseconds, as the step's row of its dispatch does.
_OUTBOUND_FROM_ROW = ("issued_at", "sign_by", "due_at")


def _ms(at: datetime) -> int:
    """As the workflow writes outbound timestamps (``complaint_base._ms``)."""
    return int(at.timestamp() * 1000)


# A DispatchIssued says the filing as its case was filed; in the dispatches form a later
# one in the same step (an assisting unit's) says it as the one before does,
_OUTBOUND_FROM_PREVIOUS = ("content", "address", "caller_phone", "attachments")


def _derived_fields(cid: str, out: Outbound, last: LifecycleRecord | None,
                    rows: list[DispatchRow], form: int = 0,
                    previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields of ``out`` that a lean step may leave out: what the rest says of them.
    ``previous``: the fields of the step's DispatchIssued before ``out``, if any."""
    derived: dict[str, Any] = {"complaint_id": cid, "unit_id": out.unit_id}
    dispatches = form >= LEAN_DISPATCHES and out.record in ("DispatchIssued",
                                                            "DispatchRevoked")
    if out.record != "DispatchIssued" and not dispatches:
        return derived
    by_id = {d.dispatch_id: d for d in rows}
    dispatch_id = out.fields.get("dispatch_id")
    row = by_id.get(dispatch_id) if isinstance(dispatch_id, str) else None
    if dispatches:
        # The unit's newest row of the step names the dispatch (the form leaves it out).
        mine = [d for d in rows if d.unit_id == out.unit_id]
        if mine:
            derived["dispatch_id"] = mine[-1].dispatch_id
            row = row or (mine[-1] if dispatch_id is None else None)
    if out.record == "DispatchRevoked":
        if row is not None and row.revoked_at is not None:
            derived["at"] = _ms(row.revoked_at)
        return derived
    if last is not None:
        derived |= {name: getattr(last, name) for name in _OUTBOUND_FROM_EVENT}
    if row is not None:
        derived |= {name: _ms(getattr(row, name)) for name in _OUTBOUND_FROM_ROW}
    if dispatches:
        # Left out where they are what nearly every dispatch says (fresh each time: the
        # expanded record keeps the value, and must not share it).
        derived |= {"reopened": False, "attachments": [], "address": None,
                    "caller_phone": None}
        if row is not None:
            derived["role"] = row.role
        if previous is not None:
            derived |= {k: list(v) if isinstance(v := previous[k], list) else v
                        for k in _OUTBOUND_FROM_PREVIOUS if k in previous}
    return derived


def _slim_outbound(step: StepRecord, form: int) -> list[Outbound]:
    cid, last = step.complaint_id, step.lifecycle[-1] if step.lifecycle else None
    out: list[Outbound] = []
    previous = None
    for o in step.outbound:
        derived = _derived_fields(cid, o, last, step.dispatches, form, previous)
        slim = {k: v for k, v in o.fields.items() if k not in derived or derived[k] != v}
        if (seq := _outbound_event_id(cid, o)) is not None:
            slim["event_id"] = seq
            if form >= LEAN_IDS and last is not None and seq == last.seq:
                del slim["event_id"]  # the ids form: the step's own seq goes without saying
        out.append(replace(o, fields=slim))
        previous = o.fields if o.record == "DispatchIssued" else previous
    return out


def _expand_outbound(step: StepRecord, last: LifecycleRecord | None,
                     rows: list[DispatchRow]) -> list[Outbound]:
    cid = step.complaint_id
    out: list[Outbound] = []
    previous = None
    for o in step.outbound:
        # A lean step from before a field could be left out has it: setdefault keeps it.
        full = dict(o.fields)
        for k, v in _derived_fields(cid, o, last, rows, step.form, previous).items():
            full.setdefault(k, v)
        if step.form >= LEAN_IDS and last is not None:
            full.setdefault("event_id", last.seq)
        if isinstance(full.get("event_id"), int):
            full["event_id"] = f"{cid}:{full['event_id']}:{o.record}:{o.unit_id}"
        # The usual key order (event id first), though no reader depends on it.
        if "event_id" in full:
            full = {"event_id": full.pop("event_id"), **full}
        out.append(replace(o, fields=full))
        previous = full if o.record == "DispatchIssued" else previous
    return out


def slim_step(step: StepRecord, ledger: LedgerRows | None = None,
              form: int = 0) -> StepRecord:
    """``step`` lean, or as it is when no lean form of it would expand back to it.

    With ``ledger`` (what the ledger holds after the last recorded step), the lean step
    also leaves out the case's and dispatches' columns unchanged since then, and the
    first event's classification where the case row says it (``StepRecord.base``).
    ``form``: the leanest form the case may send (``LEAN_EVENTS`` on; 0: the first lean
    form); a step that form cannot say goes in the leanest one before it that can.
    """
    if step.is_lean:
        return step
    for f in sorted({0, *range(LEAN_EVENTS, form + 1)}, reverse=True):
        lean = _lean(step, f)
        for base in (ledger, None) if ledger is not None else (None,):
            candidate = lean if base is None else _delta(lean, base)
            if f >= LEAN_DISPATCHES:
                candidate = _inherit_rows(candidate, step, base)
            if f >= LEAN_REFS:
                candidate = _lean_refs(candidate, step)
            if expand_step(candidate, base) == step:
                return candidate
    return step


def _lean(step: StepRecord, form: int = 0) -> StepRecord:
    events = []
    for i, ev in enumerate(step.lifecycle):
        blank: dict[str, Any] = {"event_id": "", "complaint_id": ""}
        if i:
            blank |= {name: _EVENT_DEFAULTS[name] for name in _INHERITED}
        events.append(replace(ev, **blank))
    case = step.case and replace(
        step.case, complaint_id="", version=0, status="",
        **{name: _CASE_DEFAULTS[name] for name in _CASE_FROM_EVENT})
    lean = replace(
        step, lean=True, lifecycle=events, case=case,
        dispatches=[replace(d, complaint_id="") for d in step.dispatches],
        evaluation=step.evaluation and replace(step.evaluation, complaint_id=""),
        outbound=_slim_outbound(step, form),
    )
    return _lean_events(step, lean, form) if form >= LEAN_EVENTS else lean


# --- what the ledger already says (PATCH_DELTA_STEPS) -------------------------------------
# The case row's columns a step never derives from its events, and a dispatch row's
# columns: a delta step sends those that changed since the ledger's version.
_CASE_KEPT = tuple(f.name for f in fields(CaseRow)
                   if f.name not in (*_CASE_FROM_EVENT, "complaint_id", "version", "status"))
_DISPATCH_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(DispatchRow)}
_DISPATCH_KEPT = tuple(f.name for f in fields(DispatchRow)
                       if f.name not in ("dispatch_id", "complaint_id"))


def _blank(row: Any, base: Any, names: tuple[str, ...], defaults: dict[str, Any]) -> Any:
    """``row`` without the columns ``base`` says alike."""
    return replace(row, **{n: defaults[n] for n in names
                           if getattr(row, n) == getattr(base, n)})


def _fill(row: Any, base: Any, names: tuple[str, ...], defaults: dict[str, Any]) -> Any:
    """``row`` with its left-out columns (at their defaults) as ``base`` says them."""
    return replace(row, **{n: getattr(base, n) for n in names
                           if getattr(row, n) == defaults[n]})


def _delta(lean: StepRecord, ledger: LedgerRows) -> StepRecord:
    events = list(lean.lifecycle)
    if events:
        events[0] = _blank(events[0], ledger.case, _INHERITED, _EVENT_DEFAULTS)
    return replace(
        lean, base=ledger.version, lifecycle=events,
        case=lean.case and _blank(lean.case, ledger.case, _CASE_KEPT, _CASE_DEFAULTS),
        dispatches=[_blank(d, ledger.dispatches[d.dispatch_id], _DISPATCH_KEPT,
                           _DISPATCH_DEFAULTS) if d.dispatch_id in ledger.dispatches else d
                    for d in lean.dispatches],
    )


def ledger_after(ledger: LedgerRows | None, step: StepRecord) -> LedgerRows | None:
    """What the ledger holds once ``step`` (full) is recorded, by its writer's rules
    (``activities.ledger``): the case row as the step says it, a dispatch's sign-by and
    deadline as the newest step says them, its other timestamps and result as the first
    step that said them."""
    if step.case is None or step.is_lean:
        return ledger
    dispatches = dict(ledger.dispatches) if ledger else {}
    for d in step.dispatches:
        old = dispatches.get(d.dispatch_id)
        dispatches[d.dispatch_id] = d if old is None else replace(
            d, **{n: getattr(old, n) for n in ("signed_at", "completed_at", "revoked_at",
                                                "result") if getattr(old, n) is not None})
    return LedgerRows(version=step.case.version, case=step.case, dispatches=dispatches)


def expand_step(step: StepRecord, ledger: LedgerRows | None = None) -> StepRecord:
    """The full step a lean one stands for (a full step as it is). A delta step
    (``base``) needs ``ledger``: the ledger's rows at that version (or after the step
    itself, when a retry finds it already written)."""
    if not step.is_lean:
        return step
    if step.form > NEWEST_FORM:
        # Sent by a newer workflow worker: a newer activity worker reads it. Retried.
        raise ValueError(f"step {step_name(step)} is in form {step.form}, newer than "
                         f"this worker's {NEWEST_FORM}")
    if step.base and ledger is None:
        raise ValueError(f"step {step_name(step)} leaves out what the ledger says: "
                         "pass its rows")
    if not step.complaint_id:
        raise ValueError(f"step {step_name(step)} leaves out its complaint id: "
                         "with_complaint_id puts back the workflow's")
    step = _resolve_refs(step)
    events_form = step.form >= LEAN_EVENTS
    cid = step.complaint_id
    events: list[LifecycleRecord] = []
    for ev in step.lifecycle:
        fill: dict[str, Any] = {"event_id": ev.event_id or f"{cid}:{ev.seq}",
                                "complaint_id": ev.complaint_id or cid}
        if events_form:
            fill |= {"status": ev.status or ev.event_type}
            if events and ev.at == LEFT_OUT:
                fill |= {"at": events[-1].at}
        if events:
            fill |= {name: getattr(events[-1], name) for name in _INHERITED
                     if getattr(ev, name) == _EVENT_DEFAULTS[name]}
        elif step.base and ledger is not None:
            fill |= {name: getattr(ledger.case, name) for name in _INHERITED
                     if getattr(ev, name) == _EVENT_DEFAULTS[name]}
        events.append(replace(ev, **fill))
    last = events[-1] if events else None
    case = step.case
    if case is None and step.base and step.form >= LEAN_REFS:
        case = CaseRow()  # the references form: nothing changed, the ledger says it all
    if case is not None and step.base and ledger is not None:
        case = _fill(case, ledger.case, _CASE_KEPT, _CASE_DEFAULTS)
    if case is not None and last is not None:
        case = replace(case, complaint_id=cid, version=last.seq, status=last.status,
                       **{name: getattr(last, name) for name in _CASE_FROM_EVENT})
    dispatches = list(step.dispatches)
    if step.base and ledger is not None:
        dispatches = [_fill(d, ledger.dispatches[d.dispatch_id], _DISPATCH_KEPT,
                            _DISPATCH_DEFAULTS) if d.dispatch_id in ledger.dispatches else d
                      for d in dispatches]
    dispatches = [replace(d, complaint_id=d.complaint_id or cid) for d in dispatches]
    if step.form >= LEAN_DISPATCHES:
        dispatches = _inherited_rows(dispatches, case, ledger if step.base else None, last,
                                     step.form)
    if step.form >= LEAN_REFS:
        units = {d.dispatch_id: d.unit_id for d in dispatches}
        events = [replace(e, unit_id=units[e.dispatch_id])
                  if e.unit_id is None and e.dispatch_id in units else e for e in events]
        last = events[-1] if events else None
    evaluation = step.evaluation and replace(
        step.evaluation, complaint_id=step.evaluation.complaint_id or cid)
    if events_form:
        case, evaluation, events = _expand_events(case, evaluation, events, step.form)
    return replace(
        step, lean=False, base=0, form=0, step=step.step or step_name(step),
        lifecycle=events, case=case, dispatches=dispatches, evaluation=evaluation,
        outbound=_expand_outbound(step, events[-1] if events else None, dispatches),
    )


# --- the dispatches form (StepRecord.form 3, PATCH_LEAN_DISPATCHES) -----------------------
# A step that dispatches to several units says their common times once: a new row's
# issue time, sign-by and deadline as the row before it in the step does (the first
# one's deadline as the case row does). Its DispatchIssued records name their dispatch
# and role by the unit's row, an assisting unit's the filing as the lead's record does,
# and none the usual empty values; a DispatchRevoked says its time by the row.
_ROW_FROM_PREVIOUS = ("issued_at", "sign_by", "due_at")


def _inherited_from(rows: list[DispatchRow], i: int, case: CaseRow | None,
                    last: LifecycleRecord | None, form: int) -> dict[str, Any]:
    """What row ``i`` of a step would say by the row before it (or the case row); in
    the ids form its issue time by the step's (last) event."""
    said: dict[str, Any] = {}
    if i:
        said = {n: getattr(rows[i - 1], n) for n in _ROW_FROM_PREVIOUS}
    elif case is not None and case.due_at is not None:
        said = {"due_at": case.due_at}
    if form >= LEAN_IDS and last is not None:
        said["issued_at"] = last.at
    return said


def _inherit_rows(candidate: StepRecord, full: StepRecord,
                  ledger: LedgerRows | None) -> StepRecord:
    """``candidate`` without the new rows' columns the row before says alike."""
    known = ledger.dispatches if ledger is not None else {}
    last = full.lifecycle[-1] if full.lifecycle else None
    rows = []
    for i, (d, was) in enumerate(zip(candidate.dispatches, full.dispatches, strict=True)):
        if d.dispatch_id not in known:
            said = _inherited_from(full.dispatches, i, full.case, last, candidate.form)
            d = replace(d, **{n: _DISPATCH_DEFAULTS[n] for n, v in said.items()
                              if getattr(was, n) == v})
        rows.append(d)
    return replace(candidate, dispatches=rows)


def _inherited_rows(rows: list[DispatchRow], case: CaseRow | None,
                    ledger: LedgerRows | None, last: LifecycleRecord | None,
                    form: int) -> list[DispatchRow]:
    """The new rows' left-out columns put back, each from the (full) row before it."""
    known = ledger.dispatches if ledger is not None else {}
    out: list[DispatchRow] = []
    for i, d in enumerate(rows):
        if d.dispatch_id not in known:
            said = _inherited_from(out, i, case, last, form)
            d = replace(d, **{n: v for n, v in said.items()
                              if getattr(d, n) == _DISPATCH_DEFAULTS[n]})
        out.append(d)
    return out


# --- the events form (StepRecord.form 2, PATCH_LEAN_EVENTS) -------------------------------
# The events of one step happen at one moment, most name their status by their type, and
# a closing step says its evaluation twice (the row, and the EVALUATED event's attributes)
# and its close time twice (the case row, and the CLOSED event). The events form says
# each once. Its step has no name (the last event's seq and type say it), which every
# worker from before requires: such a worker fails on the step instead of misreading it.
_EVALUATION_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(EvaluationRow)}
# Events whose "due_at" attribute is the case's deadline after them (``dispatch``,
# ``reopen``): the ids form says it "" (as the case row says it; an event without the
# attribute stays without it).
_DEADLINE_EVENTS = ("DISPATCHED", "REOPENED")
# The evaluation's columns that its event says: the event's time, lead unit and overdue.
_EVALUATION_FROM_EVENT = (("evaluated_at", "at"), ("lead_unit_id", "lead_unit_id"),
                          ("overdue", "overdue"))


def with_complaint_id(step: StepRecord, workflow_id: str | None) -> StepRecord:
    """``step`` with the complaint id the ids form leaves out (its workflow's id says it:
    ``record_step`` runs for that workflow)."""
    if not step.complaint_id:
        cid = complaint_id_of(workflow_id or "")
        if cid is None:
            raise ValueError(f"step {step_name(step)} names no complaint and its workflow "
                             f"{workflow_id!r} is not a case's")
        step = replace(step, complaint_id=cid)
    # Its dispatch ids too, so the ledger's rows are read by their own ids.
    return _resolve_refs(step)


def step_name(step: StepRecord) -> str:
    """``step.step``, or in the events form (which leaves it out) what its last event says."""
    if step.step or not step.lifecycle:
        return step.step
    last = step.lifecycle[-1]
    return f"{last.seq}-{last.event_type}"


def evaluated_attributes(evaluation: EvaluationRow) -> dict[str, str]:
    """The EVALUATED event's attributes, as ``ComplaintWorkflow.evaluate`` writes them."""
    return {"counted": str(evaluation.counted).lower(),
            "responded": str(evaluation.responded).lower(),
            "resolved": str(evaluation.resolved).lower(),
            "satisfied": str(evaluation.satisfied).lower(), "score": f"{evaluation.score:g}"}


def _evaluation_event(events: list[LifecycleRecord]) -> LifecycleRecord | None:
    """The event an evaluation goes with: EVALUATED, else (not counted) the last one."""
    return next((e for e in events if e.event_type == "EVALUATED"),
                events[-1] if events else None)


def _lean_events(full: StepRecord, lean: StepRecord, form: int) -> StepRecord:
    """``lean`` (made from ``full``) in the events form; compared with ``full``'s values."""
    events = []
    for i, (ev, was) in enumerate(zip(lean.lifecycle, full.lifecycle, strict=True)):
        blank: dict[str, Any] = {}
        if i and was.at == full.lifecycle[i - 1].at:
            blank["at"] = LEFT_OUT
        if was.status == was.event_type:
            blank["status"] = ""
        if (was.event_type == "EVALUATED" and full.evaluation is not None
                and was.attributes == evaluated_attributes(full.evaluation)):
            blank["attributes"] = {}
        if (form >= LEAN_IDS and was.event_type in _DEADLINE_EVENTS and full.case is not None
                and full.case.due_at is not None
                and was.attributes.get("due_at") == full.case.due_at.isoformat()):
            blank["attributes"] = {**ev.attributes, "due_at": ""}
        events.append(replace(ev, **blank))
    evaluation = lean.evaluation
    said = _evaluation_event(full.lifecycle)
    if evaluation is not None and said is not None:
        evaluation = replace(evaluation, **{
            col: _EVALUATION_DEFAULTS[col] for col, attr in _EVALUATION_FROM_EVENT
            if getattr(evaluation, col) == getattr(said, attr)})
    case = lean.case
    last = full.lifecycle[-1] if full.lifecycle else None
    if (case is not None and last is not None and last.event_type == "CLOSED"
            and case.closed_at == last.at):
        case = replace(case, closed_at=None)
    return replace(lean, lean=False, form=form, step="", lifecycle=events,
                   evaluation=evaluation, case=case)


def _expand_events(case: CaseRow | None, evaluation: EvaluationRow | None,
                   events: list[LifecycleRecord], form: int,
                   ) -> tuple[CaseRow | None, EvaluationRow | None, list[LifecycleRecord]]:
    """What the events form left out of the case row, the evaluation and the EVALUATED
    event, put back from the (expanded) events and the evaluation; in the ids form a
    dispatch event's deadline from the case row."""
    if form >= LEAN_IDS and case is not None and case.due_at is not None:
        due = case.due_at.isoformat()
        events = [replace(e, attributes={**e.attributes, "due_at": due})
                  if e.event_type in _DEADLINE_EVENTS and e.attributes.get("due_at") == ""
                  else e for e in events]
    last = events[-1] if events else None
    if (case is not None and last is not None and last.event_type == "CLOSED"
            and case.closed_at is None):
        case = replace(case, closed_at=last.at)
    said = _evaluation_event(events)
    if evaluation is not None and said is not None:
        evaluation = replace(evaluation, **{
            col: getattr(said, attr) for col, attr in _EVALUATION_FROM_EVENT
            if getattr(evaluation, col) == _EVALUATION_DEFAULTS[col]})
    if evaluation is not None:
        events = [replace(e, attributes=evaluated_attributes(evaluation))
                  if e.event_type == "EVALUATED" and not e.attributes else e for e in events]
    return case, evaluation, events


# --- the references form (StepRecord.form 5, PATCH_LEAN_REFS) -----------------------------
# A case's dispatch ids are its complaint id and a suffix (``ComplaintBase._new_dispatch``),
# an event's unit is the one its dispatch's row names, and a step that changes nothing of
# the case row need not send the row. The references form writes a dispatch id as its
# suffix ("-d1"), an event's unit only where its row does not say it, and no empty case
# row of a delta step.


def _relative(cid: str, dispatch_id: str | None) -> str | None:
    head = f"{cid}-"
    if dispatch_id and dispatch_id.startswith(head) and len(dispatch_id) > len(head):
        return dispatch_id[len(cid):]
    return dispatch_id


def _absolute(cid: str, dispatch_id: Any) -> Any:
    return cid + dispatch_id if isinstance(dispatch_id, str) and dispatch_id[:1] == "-" else (
        dispatch_id)


def _lean_refs(candidate: StepRecord, full: StepRecord) -> StepRecord:
    """``candidate`` (made from ``full``) in the references form."""
    cid = full.complaint_id
    units = {d.dispatch_id: d.unit_id for d in full.dispatches}
    events = [replace(ev, dispatch_id=_relative(cid, ev.dispatch_id),
                      unit_id=None if was.dispatch_id in units
                      and units[was.dispatch_id] == was.unit_id else ev.unit_id)
              for ev, was in zip(candidate.lifecycle, full.lifecycle, strict=True)]
    rows = [replace(d, dispatch_id=_relative(cid, d.dispatch_id) or d.dispatch_id)
            for d in candidate.dispatches]
    outbound = [replace(o, fields={**o.fields, "dispatch_id": _relative(cid, o.fields[
        "dispatch_id"])}) if isinstance(o.fields.get("dispatch_id"), str) else o
        for o in candidate.outbound]
    case = None if candidate.base and candidate.case == CaseRow() else candidate.case
    return replace(candidate, form=LEAN_REFS, lifecycle=events, dispatches=rows,
                   outbound=outbound, case=case)


def _resolve_refs(step: StepRecord) -> StepRecord:
    """``step`` with its dispatch ids whole again (a step in another form as it is)."""
    if step.form < LEAN_REFS or not step.complaint_id:
        return step
    cid = step.complaint_id
    return replace(
        step,
        lifecycle=[replace(e, dispatch_id=_absolute(cid, e.dispatch_id))
                   for e in step.lifecycle],
        dispatches=[replace(d, dispatch_id=_absolute(cid, d.dispatch_id))
                    for d in step.dispatches],
        outbound=[replace(o, fields={**o.fields, "dispatch_id": _absolute(
            cid, o.fields["dispatch_id"])}) if "dispatch_id" in o.fields else o
            for o in step.outbound])
