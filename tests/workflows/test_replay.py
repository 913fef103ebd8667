"""Determinism: stored histories of landed workflow versions replay on today's code.

``tests/histories/*.json`` were recorded from earlier versions of ComplaintWorkflow;
a change that breaks their replay would break every case in production. To add a
history for a new version: ``HOTLINE_RECORD_HISTORIES=1 pytest tests/workflows/test_replay.py``.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.case import CaseActivities
from activities.dispatch.config import load_config
from workers.runtime.settings import Settings
from workers.runtime.temporal import DATA_CONVERTER
from workflows.complaint import ComplaintWorkflow
from workflows.complaint_base import UMBRELLA_PATCHES
from workflows.model import (
    QUERY_VIEW,
    UPDATE_CALLBACK,
    UPDATE_COMPLETE,
    UPDATE_DECIDE_DISPATCH,
    UPDATE_SIGN_FOR,
    WORKFLOW_VERSION,
    Ack,
    CallbackAnswer,
    CaseView,
    Complete,
    DispatchDecision,
    Filing,
    SignFor,
    StepReceipt,
    StepRecord,
)

HISTORIES = Path(__file__).parent.parent / "histories"
# 小黄庄 is in two districts: the case waits at the dispatch desk.
REVIEWED_TEXT = "小黄庄社区门口垃圾堆了三天没人清运"
HAPPY_TEXT = "西城区金融街街道某小区垃圾堆放三天没人清运"


@activity.defn(name="record_step")
async def _record_step(step: StepRecord) -> StepReceipt | None:
    # As the real activity answers: nothing to a lean step.
    return None if step.is_lean else StepReceipt(step.complaint_id, step.step, 0)


async def _run_case(env: WorkflowEnvironment, *, cache: int, late: bool,
                    reviewed: bool = False, version: int = WORKFLOW_VERSION
                    ) -> WorkflowHistory:
    """One case through every stage; ``late`` lets the ladder fire before the unit acts;
    ``reviewed``: the place is ambiguous, so a dispatcher decides first (派单复核);
    ``version``: the ``Filing.workflow_version`` it is started on (0: as before it)."""
    acts = CaseActivities(load_config(Settings().config_dir), cast(Any, None),
                          cast(Any, None), topic_lifecycle="l", topic_dispatches="d")
    tq = f"replay-{uuid.uuid4().hex[:8]}"
    cid = f"R-{uuid.uuid4().hex[:8]}"
    # The payloads as production writes them (v8 on): the replays below read them with
    # Temporal's default converter.
    client = Client(**(env.client.config() | {"data_converter": DATA_CONVERTER}))
    async with Worker(client, task_queue=tq, workflows=[ComplaintWorkflow],
                      activities=[acts.accept, acts.route, acts.plan, _record_step],
                      max_cached_workflows=cache):
        h = await client.start_workflow(
            ComplaintWorkflow.run,
            Filing(event_id="f", complaint_id=cid, filed_at=datetime.now(UTC), channel="APP",
                   content=REVIEWED_TEXT if reviewed else HAPPY_TEXT,
                   workflow_version=version),
            id=f"complaint-{cid}", task_queue=tq)
        view: CaseView | None = None
        if reviewed:
            while (await h.query(QUERY_VIEW, result_type=CaseView)).status != "AWAITING_REVIEW":
                pass
            await h.execute_update(UPDATE_DECIDE_DISPATCH, DispatchDecision(
                event_id="d", complaint_id=cid, decided_at=datetime.now(UTC),
                dispatcher_id="desk", decision="DISPATCH"), result_type=Ack)
        while view is None or view.dispatch_id is None:
            view = await h.query(QUERY_VIEW, result_type=CaseView)
        if late:
            await env.sleep(timedelta(hours=30))
        # ``late``: the citizen is unhappy, so the case is reopened once and handled again.
        for round_ in range(2 if late else 1):
            view = await h.query(QUERY_VIEW, result_type=CaseView)
            reply = {"dispatch_id": view.dispatch_id, "unit_id": view.lead_unit_id,
                     "at": datetime.now(UTC)}
            await h.execute_update(UPDATE_SIGN_FOR, SignFor(event_id=f"s{round_}", **reply),
                                   result_type=Ack)
            await h.execute_update(UPDATE_COMPLETE, Complete(
                event_id=f"c{round_}", result="RESOLVED", reply_text="已清运", **reply),
                result_type=Ack)
            while (await h.query(QUERY_VIEW, result_type=CaseView)).status != "CALLBACK":
                pass
            unhappy = late and round_ == 0
            await h.execute_update(UPDATE_CALLBACK, CallbackAnswer(
                event_id=f"cb{round_}", at=datetime.now(UTC), reached=True, responded=True,
                resolved=not unhappy, satisfaction="UNSATISFIED" if unhappy else "SATISFIED"),
                result_type=Ack)
            if unhappy:
                while (await h.query(QUERY_VIEW, result_type=CaseView)).reopens < 1:
                    pass
        await h.result()
        return await h.fetch_history()


@pytest.mark.skipif(not os.environ.get("HOTLINE_RECORD_HISTORIES"),
                    reason="set HOTLINE_RECORD_HISTORIES=1 to record new histories")
async def test_record_histories(time_env: WorkflowEnvironment) -> None:
    version = os.environ.get("HOTLINE_HISTORY_VERSION", "v1")
    HISTORIES.mkdir(exist_ok=True)
    for name, late, reviewed in (("happy_path", False, False), ("escalated", True, False),
                                 ("reviewed", False, True)):
        history = await _run_case(time_env, cache=0, late=late, reviewed=reviewed)
        (HISTORIES / f"{name}_{version}.json").write_text(history.to_json())


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_stored_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=[ComplaintWorkflow]).replay_workflow(history)


def test_histories_are_stored() -> None:
    assert len(list(HISTORIES.glob("*.json"))) >= 2


def _upserts(history: WorkflowHistory) -> list[dict[str, Any]]:
    """The case's own search-attribute upserts, in order (the SDK's version upserts apart)."""
    out = []
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes
            values = {k: json.loads(v.data) for k, v in fields.indexed_fields.items()}
            if "TemporalChangeVersion" not in values:
                out.append(values)
    return out


def _patch_markers(history: WorkflowHistory) -> list[str]:
    markers = [e.marker_recorded_event_attributes for e in history.events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    return [json.loads(m.details["patch-data"].payloads[0].data)["id"] for m in markers
            if m.marker_name == "core_patch"]


def _version_upserts(history: WorkflowHistory) -> int:
    return sum(1 for e in history.events
               if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
               and "TemporalChangeVersion" in e.upsert_workflow_search_attributes_event_attributes
               .search_attributes.indexed_fields)


async def test_a_fresh_happy_path_case_is_indexed_once_when_dispatched(
    time_env: WorkflowEnvironment,
) -> None:
    history = await _run_case(time_env, cache=0, late=False)
    # Not at the close (patch close-unindexed): Temporal's ExecutionStatus says it.
    assert [u.get("HotlineStatus") for u in _upserts(history)] == ["DISPATCHED"]
    # Started on today's workflow_version: no version marker, and so no
    # TemporalChangeVersion upsert (one billed action fewer).
    assert _patch_markers(history) == [] and _version_upserts(history) == 0
    # accept ran as a local activity: a marker, no activity task, the filing not repeated.
    markers = [e.marker_recorded_event_attributes.marker_name for e in history.events
               if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    assert markers == ["core_local_activity"]
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert "accept" not in scheduled and scheduled == ["record_step"] * 4
    await Replayer(workflows=[ComplaintWorkflow]).replay_workflow(history)


async def test_a_case_started_as_before_workflow_versions_asks_its_patches(
    time_env: WorkflowEnvironment,
) -> None:
    """A filing without workflow_version (a bridge of before, during a deploy) runs
    today's code through ``workflow.patched``: one umbrella marker, the same path."""
    history = await _run_case(time_env, cache=0, late=False, version=0)
    assert _patch_markers(history) == [UMBRELLA_PATCHES[0]]
    assert _version_upserts(history) == 1
    assert [u.get("HotlineStatus") for u in _upserts(history)] == ["DISPATCHED"]
    await Replayer(workflows=[ComplaintWorkflow]).replay_workflow(history)


async def test_case_with_the_cache_off_replays_every_task(time_env: WorkflowEnvironment) -> None:
    # max_cached_workflows=0 replays the whole history on every task: any
    # non-determinism in the code fails the case here rather than in production.
    history = await _run_case(time_env, cache=0, late=True)
    await Replayer(workflows=[ComplaintWorkflow]).replay_workflow(history)


async def test_a_reviewed_case_with_the_cache_off_replays_every_task(
    time_env: WorkflowEnvironment,
) -> None:
    history = await _run_case(time_env, cache=0, late=False, reviewed=True)
    await Replayer(workflows=[ComplaintWorkflow]).replay_workflow(history)
