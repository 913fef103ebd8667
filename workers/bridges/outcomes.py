"""What became of one inbound message: its outcome and, for the DLQ, its reason.

Temporal's answers (an update's ``Ack``, or the exception a call raised) are sorted into
these here. The failure table in :mod:`workers.bridges.consumer` says what each outcome
means for the message and its offset.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from workflows.model import Ack

APPLIED = "applied"
DUPLICATE = "duplicate"
REFUSED = "refused"
DEAD_LETTERED = "dead_lettered"
TRANSIENT = "transient"  # never counted as an outcome: the message is retried

UNEXPECTED_TYPE = "UNEXPECTED_TYPE"
INVALID_RECORD = "INVALID_RECORD"
MALFORMED = "MALFORMED"
UNKNOWN_CASE = "UNKNOWN_CASE"
CASE_CLOSED = "CASE_CLOSED"
REJECTED = "REJECTED"
REFUSED_REASON = "REFUSED"  # an Ack(accepted=False) that named no reason


@dataclass(frozen=True)
class Verdict:
    """What became of one attempt: an outcome and, for the DLQ, a reason and detail."""

    outcome: str
    reason: str = ""
    detail: str = ""

    @property
    def dead_letter(self) -> bool:
        return self.outcome in (REFUSED, DEAD_LETTERED)


def verdict_for_ack(ack: Ack) -> Verdict:
    """An update's answer: applied, a duplicate, or refused with the workflow's reason."""
    if ack.accepted:
        return Verdict(DUPLICATE if ack.duplicate else APPLIED)
    return Verdict(REFUSED, ack.reason or REFUSED_REASON, ack.detail)


# Server messages for a closed run (Temporal server 1.32, checked against the dev server):
#   update on a completed/terminated run: NOT_FOUND "workflow execution already completed"
#   update admitted, run closed before it was accepted:
#       NOT_FOUND "workflow update was aborted by closing workflow"
#   update accepted, run closed before it completed: the update fails with
#       ApplicationError type "AcceptedUpdateCompletedWorkflow".
# Specific phrases only: a bare "closed" would also match "connection closed".
_CLOSED_MARKERS = (
    "execution already completed",
    "aborted by closing workflow",
    "workflow is closing",
    "workflow is closed",
    "workflow execution is closed",
)
_CLOSED_UPDATE_FAILURE = "AcceptedUpdateCompletedWorkflow"

# Passing conditions: the server or the network will recover, or an operator will fix the
# deployment (credentials, namespace) without the message changing. Retried, never DLQ'd.
_TRANSIENT_STATUS = frozenset(
    {
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        # FAILED_PRECONDITION covers namespace-not-active (failover) and similar states.
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DATA_LOSS,
        RPCStatusCode.UNAUTHENTICATED,
    }
)


def _is_namespace_not_found(err: RPCError) -> bool:
    try:
        type_urls = [d.type_url for d in err.grpc_status.details]
    except Exception:  # raw status bytes that do not parse
        type_urls = []
    if any(url.endswith("NamespaceNotFoundFailure") for url in type_urls):
        return True
    message = err.message.lower()
    return message.startswith("namespace ") and "not found" in message


def describe_error(exc: BaseException) -> str:
    """One line for logs and the DLQ: an ApplicationError's type and message, else the class."""
    if isinstance(exc, ApplicationError):
        return f"{exc.type}: {exc.message}" if exc.type else exc.message
    return f"{type(exc).__name__}: {exc}"


def classify_error(exc: BaseException) -> Verdict:
    """Sort an exception from ``start_workflow`` / ``execute_update`` into an outcome.

    Returns:
        ``DUPLICATE`` for an already-started case; ``DEAD_LETTERED`` with
        ``UNKNOWN_CASE`` / ``CASE_CLOSED``; ``REFUSED`` with ``REJECTED`` when the update
        handler or validator raised, or the request can never succeed; ``TRANSIENT``
        for everything that may pass (including errors this function does not know:
        retrying an unknown error is safer than dropping a citizen's event).
    """
    if isinstance(exc, WorkflowAlreadyStartedError):
        return Verdict(DUPLICATE, detail=describe_error(exc))
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == _CLOSED_UPDATE_FAILURE:
            return Verdict(DEAD_LETTERED, CASE_CLOSED, cause.message)
        return Verdict(REFUSED, REJECTED, describe_error(cause))
    if isinstance(exc, ApplicationError):
        return Verdict(REFUSED, REJECTED, describe_error(exc))
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return Verdict(TRANSIENT, detail=describe_error(exc))
    if isinstance(exc, RPCError):
        detail = f"{exc.status.name}: {exc.message}"
        message = exc.message.lower()
        if exc.status in (
            RPCStatusCode.NOT_FOUND,
            RPCStatusCode.ABORTED,
            RPCStatusCode.FAILED_PRECONDITION,
        ) and any(marker in message for marker in _CLOSED_MARKERS):
            return Verdict(DEAD_LETTERED, CASE_CLOSED, detail)
        if exc.status == RPCStatusCode.NOT_FOUND:
            # A missing namespace is a deployment error, not a missing case: dead-lettering
            # would empty the topic into the DLQ.
            if _is_namespace_not_found(exc):
                return Verdict(TRANSIENT, detail=detail)
            return Verdict(DEAD_LETTERED, UNKNOWN_CASE, detail)
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return Verdict(DUPLICATE, detail=detail)
        if exc.status in _TRANSIENT_STATUS:
            return Verdict(TRANSIENT, detail=detail)
        # INVALID_ARGUMENT, OUT_OF_RANGE, UNIMPLEMENTED: this request will never pass.
        return Verdict(REFUSED, REJECTED, detail)
    return Verdict(TRANSIENT, detail=describe_error(exc))
