"""A ComplaintWorkflow harness on the time-skipping server, shared by the workflow tests.

The real ``accept``, ``route`` and ``plan`` activities run (pure: classification, routing
and deadlines from the config folder); ``record_step`` is replaced under its real name by
one that keeps the steps, so a test reads exactly what the case made durable.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.case import CaseActivities
from activities.dispatch.config import HotlineConfig, load_config
from workers.runtime.settings import Settings
from workflows.complaint import ComplaintWorkflow
from workflows.model import (
    QUERY_VIEW,
    WORKFLOW_VERSION,
    Ack,
    CaseResult,
    CaseView,
    Filing,
    LedgerRows,
    StepReceipt,
    StepRecord,
)
from workflows.steps import expand_step, ledger_after, with_complaint_id

CONFIG = load_config(Settings().config_dir)


@dataclass
class Recorder:
    steps: list[StepRecord] = field(default_factory=list)
    # The steps as the workflow sent them (``steps`` holds them expanded).
    sent: list[StepRecord] = field(default_factory=list)
    # The ledger's rows per case, as the real ledger would hold them.
    ledger: dict[str, LedgerRows] = field(default_factory=dict)

    def events(self, complaint_id: str) -> list[str]:
        return [event for group in self.groups(complaint_id) for event in group]

    def groups(self, complaint_id: str) -> list[list[str]]:
        """The lifecycle events of each ``record_step`` call, in seq order."""
        return [[ev.event_type for ev in s.lifecycle]
                for s in sorted(self._of(complaint_id), key=_seq)]

    def seqs(self, complaint_id: str) -> list[int]:
        """Lifecycle seqs in the order the ``record_step`` calls ran (not sorted)."""
        return [ev.seq for s in self._of(complaint_id) for ev in s.lifecycle]

    def outbound(self, complaint_id: str, record: str) -> list[dict[str, Any]]:
        return [o.fields for s in sorted(self._of(complaint_id), key=_seq)
                for o in s.outbound if o.record == record]

    def _of(self, complaint_id: str) -> list[StepRecord]:
        return [s for s in self.steps if s.complaint_id == complaint_id]


def _seq(step: StepRecord) -> int:
    return step.lifecycle[0].seq if step.lifecycle else 0


class FakeDuplicates:
    """Open cases by (caller hash, category, street), as the ledger would answer."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str, str | None], str] = {}

    async def find_open(self, caller_hash: str, category: str, street: str | None,
                        other_than: str) -> str | None:
        found = self.open.get((caller_hash, category, street))
        return found if found != other_than else None


@dataclass
class Harness:
    env: WorkflowEnvironment
    task_queue: str
    recorder: Recorder
    duplicates: FakeDuplicates
    started: list[WorkflowHandle[Any, CaseResult]] = field(default_factory=list)

    async def file(self, content: str, **kw: Any) -> WorkflowHandle[Any, CaseResult]:
        cid = kw.pop("complaint_id", None) or f"T-{uuid.uuid4().hex[:10]}"
        kw.setdefault("caller_phone", f"139{uuid.uuid4().int % 10**8:08d}")
        kw.setdefault("workflow_version", WORKFLOW_VERSION)  # as the bridges start cases
        filing = Filing(
            event_id=f"ev-{cid}", complaint_id=cid, filed_at=datetime.now(UTC),
            channel="PHONE", content=content, **kw,
        )
        handle = await self.env.client.start_workflow(
            ComplaintWorkflow.run, filing, id=f"complaint-{cid}", task_queue=self.task_queue,
        )
        self.started.append(handle)
        return handle

    async def until(self, handle: WorkflowHandle[Any, Any], event_type: str,
                    count: int = 1) -> CaseView:
        """Poll the case's own view until ``event_type`` happened ``count`` times.

        A query can time out while the run is handing over to its continuation (the new
        run has no completed workflow task yet): that is a moment to wait, not a failure.
        """
        view: CaseView | None = None
        for _ in range(500):
            try:
                view = await handle.query(QUERY_VIEW, result_type=CaseView,
                                          rpc_timeout=timedelta(seconds=10))
            except RPCError as err:
                if err.status not in (RPCStatusCode.DEADLINE_EXCEEDED,
                                      RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE):
                    raise
                await asyncio.sleep(0.2)
                continue
            if sum(e.event_type == event_type for e in view.timeline) >= count:
                return view
            await asyncio.sleep(0.02)
        raise AssertionError(f"{event_type} never happened; timeline: "
                             f"{[e.event_type for e in view.timeline] if view else None}")

    async def recorded(self, complaint_id: str, event_type: str) -> StepRecord:
        """The ``record_step`` call that carried ``event_type`` for the case, once it has
        run: the case's own view shows an event as soon as the workflow decides it, the
        activity that records it completes a moment later (longer on a loaded machine)."""
        for _ in range(500):
            for step in self.recorder.steps:
                if step.complaint_id == complaint_id and any(
                        ev.event_type == event_type for ev in step.lifecycle):
                    return step
            await asyncio.sleep(0.02)
        raise AssertionError(f"no step recorded {event_type} for {complaint_id}")

    async def view(self, handle: WorkflowHandle[Any, Any]) -> CaseView:
        return cast(CaseView, await handle.query(QUERY_VIEW, result_type=CaseView))


