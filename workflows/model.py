"""Dataclasses that cross the workflow boundary: inputs, signals/updates, activity I/O.

Every field added later gets a default, so histories recorded before it still decode.
Names follow the glossary in DESIGN.md. No I/O here: workflows import this module.

No ``from __future__ import annotations``: the payload converter resolves a dataclass's
type hints on every decode, and string annotations would be compiled each time (a decode
took 2.4× as long). So a class comes after the classes its fields name; ``Filing`` and
``AcceptRequest`` are last.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    FILED = "FILED"
    ACCEPTED = "ACCEPTED"
    ANSWERED_DIRECTLY = "ANSWERED_DIRECTLY"
    REJECTED = "REJECTED"
    MERGED = "MERGED"
    DISPATCHED = "DISPATCHED"
    SIGNED = "SIGNED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    CALLBACK = "CALLBACK"
    REOPENED = "REOPENED"
    EVALUATED = "EVALUATED"
    WITHDRAWN = "WITHDRAWN"
    CLOSED = "CLOSED"
    AWAITING_REVIEW = "AWAITING_REVIEW"


# Deadline tiers from the most urgent; escalation levels from the lowest (DESIGN.md).
TIER_ORDER = ("T2H", "T24H", "T7D", "T15D")
LEVELS = ("UNIT", "DISTRICT", "CITY")


class Outcome(StrEnum):
    """What acceptance decided."""

    DISPATCH = "DISPATCH"
    ANSWERED_DIRECTLY = "ANSWERED_DIRECTLY"
    REJECTED = "REJECTED"
    REDIRECTED = "REDIRECTED"
    MERGED = "MERGED"
    # Unsure: a dispatcher decides (DispatchDecided), or the top candidate after the window.
    REVIEW = "REVIEW"


class RejectReason(StrEnum):
    """Reason codes for refused replies; the bridges put them on the DLQ as they are."""

    UNKNOWN_CASE = "UNKNOWN_CASE"
    UNIT_NOT_HOLDING = "UNIT_NOT_HOLDING"
    STATE_NOT_ALLOWED = "STATE_NOT_ALLOWED"
    CASE_CLOSED = "CASE_CLOSED"
    UNKNOWN_UNIT = "UNKNOWN_UNIT"
    LIMIT_REACHED = "LIMIT_REACHED"


@dataclass(frozen=True)
class CaseResult:
    """What a finished case returns."""

    complaint_id: str
    status: str
    outcome: str
    counted: bool
    responded: bool = False
    resolved: bool = False
    satisfied: bool = False
    overdue: bool = False


# --- updates from units, citizens and the callback centre -------------------------------


@dataclass(frozen=True)
class SignFor:
    event_id: str
    dispatch_id: str
    unit_id: str
    at: datetime
    signer: str | None = None


@dataclass(frozen=True)
class ReturnDispatch:
    event_id: str
    dispatch_id: str
    unit_id: str
    at: datetime
    reason: str


@dataclass(frozen=True)
class ReportProgress:
    event_id: str
    dispatch_id: str
    unit_id: str
    at: datetime
    text: str
    contacted_citizen: bool = True


@dataclass(frozen=True)
class RequestExtension:
    event_id: str
    dispatch_id: str
    unit_id: str
    at: datetime
    extra_days: int
    reason: str


@dataclass(frozen=True)
class Complete:
    event_id: str
    dispatch_id: str
    unit_id: str
    at: datetime
    result: str
    reply_text: str
    # URLs of the result's photos and files (HandlingCompleted.attachments).
    attachments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Whistle:
    """吹哨: the lead unit calls more units in as assisting units."""

    event_id: str
    dispatch_id: str
    unit_id: str
    at: datetime
    units: list[str]
    reason: str


@dataclass(frozen=True)
class Supplement:
    event_id: str
    at: datetime
    content: str
    attachments: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Urge:
    event_id: str
    at: datetime
    content: str | None = None


@dataclass(frozen=True)
class Withdraw:
    event_id: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class CallbackAnswer:
    """A ``CallbackResult``: what the citizen said when called back."""

    event_id: str
    at: datetime
    reached: bool
    responded: bool
    resolved: bool
    satisfaction: str | None = None
    comment: str | None = None


@dataclass(frozen=True)
class Reassign:
    """A supervisor's decision: send the case to this unit (改派)."""

    event_id: str
    unit_id: str
    decided_by: str
    reason: str = ""


