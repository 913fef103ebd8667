"""Temporal history accounting: events, bytes and billable actions per case."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client


def count_actions(events: Sequence[Any]) -> Counter[str]:
    """Billable actions in one history, by kind (Temporal Cloud's published list).

    Counted: the workflow start (``WorkflowExecutionStarted``, which also covers a
    continue-as-new run); each activity scheduled, plus each retry (``attempt`` − 1 on
    its ``ActivityTaskStarted``); each signal received or sent to another workflow; each
    update accepted; each timer started; each search-attribute upsert and memo change;
    each child workflow started; each marker (side effects, local activities; version
    markers from ``workflow.patched`` are listed apart and not summed). Not counted:
    workflow tasks, queries, completion events.
    """
    c: Counter[str] = Counter()
    for e in events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            c["workflow_started"] += 1
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            c["activities"] += 1
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            c["activity_retries"] += max(0, e.activity_task_started_event_attributes.attempt - 1)
        elif t in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
                   EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED):
            c["signals"] += 1
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            c["updates"] += 1
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            c["timers"] += 1
        elif t in (EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
                   EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED):
            c["upserts"] += 1
        elif t == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            c["children"] += 1
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            name = e.marker_recorded_event_attributes.marker_name
            c["version_markers" if name == "core_patch" else "markers"] += 1
    return c


BILLABLE = ("workflow_started", "activities", "activity_retries", "signals", "updates",
            "timers", "upserts", "children", "markers")


async def history_stats(client: Client, workflow_ids: Sequence[str]) -> dict[str, Any]:
    per_case: list[dict[str, Any]] = []
    for wid in workflow_ids:
        hist = await client.get_workflow_handle(wid).fetch_history()
        events = list(hist.events)
        acts = count_actions(events)
        per_case.append({
            "events": len(events),
            "bytes": History(events=events).ByteSize(),
            "actions": sum(acts[k] for k in BILLABLE),
            **{k: acts[k] for k in (*BILLABLE, "version_markers")},
        })
    if not per_case:
        return {}
    return {k: statistics.mean(c[k] for c in per_case) for k in per_case[0]} | {
        "sample": len(per_case)}
