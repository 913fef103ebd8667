"""A running case's state: one dataclass, and its copy carried across continue-as-new.

``ComplaintWorkflow`` keeps everything it knows about a case in one :class:`CaseState`.
Continue-as-new carries a :class:`~workflows.model.CaseSnapshot` (the wire format that
histories already hold): :func:`snapshot` and :func:`restore` copy the fields the two
share by name, so a field added to both travels without further code.

No ``from __future__ import annotations`` (see ``workflows.model``: the payload converter
and the sandbox would compile string annotations again on every run).
"""

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from workflows.model import (
    Acceptance,
    Ack,
    CallbackAnswer,
    CaseSnapshot,
    Complete,
    DispatchState,
    LedgerRows,
    LifecycleRecord,
    RequestExtension,
    Status,
    StepRecord,
    TierPlan,
    Withdraw,
)

# Bounds on what a case carries across continue-as-new (payloads stay small).
SEEN_KEPT = 2000
TIMELINE_KEPT = 200


@dataclass
class CaseState:
    """Everything the workflow knows about one case, as it runs.

    Field names match :class:`CaseSnapshot` where the field is carried; the rest
    (``withdrawn``, ``closed_at``, ``timers_version``, ``deferred``, ``ledger``) lives
    only within one run: a withdrawn or closing case never continues as new, and timers are set
    afresh by a new run.
    """

    acceptance: Acceptance | None = None
    plan: TierPlan | None = None
    stage: str = "accept"
    status: Status = Status.FILED
    seq: int = 0
    timeline: list[LifecycleRecord] = field(default_factory=list)
    seen: dict[str, Ack] = field(default_factory=dict)
    dispatches: dict[str, DispatchState] = field(default_factory=dict)
    lead_dispatch_id: str = ""
    dispatch_count: int = 0
    completion: Complete | None = None
    first_contact_at: datetime | None = None
    answer: CallbackAnswer | None = None
    level: str = "UNIT"
    overdue: bool = False          # ever overdue: evaluation
    round_overdue: bool = False    # overdue in this handling round: the ladder
    city_sent: bool = False
    escalations: int = 0
    warnings_sent: int = 0
    urges: int = 0
    returns: int = 0
    reopens: int = 0
    extensions: int = 0
    excluded_units: list[str] = field(default_factory=list)
    pending_extension: RequestExtension | None = None
    callback_attempt: int = 0
    callback_requested: bool = False
    answer_by: datetime | None = None
    indexed: dict[str, Any] = field(default_factory=dict)
    # Within one run only.
    withdrawn: Withdraw | None = None
    closed_at: datetime | None = None
    timers_version: int = 0
    # A step made but not yet recorded: it goes out with the next one.
    deferred: StepRecord | None = None
    # What the ledger holds after the last recorded step (PATCH_DELTA_STEPS): the next
    # step leaves out what it says. A fresh run sends its first step without it.
    ledger: LedgerRows | None = None
    # The dispatch desk: when accept ran (deadlines count from it, review included), and
    # a dispatcher's decision being applied (a second one, or the window's end, waits).
    accepted_at: datetime | None = None
    review_deciding: bool = False

    def remember(self, event_id: str, ack: Ack) -> None:
        """Keep the answer to an event, so a redelivered copy gets the same answer."""
        self.seen[event_id] = ack
        if len(self.seen) > SEEN_KEPT:
            # Kafka redelivers recent events; ids far in the past cannot come back.
            self.seen.pop(next(iter(self.seen)))


_CARRIED = tuple(f.name for f in fields(CaseSnapshot))
# Carried fields whose shape differs between the two (enum → str, dict → list).
_CONVERTED = {"status", "dispatches", "timeline", "seen", "indexed", "excluded_units"}


def snapshot(state: CaseState) -> CaseSnapshot:
    """The state a fresh run continues from (the timeline trimmed to its recent part)."""
    assert state.acceptance is not None and state.plan is not None
    same = {name: getattr(state, name) for name in _CARRIED if name not in _CONVERTED}
    return CaseSnapshot(
        **same, status=state.status.value, dispatches=list(state.dispatches.values()),
        timeline=state.timeline[-TIMELINE_KEPT:], seen=dict(state.seen),
        indexed=dict(state.indexed), excluded_units=list(state.excluded_units),
    )


def restore(carried: CaseSnapshot) -> CaseState:
    """The state of a run that continues from ``carried``."""
    same = {name: getattr(carried, name) for name in _CARRIED if name not in _CONVERTED}
    return CaseState(
        **same, status=Status(carried.status),
        dispatches={d.dispatch_id: d for d in carried.dispatches},
        timeline=list(carried.timeline), seen=dict(carried.seen),
        indexed=dict(carried.indexed), excluded_units=list(carried.excluded_units),
    )