@dataclass(frozen=True)
class ExtensionDecision:
    """A supervisor's decision on a pending extension request."""

    event_id: str
    granted: bool
    decided_by: str
    extra_days: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Escalate:
    """A supervisor raises the case one supervision level (督办)."""

    event_id: str
    decided_by: str
    reason: str = ""


@dataclass(frozen=True)
class MergedFiling:
    """Signal to an open case: the same caller filed the same problem again (重复件)."""

    event_id: str
    complaint_id: str
    at: datetime
    content: str


@dataclass(frozen=True)
class DispatchDecision:
    """``DispatchDecided``: a dispatcher's answer for a case at the dispatch desk.

    ``decision``: DISPATCH (to ``unit_id``, default the top candidate; ``tier`` and
    ``category`` default to the machine's), ANSWER_DIRECTLY, REJECT or REDIRECT
    (to ``redirect_to``).
    """

    event_id: str
    complaint_id: str
    decided_at: datetime
    dispatcher_id: str
    decision: str
    unit_id: str | None = None
    tier: str | None = None
    category: str | None = None
    note: str | None = None
    redirect_to: str | None = None


@dataclass(frozen=True)
class Ack:
    """Every update's answer. A refused event is not an error: the bridge dead-letters it."""

    accepted: bool
    duplicate: bool = False
    reason: str = ""
    detail: str = ""


# Update names, shared by the workflow and the bridges.
UPDATE_SIGN_FOR = "sign_for"
UPDATE_RETURN_DISPATCH = "return_dispatch"
UPDATE_REPORT_PROGRESS = "report_progress"
UPDATE_REQUEST_EXTENSION = "request_extension"
UPDATE_COMPLETE = "complete"
UPDATE_SUPPLEMENT = "supplement"
UPDATE_URGE = "urge"
UPDATE_WITHDRAW = "withdraw"
UPDATE_CALLBACK = "callback"
UPDATE_WHISTLE = "whistle"
UPDATE_REASSIGN = "reassign"
UPDATE_DECIDE_EXTENSION = "decide_extension"
UPDATE_ESCALATE = "escalate"
UPDATE_DECIDE_DISPATCH = "decide_dispatch"
SIGNAL_MERGED_FILING = "merged_filing"
QUERY_VIEW = "view"


# --- activity I/O -----------------------------------------------------------------------


@dataclass(frozen=True)
class TierPlan:
    """Durations for one tier, already multiplied by the time scale."""

    tier: str
    deadline_seconds: float
    sign_for_seconds: float
    callback_seconds: float
    # Absolute deadline (the calendar may stretch it over weekends and holidays).
    due_at: datetime
    sign_by: datetime


@dataclass(frozen=True)
class LadderPlan:
    warning_fractions: list[float]
    sign_for_misses_to_district: int
    city_after_overdue_fraction: float
    urges_to_escalate: int
    max_returns: int
    unreached_attempts: int
    unreached_window_seconds: float
    max_reopens: int
    weights: dict[str, float]
    extension_tiers: list[str] = field(default_factory=lambda: ["T7D", "T15D"])
    extension_max_per_case: int = 1
    extension_max_days: int = 0
    extension_auto_grant_days: int = 3
    reopen_max_tier: str = "T7D"


@dataclass(frozen=True)
class Unit:
    unit_id: str
    name: str
    kind: str
    district: str | None = None


@dataclass(frozen=True)
class ReviewCandidate:
    """A unit the machine would dispatch to, for the dispatch desk (REVIEW_REQUESTED)."""

    unit_id: str
    unit_name: str
    tier: str
    category: str
    score: float
    reason: str


