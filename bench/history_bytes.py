"""Where a happy-path case's history bytes go: per event type and per payload.

Bytes and billable actions are counts, not timings, so a small run on a busy machine
gives the same figures as a quiet one. Two ways in:

- **live** (default): the worker and bridges of this checkout (or ``--checkout`` another
  one, e.g. a ``git archive`` of an earlier commit) on fresh topics, task queue and
  database of the running local stack; ``--cases`` happy-path complaints filed as real
  ``ComplaintFiled`` events at ``--rate``, the simulated units and callback centre of
  :mod:`bench.city` answering over Kafka; each closed case's history is then read back;
- **stored** (``--history FILE ...``): histories saved as JSON (``tests/histories``).

Printed: per case events, bytes and billable actions (the rule in
:func:`bench.histories.count_actions`), then the mean per case by event type and by
payload (workflow input, each activity's input and result, update arguments and
answers, search attributes, markers), and the ``record_step`` inputs by top-level field.

    .venv/bin/python -m bench.history_bytes --cases 20
    .venv/bin/python -m bench.history_bytes --checkout /tmp/hl-before --cases 20
    .venv/bin/python -m bench.history_bytes --history tests/histories/happy_path_v7.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import WorkflowHistory

from bench.histories import BILLABLE, count_actions


def _size(payloads: Iterable[Payload]) -> int:
    return sum(p.ByteSize() for p in payloads)


def _of(ps: Payloads) -> list[Payload]:
    return list(ps.payloads)


def payload_bytes(events: Sequence[HistoryEvent]) -> tuple[Counter[str], Counter[str]]:
    """Payload bytes of one history by what carries them, and the ``record_step``
    inputs' JSON by top-level field (data only)."""
    by: Counter[str] = Counter()
    fields: Counter[str] = Counter()
    activity_of: dict[int, str] = {}
    for e in events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            by["workflow input"] += _size(_of(e.workflow_execution_started_event_attributes.input))
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            activity_of[e.event_id] = a.activity_type.name
            by[f"{a.activity_type.name} input"] += _size(_of(a.input))
            if a.activity_type.name == "record_step":
                for p in a.input.payloads:
                    for k, v in json.loads(p.data).items():
                        fields[k] += len(json.dumps(v, separators=(",", ":"),
                                                    ensure_ascii=False).encode())
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            a2 = e.activity_task_completed_event_attributes
            name = activity_of.get(a2.scheduled_event_id, "?")
            by[f"{name} result"] += _size(_of(a2.result))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            a3 = e.workflow_execution_update_accepted_event_attributes
            req = a3.accepted_request
            by[f"update {req.input.name} args"] += _size(_of(req.input.args))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            out = e.workflow_execution_update_completed_event_attributes.outcome
            by["update answers"] += _size(_of(out.success))
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            sa = e.upsert_workflow_search_attributes_event_attributes.search_attributes
            by["search attributes"] += _size(sa.indexed_fields.values())
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            m = e.marker_recorded_event_attributes
            by[f"marker {m.marker_name}"] += sum(_size(_of(v)) for v in m.details.values())
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            by["workflow result"] += _size(_of(
                e.workflow_execution_completed_event_attributes.result))
    return by, fields


def analyse(events: Sequence[HistoryEvent]) -> dict[str, Any]:
    """Events, bytes and actions of one history, with their breakdowns."""
    acts = count_actions(events)
    types: Counter[str] = Counter()
    type_bytes: Counter[str] = Counter()
    for e in events:
        name = EventType.Name(e.event_type).removeprefix("EVENT_TYPE_")
        types[name] += 1
        type_bytes[name] += e.ByteSize()
    by, fields = payload_bytes(events)
    return {
        "events": len(events), "bytes": History(events=list(events)).ByteSize(),
        "actions": sum(acts[k] for k in BILLABLE),
        **{k: acts[k] for k in (*BILLABLE, "version_markers")},
        "event_types": dict(types), "event_type_bytes": dict(type_bytes),
        "payload_bytes": dict(by), "record_step_fields": dict(fields),
    }


def _mean_of(cases: Sequence[dict[str, Any]], key: str) -> dict[str, float]:
    names = {k for c in cases for k in c[key]}
    return {k: statistics.mean(c[key].get(k, 0) for c in cases) for k in names}


def report(cases: Sequence[dict[str, Any]], label: str) -> str:
    """Markdown: per case totals, then the means per case by event type and payload."""
    n = len(cases)
    lines = [f"## {label}: {n} case(s)", "",
             "| per case (mean) | value |", "|---|---:|"]
    for key in ("events", "bytes", "actions", *BILLABLE, "version_markers"):
        lines.append(f"| {key} | {statistics.mean(c[key] for c in cases):,.1f} |")
    spread = sorted(c["bytes"] for c in cases)
    lines += [f"| bytes min / max | {spread[0]:,} / {spread[-1]:,} |", ""]
    counts, sizes = _mean_of(cases, "event_types"), _mean_of(cases, "event_type_bytes")
    lines += ["| event type | events | bytes |", "|---|---:|---:|"]
    for k in sorted(sizes, key=lambda k: -sizes[k]):
        lines.append(f"| {k} | {counts[k]:.1f} | {sizes[k]:,.0f} |")
    for key, title in (("payload_bytes", "payload"),
                       ("record_step_fields", "record_step input field (JSON data)")):
        means = _mean_of(cases, key)
        lines += ["", f"| {title} | bytes |", "|---|---:|"]
        for k in sorted(means, key=lambda k: -means[k]):
            lines.append(f"| {k} | {means[k]:,.0f} |")
        lines.append(f"| **total** | {sum(means.values()):,.0f} |")
    return "\n".join(lines)


