"""Pure builders of what one lifecycle step writes: its event, ledger rows and records.

``ComplaintWorkflow._record`` numbers the step, calls :func:`build_step` and hands the
result to the ``record_step`` activity; nothing here touches Temporal, so each builder is
unit-tested alone (``tests/workflows/test_steps.py``).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from workflows.model import (
    CaseRow,
    DispatchState,
    EvaluationRow,
    Filing,
    LifecycleRecord,
    Outbound,
    ReviewCandidate,
    Status,
    StepRecord,
)
from workflows.state import CaseState

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