@dataclass(frozen=True)
class Acceptance:
    """What ``accept`` decided: outcome, classification, deadline plan and the lead unit."""

    outcome: str
    kind: str
    category: str
    category_name: str
    tier: str
    reason: str
    district: str | None
    street: str | None
    plan: TierPlan
    ladder: LadderPlan
    lead: Unit | None = None
    hints_used: list[str] = field(default_factory=list)
    redirect_to: str | None = None
    assisting: list[Unit] = field(default_factory=list)
    merge_into: str | None = None
    caller_hash: str | None = None
    route_rule: str = ""
    # How sure the machine is (0..1), why it is not surer, and for a REVIEW outcome the
    # candidates and how long the desk has before the top one is dispatched.
    confidence: float = 1.0
    review_reasons: list[str] = field(default_factory=list)
    candidates: list[ReviewCandidate] = field(default_factory=list)
    review_seconds: float = 0.0
    routing_version: str = ""


# What a lean step's row leaves out for ``record_step`` to put back (``workflows.steps``):
# a timestamp no row ever holds. Rows built by the workflow name every column.
LEFT_OUT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class LifecycleRecord:
    """One ``LifecycleEvent`` to publish; ``seq`` orders them per case."""

    # A lean step (``StepRecord.lean``) leaves both out and ``record_step`` puts them back
    # (``workflows.steps.expand_step``): a worker from before lean steps cannot decode such
    # a step, so its activity fails and is retried, never misread. Keyword-only, so the
    # defaults can stand before the fields without one.
    event_id: str = field(default="", kw_only=True)
    complaint_id: str = field(default="", kw_only=True)
    seq: int
    # Left out (``LEFT_OUT``, "") by a step in the events form (``StepRecord.form``): the
    # time of the event before it in the step, and the status its type names. Workers
    # from before it require both, so they fail on such a step rather than misread it.
    at: datetime = field(default=LEFT_OUT, kw_only=True)
    event_type: str
    status: str = field(default="", kw_only=True)
    tier: str | None = None
    kind: str | None = None
    category: str | None = None
    district: str | None = None
    street: str | None = None
    lead_unit_id: str | None = None
    unit_id: str | None = None
    dispatch_id: str | None = None
    reason: str | None = None
    escalation_level: str = "UNIT"
    overdue: bool = False
    attributes: dict[str, str] = field(default_factory=dict)
    candidates: list[ReviewCandidate] | None = None


@dataclass(frozen=True)
class Outbound:
    """One record for ``hotline.dispatches`` (keyed by unit): its Avro name and fields.

    ``fields`` crosses the activity boundary as JSON, so timestamps in it are epoch
    milliseconds (Avro timestamp-millis), never datetimes.
    """

    record: str
    unit_id: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class CaseRow:
    """The ledger's row for a case; ``version`` guards against stale writes.

    The defaults of the first five stand for "left out" in a lean step (each has one, so
    the payload converter leaves it out); a worker from before them cannot decode such a
    row, so its ``record_step`` fails and is retried, never misread.
    """

    complaint_id: str = field(default="", kw_only=True)
    version: int = field(default=0, kw_only=True)
    status: str = field(default="", kw_only=True)
    filed_at: datetime = field(default=LEFT_OUT, kw_only=True)
    channel: str = field(default="", kw_only=True)
    kind: str | None = None
    category: str | None = None
    tier: str | None = None
    district: str | None = None
    street: str | None = None
    lead_unit_id: str | None = None
    due_at: datetime | None = None
    overdue: bool = False
    escalation_level: str = "UNIT"
    closed_at: datetime | None = None
    outcome: str | None = None
    caller_hash: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class DispatchRow:
    """The ledger's row for one unit's dispatch (defaults: left out, as in ``CaseRow``)."""

    dispatch_id: str
    complaint_id: str = field(default="", kw_only=True)
    unit_id: str = field(default="", kw_only=True)
    role: str = field(default="", kw_only=True)
    issued_at: datetime = field(default=LEFT_OUT, kw_only=True)
    sign_by: datetime = field(default=LEFT_OUT, kw_only=True)
    due_at: datetime = field(default=LEFT_OUT, kw_only=True)
    signed_at: datetime | None = None
    completed_at: datetime | None = None
    revoked_at: datetime | None = None
    result: str | None = None


