"""The fault suite's harness: a private deployment, a simulated city, and the invariants.

Each test gets its own topic prefix, task queue, consumer groups and database on the
local stack, and runs the worker and the bridges as real ``hotline`` processes, so a
fault can SIGKILL or SIGSTOP them. A :class:`Responder` thread plays the units and the
callback centre. :meth:`Harness.check` is the shared invariant checker every test ends
with:

* every filed complaint has exactly one workflow ``complaint-<id>`` (runs continued as
  new aside) and reaches its expected state; no workflow exists for anything not filed;
* each side effect exists once per ``(case, step)``: a lifecycle event per ``seq``, a
  record on ``hotline.dispatches`` per ``(case, step, record, unit)`` — copies of one
  event id (at-least-once delivery, which consumers drop by id) must be byte-identical,
  anything else is a duplicated effect; every dispatch the workflow made was issued;
* the ledger equals what the workflows say: the ``view`` query's timeline, status and
  dispatches against the ``case_events``, ``cases`` and ``dispatches`` rows;
* the DLQ holds exactly the messages the test injected as bad (distinct source offsets).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition
from temporalio.client import Client, WorkflowExecutionStatus

from schemas import codec
from workers.devstack.stack import ensure_database, ensure_stack, ensure_topics
from workers.runtime.settings import REPO_ROOT, Settings
from workflows.model import QUERY_VIEW, CaseView

HOTLINE = str(Path(sys.executable).parent / "hotline")

# Texts the classifier dispatches (朝阳区 望京街道), T24H and T7D.
TEXTS = (
    "望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼",
    "望京街道某小区垃圾没人清运，味道很大",
)


def scaled(n: int) -> int:
    """``n`` times ``HOTLINE_RELIABILITY_SCALE`` (default 1: the issue's figures)."""
    return max(1, round(n * float(os.environ.get("HOTLINE_RELIABILITY_SCALE", "1"))))


def filing(cid: str, text: str = TEXTS[0], event_id: str | None = None) -> dict[str, Any]:
    """A ``ComplaintFiled`` record that dispatches (no caller number: never merged)."""
    return {
        "event_id": event_id or f"f-{cid}", "complaint_id": cid, "filed_at": datetime.now(UTC),
        "channel": "PHONE", "kind": None, "content": text, "caller_phone": None,
        "caller_name": None, "anonymous": True, "district": "朝阳区", "street": "望京街道",
        "address": "阜通东大街6号院", "latitude": None, "longitude": None,
        "category_hint": None, "urgency_hint": None, "answered_directly": False,
        "attachments": [],
    }


def callback(cid: str, event_id: str, *, satisfied: bool = True) -> dict[str, Any]:
    return {"event_id": event_id, "complaint_id": cid, "at": datetime.now(UTC),
            "reached": True, "responded": True, "resolved": satisfied,
            "satisfaction": "SATISFIED" if satisfied else "UNSATISFIED",
            "comment": None}


@dataclass(frozen=True)
class Out:
    """One message to produce."""

    topic: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def encoded(topic: str, key: str, name: str, record: dict[str, Any]) -> Out:
    return Out(topic, key, codec.encode(name, record), codec.headers_for(name))


class Sender:
    """A producer that gets every message acknowledged, retrying through broker outages."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _connect(self) -> KafkaProducer:
        while self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self._bootstrap, acks="all", linger_ms=5,
                    retries=5, max_in_flight_requests_per_connection=1,
                    request_timeout_ms=15_000)
            except Exception:
                time.sleep(1.0)
        return self._producer

    def send(self, messages: Sequence[Out], deadline_s: float = 300) -> None:
        """Send in order per key; a failed batch is re-sent (consumers drop repeats)."""
        deadline = time.monotonic() + deadline_s
        pending = list(messages)
        with self._lock:
            while pending:
                producer = self._connect()
                futures = [(m, producer.send(m.topic, key=m.key.encode(), value=m.value,
                                             headers=m.headers)) for m in pending]
                failed = []
                for m, fut in futures:
                    try:
                        fut.get(timeout=60)
                    except Exception:
                        failed.append(m)
                pending = failed
                if pending:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{len(pending)} messages not acknowledged")
                    time.sleep(1.0)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)


@dataclass
class TopicRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def read_topic(bootstrap: str, topic: str, timeout_s: float = 120) -> list[TopicRecord]:
    """Everything on ``topic`` now, from the start of every partition to its end."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                     enable_auto_commit=False,
                                     auto_offset_reset="earliest")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[TopicRecord] = []
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for tp, batch in consumer.poll(timeout_ms=500, max_records=5000).items():
                out.extend(TopicRecord(tp.partition, m.offset, m.key, m.value)
                           for m in batch if m.offset < ends[tp])
        return out
    finally:
        consumer.close()


