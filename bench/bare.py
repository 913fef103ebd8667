"""The bare-workflow baseline: the happy path's shape with no business logic.

``BareWorkflow`` runs as many activities, waits for as many updates and arms as many
timers as a happy-path ``ComplaintWorkflow`` (counted from real histories by
:mod:`bench.e2e`), but each activity is a no-op and the bench drives the updates through
the Temporal client directly, with no Kafka, PostgreSQL or bridges. Its throughput on
the same stack in the same run is the denominator of the benchmark's ratio.

Run the worker as its own process (so its CPU is measured apart):

    .venv/bin/python -m bench.bare --task-queue bench-bare
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from workflows.search_attributes import STATUS

# Passed through: the sandbox would otherwise import the worker's helpers (and structlog)
# afresh for every bare workflow instance.
with workflow.unsafe.imports_passed_through():
    from workers.runtime.bytecode import workflow_runner

UPDATES = ("sign_for", "report_progress", "complete", "callback")


@dataclass
class BareStep:
    """What a no-op step carries: about the size of a small lifecycle record."""

    case_id: str
    step: str
    payload: str = ""


@dataclass
class BareCase:
    case_id: str
    # Happy-path shape (6 activities since the replies-ride-along patch, the first of
    # them local since local-accept): before the first update (accept as a local
    # activity, ACCEPTED+DISPATCHED), one for each update but ``complete`` and
    # ``callback`` (their steps ride with the next), one at the callback-due wait
    # (COMPLETED+CALLBACK_DUE) and one to close (CALLBACK+EVALUATED+CLOSED).
    # bench.e2e flags a mismatch in its report.
    local_activities_before: int = 1
    activities_before: int = 1
    activities_callback_due: int = 1
    activities_after: int = 1
    updates_without_step: tuple[str, ...] = ("complete", "callback")
    # Long enough never to fire in a run: a happy path cancels its timers.
    timer_seconds: float = 3600.0
    # Search-attribute upserts, one after each of the first N steps (the happy path has
    # 7): only for ``bench.e2e --bare-upserts``, to price them apart from the rest.
    upserts: int = 0
    # Characters each step carries, in and (echoed) out. 200 by default; more only for
    # ``bench.e2e --bare-payload-bytes``, to price history bytes apart from the rest.
    payload_bytes: int = 200


@dataclass
class BareAck:
    accepted: bool


@activity.defn(name="bare_step")
async def bare_step(step: BareStep) -> BareStep:
    return step


@workflow.defn(name="BareWorkflow")
class BareWorkflow:
    @workflow.init
    def __init__(self, case: BareCase) -> None:
        self._case = case
        self._done: set[str] = set()
        self._stage = "new"
        self._lock = asyncio.Lock()
        self._steps = 0

    async def _step(self, name: str, local: bool = False) -> None:
        async with self._lock:
            step = BareStep(self._case.case_id, name, "x" * self._case.payload_bytes)
            if local:
                await workflow.execute_local_activity(
                    bare_step, step, start_to_close_timeout=timedelta(seconds=30))
            else:
                await workflow.execute_activity(
                    bare_step, step, start_to_close_timeout=timedelta(seconds=30))
            self._steps += 1
            if self._steps <= self._case.upserts:
                workflow.upsert_search_attributes([STATUS.value_set(name)])

    async def _wait(self, done: str) -> None:
        """Wait for an update with a timer armed, as the escalation ladder does."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: done in self._done,
                timeout=timedelta(seconds=self._case.timer_seconds),
            )

    @workflow.run
    async def run(self, case: BareCase) -> str:
        for i in range(case.local_activities_before):
            await self._step(f"local-{i}", local=True)
        for i in range(case.activities_before):
            await self._step(f"before-{i}")
        self._stage = "handle"
        await self._wait("complete")
        # Armed with the callback-due step, as the case arms its callback wait: the answer
        # is already queued here, and a timer armed and cancelled in one workflow task
        # would never reach the history.
        answered = asyncio.ensure_future(self._wait("callback"))
        for i in range(case.activities_callback_due):
            await self._step(f"callback-due-{i}")
        self._stage = "callback"
        await answered
        for i in range(case.activities_after):
            await self._step(f"after-{i}")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return case.case_id

    @workflow.query
    def stage(self) -> str:
        return self._stage

    async def _update(self, name: str, ready: str) -> BareAck:
        await workflow.wait_condition(lambda: self._stage == ready)
        if name not in self._case.updates_without_step:
            await self._step(name)
        self._done.add(name)
        return BareAck(True)

    @workflow.update
    async def sign_for(self, step: BareStep) -> BareAck:
        return await self._update("sign_for", "handle")

    @workflow.update
    async def report_progress(self, step: BareStep) -> BareAck:
        return await self._update("report_progress", "handle")

    @workflow.update
    async def complete(self, step: BareStep) -> BareAck:
        return await self._update("complete", "handle")

    @workflow.update
    async def callback(self, step: BareStep) -> BareAck:
        return await self._update("callback", "callback")


async def serve(address: str, namespace: str, task_queue: str, max_cached: int,
                sandbox: bool) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    worker = Worker(client, task_queue=task_queue, workflows=[BareWorkflow],
                    activities=[bare_step], max_cached_workflows=max_cached,
                    workflow_runner=workflow_runner(sandbox))
    async with worker:
        print("bare worker ready", flush=True)
        await stop.wait()


def main() -> None:
    from workers.runtime.settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task-queue", default="bench-bare")
    args = parser.parse_args()
    asyncio.run(serve(settings.temporal_address, settings.temporal_namespace, args.task_queue,
                      settings.max_cached_workflows, settings.workflow_sandbox))


if __name__ == "__main__":
    main()