@dataclass(frozen=True)
class EvaluationRow:
    """The case's evaluation (考评). In the events form of a step, ``evaluated_at``,
    ``overdue`` and ``lead_unit_id`` are left out where its EVALUATED (or last) event says
    them; the counts' defaults let the payload converter leave out the usual zeros.
    Workers from before require every one, so they fail on such a row, never misread it."""

    complaint_id: str = field(default="", kw_only=True)
    counted: bool
    responded: bool
    resolved: bool
    satisfied: bool
    satisfaction: str | None
    overdue: bool = field(default=False, kw_only=True)
    returns: int = field(default=0, kw_only=True)
    escalations: int = field(default=0, kw_only=True)
    reopens: int = field(default=0, kw_only=True)
    score: float
    evaluated_at: datetime = field(default=LEFT_OUT, kw_only=True)
    lead_unit_id: str | None = None


@dataclass(frozen=True)
class StepRecord:
    """Everything one lifecycle step makes durable, applied by ``record_step`` at once.

    Idempotent by ``(complaint_id, step)``: Kafka records carry deterministic event ids,
    ledger writes are upserts guarded by the case version.
    """

    # Left out ("") in the ids form (``workflows.steps.LEAN_IDS``): the workflow's id says
    # it. Workers from before require it, so they fail on such a step, never misread it.
    complaint_id: str = ""
    # Left out ("") in the events form: it is the last event's ``{seq}-{event_type}``.
    step: str = ""
    lifecycle: list[LifecycleRecord] = field(default_factory=list)
    outbound: list[Outbound] = field(default_factory=list)
    case: CaseRow | None = None
    dispatches: list[DispatchRow] = field(default_factory=list)
    evaluation: EvaluationRow | None = None
    # Written without what the activity can derive from the rest (``workflows.steps``:
    # ``slim_step`` / ``expand_step``); ``record_step`` expands it before anything else.
    lean: bool = False
    # A lean step that also leaves out what the ledger's rows say at this version (the
    # last seq recorded before it): the columns unchanged since then. 0: none left out.
    base: int = 0
    # A leaner wire form than ``lean`` (``workflows.steps.LEAN_EVENTS`` on), lean too. A
    # worker that does not know the form refuses the step (retried by a newer one):
    # unknown fields are ignored by the decoder, so the number is what tells it.
    form: int = 0

    @property
    def is_lean(self) -> bool:
        """Written without what ``record_step`` puts back (``workflows.steps.expand_step``)."""
        return self.lean or self.form > 0


@dataclass(frozen=True)
class LedgerRows:
    """What the ledger holds for a case after the step numbered ``version`` (not a
    payload: the workflow keeps it in memory, ``record_step`` reads it from PostgreSQL)."""

    version: int
    case: CaseRow
    dispatches: dict[str, DispatchRow] = field(default_factory=dict)


@dataclass(frozen=True)
class StepReceipt:
    complaint_id: str
    step: str
    published: int


@dataclass(frozen=True)
class RouteRequest:
    """Ask the routing table again: after a return, or for units a person named."""

    complaint_id: str
    category: str
    district: str | None
    street: str | None
    exclude: list[str] = field(default_factory=list)
    unit_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RouteResult:
    lead: Unit
    assisting: list[Unit] = field(default_factory=list)
    rule: str = ""


@dataclass(frozen=True)
class PlanRequest:
    """A deadline plan for ``tier`` from ``start`` (reopen), or ``extra_days`` added to
    ``due_at`` (extension), on the rules' calendar and time scale."""

    tier: str
    start: datetime
    extra_days: int = 0
    due_at: datetime | None = None


@dataclass(frozen=True)
class Checkpoint:
    """One pending rung of the escalation ladder (here, not in ``workflows.complaint``,
    which the sandbox runs afresh for every instance)."""

    at: datetime
    kind: str  # SIGN_FOR | WARNING | OVERDUE | CITY
    fraction: float = 0.0
    dispatch_id: str = ""