class Responder(threading.Thread):
    """The units and the callback centre: signs and completes every lead dispatch, and
    answers every callback request.

    ``reopen`` cases answer their first callback unsatisfied (the case is reopened and
    handled again); ``duplicate_callbacks`` cases get that first answer twice, same event
    id, the second arriving while the case is handled again, so it must be recognised as
    a repeat. Triggers are de-duplicated by event id (the topics are at-least-once).
    """

    def __init__(self, settings: Settings, *, reopen: Iterable[str] = (),
                 duplicate_callbacks: Iterable[str] = (), hold: bool = False) -> None:
        super().__init__(daemon=True, name="responder")
        self.s = settings
        self.reopen = set(reopen)
        self.duplicate_callbacks = set(duplicate_callbacks)
        self.stop = threading.Event()
        # While not released the units stay silent (cases wait in handling).
        self.released = threading.Event()
        if not hold:
            self.released.set()
        self._backlog: list[bytes] = []
        self.sender = Sender(settings.kafka_bootstrap)
        self.sent_callbacks: dict[str, list[str]] = defaultdict(list)  # cid -> event ids
        self.duplicates_sent = 0
        self.sent: list[Out] = []  # every reply and answer, for re-sending later
        self._seen: set[str] = set()
        self._callback_rounds: Counter[str] = Counter()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by Harness.check
            self.error = exc

    def _consumer(self) -> KafkaConsumer:
        while True:
            try:
                consumer = KafkaConsumer(bootstrap_servers=self.s.kafka_bootstrap,
                                         group_id=None, enable_auto_commit=False,
                                         auto_offset_reset="earliest")
                tps = [TopicPartition(t, p)
                       for t in (self.s.topic_dispatches, self.s.topic_lifecycle)
                       for p in sorted(consumer.partitions_for_topic(t) or ())]
                consumer.assign(tps)
                consumer.seek_to_beginning(*tps)
                return consumer
            except Exception:
                if self.stop.wait(1.0):
                    raise
                continue

    def _run(self) -> None:
        consumer = self._consumer()
        while not self.stop.is_set():
            try:
                polled = consumer.poll(timeout_ms=300, max_records=2000)
            except Exception:
                time.sleep(1.0)
                continue
            out: list[Out] = []
            for batch in polled.values():
                self._backlog.extend(m.value for m in batch)
            if not self.released.is_set():
                continue
            for value in self._backlog:
                out.extend(self._react(value))
            self._backlog.clear()
            if out:
                self.sender.send(out)
                self.sent.extend(out)
        consumer.close()
        self.sender.close()

    def _react(self, value: bytes) -> list[Out]:
        d = codec.decode(value)
        rec = d.record
        if rec["event_id"] in self._seen:
            return []
        self._seen.add(rec["event_id"])
        cid = rec["complaint_id"]
        s = self.s
        if d.name == "DispatchIssued" and rec["role"] == "LEAD":
            base = {"complaint_id": cid, "dispatch_id": rec["dispatch_id"],
                    "unit_id": rec["unit_id"]}
            return [
                encoded(s.topic_unit_replies, cid, "DispatchSigned", {
                    **base, "event_id": f"sign-{rec['dispatch_id']}", "at": datetime.now(UTC),
                    "signer": "王师傅"}),
                encoded(s.topic_unit_replies, cid, "HandlingCompleted", {
                    **base, "event_id": f"done-{rec['dispatch_id']}", "at": datetime.now(UTC),
                    "result": "RESOLVED", "reply_text": "已处理"}),
            ]
        if d.name == "LifecycleEvent" and rec["event_type"] == "CALLBACK_DUE":
            self._callback_rounds[cid] += 1
            first = self._callback_rounds[cid] == 1
            unhappy = first and cid in self.reopen
            event_id = f"cb-{cid}-{self._callback_rounds[cid]}"
            msg = encoded(s.topic_callbacks, cid, "CallbackResult",
                          callback(cid, event_id, satisfied=not unhappy))
            self.sent_callbacks[cid].append(event_id)
            if unhappy and cid in self.duplicate_callbacks:
                self.duplicates_sent += 1
                return [msg, msg]
            return [msg]
        return []


