"""Corrections: what people decided about the machine's dispatch, as labelled requests.

The loop closes here (DESIGN.md, "The loop closes"). Three acts of a person are kept in
the ledger and become lines of a labelled set (:class:`~activities.dispatch.evaluation.
Labelled`, with a ``correction`` saying where the label came from):

- a dispatcher's decision at the desk (``REVIEW_DECIDED``): DISPATCH gives the tier, the
  category and the lead unit a person chose or confirmed — the only kind whose tier the
  tier model learns (``teaches_tier``); ANSWER_DIRECTLY says no unit should lead;
  REJECT says the demand is not one to dispatch (``unreasonable``); REDIRECT is left out
  (the ledger keeps the service only in prose);
- a supervisor's reassignment (``REDISPATCHED`` by rule ``supervisor``): the new unit
  should lead;
- a unit's return with a reason (``RETURNED``): that unit should *not* lead
  (``not_lead``) — a negative, kept out of tier training; left out when a supervisor later
  gave the case back to the same unit (the return was overruled).

The case's tier, category and place in a line come from the ledger as the case has them
now; they are a person's label only where ``teaches_tier`` says so. The text and the
form's place fields are the caller's (the workflow's input, read from Temporal by the
caller of :func:`corrections`). Everything here is pure: the same events and requests
give the same lines in the same order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from activities.dispatch.evaluation import (
    Correction,
    CorrectionKind,
    Expected,
    Hints,
    Labelled,
)
from activities.dispatch.rules import TIERS

# The ledger's event types that may be corrections, and the rule a supervisor's
# reassignment is recorded with (workflows/complaint_updates.py ``reassign``).
EVENT_TYPES = ("REVIEW_DECIDED", "RETURNED", "REDISPATCHED")
SUPERVISOR_RULE = "supervisor"
# The day a request was filed, for the working-day calendar: the city's day.
CITY_TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class LedgerEvent:
    """One ledger event a person may have caused, with its case as the ledger has it."""

    event_id: str
    complaint_id: str
    seq: int
    at: datetime
    event_type: str
    unit_id: str | None
    reason: str | None
    attributes: Mapping[str, str]
    kind: str | None
    category: str | None
    tier: str | None
    district: str | None
    street: str | None
    filed_at: datetime


@dataclass(frozen=True)
class Request:
    """What the caller and the operator gave (the case's filing): text, form fields, hints."""

    content: str
    district: str | None = None
    street: str | None = None
    address: str | None = None
    kind: str | None = None
    category_hint: str | None = None
    urgency_hint: str | None = None


@dataclass
class Export:
    """The labelled lines, and why the other events were left out (reason → count)."""

    records: list[Labelled] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, int]:
        """Lines per kind of correction, in a fixed order."""
        kinds = Counter(r.correction.kind for r in self.records if r.correction is not None)
        return {kind: kinds[kind] for kind in sorted(kinds)}

    def for_tier(self) -> int:
        """Lines whose tier a person chose: what the tier model will learn from."""
        return sum(1 for r in self.records if r.correction and r.correction.teaches_tier)


def is_candidate(event_type: str, attributes: Mapping[str, str]) -> bool:
    """Whether a ledger event may be a correction (a reassignment by the router after a
    return is not: no person chose that unit)."""
    if event_type == "REDISPATCHED":
        return attributes.get("rule") == SUPERVISOR_RULE
    return event_type in EVENT_TYPES


def _overruled(event: LedgerEvent, events: Sequence[LedgerEvent]) -> bool:
    """A return the supervisor overruled: the case was later reassigned to that unit."""
    return any(e.complaint_id == event.complaint_id and e.seq > event.seq
               and e.event_type == "REDISPATCHED" and is_candidate(e.event_type, e.attributes)
               and e.unit_id == event.unit_id for e in events)