@dataclass
class DispatchState:
    """One unit's dispatch of a case, as the workflow tracks it."""

    dispatch_id: str
    unit_id: str
    unit_name: str
    role: str
    issued_at: datetime
    sign_by: datetime
    due_at: datetime
    signed_at: datetime | None = None
    completed_at: datetime | None = None
    revoked_at: datetime | None = None
    result: str | None = None
    reply_text: str | None = None
    sign_misses: int = 0
    progressed: bool = False

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.completed_at is None

    def row(self, complaint_id: str) -> DispatchRow:
        return DispatchRow(
            dispatch_id=self.dispatch_id, complaint_id=complaint_id, unit_id=self.unit_id,
            role=self.role, issued_at=self.issued_at, sign_by=self.sign_by,
            due_at=self.due_at, signed_at=self.signed_at, completed_at=self.completed_at,
            revoked_at=self.revoked_at, result=self.result,
        )


@dataclass
class CaseSnapshot:
    """A running case's state, carried across continue-as-new."""

    acceptance: Acceptance
    stage: str
    status: str
    seq: int
    dispatches: list[DispatchState]
    lead_dispatch_id: str
    dispatch_count: int
    level: str
    overdue: bool
    round_overdue: bool
    city_sent: bool
    escalations: int
    warnings_sent: int
    urges: int
    returns: int
    reopens: int
    extensions: int
    excluded_units: list[str]
    plan: TierPlan
    completion: Complete | None = None
    first_contact_at: datetime | None = None
    answer: CallbackAnswer | None = None
    callback_attempt: int = 0
    callback_requested: bool = False
    answer_by: datetime | None = None
    pending_extension: RequestExtension | None = None
    seen: dict[str, Ack] = field(default_factory=dict)
    timeline: list[LifecycleRecord] = field(default_factory=list)
    indexed: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseView:
    """The ``view`` query: a case's state and full timeline, without personal data."""

    complaint_id: str
    status: str
    outcome: str | None
    tier: str | None
    kind: str | None
    category: str | None
    district: str | None
    street: str | None
    lead_unit_id: str | None
    dispatch_id: str | None
    sign_by: datetime | None
    due_at: datetime | None
    overdue: bool
    escalation_level: str
    urges: int
    timeline: list[LifecycleRecord] = field(default_factory=list)
    returns: int = 0
    reopens: int = 0
    extensions: int = 0
    extension_pending: bool = False
    dispatches: list[DispatchState] = field(default_factory=list)


# --- workflow input ---------------------------------------------------------------------


@dataclass(frozen=True)
class Filing:
    """A ``ComplaintFiled`` event: the workflow's input."""

    event_id: str
    complaint_id: str
    filed_at: datetime
    channel: str
    content: str
    kind: str | None = None
    caller_phone: str | None = None
    caller_name: str | None = None
    anonymous: bool = False
    district: str | None = None
    street: str | None = None
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    category_hint: str | None = None
    urgency_hint: str | None = None
    answered_directly: bool = False
    attachments: list[str] = field(default_factory=list)
    # A proactive governance task (未诉先办) from a hotspot warning: the street where the
    # hotspot is leads (DESIGN.md). Set only by the governance activity that starts it,
    # never from Kafka, so no upstream system can claim it.
    governance: bool = False
    # Set only by the workflow itself when it continues as new: the running case's state.
    # (Temporal drops argument types when a start passes fewer arguments than ``run``
    # declares, so the carried state rides in the one input rather than a second one.)
    carried: CaseSnapshot | None = None
    # The workflow code the case was started for, set by whoever starts it (never from
    # Kafka; ``Settings.case_workflow_version``): 0, absent from every history started
    # before 2026-12-07, asks ``workflow.patched`` at each change as those histories did;
    # WORKFLOW_VERSION holds every change up to it without a marker or the
    # TemporalChangeVersion upsert the SDK adds to one (a billed action per case). Stamp a
    # version only once every worker reads it (docs/operations.md).
    workflow_version: int = 0


# The newest workflow code a case can be started on (``complaint_base.PATCHES_OF_VERSION``
# lists what each version holds; ``Settings.case_workflow_version`` which one is
# stamped). Bump it only with a change that also keeps the older versions' paths.
WORKFLOW_VERSION = 1


@dataclass(frozen=True)
class AcceptRequest:
    filing: Filing
    accepted_at: datetime