@dataclass
class Figures:
    """One fault's row of the table."""

    fault: str
    cases: int = 0
    lost: int = 0
    duplicated: int = 0
    dlq: int = 0
    injected: int = 0
    recovery_s: float = 0.0
    redelivered: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.fault}: cases={self.cases} lost={self.lost} "
                f"duplicated={self.duplicated} dlq={self.dlq}/{self.injected} injected "
                f"recovery={self.recovery_s:.1f}s redelivered={self.redelivered}"
                + (f" ({'; '.join(self.notes)})" if self.notes else ""))


class Proc:
    """A ``hotline worker`` or ``hotline bridges`` process of this test."""

    def __init__(self, kind: str, env: dict[str, str], log_path: Path) -> None:
        self.kind = kind
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.popen = subprocess.Popen([HOTLINE, kind], env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                      start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(10)

    def terminate(self, timeout: float = 60) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait(self, timeout: float) -> None:
        self.popen.wait(timeout)
        self._log.close()

    def wait_for_line(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text.encode() in self.log_path.read_bytes():
                return
            if not self.alive():
                raise AssertionError(f"{self.kind} exited: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        raise AssertionError(f"{self.kind}: no {text!r} in {timeout}s")


class Harness:
    """One test's private deployment on the shared local stack."""

    def __init__(self, name: str, *, time_scale: float = 0.01) -> None:
        run = uuid.uuid4().hex[:6]
        self.name = name
        self.run_id = run
        self.settings = Settings(
            topic_prefix=f"rel{run}.", task_queue=f"rel-{run}", postgres_db=f"rel_{run}",
            consumer_group_prefix=f"rel-{run}", worker_metrics_port=0,
            bridge_metrics_port=0, temporal_sdk_metrics_port=0,
            ledger_metrics_interval=0, time_scale=time_scale,
        )
        self.dir = self.settings.state_dir / "reliability" / f"{name}-{run}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []
        self.sender = Sender(self.settings.kafka_bootstrap)
        self.responder: Responder | None = None
        self.client: Client | None = None
        self.checked = False
        self.fault_end: float | None = None
        self.dlq_reasons: Counter[str] = Counter()
        self._no_workflow: set[str] = set()  # filed complaints without a workflow

    # --- set-up ---------------------------------------------------------------------

    async def setup(self) -> None:
        s = self.settings
        await asyncio.to_thread(ensure_stack, Settings())
        await asyncio.to_thread(ensure_topics, s)
        await asyncio.to_thread(ensure_database, s, s.postgres_db)
        self.client = await Client.connect(s.temporal_address,
                                           namespace=s.temporal_namespace)

    def env(self) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update({
            "HOTLINE_TOPIC_PREFIX": s.topic_prefix, "HOTLINE_TASK_QUEUE": s.task_queue,
            "HOTLINE_POSTGRES_DB": s.postgres_db,
            "HOTLINE_CONSUMER_GROUP_PREFIX": s.consumer_group_prefix,
            "HOTLINE_WORKER_METRICS_PORT": "0", "HOTLINE_BRIDGE_METRICS_PORT": "0",
            "HOTLINE_TEMPORAL_SDK_METRICS_PORT": "0",
            "HOTLINE_LEDGER_METRICS_INTERVAL": "0",
            "HOTLINE_TIME_SCALE": repr(s.time_scale), "HOTLINE_LOG_LEVEL": "WARNING",
        })
        return env

    def start(self, kind: str, *, wait: bool = True,
              env: dict[str, str] | None = None) -> Proc:
        """Start ``hotline worker`` or ``hotline bridges``; wait until it is ready."""
        n = sum(1 for p in self.procs if p.kind == kind)
        proc = Proc(kind, {**self.env(), "HOTLINE_LOG_LEVEL": "INFO", **(env or {})},
                    self.dir / f"{kind}-{n}.log")
        self.procs.append(proc)
        if wait:
            proc.wait_for_line("worker ready" if kind == "worker" else "bridges ready")
        return proc

    def start_responder(self, **kwargs: Any) -> Responder:
        self.responder = Responder(self.settings, **kwargs)
        self.responder.start()
        return self.responder

    async def send(self, messages: Sequence[Out]) -> None:
        await asyncio.to_thread(self.sender.send, messages)

    async def file(self, cids: Sequence[str], copies: int = 1) -> list[Out]:
        """File the cases; ``copies`` re-sends each record (the call centre retrying)."""
        s = self.settings
        msgs = [encoded(s.topic_intake, cid, "ComplaintFiled",
                        filing(cid, TEXTS[i % len(TEXTS)]))
                for i, cid in enumerate(cids)]
        await self.send([m for m in msgs for _ in range(copies)])
        return msgs

    def mark_fault_end(self) -> None:
        self.fault_end = time.monotonic()

    async def close(self) -> None:
        if self.responder is not None:
            self.responder.stop.set()
            await asyncio.to_thread(self.responder.join, 30)
        for p in reversed(self.procs):
            await asyncio.to_thread(p.terminate)
        self.sender.close()

    # --- waiting ----------------------------------------------------------------------

    async def wait_count(self, cids: Sequence[str], states: set[str], at_least: int,
                         timeout: float = 300) -> None:
        """Wait until ``at_least`` of ``cids`` are in one of ``states`` in the ledger."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = await self.ledger_statuses(cids)
            if sum(st in states for st in got.values()) >= at_least:
                return
            await asyncio.sleep(0.3)
        raise AssertionError(f"fewer than {at_least} cases reached {states}")

    async def ledger_statuses(self, cids: Iterable[str]) -> dict[str, str]:
        async with await psycopg.AsyncConnection.connect(self.settings.dsn,
                                                         autocommit=True) as conn:
            rows = await (await conn.execute(
                "SELECT complaint_id, status FROM cases WHERE complaint_id = ANY(%s)",
                (list(cids),))).fetchall()
        return {r[0]: r[1] for r in rows}

    async def wait_runs_closed(self, cids: Sequence[str], timeout: float = 120) -> None:
        """Wait until no run of ``cids`` is still open. The ledger shows CLOSED a moment
        before the run itself ends; an event repeated in that moment is answered as a
        duplicate by the run, not refused as one for a closed case."""
        assert self.client is not None
        client = self.client
        deadline = time.monotonic() + timeout
        for cid in cids:
            handle = client.get_workflow_handle(f"complaint-{cid}")
            while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the run of {cid} is still open")
                await asyncio.sleep(0.2)

    async def wait_states(self, expected: dict[str, str], timeout: float) -> float:
        """Wait until the ledger shows every case in its expected state; returns when."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = await self.ledger_statuses(expected)
            except psycopg.OperationalError:
                got = {}
            if all(got.get(c) == st for c, st in expected.items()):
                return time.monotonic()
            if time.monotonic() > deadline:
                return time.monotonic()
            await asyncio.sleep(1.0)

    # --- the invariants ---------------------------------------------------------------

    async def check(self, fault: str, expected: dict[str, str], *, injected: int = 0,
                    timeout: float = 300) -> Figures:
        """Wait for the cases to settle, then check every invariant; returns the row."""
        self.checked = True
        started = self.fault_end or time.monotonic()
        settled = await self.wait_states(expected, timeout)
        fig = Figures(fault, cases=len(expected), injected=injected,
                      recovery_s=max(0.0, settled - started))
        if self.responder is not None and self.responder.error is not None:
            fig.notes.append(f"responder failed: {self.responder.error!r}")
            fig.lost += 1
        # Dead letters of the last messages may trail the cases: wait for the injected.
        deadline = time.monotonic() + 120
        while (await self._dlq_count()) < injected and time.monotonic() < deadline:
            await asyncio.sleep(1.0)
        fig.recovery_s = max(0.0, max(settled, time.monotonic() if injected else 0)
                             - started)
        await asyncio.sleep(2.0)  # a DLQ write beyond the injected would show now
        await self._check_workflows(fig, expected)
        await self._check_effects_and_ledger(fig, expected)
        await self._check_dlq(fig)
        print(f"\n[reliability] {fig.line()}")
        return fig

    async def _check_workflows(self, fig: Figures, expected: dict[str, str]) -> None:
        assert self.client is not None
        runs: dict[str, list[WorkflowExecutionStatus | None]] = defaultdict(list)
        query = f"TaskQueue = '{self.settings.task_queue}'"
        async for wf in self.client.list_workflows(query):
            runs[wf.id].append(wf.status)
        ids = {f"complaint-{c}" for c in expected}
        for wid, statuses in runs.items():
            live = [st for st in statuses
                    if st != WorkflowExecutionStatus.CONTINUED_AS_NEW]
            if wid not in ids:
                fig.duplicated += 1
                fig.notes.append(f"unexpected workflow {wid}")
            elif len(live) > 1:
                fig.duplicated += len(live) - 1
                fig.notes.append(f"{wid} has {len(live)} runs")
        missing = ids - set(runs)
        if missing:
            fig.lost += len(missing)
            fig.notes.append(f"no workflow for {sorted(missing)[:5]}")
        self._runs = runs
        self._no_workflow = {wid.removeprefix("complaint-") for wid in missing}

    async def _views(self, cids: Sequence[str]) -> dict[str, CaseView | None]:
        assert self.client is not None
        client = self.client
        gate = asyncio.Semaphore(16)

        async def one(cid: str) -> CaseView | None:
            async with gate:
                for _ in range(5):
                    try:
                        return await client.get_workflow_handle(f"complaint-{cid}").query(
                            QUERY_VIEW, result_type=CaseView)
                    except Exception:
                        await asyncio.sleep(1.0)
                return None

        views = await asyncio.gather(*(one(c) for c in cids))
        return dict(zip(cids, views, strict=True))

    async def _check_effects_and_ledger(self, fig: Figures, expected: dict[str, str]) -> None:
        s = self.settings
        cids = sorted(expected)
        views = await self._views(cids)
        lifecycle, dispatches = await asyncio.gather(
            asyncio.to_thread(read_topic, s.kafka_bootstrap, s.topic_lifecycle),
            asyncio.to_thread(read_topic, s.kafka_bootstrap, s.topic_dispatches))

        def by_event(records: list[TopicRecord]) -> dict[str, list[bytes]]:
            out: dict[str, list[bytes]] = defaultdict(list)
            for r in records:
                out[codec.decode(r.value).record["event_id"]].append(r.value)
            return out

        life_ev, disp_ev = by_event(lifecycle), by_event(dispatches)
        for ev, copies in (*life_ev.items(), *disp_ev.items()):
            fig.redelivered += len(copies) - 1
            if len(set(copies)) > 1:  # one step id, two different effects
                fig.duplicated += len(set(copies)) - 1
                fig.notes.append(f"event {ev} published with different content")
        topic_seqs: dict[str, set[int]] = defaultdict(set)
        for copies in life_ev.values():
            rec = codec.decode(copies[0]).record
            topic_seqs[rec["complaint_id"]].add(rec["seq"])
        issued: dict[str, set[str]] = defaultdict(set)
        outbound_seqs: dict[str, set[int]] = defaultdict(set)
        for ev, copies in disp_ev.items():
            d = codec.decode(copies[0])
            cid = d.record["complaint_id"]
            outbound_seqs[cid].add(int(ev.split(":")[-3]))
            if d.name == "DispatchIssued":
                issued[cid].add(d.record["dispatch_id"])

        async with await psycopg.AsyncConnection.connect(s.dsn, autocommit=True) as conn:
            ev_rows = await (await conn.execute(
                "SELECT complaint_id, event_id, seq, status FROM case_events "
                "WHERE complaint_id = ANY(%s)", (cids,))).fetchall()
            case_rows = await (await conn.execute(
                "SELECT complaint_id, status FROM cases WHERE complaint_id = ANY(%s)",
                (cids,))).fetchall()
            disp_rows = await (await conn.execute(
                "SELECT complaint_id, dispatch_id, signed_at IS NOT NULL, "
                "completed_at IS NOT NULL FROM dispatches WHERE complaint_id = ANY(%s)",
                (cids,))).fetchall()
        ledger_events: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)
        for cid, event_id, seq, status in ev_rows:
            ledger_events[cid][seq] = (event_id, status)
        ledger_status = {r[0]: r[1] for r in case_rows}
        ledger_disp: dict[str, dict[str, tuple[bool, bool]]] = defaultdict(dict)
        for cid, did, signed, completed in disp_rows:
            ledger_disp[cid][did] = (signed, completed)

        lost_cases: set[str] = set()
        problems: list[str] = []
        for cid in cids:
            if cid in self._no_workflow:
                continue  # counted lost once already, by _check_workflows
            view = views[cid]
            if view is None:
                lost_cases.add(cid)
                problems.append(f"{cid}: no view")
                continue
            if view.status != expected[cid]:
                lost_cases.add(cid)
                problems.append(f"{cid}: {view.status}, expected {expected[cid]}")
            # The view keeps the last TIMELINE_KEPT events across continue-as-new.
            seqs = {e.seq for e in view.timeline}
            last = max(seqs, default=0)
            want = set(range(1, last + 1))
            if topic_seqs[cid] != want:
                lost_cases.add(cid)
                problems.append(f"{cid}: lifecycle seqs on topic {sorted(topic_seqs[cid])}")
            extra_outbound = outbound_seqs[cid] - want
            if extra_outbound:
                fig.duplicated += len(extra_outbound)
                problems.append(f"{cid}: records for steps {extra_outbound} not in workflow")
            in_ledger = ledger_events.get(cid, {})
            if set(in_ledger) != want:
                lost_cases.add(cid)
                problems.append(f"{cid}: ledger seqs {sorted(in_ledger)} vs 1..{last}")
            for e in view.timeline:
                row = in_ledger.get(e.seq)
                if row is not None and row != (e.event_id, e.status):
                    fig.duplicated += 1
                    problems.append(f"{cid}: ledger event {row} vs workflow {e.event_id}")
            if ledger_status.get(cid) != view.status:
                lost_cases.add(cid)
                problems.append(f"{cid}: ledger status {ledger_status.get(cid)} "
                                f"vs workflow {view.status}")
            made = {d.dispatch_id: (d.signed_at is not None, d.completed_at is not None)
                    for d in view.dispatches}
            if ledger_disp.get(cid, {}) != made:
                lost_cases.add(cid)
                problems.append(f"{cid}: ledger dispatches {ledger_disp.get(cid)} vs {made}")
            if issued[cid] != set(made):
                if set(made) - issued[cid]:
                    lost_cases.add(cid)
                if issued[cid] - set(made):
                    fig.duplicated += len(issued[cid] - set(made))
                problems.append(f"{cid}: issued {sorted(issued[cid])} vs {sorted(made)}")
        fig.lost += len(lost_cases)
        if problems:
            fig.notes.append(f"{len(problems)} problems, first: {problems[:6]}")

    async def _dlq_count(self) -> int:
        s = self.settings
        records = await asyncio.to_thread(read_topic, s.kafka_bootstrap, s.topic_dlq)
        return len({codec.decode(r.value).record["event_id"] for r in records})

    async def _check_dlq(self, fig: Figures) -> None:
        s = self.settings
        records = await asyncio.to_thread(read_topic, s.kafka_bootstrap, s.topic_dlq)
        # Distinct source offsets: a redelivered message dead-letters under the same id.
        reasons = {rec["event_id"]: rec["reason"]
                   for rec in (codec.decode(r.value).record for r in records)}
        fig.dlq = len(reasons)
        self.dlq_reasons = Counter(reasons.values())