def reply(view: CaseView, cls: Callable[..., Any], *, dispatch: Any = None, **kw: Any) -> Any:
    """A unit's event for the lead's dispatch (or ``dispatch``) of the case in ``view``."""
    dispatch_id = dispatch.dispatch_id if dispatch else view.dispatch_id
    unit_id = dispatch.unit_id if dispatch else view.lead_unit_id
    assert dispatch_id and unit_id
    return cls(event_id=f"e-{uuid.uuid4().hex[:8]}", dispatch_id=dispatch_id,
               unit_id=unit_id, at=datetime.now(UTC), **kw)


def event_id() -> str:
    return f"e-{uuid.uuid4().hex[:8]}"


async def update(handle: WorkflowHandle[Any, Any], name: str, arg: Any) -> Ack:
    return cast(Ack, await handle.execute_update(name, arg, result_type=Ack))


@asynccontextmanager
async def running_harness(env: WorkflowEnvironment, *, config: HotlineConfig = CONFIG,
                          **worker_options: Any) -> AsyncIterator[Harness]:
    """A worker for ComplaintWorkflow on its own task queue; its open cases end with it.

    ``config`` defaults to the tests' folder (synthetic calendar years after the real ones,
    tests/conftest.py); the calendar's own test passes deploy/config itself."""
    recorder = Recorder()
    duplicates = FakeDuplicates()

    @activity.defn(name="record_step")
    async def record_step(step: StepRecord) -> StepReceipt:
        # As the real activity does: a lean step stands for its full form, a delta step
        # with the ledger's rows of its base version (kept here by the ledger's rules).
        recorder.sent.append(step)
        step = with_complaint_id(step, activity.info().workflow_id)
        ledger = recorder.ledger.get(step.complaint_id)
        if step.base:
            assert ledger is not None and ledger.version == step.base, (step.step, ledger)
        full = expand_step(step, ledger)
        recorder.steps.append(full)
        rows = ledger_after(ledger, full)
        if rows is not None:
            recorder.ledger[step.complaint_id] = rows
        return StepReceipt(step.complaint_id, full.step, len(step.lifecycle))

    acts = CaseActivities(config, cast(Any, None), cast(Any, None),
                          topic_lifecycle="l", topic_dispatches="d", duplicates=duplicates,
                          caller_key=b"test")
    task_queue = f"tq-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=task_queue, workflows=[ComplaintWorkflow],
                      activities=[acts.accept, acts.route, acts.plan, record_step],
                      **worker_options):
        h = Harness(env, task_queue, recorder, duplicates)
        yield h
        # A case left open with no worker would hold the shared server's clock still.
        for handle in h.started:
            if await _settled(handle):
                await handle.terminate("test over")
        await _clock_is_free(env)


async def _settled(handle: WorkflowHandle[Any, Any]) -> bool:
    """Wait until the case has no activity or workflow task in flight; False once closed.

    The time-skipping server locks its clock for each scheduled activity and workflow task
    and unlocks it when that task completes. Terminating a case with one in flight leaves
    that lock held for good (test server 1.40), and every later test in the module that
    sleeps then waits in real time until the RPC gives up ("Timeout expired"). The test
    server's describe does not report a pending workflow task, so the history tells.
    """
    for _ in range(250):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return False
        in_flight = await _in_flight(handle)
        if not in_flight:
            return True
        await asyncio.sleep(0.02)
    raise AssertionError(f"{handle.id} still has {in_flight} in flight after 5 s")


async def _clock_is_free(env: WorkflowEnvironment) -> None:
    """Fail the test that left the shared clock locked, not a later one that sleeps."""
    try:
        # Thirty virtual seconds pass at once on a free clock, in real time on a locked one.
        await asyncio.wait_for(env.sleep(timedelta(seconds=30)), 5)
    except TimeoutError:
        raise AssertionError("this test left the time-skipping clock locked: a task was "
                             "still in flight when its case ended") from None


_SCHEDULED = {"activity_task_scheduled_event_attributes",
              "workflow_task_scheduled_event_attributes"}
# Events that close a scheduled task; each names it by ``scheduled_event_id``.
_CLOSED = {f"{task}_task_{end}_event_attributes" for task in ("activity", "workflow")
           for end in ("completed", "failed", "timed_out")} | {
    "activity_task_canceled_event_attributes"}


async def _in_flight(handle: WorkflowHandle[Any, Any]) -> set[int]:
    """Event ids of the activities and workflow task scheduled and not yet closed."""
    open_ids: set[int] = set()
    async for event in handle.fetch_history_events():
        kind = event.WhichOneof("attributes") or ""
        if kind in _SCHEDULED:
            open_ids.add(event.event_id)
        elif kind in _CLOSED:
            open_ids.discard(getattr(event, kind).scheduled_event_id)
    return open_ids
