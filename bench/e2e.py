"""End-to-end benchmark: hotline against a bare Temporal workflow, same stack, same run.

What it does (``make bench`` runs the short default):

1. Starts ``hotline worker``, ``hotline bridges`` and the bare-workflow worker
   (:mod:`bench.bare`) as their own processes, on fresh topics, task queues, consumer
   groups and database, so CPU seconds and peak RSS are measured per process (psutil).
2. **Ratio.** Files ``--burst`` happy-path complaints at once as real ``ComplaintFiled``
   events on the intake topic; simulated units (sign, progress, complete on
   ``DispatchIssued``) and the callback centre (on ``CALLBACK_DUE``) answer over Kafka.
   Then starts as many bare workflows and drives the same updates through the client.
   Throughput = cases / (last close − first filing), for both; ratio = ours / bare.
   The two bursts alternate ``--rounds`` times (bare, ours, bare, ours …) so machine
   noise hits both alike; the ratio is the median of the rounds.
3. **Sustained.** Files at ``--rate`` per second for ``--duration`` seconds and reports
   completed cases/s and intake→dispatch and intake→closed latency p50/p95/p99.
4. **Cost per case.** Temporal history events and billable actions per case (from the
   histories of a sample of closed cases of each kind), CPU seconds per case per process
   over the ours-burst windows, peak RSS per process over the run.
5. **Open cases** (``--open-cases N``): parks N open T15D cases (units sign, never
   complete: the escalation ladder's timers stay armed), reports worker RSS at 1k, 10k,
   100k open, history size, and how late escalation notices reach Kafka (deadline →
   notice received) while the cases are filed.

Billable actions are counted from each history with the rule in :func:`count_actions`.

Output: a markdown table on stdout and JSON in ``.state/bench/e2e-<time>.json``.

    .venv/bin/python -m bench.e2e                      # short default (~2-3 min)
    .venv/bin/python -m bench.e2e --duration 600 --rate 5  # sustained 10 minutes
    .venv/bin/python -m bench.e2e --open-cases 100000  # parked cases with armed timers

The machine is shared and noisy; absolute figures move from run to run, the ratio of
the two bursts measured minutes apart in the same run moves much less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client

from bench.bare import UPDATES, BareCase, BareStep
from schemas.codec import DecodeError, decode, encode, headers_for
from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics, stack_status
from workers.runtime.settings import REPO_ROOT, Settings
from workers.runtime.temporal import connect_temporal
from workflows.ids import complaint_workflow_id

HAPPY_CONTENT = "望京街道阜通东大街6号院3号楼电梯坏了三天，老人下不了楼"  # T24H
PARKED_CONTENT = "望京街道某装修公司拖欠工资三个月，包工头不给钱"  # labour.wages: T15D
PROGRESS_EVERY_S = 300
OPEN_MARKS = (1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000)


# --- processes ------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


def start_proc(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as fh:
        popen = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                                 stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    return Proc(name, popen, log_path)


def wait_ready(procs: Sequence[tuple[Proc, str]], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    for proc, line in procs:
        while line not in proc.log_path.read_text(errors="replace"):
            if proc.popen.poll() is not None or time.monotonic() > deadline:
                tail = proc.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{proc.name} not ready ({line!r}):\n{tail}")
            time.sleep(0.2)


def stop_procs(procs: Iterable[Proc], sig: int = signal.SIGTERM) -> None:
    procs = list(procs)
    for p in procs:
        if p.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.popen.send_signal(sig)
    for p in procs:
        try:
            p.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(timeout=10)


@dataclass
class Hotline:
    """The worker and bridges processes, restartable with extra environment (variants)."""

    env: dict[str, str]
    log_dir: Path
    procs: dict[str, Proc] = field(default_factory=dict)
    variant: str = ""

    def start(self, extra: dict[str, str] | None = None, label: str = "") -> None:
        self.stop()
        env = self.env | (extra or {})
        suffix = f"-{label}" if label else ""
        py = sys.executable
        for name in ("worker", "bridges"):
            self.procs[name] = start_proc(f"{name}{suffix}", [py, "-m", "workers.cli.main", name],
                                          env, self.log_dir)
        wait_ready([(self.procs["worker"], "worker ready"),
                    (self.procs["bridges"], "bridges ready")])
        self.variant = label

    def stop(self) -> None:
        stop_procs(self.procs.values())
        self.procs.clear()


class Sampler:
    """CPU seconds (process + children) and peak RSS of named processes, sampled."""

    def __init__(self, pids: dict[str, int], trees: Iterable[str] = (),
                 interval: float = 0.5) -> None:
        self._procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        # Servers whose children do their work (PostgreSQL backends); the bench's own
        # children are the processes measured apart.
        self._trees = set(trees)
        self.peak_rss: dict[str, int] = dict.fromkeys(pids, 0)
        self._interval = interval
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sampler")

    def _tree(self, name: str) -> list[psutil.Process]:
        p = self._procs[name]
        if name not in self._trees:
            return [p]
        try:
            return [p, *p.children(recursive=True)]
        except psutil.Error:
            return [p]

    def cpu(self) -> dict[str, float]:
        out = {}
        for name in self._procs:
            total = 0.0
            for p in self._tree(name):
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
            out[name] = total
        return out

    def set_pid(self, name: str, pid: int) -> None:
        with self._lock:
            self._procs[name] = psutil.Process(pid)
            self.peak_rss.setdefault(name, 0)

    def pid(self, name: str) -> int:
        return int(self._procs[name].pid)

    def rss(self, name: str) -> int:
        total = 0
        for p in self._tree(name):
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for name in list(self._procs):
                r = self.rss(name)
                with self._lock:
                    self.peak_rss[name] = max(self.peak_rss[name], r)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- the simulated city (units and callback centre) -----------------------------------------


@dataclass
class Case:
    filed: float
    dispatched: float | None = None
    closed: float | None = None
    issued: dict[str, Any] | None = None
    signed: float | None = None


@dataclass
class City:
    """Files complaints and answers for the units and the callback centre, over Kafka.

    ``park`` cases are signed for and then left open: their timers stay armed.
    """

    settings: Settings
    producer: KafkaProducer
    cases: dict[str, Case] = field(default_factory=dict)
    parked: set[str] = field(default_factory=set)
    parked_dispatched: int = 0  # written by the units thread only
    parked_signed: int = 0  # written by the callbacks thread only
    notices: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _send(self, topic: str, cid: str, name: str, record: dict[str, Any]) -> None:
        self.producer.send(topic, key=cid.encode(), value=encode(name, record),
                           headers=headers_for(name))

    def file(self, cid: str, *, park: bool = False) -> None:
        now = time.time()
        with self.lock:
            # One caller per case: a repeat caller's filing would be merged (合并).
            phone = f"139{len(self.cases):08d}"
            self.cases[cid] = Case(filed=now)
            if park:
                self.parked.add(cid)
        self._send(self.settings.topic_intake, cid, "ComplaintFiled", {
            "event_id": f"f-{cid}", "complaint_id": cid,
            "filed_at": datetime.fromtimestamp(now, UTC), "channel": "PHONE", "kind": None,
            "content": PARKED_CONTENT if park else HAPPY_CONTENT,
            "caller_phone": phone, "caller_name": "张先生", "anonymous": False,
            "district": "朝阳区", "street": "望京街道", "address": "阜通东大街6号院",
            "latitude": None, "longitude": None, "category_hint": None, "urgency_hint": None,
            "answered_directly": False, "attachments": [],
        })

    def _reply(self, issued: dict[str, Any], name: str, **fields: Any) -> None:
        cid = issued["complaint_id"]
        self._send(self.settings.topic_unit_replies, cid, name, {
            "event_id": uuid.uuid4().hex, "complaint_id": cid,
            "dispatch_id": issued["dispatch_id"], "unit_id": issued["unit_id"],
            "at": datetime.now(UTC), **fields})

    def _tail(self, topic: str) -> KafkaConsumer:
        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                 enable_auto_commit=False, group_id=None,
                                 fetch_max_wait_ms=500)
        parts = None
        deadline = time.monotonic() + 30
        while not parts and time.monotonic() < deadline:
            consumer.topics()
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise RuntimeError(f"topic {topic} has no partitions")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_end(*tps)
        for tp in tps:
            consumer.position(tp)
        return consumer

    def start(self) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._units, args=(self._tail(self.settings.topic_dispatches),),
                             daemon=True, name="units"),
            threading.Thread(target=self._callbacks,
                             args=(self._tail(self.settings.topic_lifecycle),),
                             daemon=True, name="callbacks"),
        ]
        for t in threads:
            t.start()
        return threads

    def _records(self, consumer: KafkaConsumer) -> Iterable[tuple[float, str, dict[str, Any]]]:
        while not self.stop.is_set():
            batches = consumer.poll(timeout_ms=200, max_records=1000)
            now = time.time()
            for msgs in batches.values():
                for msg in msgs:
                    try:
                        d = decode(msg.value)
                    except DecodeError:
                        continue
                    yield now, d.name, d.record
        consumer.close(autocommit=False)

    def _units(self, consumer: KafkaConsumer) -> None:
        for now, name, rec in self._records(consumer):
            cid = rec["complaint_id"]
            case = self.cases.get(cid)
            if case is None:
                continue
            if name == "DispatchIssued" and rec["role"] == "LEAD" and case.issued is None:
                case.dispatched = now
                case.issued = rec
                if cid in self.parked:
                    self.parked_dispatched += 1
                self._reply(rec, "DispatchSigned", signer="王师傅")
                if cid not in self.parked:
                    self._reply(rec, "ProgressReported", text="已联系市民，维修中",
                                contacted_citizen=True)
                    self._reply(rec, "HandlingCompleted", result="RESOLVED",
                                reply_text="电梯已修复并通过检测")
            elif name == "SupervisionNotice" and case.issued is not None:
                issued = case.issued
                frac = rec.get("fraction_used")
                if frac is None or rec["notice_type"] not in ("WARNING", "OVERDUE",
                                                                "CITY_SUPERVISION"):
                    continue
                start = issued["issued_at"].timestamp()
                due = rec["due_at"].timestamp()
                deadline = start + (due - start) * frac
                self.notices.append({"complaint_id": cid, "type": rec["notice_type"],
                                     "deadline": deadline, "late_s": now - deadline,
                                     "recorded_late_s": rec["at"].timestamp() - deadline})

    def _callbacks(self, consumer: KafkaConsumer) -> None:
        for now, name, rec in self._records(consumer):
            cid = rec["complaint_id"]
            case = self.cases.get(cid)
            if case is None or name != "LifecycleEvent":
                continue
            if rec["event_type"] == "SIGNED" and case.signed is None:
                case.signed = now
                if cid in self.parked:
                    self.parked_signed += 1
            elif rec["event_type"] == "CALLBACK_DUE":
                self._send(self.settings.topic_callbacks, cid, "CallbackResult", {
                    "event_id": f"cb-{cid}-{rec['seq']}", "complaint_id": cid,
                    "at": datetime.now(UTC), "reached": True, "responded": True,
                    "resolved": True, "satisfaction": "SATISFIED", "comment": "修好了"})
            elif rec["event_type"] == "CLOSED":
                case.closed = now


def by_minute(notices: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Notice lateness per minute of deadlines: a stall shows as the minutes it hit."""
    if not notices:
        return []
    first = min(x["deadline"] for x in notices)
    minutes: dict[int, list[float]] = {}
    for x in notices:
        minutes.setdefault(int((x["deadline"] - first) // 60), []).append(x["late_s"])
    return [{"minute": m, "notices": len(v), "p50": pct(v, 50), "p99": pct(v, 99),
             "max": max(v)} for m, v in sorted(minutes.items())]


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


ABORT = threading.Event()  # set when the run ends: waits in threads give up


def wait_until(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ABORT.is_set():
        if pred():
            return True
        time.sleep(0.1)
    return bool(pred())


# --- history accounting -----------------------------------------------------------------------


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


# --- phases -------------------------------------------------------------------------------


@dataclass
class Window:
    started: float
    ended: float
    cpu: dict[str, float]
    cases: int

    @property
    def rate(self) -> float:
        return self.cases / max(1e-9, self.ended - self.started)


def ours_burst(city: City, sampler: Sampler, n: int, tag: str, timeout: float) -> Window:
    ids = [f"B{tag}-{i:05d}" for i in range(n)]
    cpu0 = sampler.cpu()
    t0 = time.time()
    for cid in ids:
        city.file(cid)
    city.producer.flush()
    ok = wait_until(lambda: all(city.cases[c].closed for c in ids), timeout)
    closed = [t for c in ids if (t := city.cases[c].closed) is not None]
    t1 = max(closed) if closed else time.time()
    cpu1 = sampler.cpu()
    if not ok:
        print(f"  warning: {n - len(closed)} of {n} cases not closed in {timeout:.0f} s")
    return Window(t0, t1, {k: cpu1[k] - cpu0[k] for k in cpu0}, len(closed))


async def bare_burst(client: Client, sampler: Sampler, task_queue: str, n: int, tag: str,
                     timeout: float, upserts: int = 0, payload_bytes: int = 200) -> Window:
    cpu0 = sampler.cpu()
    t0 = time.time()
    done: list[float] = []

    async def one(i: int) -> None:
        wid = f"bare-{tag}-{i:05d}"
        case = BareCase(wid, upserts=upserts, payload_bytes=payload_bytes)
        handle = await client.start_workflow("BareWorkflow", case, id=wid,
                                             task_queue=task_queue)
        for name in UPDATES:
            await handle.execute_update(name, BareStep(wid, name))
        await handle.result()
        done.append(time.time())

    results = await asyncio.wait_for(
        asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True), timeout)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"  warning: {len(errors)} bare cases failed, e.g. {errors[0]!r}")
    cpu1 = sampler.cpu()
    return Window(t0, max(done) if done else time.time(),
                  {k: cpu1[k] - cpu0[k] for k in cpu0}, len(done))


def sustained(city: City, rate: float, duration: float, tag: str,
              drain_s: float) -> dict[str, Any]:
    n = max(1, int(rate * duration))
    ids = [f"S{tag}-{i:06d}" for i in range(n)]
    t0 = time.time()
    for i, cid in enumerate(ids):
        delay = t0 + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        city.file(cid)
    filing_end = time.time()
    wait_until(lambda: all(city.cases[c].closed for c in ids), drain_s)
    cases = [city.cases[c] for c in ids]
    closed = [c for c in cases if c.closed]
    to_dispatch = [c.dispatched - c.filed for c in cases if c.dispatched]
    to_close = [c.closed - c.filed for c in closed if c.closed]
    end = max((c.closed for c in closed if c.closed), default=time.time())
    return {
        "rate_offered": rate, "duration_s": duration, "filed": n,
        "filing_s": round(filing_end - t0, 1),
        "closed": len(closed), "completed_per_s": len(closed) / max(1e-9, end - t0),
        "intake_to_dispatch_s": {f"p{q}": pct(to_dispatch, q) for q in (50, 95, 99)},
        "intake_to_closed_s": {f"p{q}": pct(to_close, q) for q in (50, 95, 99)},
    }


def open_cases(city: City, sampler: Sampler, n: int, rate: float | None, tag: str,
               settle_s: float, max_s: float = 0, progress: Path | None = None,
               backlog: int = 200) -> dict[str, Any]:
    """Park up to ``n`` T15D cases; worker RSS as each mark is passed.

    A parked case counts as open once its unit has signed for it (its SIGNED lifecycle
    event is on Kafka): from then on only the escalation ladder's timers wake it. RSS is
    read the moment the ``m``-th parked case is signed for, while filing goes on, so each
    mark sees that many open cases. At most ``backlog`` cases are filed and not yet
    signed for: filing faster than the stack parks them only queues work, and a case
    queued past its scaled sign-for deadline (2 h, 72 s at time scale 0.01) escalates,
    which adds work and slows the parking further. ``max_s`` (0 = none) stops filing
    after that many seconds: the marks reached are reported, the rest are not. After
    each mark the figures so far are written to ``progress`` so a run cut short still
    leaves them.
    """
    ids = [f"O{tag}-{i:06d}" for i in range(n)]
    marks = sorted({m for m in OPEN_MARKS if m <= n} | {n})
    rss: dict[str, dict[str, float]] = {}
    mine = set(ids)
    t0 = written = time.time()  # written: when progress was last written

    def lateness() -> dict[str, Any]:
        notices = [x for x in list(city.notices) if x["complaint_id"] in mine]
        late = [x["late_s"] for x in notices]
        return {"notices": len(late),
                "notice_late_s": {f"p{q}": pct(late, q) for q in (50, 95, 99)}
                | {"max": max(late) if late else None},
                "notice_late_by_minute": by_minute(notices)}

    def take_marks() -> None:
        while len(rss) < len(marks):
            m = marks[len(rss)]
            if city.parked_signed < m:
                return
            time.sleep(2)  # let the sign-for updates of the last few land
            rss[str(m)] = {"worker_bytes": sampler.rss("worker"),
                           "temporal_bytes": sampler.rss("temporal"),
                           "elapsed_s": round(time.time() - t0, 1),
                           "open_at_read": city.parked_signed}
            so_far = lateness()
            print(f"  {m:>7} open after {rss[str(m)]['elapsed_s']:.0f} s: worker RSS "
                  f"{rss[str(m)]['worker_bytes'] / 2**20:.0f} MiB, Temporal RSS "
                  f"{rss[str(m)]['temporal_bytes'] / 2**20:.0f} MiB, notices "
                  f"{so_far['notices']}, late p99 {_fmt(so_far['notice_late_s']['p99'])} s",
                  flush=True)
            write_progress(so_far)

    def write_progress(so_far: dict[str, Any]) -> None:
        nonlocal written
        written = time.time()
        if progress:
            progress.write_text(json.dumps(
                {"open": n, "worker_rss_bytes": rss, "open_now": city.parked_signed,
                 "elapsed_s": round(written - t0, 1), **so_far}, indent=2))

    filed = 0
    for i, cid in enumerate(ids):
        if max_s and time.time() - t0 > max_s:
            print(f"  --open-max-s {max_s:.0f} reached: stopped filing at {filed} cases",
                  flush=True)
            break
        if rate:
            delay = t0 + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
        if filed - city.parked_signed >= backlog:
            city.producer.flush()
            wait_until(lambda k=filed: k - city.parked_signed < backlog, 600)
        city.file(cid, park=True)
        filed += 1
        # Every filing: a mark read late would count more open cases than it says.
        take_marks()
        if time.time() - written > PROGRESS_EVERY_S:  # a long run cut short keeps its pace
            write_progress(lateness())
    city.producer.flush()
    wait_until(lambda: city.parked_signed >= filed, 1800)
    take_marks()
    filed_s = time.time() - t0
    time.sleep(settle_s)
    return {
        "open": n, "filed": filed, "filing_s": round(filed_s, 1), "worker_rss_bytes": rss,
        "dispatched": city.parked_dispatched, "signed": city.parked_signed, "backlog": backlog,
        **lateness(),
    }


# --- report -------------------------------------------------------------------------------


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(result: dict[str, Any]) -> str:
    lines = [f"hotline end-to-end benchmark — {result['started']} (time scale "
             f"{result['time_scale']}, {result['cpus']} CPUs, shared machine: absolute "
             "figures are noisy, the ratio is measured in one run)", ""]
    r = result.get("ratio")
    if r:
        names = list(r["variants"])
        lines += ["| burst round | bare cases/s | " + " | ".join(
                      f"{n} cases/s (ratio)" for n in names) + " |",
                  "|---|---|" + "---|" * len(names)]
        for i, b in enumerate(r["bare_rates"]):
            cells = [f"{r['variants'][n]['rates'][i]:.2f} "
                     f"({r['variants'][n]['rates'][i] / b:.2f})" for n in names]
            lines.append(f"| {i + 1} | {b:.2f} | " + " | ".join(cells) + " |")
        cells = [f"{r['variants'][n]['median']:.2f} (**{r['variants'][n]['ratio']:.2f}**)"
                 for n in names]
        lines += [f"| **median** | {r['bare_median']:.2f} | " + " | ".join(cells) + " |", ""]
        for key, what in (("bare_upserts", "{upserts} search-attribute upserts per case"),
                          ("bare_bytes", "{payload_bytes:,}-character steps (200 by default)")):
            x = r.get(key)
            if x:
                lines += [f"Bare workflow with {what.format(**x)}: "
                          + ", ".join(f"{v:.2f}" for v in x["rates"])
                          + f" cases/s, median {x['median']:.2f} "
                          f"({x['median'] / r['bare_median']:.2f}× the bare median).", ""]
        if result.get("shape_mismatch"):
            lines += [f"**Warning**: {result['shape_mismatch']}.", ""]
    if result.get("sustained"):
        s = result["sustained"]
        lines += ["| sustained | value |", "|---|---|",
                  f"| offered | {s['rate_offered']} cases/s for {s['duration_s']:.0f} s |",
                  f"| completed | {s['closed']}/{s['filed']}, "
                  f"{s['completed_per_s']:.2f} cases/s |"]
        for key, label in (("intake_to_dispatch_s", "intake→dispatch"),
                           ("intake_to_closed_s", "intake→closed")):
            p = s[key]
            lines.append(f"| {label} p50 / p95 / p99 | {_fmt(p['p50'])} / {_fmt(p['p95'])} / "
                         f"{_fmt(p['p99'])} s |")
        lines.append("")
    h = result.get("histories")
    if h:
        lines += ["| history per case | hotline | bare |", "|---|---|---|"]
        for key in ("events", "bytes", "actions", "workflow_started", "activities",
                    "activity_retries", "updates", "signals", "timers", "upserts", "markers",
                    "version_markers"):
            lines.append(f"| {key} | {_fmt(h['hotline'].get(key), 1)} | "
                         f"{_fmt(h['bare'].get(key), 1)} |")
        lines.append("")
    c = result.get("cpu_s_per_case", {})
    rss = result["peak_rss_mib"]
    cols = list(c)
    # Without bursts (--rounds 0) there is no CPU per case: only the RSS column.
    lines += ["| process | " + "".join(f"CPU s / case ({k} burst) | " for k in cols)
              + "peak RSS MiB (whole run) |", "|---|" + "---|" * (len(cols) + 1)]
    for name in rss:
        lines.append(f"| {name} | " + "".join(f"{_fmt(c[k].get(name), 4)} | " for k in cols)
                     + f"{rss[name]:.0f} |")
    if cols:
        lines.append("| **total** | " + "".join(f"{_fmt(sum(c[k].values()), 4)} | "
                                                for k in cols) + " |")
    if result.get("open_cases"):
        o = result["open_cases"]
        lines += ["", "| open cases | value |", "|---|---|",
                  # Runs before the backlog bound counted dispatched cases as open.
                  (f"| parked T15D cases signed for | {o['signed']}/{o['filed']} filed "
                   f"({o['open']} asked, at most {o['backlog']} waiting)" if "signed" in o
                   else f"| parked T15D cases dispatched | {o['dispatched']}/{o['filed']} "
                   f"filed ({o['open']} asked)") + f" in {o['filing_s']:.0f} s |"]
        first = next(iter(o["worker_rss_bytes"].values()), None)
        for m, r in o["worker_rss_bytes"].items():
            ratio = r["worker_bytes"] / first["worker_bytes"] if first else 0
            at = r.get("open_at_read", int(m))
            lines.append(f"| worker RSS at {int(m):,} open ({at:,} when read, after "
                         f"{r['elapsed_s']:.0f} s) | "
                         f"{r['worker_bytes'] / 2**20:.0f} MiB ({ratio:.2f}× first mark); "
                         f"Temporal {r['temporal_bytes'] / 2**20:.0f} MiB |")
        if o.get("history"):
            lines.append(f"| history of a parked case | {o['history'].get('events', 0):.0f} "
                         f"events, {o['history'].get('bytes', 0):.0f} bytes |")
        nl = o["notice_late_s"]
        lines.append(f"| escalation notices (deadline → on Kafka) | {o['notices']}, late "
                     f"p50 / p99 / max {_fmt(nl['p50'])} / {_fmt(nl['p99'])} / "
                     f"{_fmt(nl['max'])} s |")
        minutes = o.get("notice_late_by_minute") or []
        if minutes:
            over = [m for m in minutes if (m["p99"] or 0) > 2]
            worst = ", ".join(f"{m['minute']}: p99 {m['p99']:.1f} s" for m in over[:5])
            lines.append(f"| minutes of deadlines with notice p99 > 2 s | {len(over)} of "
                         f"{len(minutes)}{f' (minutes {worst})' if over else ''} |")
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------


def profile(args: argparse.Namespace, sampler: Sampler, label: str) -> list[Proc]:
    """py-spy on the worker and the bridges for one hotline burst (``--profile DIR``)."""
    if not args.profile:
        return []
    args.profile.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    procs = []
    for name in ("worker", "bridges"):
        pid = sampler.pid(name)
        out = args.profile / f"{name}-{label}.txt"
        procs.append(start_proc(f"py-spy-{name}", [
            spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "50",
            "--output", str(out), "--nonblocking", "--full-filenames", "--gil"],
            dict(os.environ), args.profile))
    time.sleep(1.0)  # attached before the burst starts
    print(f"  profiling worker and bridges into {args.profile}")
    return procs


def summarise_profile(path: Path, top: int = 12) -> str:
    """The hottest frames of a py-spy raw (collapsed) profile: self and inclusive share."""
    if not path.exists():
        return f"  (no profile at {path})"
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        count = int(n)
        total += count
        if frames:
            own[frames[-1]] += count
        for f in set(frames):
            incl[f] += count
    lines = [f"  {path.name}: {total} samples; hottest frames (self %):"]
    lines += [f"    {100 * c / max(total, 1):5.1f}%  {f[:150]}" for f, c in own.most_common(top)]
    root = str(REPO_ROOT)  # a clone anywhere, not only under /work
    ours = [(f, c) for f, c in incl.most_common() if root in f and "/site-packages/"
            not in f and "/.venv/" not in f][:top]
    lines.append("  our code, inclusive %:")
    lines += [f"    {100 * c / max(total, 1):5.1f}%  {f[:150]}" for f, c in ours]
    return "\n".join(lines)


def variants(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """``--variant NAME:KEY=VAL,KEY=VAL``: hotline bursts with other settings, same run."""
    out: list[tuple[str, dict[str, str]]] = [("hotline", {})]
    for spec in args.variant or []:
        name, _, pairs = spec.partition(":")
        env = dict(pair.split("=", 1) for pair in pairs.split(",") if pair)
        out.append((name, env))
    return out


async def ratio_phase(args: argparse.Namespace, city: City, sampler: Sampler, client: Client,
                      bare_queue: str, tag: str, result: dict[str, Any],
                      hotline: Hotline) -> None:
    print(f"warm-up: {args.warmup} cases of each kind", flush=True)
    await asyncio.to_thread(ours_burst, city, sampler, args.warmup, f"{tag}w", 120)
    await bare_burst(client, sampler, bare_queue, args.warmup, f"{tag}w", 120)
    kinds = variants(args)
    windows: dict[str, list[Window]] = {name: [] for name, _ in kinds}
    bare_w: list[Window] = []
    # Bare bursts that price one cost apart: (label, JSON key, BareCase fields, id tag).
    extras = [(label, key, {field: value}, code) for label, key, field, value, code in (
        ("bare+upserts", "bare_upserts", "upserts", args.bare_upserts, "u"),
        ("bare+bytes", "bare_bytes", "payload_bytes", args.bare_payload_bytes, "y"),
    ) if value]
    extra_w: dict[str, list[Window]] = {label: [] for label, *_ in extras}
    for r in range(args.rounds):
        b = await bare_burst(client, sampler, bare_queue, args.burst, f"{tag}{r}", 600)
        bare_w.append(b)
        line = f"round {r + 1}: bare {b.rate:.2f}/s"
        for label, _, fields, code in extras:
            x = await bare_burst(client, sampler, bare_queue, args.burst, f"{tag}{code}{r}",
                                 600, **fields)
            extra_w[label].append(x)
            line += f", {label} {x.rate:.2f}/s"
        for name, env in kinds:
            if len(kinds) > 1 and hotline.variant != name:
                await asyncio.to_thread(hotline.start, env, name)
                for pname, proc in hotline.procs.items():
                    sampler.set_pid(pname, proc.popen.pid)
                # Warm the restarted processes up outside the measured window.
                await asyncio.to_thread(ours_burst, city, sampler, args.warmup,
                                        f"{tag}w{r}{name}", 120)
            spies = profile(args, sampler, f"{name}-round{r + 1}") if r == 0 else []
            o = await asyncio.to_thread(ours_burst, city, sampler, args.burst,
                                        f"{tag}{r}{name}", args.burst_timeout)
            stop_procs(spies, signal.SIGINT)  # py-spy writes its output on SIGINT
            for spy in spies:
                print(summarise_profile(
                    args.profile / f"{spy.name[7:]}-{name}-round{r + 1}.txt"))
            windows[name].append(o)
            line += f", {name} {o.rate:.2f}/s (ratio {o.rate / b.rate:.2f})"
        print(line, flush=True)
    bare_rates = [w.rate for w in bare_w]

    def per_case(ws: list[Window]) -> dict[str, float]:
        cases = sum(w.cases for w in ws) or 1
        return {k: sum(w.cpu.get(k, 0.0) for w in ws) / cases for k in ws[0].cpu}

    result["ratio"] = {"burst": args.burst, "bare_rates": bare_rates,
                       "bare_median": statistics.median(bare_rates), "variants": {}}
    result["cpu_s_per_case"] = {"bare": per_case(bare_w)}
    for label, key, fields, _ in extras:
        rates = [w.rate for w in extra_w[label]]
        result["ratio"][key] = {**fields, "rates": rates, "median": statistics.median(rates)}
        result["cpu_s_per_case"][label] = per_case(extra_w[label])
    for name, env in kinds:
        rates = [w.rate for w in windows[name]]
        result["ratio"]["variants"][name] = {
            "env": env, "rates": rates, "median": statistics.median(rates),
            "ratio": statistics.median(o / b for o, b in zip(rates, bare_rates, strict=True)),
        }
        result["cpu_s_per_case"][name] = per_case(windows[name])
    if len(kinds) > 1 and hotline.variant != "hotline":
        await asyncio.to_thread(hotline.start, {}, "hotline")
        for pname, proc in hotline.procs.items():
            sampler.set_pid(pname, proc.popen.pid)
    closed_ids = [complaint_workflow_id(cid) for cid, c in city.cases.items()
                  if c.closed and cid.startswith("B")][: args.history_sample]
    bare_ids = [f"bare-{tag}0-{i:05d}" for i in range(min(args.burst, args.history_sample))]
    result["histories"] = {"hotline": await history_stats(client, closed_ids),
                           "bare": await history_stats(client, bare_ids)}
    ours, theirs = (result["histories"][k].get("activities") for k in ("hotline", "bare"))
    if ours is not None and theirs is not None and abs(ours - theirs) >= 0.5:
        # The ratio only means something when both do the same orchestration work.
        result["shape_mismatch"] = (f"the bare workflow ran {theirs:.1f} activities per case, "
                                    f"hotline {ours:.1f}: fix BareCase in bench/bare.py")
        print(f"  warning: {result['shape_mismatch']}", flush=True)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    tag = uuid.uuid4().hex[:6]
    settings = base.model_copy(update={
        "topic_prefix": f"bench{tag}.", "task_queue": f"bench-{tag}",
        "postgres_db": f"bench_{tag}", "consumer_group_prefix": f"bench-{tag}",
        "time_scale": args.time_scale,
    })
    out_dir = base.state_dir / "bench"
    log_dir = out_dir / f"run-{tag}"
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"bench {tag}: stack up, fresh topics and database (logs in {log_dir})")
    await asyncio.to_thread(ensure_stack, base)
    await asyncio.to_thread(ensure_topics, settings)
    await asyncio.to_thread(ensure_database, settings, settings.postgres_db)

    env = dict(os.environ)
    env.update({
        "HOTLINE_TOPIC_PREFIX": settings.topic_prefix, "HOTLINE_TASK_QUEUE": settings.task_queue,
        "HOTLINE_POSTGRES_DB": settings.postgres_db,
        "HOTLINE_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "HOTLINE_TIME_SCALE": repr(settings.time_scale), "HOTLINE_WORKER_METRICS_PORT": "0",
        "HOTLINE_BRIDGE_METRICS_PORT": "0", "HOTLINE_TEMPORAL_SDK_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    })
    bare_queue = f"bench-bare-{tag}"
    hotline = Hotline(env, log_dir)
    bare = start_proc("bare-worker", [sys.executable, "-m", "bench.bare", "--task-queue",
                                      bare_queue], env, log_dir)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                             linger_ms=5)
    city = City(settings, producer)
    try:
        hotline.start()
        wait_ready([(bare, "bare worker ready")])
        status = stack_status(base)
        pids = {"temporal": status["temporal"].pid, "kafka": status["kafka"].pid,
                "postgres": status["postgres"].pid}
        pids |= {name: p.popen.pid for name, p in hotline.procs.items()}
        pids |= {"bare-worker": bare.popen.pid, "bench": os.getpid()}
        sampler = Sampler({k: v for k, v in pids.items() if v},
                          trees=("temporal", "kafka", "postgres")).start()
        city.start()
        client = await connect_temporal(settings, timeout=None)
        started = datetime.now(UTC).isoformat(timespec="seconds")

        result: dict[str, Any] = {
            "started": started, "tag": tag, "time_scale": settings.time_scale,
            "cpus": os.cpu_count(), "args": vars(args),
        }
        if args.rounds > 0:
            await ratio_phase(args, city, sampler, client, bare_queue, tag, result, hotline)

        if args.duration > 0 and args.rate > 0:
            print(f"sustained: {args.rate} cases/s for {args.duration:.0f} s")
            result["sustained"] = await asyncio.to_thread(
                sustained, city, args.rate, args.duration, tag, args.drain)

        if args.open_cases:
            print(f"open cases: parking {args.open_cases} T15D cases")
            result["open_cases"] = await asyncio.to_thread(
                open_cases, city, sampler, args.open_cases, args.open_rate or None, tag,
                args.open_settle, args.open_max_s,
                out_dir / f"open-{tag}-progress.json", args.open_backlog)
            parked = [complaint_workflow_id(c) for c in list(city.parked)[: args.history_sample]]
            result["open_cases"]["history"] = await history_stats(client, parked)

        sampler.stop()
        result["peak_rss_mib"] = {k: v / 2**20 for k, v in sampler.peak_rss.items()}
        return result
    finally:
        ABORT.set()
        city.stop.set()
        with contextlib.suppress(Exception):
            producer.close(timeout=5)
        hotline.stop()
        stop_procs([bare])


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--burst", type=int, default=120, help="cases per burst (ratio)")
    p.add_argument("--rounds", type=int, default=2, help="bare/hotline burst pairs")
    p.add_argument("--bare-upserts", type=int, default=0, metavar="N",
                   help="each round also runs a bare burst with N upserts per case")
    p.add_argument("--bare-payload-bytes", type=int, default=0, metavar="N",
                   help="also a bare burst whose steps carry N characters each way (to price "
                        "history bytes)")
    p.add_argument("--burst-timeout", type=float, default=600)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--rate", type=float, default=2.0, help="sustained cases per second")
    p.add_argument("--duration", type=float, default=45.0, help="sustained seconds (0 = skip)")
    p.add_argument("--drain", type=float, default=120.0, help="seconds to wait for the tail")
    p.add_argument("--time-scale", type=float, default=0.01,
                   help="HOTLINE_TIME_SCALE of the worker (0.01: T24H sign-for in 36 s)")
    p.add_argument("--open-cases", type=int, default=0, help="park N open T15D cases")
    p.add_argument("--open-rate", type=float, default=0, help="filing rate (0 = as fast as "
                   "the system takes them)")
    p.add_argument("--open-max-s", type=float, default=0,
                   help="stop filing parked cases after this many seconds (0 = never); the "
                        "marks reached are reported")
    p.add_argument("--open-backlog", type=int, default=200,
                   help="at most this many parked cases filed and not yet signed for")
    p.add_argument("--open-settle", type=float, default=30,
                   help="seconds to keep watching notices after the last filing")
    p.add_argument("--variant", action="append", metavar="NAME:KEY=VAL,...",
                   help="also burst hotline with these env settings in every round, e.g. "
                        "lockstep:HOTLINE_BRIDGE_PIPELINES=false (worker and bridges restart)")
    p.add_argument("--profile", type=Path, default=None,
                   help="py-spy the worker and bridges during the first hotline burst into "
                        "this folder (collapsed stacks; not for figures: sampling costs CPU)")
    p.add_argument("--history-sample", type=int, default=20)
    p.add_argument("--out", type=Path, default=None, help="JSON file (default .state/bench/)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    result = asyncio.run(run(args))
    table = markdown(result)
    out = args.out or (Settings().state_dir / "bench" /
                       f"e2e-{result['started'].replace(':', '')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    result["markdown"] = table
    out.write_text(json.dumps(result, indent=2, default=str))
    print()
    print(table)
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
