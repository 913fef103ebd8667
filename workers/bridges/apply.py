"""Applying one routed command to Temporal: start the case, or run the update.

``apply_command`` never raises; its :class:`~workers.bridges.outcomes.Verdict` says what
happened. The update id is derived from the event id and the Kafka position
(:func:`update_id_for`), so a retry gets the first attempt's answer.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from workers.bridges.outcomes import (
    APPLIED,
    CASE_CLOSED,
    TRANSIENT,
    Verdict,
    classify_error,
    verdict_for_ack,
)
from workers.bridges.routes import START, Command
from workers.runtime.kafka_io import SourceMessage
from workers.runtime.settings import Settings
from workflows.model import Ack, Filing

WORKFLOW_TYPE = "ComplaintWorkflow"

START_RPC_TIMEOUT = timedelta(seconds=10)
# An update waits for the workflow to handle it; with no worker polling it would wait for
# ever. Past this the attempt counts as transient, and the retry (same update id) picks up
# the outcome of the update the server still holds.
UPDATE_RPC_TIMEOUT = timedelta(seconds=20)
# Outer bound on one attempt, in case the SDK's polling loop outlives the RPC timeout.
ATTEMPT_TIMEOUT_S = 40.0


def update_id_for(command: Command, message: SourceMessage) -> str:
    """Temporal update id: a digest of the event id and where it was read.

    The server de-duplicates updates by id within a run, so a retry after a timeout, or a
    redelivery after a failed commit, gets the first attempt's answer. The Kafka position
    is part of what is digested so that a message re-driven from the DLQ (new offset)
    reaches the handler again, and a recreated topic can never make two events share an
    id. A digest (128 bits, 22 characters) rather than the words themselves: the id is
    written four times into the case's history for each update, and the spelled-out form
    (~60 characters) cost ~0.6 KB a case. The event id is still in the update's argument.
    """
    where = f"{command.event_id}@{message.topic}:{message.partition}:{message.offset}"
    digest = hashlib.blake2b(where.encode(), digest_size=16).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def _running_again(handle: WorkflowHandle[Any, Any]) -> bool:
    """True when the workflow id has a running run now (after a continue-as-new)."""
    try:
        description = await handle.describe(rpc_timeout=START_RPC_TIMEOUT)
    except Exception:
        return False
    return description.status == WorkflowExecutionStatus.RUNNING


async def apply_command(
    client: Client, settings: Settings, command: Command, *, update_id: str | None = None
) -> Verdict:
    """Start the case or run the update; never raises, the verdict says what happened."""
    try:
        if command.action == START:
            # Start, not signal-with-start: a repeated signal-with-start re-delivers a
            # signal to a running case. REJECT_DUPLICATE + FAIL: a duplicate ComplaintFiled
            # never makes a second run, even after the case closed.
            # The workflow code the case runs on is the starter's to say, never the record's.
            filing = command.arg
            if isinstance(filing, Filing):
                filing = replace(filing, workflow_version=settings.case_workflow_version)
            await asyncio.wait_for(
                client.start_workflow(
                    WORKFLOW_TYPE,
                    filing,
                    id=command.workflow_id,
                    task_queue=settings.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    rpc_timeout=START_RPC_TIMEOUT,
                ),
                ATTEMPT_TIMEOUT_S,
            )
            return Verdict(APPLIED)
        handle = client.get_workflow_handle(command.workflow_id)
        ack = await asyncio.wait_for(
            handle.execute_update(
                command.action,
                command.arg,
                id=update_id,
                result_type=command.result_type,
                rpc_timeout=UPDATE_RPC_TIMEOUT,
            ),
            ATTEMPT_TIMEOUT_S,
        )
    except Exception as exc:
        verdict = classify_error(exc)
        if verdict.reason == CASE_CLOSED and await _running_again(handle):
            # The run closed by continuing as new: the case lives on in a new run, which
            # takes the update on retry (it de-duplicates by event id).
            return Verdict(TRANSIENT, detail=f"continued as new: {verdict.detail}")
        return verdict
    if not isinstance(ack, command.result_type):
        return Verdict(TRANSIENT, detail=f"unexpected update result {type(ack).__name__}")
    # Only case updates answer with an Ack; a plan refuses by failing the update instead.
    return verdict_for_ack(ack) if isinstance(ack, Ack) else Verdict(APPLIED)
