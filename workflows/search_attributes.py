"""Search attributes of a case: what supervisors filter on. Never personal data.

Supervisors' commands, the reports and Open311 read the ledger, never Temporal
visibility; the index is for people looking at Temporal itself. Each upsert is an
event in the case's history and a billed action, so a case started on
``PATCH_LEAN_INDEX`` (``workflows.complaint_base``) indexes only at the moments a
supervisor's filter changes: it waits at the dispatch desk, it is dispatched, its lead
unit, level or overdue flag changes, it closes. :func:`wanted` says what to index then.

A case started on ``PATCH_CLOSE_UNINDEXED`` does not index its close: Temporal's own
``ExecutionStatus`` says a case closed (one billed upsert fewer per case). Its
``HotlineStatus`` stays the phase it closed in, so a filter for open cases names both:
``HotlineStatus = 'DISPATCHED' AND ExecutionStatus = 'Running'`` (held by units),
``HotlineStatus = 'AWAITING_REVIEW' AND ExecutionStatus = 'Running'`` (at the desk);
closed cases are ``ExecutionStatus = 'Completed'``, whatever their ``HotlineStatus``.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

from workflows.model import Status
from workflows.state import CaseState
from workflows.steps import lead_unit_id

STATUS = SearchAttributeKey.for_keyword("HotlineStatus")
TIER = SearchAttributeKey.for_keyword("HotlineTier")
CATEGORY = SearchAttributeKey.for_keyword("HotlineCategory")
LEAD_UNIT = SearchAttributeKey.for_keyword("HotlineLeadUnit")
DISTRICT = SearchAttributeKey.for_keyword("HotlineDistrict")
OVERDUE = SearchAttributeKey.for_bool("HotlineOverdue")
ESCALATION_LEVEL = SearchAttributeKey.for_keyword("HotlineEscalationLevel")

ALL: list[SearchAttributeKey] = [
    STATUS, TIER, CATEGORY, LEAD_UNIT, DISTRICT, OVERDUE, ESCALATION_LEVEL,
]

# HotlineStatus on the lean index: the phase, not the step. DISPATCHED stands for the
# whole time units hold the case (signed, in progress, completed, at the callback
# centre: the ledger has the step). A status missing here is no moment to index: the
# case is being accepted, or closes right after (rejected, merged, withdrawn, evaluated).
PHASE = {
    Status.AWAITING_REVIEW: Status.AWAITING_REVIEW.value,
    Status.DISPATCHED: Status.DISPATCHED.value,
    Status.SIGNED: Status.DISPATCHED.value,
    Status.IN_PROGRESS: Status.DISPATCHED.value,
    Status.COMPLETED: Status.DISPATCHED.value,
    Status.CALLBACK: Status.DISPATCHED.value,
    Status.REOPENED: Status.DISPATCHED.value,
    Status.CLOSED: Status.CLOSED.value,
}


def wanted(state: CaseState, lean: bool,
           close: bool = True) -> dict[SearchAttributeKey[Any], Any]:
    """What the index should say now. ``lean``: the phase instead of the status, and
    nothing while the case is not in a phase supervisors filter on; ``close``: closing
    is such a phase (not on ``PATCH_CLOSE_UNINDEXED``)."""
    status: str = state.status.value
    if lean:
        phase = PHASE.get(state.status)
        if phase is None or (not close and state.status == Status.CLOSED):
            return {}
        status = phase
    out: dict[SearchAttributeKey[Any], Any] = {
        STATUS: status, OVERDUE: state.overdue, ESCALATION_LEVEL: state.level,
    }
    acc = state.acceptance
    if acc is not None:
        out[TIER] = acc.tier
        out[CATEGORY] = acc.category
        if acc.district:
            out[DISTRICT] = acc.district
        lead_unit = lead_unit_id(state)
        if lead_unit:
            out[LEAD_UNIT] = lead_unit
    return out


def changed(state: CaseState, lean: bool,
            close: bool = True) -> dict[SearchAttributeKey[Any], Any]:
    """The part of :func:`wanted` the index does not say yet (``state.indexed``)."""
    return {k: v for k, v in wanted(state, lean, close).items()
            if state.indexed.get(k.name) != v}


def cli_type(key: SearchAttributeKey) -> str:
    """The type name ``temporal server start-dev --search-attribute`` expects."""
    return {"KEYWORD": "Keyword", "BOOL": "Bool", "INT": "Int", "TEXT": "Text",
            "FLOAT": "Double", "DATETIME": "Datetime", "KEYWORD_LIST": "KeywordList"}[
        key.indexed_value_type.name.removeprefix("INDEXED_VALUE_TYPE_")
    ]
