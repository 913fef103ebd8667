"""The declarative mapping from an inbound Avro record to a workflow start or update.

:data:`ROUTES` is the only place an Avro record meets the workflow interface;
:data:`TOPIC_RECORDS` says which records each inbound topic may carry, and :func:`route`
turns one decoded record into a :class:`Command` (or refuses it with a DLQ reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from workers.bridges.outcomes import INVALID_RECORD, UNEXPECTED_TYPE
from workflows.governance import (
    UPDATE_REPORT_TASK,
    PlanStatus,
    TaskReport,
)
from workflows.ids import complaint_workflow_id, plan_workflow_id
from workflows.model import (
    UPDATE_CALLBACK,
    UPDATE_COMPLETE,
    UPDATE_DECIDE_DISPATCH,
    UPDATE_REPORT_PROGRESS,
    UPDATE_REQUEST_EXTENSION,
    UPDATE_RETURN_DISPATCH,
    UPDATE_SIGN_FOR,
    UPDATE_SUPPLEMENT,
    UPDATE_URGE,
    UPDATE_WHISTLE,
    UPDATE_WITHDRAW,
    Ack,
    CallbackAnswer,
    Complete,
    DispatchDecision,
    Filing,
    ReportProgress,
    RequestExtension,
    ReturnDispatch,
    SignFor,
    Supplement,
    Urge,
    Whistle,
    Withdraw,
)

# Contract topic names (unprefixed); also the ``topic`` metric label, so dashboards do
# not depend on a deployment's prefix.
INTAKE = "hotline.intake"
UNIT_REPLIES = "hotline.unit-replies"
CALLBACKS = "hotline.callbacks"

START = "start"  # Route.action for the record that starts a case

_D = TypeVar("_D")


def _from_record(cls: type[_D]) -> Callable[[Mapping[str, Any]], _D]:
    """Builder that fills dataclass ``cls`` from the Avro fields of the same name.

    Fields absent from the record keep their defaults; a required field that is absent
    raises ``TypeError``. Lists are copied, so the dataclass never shares the decoder's.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]

    def build(record: Mapping[str, Any]) -> _D:
        kwargs = {}
        for name in names:
            if name in record:
                value = record[name]
                kwargs[name] = list(value) if isinstance(value, list) else value
        return cls(**kwargs)

    build.__name__ = f"build_{cls.__name__}"
    return build


@dataclass(frozen=True)
class Route:
    """What a record becomes: ``action`` (``START`` or an update name) and its argument.

    Case records name their case by ``complaint_id``; a governance plan's task report
    names its plan by ``plan_id`` (``id_field``) and reaches the plan's workflow, whose
    update answers with a status rather than an :class:`Ack` (``result_type``).
    """

    action: str
    build: Callable[[Mapping[str, Any]], object]
    id_field: str = "complaint_id"
    workflow_id: Callable[[str], str] = complaint_workflow_id
    result_type: type = Ack


# Record name (short) → action and builder. The only place an Avro record meets the
# workflow interface; tests/test_bridge_mapping.py covers every row.
ROUTES: dict[str, Route] = {
    "ComplaintFiled": Route(START, _from_record(Filing)),
    "ComplaintSupplemented": Route(UPDATE_SUPPLEMENT, _from_record(Supplement)),
    "ComplaintUrged": Route(UPDATE_URGE, _from_record(Urge)),
    "ComplaintWithdrawn": Route(UPDATE_WITHDRAW, _from_record(Withdraw)),
    "DispatchDecided": Route(UPDATE_DECIDE_DISPATCH, _from_record(DispatchDecision)),
    "DispatchSigned": Route(UPDATE_SIGN_FOR, _from_record(SignFor)),
    "DispatchReturned": Route(UPDATE_RETURN_DISPATCH, _from_record(ReturnDispatch)),
    "ProgressReported": Route(UPDATE_REPORT_PROGRESS, _from_record(ReportProgress)),
    "ExtensionRequested": Route(UPDATE_REQUEST_EXTENSION, _from_record(RequestExtension)),
    "HandlingCompleted": Route(UPDATE_COMPLETE, _from_record(Complete)),
    "UnitsWhistled": Route(UPDATE_WHISTLE, _from_record(Whistle)),
    "CallbackResult": Route(UPDATE_CALLBACK, _from_record(CallbackAnswer)),
    "PlanTaskReported": Route(UPDATE_REPORT_TASK, _from_record(TaskReport),
                              id_field="plan_id", workflow_id=plan_workflow_id,
                              result_type=PlanStatus),
}

# Which records each inbound topic may carry (DESIGN.md, "The event contract").
TOPIC_RECORDS: dict[str, frozenset[str]] = {
    INTAKE: frozenset(
        {"ComplaintFiled", "ComplaintSupplemented", "ComplaintUrged", "ComplaintWithdrawn",
         "DispatchDecided"}
    ),
    UNIT_REPLIES: frozenset(
        {
            "DispatchSigned",
            "DispatchReturned",
            "ProgressReported",
            "ExtensionRequested",
            "HandlingCompleted",
            "UnitsWhistled",
            "PlanTaskReported",
        }
    ),
    CALLBACKS: frozenset({"CallbackResult"}),
}

# Consumer name (group suffix) → contract topic.
BRIDGES: dict[str, str] = {
    "intake": INTAKE,
    "unit-replies": UNIT_REPLIES,
    "callbacks": CALLBACKS,
}


@dataclass(frozen=True)
class Command:
    """One routed inbound event: what to do to which case (or governance plan).

    ``complaint_id`` is the id the record is keyed by: the complaint's, or for a plan's
    task report the plan's (``workflow_id`` then names the plan's workflow).
    """

    record: str
    complaint_id: str
    event_id: str
    action: str
    arg: object
    workflow_id: str = ""
    result_type: type = Ack

    def __post_init__(self) -> None:
        if not self.workflow_id:
            object.__setattr__(self, "workflow_id", complaint_workflow_id(self.complaint_id))


class Unroutable(Exception):
    """A decoded record that cannot become a command; ``reason`` is the DLQ reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def route(topic: str, record_name: str, record: Mapping[str, Any]) -> Command:
    """Map a decoded record on contract topic ``topic`` to a :class:`Command`.

    Raises:
        Unroutable: ``UNEXPECTED_TYPE`` if the record does not belong on the topic,
            ``INVALID_RECORD`` if it lacks ids or does not fit the dataclass.
    """
    allowed = TOPIC_RECORDS.get(topic, frozenset())
    if record_name not in allowed or record_name not in ROUTES:
        raise Unroutable(
            UNEXPECTED_TYPE,
            f"{record_name} is not accepted on {topic} (expected one of {sorted(allowed)})",
        )
    entry = ROUTES[record_name]
    complaint_id = record.get(entry.id_field)
    event_id = record.get("event_id")
    if not isinstance(complaint_id, str) or not complaint_id.strip():
        raise Unroutable(INVALID_RECORD, f"{record_name} has no {entry.id_field}")
    if not isinstance(event_id, str) or not event_id.strip():
        raise Unroutable(INVALID_RECORD, f"{record_name} has no event_id")
    try:
        arg = entry.build(record)
    except (TypeError, ValueError, KeyError) as exc:
        raise Unroutable(INVALID_RECORD, f"{record_name}: {exc}") from exc
    return Command(
        record=record_name,
        complaint_id=complaint_id,
        event_id=event_id,
        action=entry.action,
        arg=arg,
        workflow_id=entry.workflow_id(complaint_id),
        result_type=entry.result_type,
    )
