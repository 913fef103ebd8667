"""Supervisor decisions on a case (escalate, reassign, extension) as Temporal updates.

Each carries an ``event_id``: the workflow de-duplicates by it, so a script may retry a
timed-out command with the same id and the decision is applied once. The answer is
classified into the commands' exit status (docs/cli.md): 0 accepted, 1 refused by the
workflow or no such running case, 3 Temporal unreachable, 5 no answer in time (no worker
polling?).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from workers.cli.failures import (
    EXIT_NO_ANSWER,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    Unreachable,
    classify,
)
from workers.cli.output import describe_error
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect_temporal
from workflows.ids import complaint_workflow_id
from workflows.model import Ack

__all__ = ["EXIT_NO_ANSWER", "EXIT_NO_CASE", "EXIT_REFUSED", "EXIT_UNREACHABLE", "Decision",
           "send_decision"]

UPDATE_TIMEOUT = timedelta(seconds=30)

EXIT_NO_CASE = EXIT_REFUSED  # "not found" and "refused" share a code (docs/cli.md)


@dataclass(frozen=True)
class Decision:
    """What a decision command got back: the workflow's Ack, or why there is none."""

    ack: Ack | None
    exit_code: int
    message: str


async def send_decision(
    settings: Settings, complaint_id: str, update: str, arg: object, event_id: str
) -> Decision:
    """Run one supervisor update on a case and classify the answer.

    Returns:
        ``exit_code`` 0 (accepted), 1 (refused by the workflow, or no such running case),
        3 (Temporal unreachable) or 5 (no answer in time).
    """
    client: Client | None = None
    try:
        client = await connect_temporal(settings)
        handle = client.get_workflow_handle(complaint_workflow_id(complaint_id))
        ack = await handle.execute_update(
            update, arg, id=event_id, result_type=Ack, rpc_timeout=UPDATE_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Decision(None, EXIT_NO_CASE,
                            f"no running case {complaint_id} ({exc.message})")
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return Decision(None, EXIT_NO_ANSWER, _no_answer(event_id))
        failure = classify(exc)
        return Decision(None, failure.code, failure.message)
    except RPCTimeoutOrCancelledError:
        return Decision(None, EXIT_NO_ANSWER, _no_answer(event_id))
    except WorkflowUpdateFailedError as exc:
        return Decision(None, EXIT_REFUSED, f"the case failed the update: "
                        f"{describe_error(exc.cause or exc)}")
    except (TimeoutError, OSError, RuntimeError) as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (
            "connection refused" if "refused" in str(exc).lower() else describe_error(exc))
        return Decision(None, EXIT_UNREACHABLE,
                        Unreachable("Temporal", settings.temporal_address, why).message)
    finally:
        del client
    if ack.accepted:
        text = "accepted" + (" (already applied: same event id)" if ack.duplicate else "")
        return Decision(ack, 0, text)
    return Decision(ack, EXIT_REFUSED, f"refused: {ack.reason}"
                    + (f" — {ack.detail}" if ack.detail else ""))


def _no_answer(event_id: str) -> str:
    return (f"no answer within {UPDATE_TIMEOUT.seconds} s (is a worker polling?); retry with "
            f"--event-id {event_id} so the decision is applied once")
