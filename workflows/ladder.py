"""The escalation ladder's timetable: which rung of a handled case comes next (DESIGN.md).

Pure: the workflow sleeps until the checkpoint this returns and then climbs that rung
(``ComplaintWorkflow._escalate``). Every timer of a handled case derives from the lead's
deadline, so moving the deadline (an extension) moves them all.
"""

from workflows.model import Checkpoint, DispatchState
from workflows.state import CaseState


def active_dispatches(state: CaseState) -> list[DispatchState]:
    """The dispatches still open, the lead's first."""
    lead = state.dispatches.get(state.lead_dispatch_id)
    rest = [d for d in state.dispatches.values() if d is not lead and d.active]
    return ([lead] if lead is not None and lead.active else []) + rest


def next_checkpoint(state: CaseState) -> Checkpoint | None:
    """The earliest rung still to come for the current handling round, if any."""
    assert state.acceptance is not None
    ladder = state.acceptance.ladder
    lead = state.dispatches[state.lead_dispatch_id]
    span = lead.due_at - lead.issued_at
    pending: list[Checkpoint] = []
    # Sign-for limits: the lead first, then assisting units, each re-notified once.
    for d in active_dispatches(state):
        if d.signed_at is None and d.sign_misses < ladder.sign_for_misses_to_district:
            pending.append(Checkpoint(d.sign_by, "SIGN_FOR", dispatch_id=d.dispatch_id))
    fractions = ladder.warning_fractions
    if state.warnings_sent < len(fractions):
        f = fractions[state.warnings_sent]
        pending.append(Checkpoint(lead.issued_at + span * f, "WARNING", f))
    if not state.round_overdue:
        pending.append(Checkpoint(lead.due_at, "OVERDUE", 1.0))
    if not state.city_sent:
        f = 1.0 + ladder.city_after_overdue_fraction
        pending.append(Checkpoint(lead.issued_at + span * f, "CITY", f))
    return min(pending, key=lambda c: c.at) if pending else None