def _correction(event: LedgerEvent, events: Sequence[LedgerEvent]
                ) -> tuple[Correction, dict[str, object]] | str:
    """The correction an event makes and what it changes in ``expect``, or why none."""
    attrs = event.attributes

    def made(kind: CorrectionKind, changes: dict[str, object], *, by: str | None = None,
             not_lead: str | None = None, teaches_tier: bool = False
             ) -> tuple[Correction, dict[str, object]]:
        return Correction(kind=kind, complaint_id=event.complaint_id, event_id=event.event_id,
                          at=event.at, by=by, reason=event.reason, not_lead=not_lead,
                          teaches_tier=teaches_tier), changes
    if event.event_type == "REVIEW_DECIDED":
        decision, by = attrs.get("decision"), attrs.get("dispatcher_id") or None
        if decision == "DISPATCH":
            lead = attrs.get("unit_id") or event.unit_id
            if not lead:
                return "a desk DISPATCH without its unit"
            return made("DISPATCHED", {"lead": lead}, by=by, teaches_tier=True)
        if decision == "ANSWER_DIRECTLY":
            return made("ANSWERED_DIRECTLY", {"lead": None}, by=by)
        if decision == "REJECT":
            return made("REJECTED", {"lead": None, "unreasonable": True}, by=by)
        if decision == "REDIRECT":
            return "a desk REDIRECT (the ledger keeps the service only in prose)"
        return f"a desk decision {decision!r} not known here"
    if event.event_type == "RETURNED":
        if not (event.reason or "").strip():
            return "a return without a reason"
        if not event.unit_id:
            return "a return without its unit"
        if _overruled(event, events):
            return "a return a supervisor overruled (reassigned to the same unit)"
        return made("RETURNED", {"lead": None}, by=event.unit_id, not_lead=event.unit_id)
    if event.event_type == "REDISPATCHED" and is_candidate(event.event_type, attrs):
        if not event.unit_id:
            return "a reassignment without its unit"
        return made("REASSIGNED", {"lead": event.unit_id})
    return f"not a correction ({event.event_type})"


def corrections(events: Sequence[LedgerEvent], requests: Mapping[str, Request | None],
                *, street_id: Callable[[str | None, str | None], str | None] = lambda d, s: None,
                tz: ZoneInfo = CITY_TZ) -> Export:
    """The labelled lines of ``events`` (ordered by time, case and step), each with the
    text of its case from ``requests`` (complaint id → filing; ``None`` or absent: the
    text is no longer to be had, and the event is left out).

    ``street_id``: the registry's unit id of a street the ledger names (district, name),
    as labelled sets spell ``expect.street``."""
    out = Export()
    ordered = sorted(events, key=lambda e: (e.at, e.complaint_id, e.seq))
    for event in ordered:
        found = _correction(event, ordered)
        if isinstance(found, str):
            out.left_out[found] += 1
            continue
        correction, changes = found
        request = requests.get(event.complaint_id)
        if request is None or not request.content.strip():
            out.left_out["the request's text is no longer in Temporal"] += 1
            continue
        if event.tier not in TIERS or not event.category or not event.kind:
            out.left_out["a case without tier, category or kind in the ledger"] += 1
            continue
        expect = Expected(category=event.category, kind=event.kind, tier=event.tier,
                          district=event.district,
                          street=street_id(event.district, event.street)).model_copy(
                              update=changes)
        out.records.append(Labelled(
            id=f"{event.complaint_id}:{event.seq}", content=request.content,
            district=request.district, street=request.street, address=request.address,
            at=event.filed_at.astimezone(tz).date(),
            hints=Hints(category=request.category_hint, kind=request.kind,
                        urgency=request.urgency_hint),
            expect=expect, correction=correction))
    return out


def to_jsonl(records: Sequence[Labelled]) -> str:
    """The lines as JSON Lines (UTF-8 text, fields in the model's order): the same
    records give the same text."""
    return "".join(record.model_dump_json() + "\n" for record in records)
