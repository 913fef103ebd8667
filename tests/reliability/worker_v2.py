"""A "next version" of the worker for fault 10, run as ``python -m tests.reliability.worker_v2``.

The change is the kind a release makes: new cases wait a moment before asking for the
callback (a new timer: a new command in the history). It is guarded by
``workflow.patched``, decided once at the start of each run, so cases started by the
previous version replay and finish on their old path. Nothing in production uses this.

No ``from __future__ import annotations``: ``run`` must be annotated like the base class's
``__init__`` (real types, not strings), or the SDK refuses the class.
"""

from datetime import timedelta

from temporalio import workflow

from workflows.complaint import ComplaintWorkflow
from workflows.model import CaseResult, Filing

PATCH_V2 = "reliability-v2-callback-pause"


@workflow.defn(name="ComplaintWorkflow")
class ComplaintWorkflowV2(ComplaintWorkflow):
    @workflow.run
    async def run(self, filing: Filing) -> CaseResult:
        self._v2 = workflow.patched(PATCH_V2)
        return await super().run(filing)

    async def callback(self) -> None:
        if self._v2 and self._callback_attempt == 0:
            await workflow.sleep(timedelta(milliseconds=50))
        await super().callback()


def main() -> None:
    import workers.worker.main

    workers.worker.main.ComplaintWorkflow = ComplaintWorkflowV2  # type: ignore[misc]
    workers.worker.main()


if __name__ == "__main__":
    main()