def stored(paths: Sequence[Path]) -> list[dict[str, Any]]:
    return [analyse(list(WorkflowHistory.from_json(p.stem, p.read_text()).events))
            for p in paths]


async def live(args: argparse.Namespace) -> list[dict[str, Any]]:
    """File ``args.cases`` happy-path cases on fresh topics and read their histories."""
    from kafka import KafkaProducer

    from bench.city import ABORT, City, wait_until
    from bench.processes import CHECKOUT, Hotline
    from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics
    from workers.runtime.settings import Settings
    from workers.runtime.temporal import connect_temporal
    from workflows.ids import complaint_workflow_id

    base = Settings()
    tag = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={
        "topic_prefix": f"hb{tag}.", "task_queue": f"hb-{tag}",
        "postgres_db": f"hb_{tag}", "consumer_group_prefix": f"hb-{tag}",
        "time_scale": args.time_scale,
    })
    log_dir = base.state_dir / "bench" / f"history-{tag}"
    log_dir.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(ensure_stack, base)
    await asyncio.to_thread(ensure_topics, settings)
    await asyncio.to_thread(ensure_database, settings, settings.postgres_db)
    env = dict(os.environ) | {
        "HOTLINE_TOPIC_PREFIX": settings.topic_prefix, "HOTLINE_TASK_QUEUE": settings.task_queue,
        "HOTLINE_POSTGRES_DB": settings.postgres_db,
        "HOTLINE_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "HOTLINE_TIME_SCALE": repr(settings.time_scale), "HOTLINE_WORKER_METRICS_PORT": "0",
        "HOTLINE_BRIDGE_METRICS_PORT": "0", "HOTLINE_TEMPORAL_SDK_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }
    if args.checkout:
        env[CHECKOUT] = str(args.checkout)
    hotline = Hotline(env, log_dir)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             linger_ms=5)
    city = City(settings, producer)
    print(f"history bytes {tag}: {args.cases} cases at {args.rate}/s (logs in {log_dir})",
          file=sys.stderr, flush=True)
    try:
        await asyncio.to_thread(hotline.start)
        city.start()
        ids = [f"H{tag}-{i:04d}" for i in range(args.cases)]
        for cid in ids:
            city.file(cid)
            producer.flush()
            await asyncio.sleep(1 / args.rate)
        if not await asyncio.to_thread(
                wait_until, lambda: all(city.cases[c].closed for c in ids), args.timeout):
            print(f"warning: {sum(not city.cases[c].closed for c in ids)} cases not closed",
                  file=sys.stderr)
        client = await connect_temporal(settings, timeout=None)
        # The case's last step reaches Kafka before its workflow completes.
        time.sleep(1)
        out = []
        for cid in ids:
            if city.cases[cid].closed:
                hist = await client.get_workflow_handle(complaint_workflow_id(cid)).fetch_history()
                out.append(analyse(list(hist.events)))
        return out
    finally:
        ABORT.set()
        city.stop.set()
        producer.close(timeout=5)
        hotline.stop()
        if not args.keep:
            await asyncio.to_thread(_clean_up, settings)


def _clean_up(settings: Any) -> None:
    """Drop the run's database and topics (the histories stay in Temporal)."""
    import psycopg
    from kafka.admin import KafkaAdminClient

    from workers.runtime.migrate import admin_dsn

    with psycopg.connect(admin_dsn(settings), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{settings.postgres_db}" WITH (FORCE)')
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        topics = [t for t in admin.list_topics() if t.startswith(settings.topic_prefix)]
        if topics:
            admin.delete_topics(topics)
    finally:
        admin.close()


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--history", type=Path, nargs="*", help="stored history JSON files")
    p.add_argument("--cases", type=int, default=20)
    p.add_argument("--rate", type=float, default=2.0, help="cases filed per second")
    p.add_argument("--time-scale", type=float, default=0.01)
    p.add_argument("--timeout", type=float, default=180.0)
    p.add_argument("--checkout", type=Path, help="run the worker and bridges of this tree")
    p.add_argument("--label", default="", help="heading of the report")
    p.add_argument("--keep", action="store_true",
                   help="keep the run's database and topics (dropped by default)")
    p.add_argument("--json", type=Path, help="also write the per-case figures here")
    args = p.parse_args(argv)
    if args.history:
        cases = stored(args.history)
        label = args.label or ", ".join(h.stem for h in args.history)
    else:
        cases = asyncio.run(live(args))
        label = args.label or f"live, {args.checkout or 'this checkout'}"
    if not cases:
        sys.exit("no closed case to measure")
    print(report(cases, label))
    if args.json:
        args.json.write_text(json.dumps(cases, indent=1))


if __name__ == "__main__":
    main()
