"""Every workbench action is one event on the contract, then a short wait for its outcome.

Unit actions go to ``hotline.unit-replies`` and the dispatcher's decision to
``hotline.intake``, keyed by complaint id, encoded by the project's codec, acknowledged by
Kafka before the page answers. The case then applies or refuses the event (the bridges turn
it into a workflow update); the page reads which from the ledger: an event of the expected
type by this unit after the case's last sequence number seen before sending, or a
``REPLY_REFUSED`` naming this event id. Past ``wait_s`` the page says "submitted, pending".
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from schemas.codec import encode, headers_for
from workers.workbench.reads import LedgerReads

SEND_TIMEOUT_S = 30.0
POLL_S = 0.2

# Action → the record it produces, and the lifecycle events that say the case applied it.
UNIT_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sign": ("DispatchSigned", ("SIGNED",)),
    "progress": ("ProgressReported", ("PROGRESS",)),
    "complete": ("HandlingCompleted", ("COMPLETED", "ASSIST_REPLIED")),
    "return": ("DispatchReturned", ("RETURNED",)),
    "extension": ("ExtensionRequested", ("EXTENSION_REQUESTED",)),
    "whistle": ("UnitsWhistled", ("WHISTLED",)),
}
RESULTS = ("RESOLVED", "PARTLY_RESOLVED", "NOT_RESOLVABLE")
DECISIONS = ("DISPATCH", "ANSWER_DIRECTLY", "REJECT", "REDIRECT")
TIERS = ("T2H", "T24H", "T7D", "T15D")
MAX_TEXT = 4000


class ActionError(ValueError):
    """A form that cannot become an event (missing reason, bad number...)."""


@dataclass(frozen=True)
class Outcome:
    """What became of an event: applied (True), refused (False) or pending (None)."""

    event_id: str
    applied: bool | None
    code: str | None = None
    reason: str | None = None
    status: str | None = None


def _text(form: dict[str, str], name: str, *, required: bool = True) -> str:
    value = (form.get(name) or "").replace("\x00", "").strip()
    if required and not value:
        raise ActionError(name)
    if len(value) > MAX_TEXT:
        raise ActionError(name)
    return value


def unit_record(action: str, complaint_id: str, dispatch_id: str, unit_id: str,
                signer: str, form: dict[str, str], photo_urls: list[str]) -> dict[str, Any]:
    """The record for a unit action, from the unit's own dispatch and the form's fields.

    Raises:
        ActionError: A required field is missing or out of range (its name).
    """
    record: dict[str, Any] = {"event_id": f"wb-{uuid.uuid4().hex}", "complaint_id": complaint_id,
                              "dispatch_id": dispatch_id, "unit_id": unit_id,
                              "at": datetime.now(UTC)}
    if action == "sign":
        record["signer"] = signer
    elif action == "progress":
        record["text"] = _text(form, "text")
        record["contacted_citizen"] = form.get("contacted_citizen") == "on"
    elif action == "complete":
        result = form.get("result", "")
        if result not in RESULTS:
            raise ActionError("result")
        record["result"], record["reply_text"] = result, _text(form, "reply_text")
        record["attachments"] = list(photo_urls)
    elif action == "return":
        record["reason"] = _text(form, "reason")
    elif action == "extension":
        try:
            days = int(form.get("extra_days", ""))
        except ValueError:
            raise ActionError("extra_days") from None
        if not 1 <= days <= 15:
            raise ActionError("extra_days")
        record["extra_days"], record["reason"] = days, _text(form, "reason")
    elif action == "whistle":
        units = [u for u in _text(form, "units").replace("，", ",").replace(" ", ",").split(",")
                 if u]
        if not units or len(units) > 10:
            raise ActionError("units")
        record["units"], record["reason"] = units, _text(form, "reason")
    else:
        raise ActionError("action")
    return record


def decision_record(complaint_id: str, dispatcher_id: str,
                    form: dict[str, str]) -> dict[str, Any]:
    """A ``DispatchDecided`` from the review queue's one-click form."""
    decision = form.get("decision", "")
    if decision not in DECISIONS:
        raise ActionError("decision")
    tier = form.get("tier") or None
    if tier is not None and tier not in TIERS:
        raise ActionError("tier")
    redirect_to = form.get("redirect_to") or None
    if decision == "REDIRECT" and redirect_to not in ("110", "119", "120", "122"):
        raise ActionError("redirect_to")
    return {"event_id": f"wb-{uuid.uuid4().hex}", "complaint_id": complaint_id,
            "decided_at": datetime.now(UTC), "dispatcher_id": dispatcher_id,
            "decision": decision,
            "unit_id": (form.get("unit_id") or None) if decision == "DISPATCH" else None,
            "tier": tier if decision == "DISPATCH" else None,
            "category": (form.get("category") or None) if decision == "DISPATCH" else None,
            "note": _text(form, "note", required=False) or None,
            "redirect_to": redirect_to if decision == "REDIRECT" else None}


def produce(producer: KafkaProducer, topic: str, name: str, record: dict[str, Any]) -> None:
    """Send one record keyed by its complaint id and wait for Kafka's acknowledgement."""
    producer.send(topic, key=record["complaint_id"].encode(), value=encode(name, record),
                  headers=headers_for(name)).get(timeout=SEND_TIMEOUT_S)


async def await_outcome(reads: LedgerReads, complaint_id: str, event_id: str, after_seq: int,
                        expected: tuple[str, ...], unit_id: str | None,
                        wait_s: float) -> Outcome:
    """Poll the ledger until the case applied or refused ``event_id``, or ``wait_s`` ends.

    ``expected`` are the event types that mean "applied"; ``unit_id`` (unit actions) must
    be the event's unit. An empty ``expected`` (a desk decision) means any status change
    out of ``AWAITING_REVIEW``.
    """
    end = time.monotonic() + wait_s
    while True:
        for event in await reads.events_after(complaint_id, after_seq):
            attrs = event["attributes"] or {}
            if event["event_type"] == "REPLY_REFUSED":
                if attrs.get("refused_event_id") == event_id:
                    return Outcome(event_id, False, attrs.get("code"), event["reason"],
                                   event["status"])
            elif _applies(event, expected, unit_id):
                return Outcome(event_id, True, status=event["status"])
        if time.monotonic() >= end:
            return Outcome(event_id, None)
        await asyncio.sleep(POLL_S)


def _applies(event: dict[str, Any], expected: tuple[str, ...], unit_id: str | None) -> bool:
    if not expected:  # a desk decision: the case left the desk
        return bool(event["status"] != "AWAITING_REVIEW")
    return event["event_type"] in expected and unit_id in (None, event["unit_id"])
