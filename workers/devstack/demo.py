"""``hotline demo``: a small simulated city played against the real stack.

What it does, in order:

1. ``ensure_stack()``: Temporal, Kafka and PostgreSQL up (reused when already healthy).
2. Starts ``hotline worker`` and ``hotline bridges`` as subprocesses with
   ``HOTLINE_TIME_SCALE`` set, logging to ``<state_dir>/demo/*.log``, and waits for their
   ready lines. Processes left by an earlier demo (pid files in that folder) are stopped
   first.
3. Runs three actors, each a thread with its own Kafka consumer (STYLE.md: one consumer
   per thread) and one shared, thread-safe producer:

   - the **call centre** files the cases of :mod:`workers.devstack.city` on
     ``hotline.intake`` at a steady pace, and later the citizens' supplements, urges,
     withdrawals and repeat filings, timed from each case's ``DISPATCHED`` lifecycle event;
     about 20 % of the filings (app, WeChat, mini-program and web ones) are instead posted
     by the citizens' apps to an Open311 GeoReport v2 service (:mod:`workers.open311.service`)
     the demo serves on a free port, and the apps' view of them (``GET requests``) is
     printed at the end;
   - the **unit systems** read ``hotline.dispatches`` and sign for, return, report progress
     on, whistle departments in for, ask an extension of and complete each dispatch at
     wall-clock times derived from its ``sign_by`` / ``due_at`` (already time-scaled by the
     worker) and the case's plan; assisting units sign and reply;
   - a **supervisor** reads ``hotline.lifecycle`` and decides the extension requests longer
     than the rules grant at once, through the workflow's ``decide_extension`` update (a
     temporalio client: supervisors work in the centre's own system, not over Kafka);
   - the **callback centre** reads ``hotline.lifecycle`` and answers each
     ``CALLBACK_DUE`` on ``hotline.callbacks``.

   The main thread follows ``hotline.lifecycle`` too and shows a live board until every
   case is ``CLOSED`` or the timeout passes (then it lists the stuck cases).
4. Prints a summary from the PostgreSQL ledger: statuses and outcomes, tiers, districts,
   notices, the handling rules exercised (returns, re-dispatches, city coordination,
   extensions, whistles, supplements, urges, withdrawals, merged repeat filings, reopens,
   counted from ``case_events``) and the three rates with the weighted score of
   ``rules.yaml``.
5. Stops the worker and bridges it started; the stack stays up.

Every run files new complaint ids (a serial derived from the time of day, kept past the
last run's in ``<state_dir>/demo/serial.json``), and the actors' consumers start at the
end of their topics and ignore any case that is not this run's, so old demos never
interfere. They are assigned their partitions directly (no group membership, no commits):
a demo has nothing to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import typer
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from temporalio.client import Client
from temporalio.exceptions import TemporalError

from activities.dispatch.config import load_config
from schemas.codec import DecodeError, decode, encode, headers_for
from workers.devstack.city import (
    BEIJING,
    OPEN311_CHANNELS,
    SUPPLEMENT,
    URGE,
    WITHDRAW,
    CallbackPlan,
    CasePlan,
    CitizenCall,
    DemoCase,
    ExtensionPlan,
    HandlingPlan,
    WhistlePlan,
    generate_city,
    open311_client,
    route_through_open311,
)
from workers.devstack.stack import StackStatus, ensure_stack, ensure_topics
from workers.open311.service import Open311Server
from workers.runtime.kafka_io import consumer_config, group_id, make_producer
from workers.runtime.observability import configure_logging
from workers.runtime.settings import REPO_ROOT, Settings, get_settings
from workers.runtime.temporal import connect_temporal
from workflows.ids import complaint_workflow_id
from workflows.model import UPDATE_DECIDE_EXTENSION, Ack, ExtensionDecision

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
DEFAULT_TIMEOUT_S = 600.0
# The least a unit system or the callback centre takes to react to a message (real time),
# and the gap it keeps between two replies to the same dispatch.
MIN_REACTION_S = 0.02
REPLY_GAP_S = 0.05
SEND_TIMEOUT_S = 30.0
# An assisting unit replies when the lead has used this share of its own handling time.
ASSIST_SHARE = 0.6
ASSIST_REPLY = "协办单位已配合主办单位现场核查，职责范围内的事项已处理完毕。"
# After a whistle the lead completes only once the units it called in have been
# dispatched and have replied, or this long after the whistle should the case refuse it.
# (A unit's replies share the case's partition, so the bridge applies them in the order
# sent: a whistle or an extension request after the signature finds the case signed.)
WHISTLE_JOIN_TIMEOUT_S = 20.0
# A repeat filing goes out when the case it repeats is dispatched; should that never be
# seen, this long after the first filing.
REPEAT_FALLBACK_S = 60.0
SUPERVISOR = "district-supervisor"
REFRESH_S = 0.25
# Silence on the lifecycle topic this long, with cases open, is worth a hint on the board.
STALL_HINT_S = 30.0

# The processes the demo runs, and the line each logs once it serves.
# The projector rebuilds the same ledger rows from hotline.lifecycle that record_step
# writes (order-free, idempotent): running it shows the ledger is a projection of the topic.
PROCESSES: dict[str, str] = {"worker": "worker ready", "bridges": "bridges ready",
                             "projector": "projector ready"}

# Lifecycle events the board counts, once per case, in lifecycle order.
STAGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("filed", "filed by the call centre", ()),
    ("accepted", "accepted for dispatch", ("ACCEPTED",)),
    ("closed_at_intake", "answered / redirected / rejected / merged", (
        "ANSWERED_DIRECTLY", "REDIRECTED", "REJECTED", "MERGED")),
    ("dispatched", "dispatched", ("DISPATCHED",)),
    ("signed", "signed for", ("SIGNED",)),
    ("completed", "completed", ("COMPLETED",)),
    ("callback", "called back", ("CALLBACK",)),
    ("reopened", "reopened", ("REOPENED",)),
    ("withdrawn", "withdrawn", ("WITHDRAWN",)),
    ("closed", "closed", ("CLOSED",)),
)
# Stages shown only once something reached them.
OPTIONAL_STAGES = ("closed_at_intake", "reopened", "withdrawn")

# Lifecycle events of the handling rules, counted on the board (every occurrence).
RULE_EVENTS = ("RETURNED", "REDISPATCHED", "EXTENSION_REQUESTED", "WHISTLED",
               "ASSIST_REPLIED", "SUPPLEMENTED", "URGED", "WITHDRAWN", "MERGED", "REOPENED")

UNIT_RECORDS = ("DispatchIssued", "DispatchRevoked", "SupervisionNotice",
                "SupplementForwarded", "ExtensionDecided")


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and where to look."""


# --- shared state ------------------------------------------------------------------------


@dataclass
class _CaseTrack:
    tier: str | None = None
    status: str = "FILED"
    last_event: str = "(not filed yet)"
    last_at: float = 0.0
    seen: set[str] = field(default_factory=set)


class Board:
    """What the actors and the lifecycle follower have seen; shared by every thread."""

    def __init__(self, complaint_ids: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self.cases: dict[str, _CaseTrack] = {cid: _CaseTrack() for cid in complaint_ids}
        self.stage_counts: Counter[str] = Counter()
        self.notices: Counter[str] = Counter()
        self.rules: Counter[str] = Counter()
        self._event_ids: set[str] = set()
        self.sent: Counter[str] = Counter()
        self.refused = 0
        self.undecodable = 0
        self.errors: list[str] = []
        self.started = time.monotonic()
        self.last_event_at = self.started
        # Problems the worker and bridges logged: {"worker": Counter(level -> lines)}.
        self.log_levels: dict[str, Counter[str]] = {}

    @property
    def total(self) -> int:
        return len(self.cases)

    def filed(self, cid: str) -> None:
        with self._lock:
            track = self.cases[cid]
            track.last_event, track.last_at = "FILED", time.monotonic()
            self.stage_counts["filed"] += 1

    def lifecycle(self, rec: Mapping[str, Any]) -> None:
        """Apply one ``LifecycleEvent`` of this run."""
        event_type = str(rec["event_type"])
        with self._lock:
            track = self.cases[rec["complaint_id"]]
            track.status = str(rec["status"])
            track.tier = rec.get("tier") or track.tier
            track.last_event, track.last_at = event_type, time.monotonic()
            self.last_event_at = track.last_at
            if event_type not in track.seen:
                track.seen.add(event_type)
                for stage, _, events in STAGES:
                    if event_type in events:
                        self.stage_counts[stage] += 1
            event_id = str(rec.get("event_id") or "")
            if event_id in self._event_ids:
                return  # Kafka delivered it twice: count it once
            self._event_ids.add(event_id)
            attrs = rec.get("attributes") or {}
            if event_type == "NOTICE":
                self.notices[attrs.get("notice_type") or rec.get("reason") or "OTHER"] += 1
            elif event_type == "REPLY_REFUSED":
                self.refused += 1
            elif event_type in RULE_EVENTS:
                self.rules[event_type] += 1
                if event_type == "WHISTLED":
                    self.rules["assisting units"] += len(
                        [u for u in str(attrs.get("units") or "").split(",") if u])
            elif event_type == "EXTENSION_DECIDED":
                granted = attrs.get("granted") == "true"
                self.rules["EXTENSION_GRANTED" if granted else "EXTENSION_DENIED"] += 1

    def count_sent(self, what: str) -> None:
        with self._lock:
            self.sent[what] += 1

    def count_undecodable(self) -> None:
        with self._lock:
            self.undecodable += 1

    def fail(self, actor: str, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(f"{actor}: {type(exc).__name__}: {exc}")

    @property
    def closed(self) -> int:
        with self._lock:
            return self.stage_counts["closed"]

    def stuck(self) -> list[tuple[str, _CaseTrack]]:
        with self._lock:
            return [(cid, t) for cid, t in self.cases.items() if "CLOSED" not in t.seen]

    def render(self, title: str) -> Group:
        """The live board: one bar per stage, then notices and the actors' traffic."""
        with self._lock:
            table = Table(title=title, title_justify="left", expand=False, box=None,
                          padding=(0, 1))
            table.add_column("stage")
            table.add_column("cases", justify="right")
            table.add_column("", width=42)
            for stage, label, _ in STAGES:
                n = self.stage_counts[stage]
                if stage in OPTIONAL_STAGES and n == 0:
                    continue
                table.add_row(label, f"{n}/{self.total}",
                              ProgressBar(total=self.total, completed=n, width=40))
            notices = " · ".join(f"{k} {v}" for k, v in self.notices.most_common()) or "none"
            sent = self.sent
            lines = [
                Text.assemble(("warnings & escalations: ", "bold yellow"), notices),
                Text.assemble(("handling rules: ", "bold cyan"), self._rules_line()),
                Text(
                    f"unit replies sent: {sent['DispatchSigned']} signed, "
                    f"{sent['DispatchReturned']} returned, {sent['ProgressReported']} "
                    f"progress, {sent['UnitsWhistled']} whistles, "
                    f"{sent['ExtensionRequested']} extension requests, "
                    f"{sent['HandlingCompleted']} completed · citizens: "
                    f"{sent['ComplaintSupplemented']} supplements, {sent['ComplaintUrged']} "
                    f"urges, {sent['ComplaintWithdrawn']} withdrawals, {sent['repeat filing']} "
                    f"repeat filings · supervisor: {sent['decision']} decisions"
                    + (f" ({sent['decision failed']} failed)" if sent["decision failed"] else "")
                    + f" · callbacks: {sent['reached']} reached, {sent['unreached']} unreached"
                    f" · refused replies: {self.refused}"
                ),
                Text(f"elapsed {time.monotonic() - self.started:,.0f} s", style="dim"),
            ]
            problems = self._log_problems()
            if problems:
                lines.insert(2, Text(problems, style="red"))
            return Group(table, *lines)

    def _rules_line(self) -> str:
        r, n = self.rules, self.notices
        return (
            f"returns {r['RETURNED']} · re-dispatches {r['REDISPATCHED']} · city coordination "
            f"{n['CITY_COORDINATION']} · extensions {r['EXTENSION_REQUESTED']} asked, "
            f"{r['EXTENSION_GRANTED']} granted, {r['EXTENSION_DENIED']} denied · whistles "
            f"{r['WHISTLED']} ({r['assisting units']} units, {r['ASSIST_REPLIED']} replies) · "
            f"supplements {r['SUPPLEMENTED']} · urges {r['URGED']} ({n['URGED']} escalated) · "
            f"withdrawals {r['WITHDRAWN']} · merged {r['MERGED']} · reopens {r['REOPENED']}"
        )

    def plain_line(self) -> str:
        """One status line for a log (when the console is not a terminal)."""
        with self._lock:
            counts = self.stage_counts
            r = self.rules
            line = (f"[{time.monotonic() - self.started:5.0f} s] filed {counts['filed']}, "
                    f"dispatched {counts['dispatched']}, completed {counts['completed']}, "
                    f"closed {counts['closed']}/{self.total}; "
                    f"notices {sum(self.notices.values())}; returns {r['RETURNED']}, "
                    f"extensions {r['EXTENSION_REQUESTED']}, whistles {r['WHISTLED']}, "
                    f"urges {r['URGED']}, merged {r['MERGED']}, reopens {r['REOPENED']}")
            problems = self._log_problems()
            return f"{line}; {problems}" if problems else line

    def count_log_lines(self, name: str, levels: Counter[str]) -> None:
        with self._lock:
            self.log_levels.setdefault(name, Counter()).update(levels)

    def _log_problems(self) -> str:
        parts = [f"{name} log: {c['error']} errors, {c['warning']} warnings"
                 for name, c in self.log_levels.items() if c["error"] or c["warning"]]
        failures = sum(c["workflow task failures"] for c in self.log_levels.values())
        if failures:
            parts.append(f"{failures} workflow task failures (a workflow bug, see worker.log)")
        silence = time.monotonic() - self.last_event_at
        if silence > STALL_HINT_S and self.stage_counts["closed"] < self.total:
            parts.append(f"no lifecycle event for {silence:.0f} s: is the worker stuck?")
        return " · ".join(parts)


@dataclass
class _Ctx:
    settings: Settings
    producer: KafkaProducer
    board: Board
    plans: dict[str, CasePlan]
    stop: threading.Event
    ready: threading.Barrier
    open311_url: str = ""  # the in-process Open311 service the apps file through


# --- Kafka helpers -------------------------------------------------------------------------


def _tail_consumer(settings: Settings, topic: str, name: str) -> KafkaConsumer:
    """A consumer assigned every partition of ``topic``, positioned at its current end."""
    consumer = KafkaConsumer(**consumer_config(
        settings, group_id(settings, name), client_id=f"hotline-{name}",
        auto_offset_reset="latest", fetch_max_wait_ms=100,
    ))
    deadline = time.monotonic() + 30
    partitions = consumer.partitions_for_topic(topic)
    while not partitions:
        if time.monotonic() > deadline:
            consumer.close()
            raise DemoError(f"topic {topic} has no partitions; is Kafka up (`hotline stack up`)?")
        consumer.topics()  # refreshes the metadata
        partitions = consumer.partitions_for_topic(topic)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)  # resolve "end" now: later records are all ours to read
    return consumer


def _send(ctx: _Ctx, topic: str, name: str, record: dict[str, Any]) -> None:
    future = ctx.producer.send(topic, key=str(record["complaint_id"]).encode(),
                               value=encode(name, record), headers=headers_for(name))
    future.get(timeout=SEND_TIMEOUT_S)


def _poll(consumer: KafkaConsumer, timeout_s: float) -> list[Any]:
    batches = consumer.poll(timeout_ms=max(1, int(timeout_s * 1000)), max_records=500)
    return [msg for msgs in batches.values() for msg in msgs]


def _now() -> datetime:
    return datetime.now(UTC)


class _Scheduler:
    """Replies due at wall-clock times (epoch seconds), in order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (when, next(self._order), action))

    def run_due(self) -> None:
        while self._heap and self._heap[0][0] <= time.time():
            _, _, action = heapq.heappop(self._heap)
            action()

    def wait_s(self, cap: float) -> float:
        if not self._heap:
            return cap
        return max(0.0, min(cap, self._heap[0][0] - time.time()))


# --- the actors ------------------------------------------------------------------------------


def _actor(name: str, body: Callable[[_Ctx], None], ctx: _Ctx) -> threading.Thread:
    def run() -> None:
        try:
            body(ctx)
        except BaseException as exc:
            ctx.board.fail(name, exc)
            ctx.stop.set()
            with contextlib.suppress(threading.BrokenBarrierError):
                ctx.ready.abort()

    return threading.Thread(target=run, name=f"demo-{name}", daemon=True)


# A citizen's later call → the intake record and the field its text goes in.
CITIZEN_RECORDS: dict[str, tuple[str, str]] = {
    SUPPLEMENT: ("ComplaintSupplemented", "content"),
    URGE: ("ComplaintUrged", "content"),
    WITHDRAW: ("ComplaintWithdrawn", "reason"),
}


def citizen_record(cid: str, call: CitizenCall, at: datetime,
                   event_id: str) -> tuple[str, dict[str, Any]]:
    """The intake record of a citizen's later call: its record name and fields."""
    name, text_field = CITIZEN_RECORDS[call.action]
    record: dict[str, Any] = {"event_id": event_id, "complaint_id": cid, "at": at,
                              text_field: call.text}
    if call.action == SUPPLEMENT:
        record["attachments"] = list(call.attachments)
    return name, record


class _CallCentre:
    """The call centre: files each case, then the citizens' later calls about open cases.

    Filings go out at their offsets. A case's later calls (supplements, urges, a
    withdrawal) and repeat filings of it are timed from its ``DISPATCHED`` lifecycle event,
    as shares of its deadline, so they reach the case while it is open.
    """

    def __init__(self, ctx: _Ctx, city: list[DemoCase]) -> None:
        self.ctx = ctx
        self.city = city
        self.sched = _Scheduler()
        self.filed: set[str] = set()
        self.dispatched: set[str] = set()
        self.repeats: dict[str, list[DemoCase]] = {}

    def run(self) -> None:
        ctx = self.ctx
        consumer = _tail_consumer(ctx.settings, ctx.settings.topic_lifecycle, "demo-call-centre")
        try:
            ctx.ready.wait()  # every consumer is at the end of its topic
            t0 = time.time()
            offsets = {c.plan.complaint_id: c.offset_seconds for c in self.city}
            for case in self.city:
                first = case.plan.duplicate_of
                if first is None:
                    self.sched.at(t0 + case.offset_seconds, partial(self.file, case))
                else:
                    self.repeats.setdefault(first, []).append(case)
                    self.sched.at(t0 + offsets.get(first, case.offset_seconds)
                                  + REPEAT_FALLBACK_S, partial(self.file, case))
            while not ctx.stop.is_set():
                self.sched.run_due()
                for msg in _poll(consumer, self.sched.wait_s(0.1)):
                    self.on_lifecycle(msg.value)
        finally:
            consumer.close(autocommit=False)

    def on_lifecycle(self, value: bytes) -> None:
        try:
            rec = decode(value, expected=("LifecycleEvent",)).record
        except DecodeError:
            return
        cid = rec["complaint_id"]
        plan = self.ctx.plans.get(cid)
        if plan is None or rec["event_type"] != "DISPATCHED" or cid in self.dispatched:
            return
        self.dispatched.add(cid)
        start = rec["at"].timestamp()
        due = start
        with contextlib.suppress(TypeError, ValueError):
            due = datetime.fromisoformat((rec.get("attributes") or {})["due_at"]).timestamp()
        window = max(0.0, due - start)
        for call in plan.citizen_calls:
            self.sched.at(start + call.fraction * window, partial(self.call, cid, call))
        for repeat in self.repeats.get(cid, []):
            self.sched.at(start + repeat.plan.refile_fraction * window,
                          partial(self.file, repeat))

    def file(self, case: DemoCase) -> None:
        cid = case.plan.complaint_id
        if cid in self.filed or self.ctx.stop.is_set():
            return
        self.filed.add(cid)
        if case.open311_key is not None:
            open311_file(self.ctx.open311_url, case)
            self.ctx.board.count_sent("Open311 POST requests")
        else:
            record = dict(case.filing)
            record["filed_at"] = _now()  # the call happens now
            _send(self.ctx, self.ctx.settings.topic_intake, "ComplaintFiled", record)
        self.ctx.board.filed(cid)
        if case.plan.duplicate_of:
            self.ctx.board.count_sent("repeat filing")

    def call(self, cid: str, call: CitizenCall) -> None:
        if self.ctx.stop.is_set():
            return
        name, record = citizen_record(cid, call, _now(), str(uuid.uuid4()))
        _send(self.ctx, self.ctx.settings.topic_intake, name, record)
        self.ctx.board.count_sent(name)


def open311_form(case: DemoCase) -> dict[str, str]:
    """The GeoReport v2 form a citizen's app posts for a demo filing."""
    f = case.filing
    client = open311_client(f["channel"])
    form = {"api_key": client.key, "service_code": case.plan.category,
            "description": f["content"], "attribute[kind]": f["kind"]}
    optional = {
        "address_string": f["address"], "lat": f["latitude"], "long": f["longitude"],
        "phone": f["caller_phone"], "first_name": f["caller_name"],
        "media_url": f["attachments"][0] if f["attachments"] else None,
        "attribute[district]": f["district"], "attribute[street]": f["street"],
        "attribute[anonymous]": "true" if f["anonymous"] else None,
    }
    form.update({k: str(v) for k, v in optional.items() if v is not None})
    return form


def open311_file(url: str, case: DemoCase) -> None:
    """POST the case through the Open311 API; it must come back with the planned id.

    Raises:
        DemoError: the service refused it or answered another id.
    """
    request = urllib.request.Request(
        f"{url}/requests.json", data=urllib.parse.urlencode(open311_form(case)).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Idempotency-Key": str(case.open311_key)}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as resp:
            answer = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise DemoError(f"Open311 refused {case.open311_key}: {exc.code} "
                        f"{exc.read().decode(errors='replace')}") from None
    if answer[0]["service_request_id"] != case.plan.complaint_id:
        raise DemoError(f"Open311 filed {case.open311_key} as "
                        f"{answer[0]['service_request_id']}, not {case.plan.complaint_id}")


def _open311_report(url: str, ids: list[str], console: Console, all_closed: bool) -> None:
    """What the apps see: their requests' statuses through ``GET requests``.

    The ledger row follows the lifecycle event by a moment: when every case was seen
    closed, wait (a little) for the ledger to say so too.
    """
    deadline = time.monotonic() + 15
    while True:
        statuses: Counter[str] = Counter()
        for i in range(0, len(ids), 100):  # the service's cap on ids per query
            query = urllib.parse.urlencode({"service_request_id": ",".join(ids[i:i + 100])})
            with urllib.request.urlopen(f"{url}/requests.json?{query}",
                                        timeout=SEND_TIMEOUT_S) as resp:
                for req in json.loads(resp.read()):
                    statuses[f"{req['status']} {req['extended_status']}"] += 1
        closed = sum(n for s, n in statuses.items() if s.startswith("closed"))
        if not all_closed or closed == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    console.print(f"Open311: {len(ids)} requests filed through GeoReport v2; GET requests "
                  "says " + ", ".join(f"{n} {s}" for s, n in statuses.most_common()))


def _call_centre(city: list[DemoCase]) -> Callable[[_Ctx], None]:
    def body(ctx: _Ctx) -> None:
        _CallCentre(ctx, city).run()

    return body


class _UnitSystems:
    """The units' own systems: sign for, return, report progress on, whistle for, ask an
    extension of and complete each dispatch.

    Times come from the ``DispatchIssued`` (``issued_at``, ``sign_by``, ``due_at``, already
    time-scaled by the worker) and the case's plan. A lead unit planned to return the case
    returns it instead of signing; the unit of the next dispatch handles it. An assisting
    unit (协办, by routing or whistled in) signs and sends its part; the lead unit completes
    only once the assisting units of the case have replied (or were revoked), as a lead
    collects its partners' input before it answers. A unit that asked for an extension
    completes within the added time once granted, else just in time.
    """

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.sched = _Scheduler()
        self.handled: set[str] = set()
        self.revoked: set[str] = set()
        self.completed: set[str] = set()
        # complaint id → assisting dispatches that have not replied yet
        self.assisting: dict[str, set[str]] = {}
        # complaint id → {dispatch id: unit id} of the dispatches still open
        self.holding: dict[str, dict[str, str]] = {}
        # complaint id → lead dispatches seen (not counting reopens): the returns plan
        self.leads_seen: Counter[str] = Counter()
        # lead dispatch id → (its DispatchIssued, the extension plan) while it may be decided
        self.extensions: dict[str, tuple[Mapping[str, Any], ExtensionPlan]] = {}
        self.extended: set[str] = set()
        # complaint id → (units whistled in and not dispatched yet, give up at epoch s)
        self.joining: dict[str, tuple[set[str], float]] = {}

    def run(self) -> None:
        ctx = self.ctx
        consumer = _tail_consumer(ctx.settings, ctx.settings.topic_dispatches, "demo-units")
        try:
            ctx.ready.wait()
            while not ctx.stop.is_set():
                self.sched.run_due()
                for msg in _poll(consumer, self.sched.wait_s(0.1)):
                    self.on_message(msg.value)
        finally:
            consumer.close(autocommit=False)

    def on_message(self, value: bytes) -> None:
        try:
            decoded = decode(value, expected=UNIT_RECORDS)
        except DecodeError:
            self.ctx.board.count_undecodable()
            return
        rec = decoded.record
        cid = rec["complaint_id"]
        plan = self.ctx.plans.get(cid)
        if plan is None:
            return  # another run's case
        if decoded.name == "DispatchIssued" and rec["event_id"] not in self.handled:
            self.handled.add(rec["event_id"])  # Kafka may deliver a record twice
            self.holding.setdefault(cid, {})[rec["dispatch_id"]] = rec["unit_id"]
            if rec.get("role", "LEAD") != "LEAD":
                self.joining.get(cid, (set(), 0.0))[0].discard(rec["unit_id"])
                self.schedule_assisting(rec, plan.handling)
            elif rec.get("reopened"):
                self.schedule_lead(rec, plan.reopen_handling)
            else:
                self.leads_seen[cid] += 1
                k = self.leads_seen[cid]
                if k <= len(plan.returns):
                    self.schedule_return(rec, plan.returns[k - 1], plan.return_fraction)
                else:
                    self.schedule_lead(rec, plan.handling, plan)
        elif decoded.name == "DispatchRevoked":
            self.revoked.add(rec["dispatch_id"])
            self.assisting.get(cid, set()).discard(rec["dispatch_id"])
            self.holding.get(cid, {}).pop(rec["dispatch_id"], None)
        elif decoded.name == "ExtensionDecided":
            self.on_extension_decided(rec)

    @staticmethod
    def _windows(rec: Mapping[str, Any]) -> tuple[float, float, float]:
        """``issued_at`` (epoch seconds), the sign-for window and the deadline (seconds)."""
        issued = rec["issued_at"].timestamp()
        sign_window = max(0.0, rec["sign_by"].timestamp() - issued)
        deadline = max(0.0, rec["due_at"].timestamp() - issued)
        return issued, sign_window, deadline

    def schedule_return(self, rec: Mapping[str, Any], reason: str, fraction: float) -> None:
        """退单: "not ours", within the sign-for window instead of signing."""
        issued, sign_window, _ = self._windows(rec)
        when = max(issued + fraction * sign_window, time.time() + MIN_REACTION_S)
        self.sched.at(when, self._reply(rec, "DispatchReturned", {"reason": reason}))

    def schedule_assisting(self, rec: Mapping[str, Any], plan: HandlingPlan) -> None:
        """An assisting unit signs, and sends its part before the lead completes."""
        issued, sign_window, deadline = self._windows(rec)
        when = max(issued + plan.sign_fraction * sign_window, time.time() + MIN_REACTION_S)
        self.sched.at(when, self._reply(rec, "DispatchSigned",
                                        {"signer": f"{rec['unit_name']}值班员"}))
        self.assisting.setdefault(rec["complaint_id"], set()).add(rec["dispatch_id"])
        when = max(issued + ASSIST_SHARE * min(plan.complete_fraction, 1.0) * deadline,
                   when + REPLY_GAP_S)
        self.sched.at(when, self._reply(rec, "HandlingCompleted", {
            "result": "RESOLVED", "reply_text": ASSIST_REPLY}))

    def schedule_lead(self, rec: Mapping[str, Any], handling: HandlingPlan,
                      plan: CasePlan | None = None) -> None:
        """Schedule the lead's replies: sign, progress, whistle, extension, completion.

        ``plan`` is given for the first handling round only (a reopened case is handled
        plainly).
        """
        issued, sign_window, deadline = self._windows(rec)
        signed = max(issued + handling.sign_fraction * sign_window,
                     time.time() + MIN_REACTION_S)
        self.sched.at(signed, self._reply(rec, "DispatchSigned",
                                          {"signer": f"{rec['unit_name']}值班员"}))
        # (planned time, action), placed in planned order after the signature.
        steps: list[tuple[float, Callable[[], None]]] = []
        if handling.progress_fraction is not None and rec.get("tier") != "T2H":
            steps.append((issued + handling.progress_fraction * deadline,
                          self._reply(rec, "ProgressReported", {
                              "text": handling.progress_text,
                              "contacted_citizen": handling.contacted_citizen})))
        whistle = plan.whistle if plan else None
        if whistle is not None:
            steps.append((issued + whistle.fraction * deadline, self._whistle(rec, whistle)))
        extension = plan.extension if plan else None
        if extension is not None:
            steps.append((issued + extension.request_fraction * deadline,
                          self._reply(rec, "ExtensionRequested", {
                              "extra_days": extension.extra_days,
                              "reason": extension.reason})))
            self.extensions[rec["dispatch_id"]] = (rec, extension)
        when = signed
        for planned, action in sorted(steps, key=lambda s: s[0]):
            when = max(planned, when + REPLY_GAP_S)
            self.sched.at(when, action)
        when = max(issued + handling.complete_fraction * deadline, when + REPLY_GAP_S)
        dispatch_id = rec["dispatch_id"]
        # With an extension granted the unit completes later (on_extension_decided).
        self.sched.at(when, self._reply(rec, "HandlingCompleted", {
            "result": handling.result, "reply_text": handling.reply_text},
            skip_if=lambda: dispatch_id in self.extended))

    def on_extension_decided(self, rec: Mapping[str, Any]) -> None:
        dispatch_id = rec["dispatch_id"]
        entry = self.extensions.pop(dispatch_id, None)
        if entry is None or not rec["granted"] or rec.get("due_at") is None:
            return  # denied: the unit completes as planned, just in time
        if dispatch_id in self.completed or dispatch_id in self.revoked:
            return
        issued_rec, extension = entry
        plan = self.ctx.plans[rec["complaint_id"]]
        old_due = issued_rec["due_at"].timestamp()
        new_due = rec["due_at"].timestamp()
        self.extended.add(dispatch_id)
        when = max(old_due + extension.complete_share * max(0.0, new_due - old_due),
                   time.time() + MIN_REACTION_S)
        self.sched.at(when, self._reply(issued_rec, "HandlingCompleted", {
            "result": plan.handling.result, "reply_text": plan.handling.reply_text}))

    def _whistle(self, rec: Mapping[str, Any], whistle: WhistlePlan) -> Callable[[], None]:
        """吹哨: call in the planned departments that do not hold the case yet."""
        ctx = self.ctx
        cid, dispatch_id = rec["complaint_id"], rec["dispatch_id"]

        def send() -> None:
            if dispatch_id in self.revoked or dispatch_id in self.completed \
                    or ctx.stop.is_set():
                return
            holding = set(self.holding.get(cid, {}).values())
            units = [u for u in whistle.units if u not in holding]
            if not units:
                return
            self.joining[cid] = (set(units), time.time() + WHISTLE_JOIN_TIMEOUT_S)
            _send(ctx, ctx.settings.topic_unit_replies, "UnitsWhistled", {
                "event_id": str(uuid.uuid4()), "complaint_id": cid,
                "dispatch_id": dispatch_id, "unit_id": rec["unit_id"], "at": _now(),
                "units": units, "reason": whistle.reason,
            })
            ctx.board.count_sent("UnitsWhistled")

        return send

    def _reply(self, rec: Mapping[str, Any], name: str, fields: dict[str, Any],
               skip_if: Callable[[], bool] | None = None) -> Callable[[], None]:
        ctx = self.ctx
        cid, dispatch_id = rec["complaint_id"], rec["dispatch_id"]
        lead_completion = name == "HandlingCompleted" and rec.get("role", "LEAD") == "LEAD"

        def send() -> None:
            if dispatch_id in self.revoked or dispatch_id in self.completed \
                    or ctx.stop.is_set() or (skip_if is not None and skip_if()):
                return
            if lead_completion and self._partners_pending(cid):
                self.sched.at(time.time() + REPLY_GAP_S, send)  # wait for the partners
                return
            _send(ctx, ctx.settings.topic_unit_replies, name, {
                "event_id": str(uuid.uuid4()), "complaint_id": cid,
                "dispatch_id": dispatch_id, "unit_id": rec["unit_id"], "at": _now(), **fields,
            })
            if name in ("HandlingCompleted", "DispatchReturned"):
                self.completed.add(dispatch_id)
                self.assisting.get(cid, set()).discard(dispatch_id)
                self.holding.get(cid, {}).pop(dispatch_id, None)
            ctx.board.count_sent(name)

        return send

    def _partners_pending(self, cid: str) -> bool:
        """Assisting units of the case have not replied, or whistled ones not joined yet."""
        if self.assisting.get(cid):
            return True
        units, give_up_at = self.joining.get(cid, (set(), 0.0))
        return bool(units) and time.time() < give_up_at


def _unit_systems(ctx: _Ctx) -> None:
    _UnitSystems(ctx).run()


class _Supervisor:
    """A district supervisor (督办): decides the extension requests the rules do not grant
    at once, through the workflow's ``decide_extension`` update.

    Each decision is the case's plan (grant or deny), taken a few scaled hours after the
    request. Supervisors work in the centre's own system, so this goes to Temporal
    directly, not over Kafka. A decision that fails is counted on the board, not fatal:
    the unit then completes in its original time.
    """

    def __init__(self, ctx: _Ctx) -> None:
        self.ctx = ctx
        self.sched = _Scheduler()
        self.auto_grant_days = int(_rules(ctx.settings)["extension"]["auto_grant_max_days"])
        self.asked: set[str] = set()
        self.loop = asyncio.new_event_loop()
        self.client: Client | None = None

    def run(self) -> None:
        ctx = self.ctx
        consumer = _tail_consumer(ctx.settings, ctx.settings.topic_lifecycle, "demo-supervisor")
        try:
            self.client = self.loop.run_until_complete(asyncio.wait_for(
                connect_temporal(ctx.settings, timeout=None), timeout=SEND_TIMEOUT_S))
            ctx.ready.wait()
            while not ctx.stop.is_set():
                self.sched.run_due()
                for msg in _poll(consumer, self.sched.wait_s(0.1)):
                    self.on_lifecycle(msg.value)
        finally:
            consumer.close(autocommit=False)
            self.loop.close()

    def on_lifecycle(self, value: bytes) -> None:
        try:
            rec = decode(value, expected=("LifecycleEvent",)).record
        except DecodeError:
            return
        cid = rec["complaint_id"]
        plan = self.ctx.plans.get(cid)
        if plan is None or plan.extension is None or cid in self.asked \
                or rec["event_type"] != "EXTENSION_REQUESTED":
            return
        try:
            days = int((rec.get("attributes") or {}).get("extra_days") or 0)
        except ValueError:
            return
        if days <= self.auto_grant_days:
            return  # granted by rule in the same step
        self.asked.add(cid)
        delay = plan.extension.supervisor_delay_hours * 3600 * self.ctx.settings.time_scale
        self.sched.at(time.time() + max(delay, MIN_REACTION_S),
                      partial(self.decide, cid, plan.extension))

    def decide(self, cid: str, extension: ExtensionPlan) -> None:
        if self.ctx.stop.is_set() or self.client is None:
            return
        decision = ExtensionDecision(
            event_id=str(uuid.uuid4()), granted=extension.supervisor_grants,
            decided_by=SUPERVISOR, reason=extension.supervisor_reason)
        handle = self.client.get_workflow_handle(complaint_workflow_id(cid))
        try:
            ack = self.loop.run_until_complete(asyncio.wait_for(
                handle.execute_update(UPDATE_DECIDE_EXTENSION, decision, result_type=Ack),
                timeout=SEND_TIMEOUT_S))
        except (TemporalError, TimeoutError):
            self.ctx.board.count_sent("decision failed")
            return
        self.ctx.board.count_sent("decision" if ack.accepted else "decision failed")


def _supervisor(ctx: _Ctx) -> None:
    _Supervisor(ctx).run()


def _callback_centre(ctx: _Ctx) -> None:
    consumer = _tail_consumer(ctx.settings, ctx.settings.topic_lifecycle, "demo-callback")
    try:
        ctx.ready.wait()
        sched = _Scheduler()
        answered: set[tuple[str, int, int]] = set()
        reopened: set[str] = set()
        while not ctx.stop.is_set():
            sched.run_due()
            for msg in _poll(consumer, sched.wait_s(0.1)):
                try:
                    rec = decode(msg.value, expected=("LifecycleEvent",)).record
                except DecodeError:
                    continue
                cid = rec["complaint_id"]
                plan = ctx.plans.get(cid)
                if plan is None:
                    continue
                if rec["event_type"] == "REOPENED":
                    reopened.add(cid)
                if rec["event_type"] != "CALLBACK_DUE":
                    continue
                attrs = rec.get("attributes") or {}
                attempt = int(attrs.get("attempt") or 1)
                round_ = 2 if cid in reopened else 1
                if (cid, round_, attempt) in answered:
                    continue  # a redelivered lifecycle event
                answered.add((cid, round_, attempt))
                _schedule_callback(ctx, sched, rec, attempt,
                                   plan.reopen_callback if round_ == 2 else plan.callback)
    finally:
        consumer.close(autocommit=False)


def _schedule_callback(ctx: _Ctx, sched: _Scheduler, rec: Mapping[str, Any], attempt: int,
                       plan: CallbackPlan) -> None:
    """Call the citizen a few (scaled) hours later, before the answer is due."""
    now = time.time()
    delay = plan.delay_hours * 3600 * ctx.settings.time_scale
    answer_by = (rec.get("attributes") or {}).get("answer_by")
    if answer_by:
        with contextlib.suppress(ValueError):
            left = datetime.fromisoformat(answer_by).timestamp() - now
            delay = min(delay, max(0.0, 0.5 * left))
    reached = attempt > plan.unreached_attempts
    record: dict[str, Any] = {
        "complaint_id": rec["complaint_id"], "reached": reached,
        "responded": plan.responded if reached else False,
        "resolved": plan.resolved if reached else False,
        "satisfaction": plan.satisfaction if reached else None,
        "comment": plan.comment if reached else "电话无人接听。",
    }

    def send() -> None:
        if ctx.stop.is_set():
            return
        _send(ctx, ctx.settings.topic_callbacks, "CallbackResult",
              {"event_id": str(uuid.uuid4()), "at": _now(), **record})
        ctx.board.count_sent("reached" if reached else "unreached")

    sched.at(now + max(delay, MIN_REACTION_S), send)


# --- worker and bridges subprocesses ---------------------------------------------------------


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    pid_file: Path


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_hotline_process(pid: int, role: str) -> bool:
    """True when ``pid`` runs ``workers.cli.main <role>`` or ``hotline <role>``."""
    argv = _cmdline(pid)
    for i, arg in enumerate(argv[:-1]):
        if (arg == "workers.cli.main" or arg.endswith("/hotline") or arg == "hotline") \
                and argv[i + 1] == role:
            return True
    return False


def _stop_pid(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _stop_previous(demo_dir: Path, console: Console) -> None:
    """Stop a worker or bridges an earlier demo left running (by its pid file)."""
    for name in PROCESSES:
        pid_file = demo_dir / f"{name}.pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if _is_hotline_process(pid, name):
            console.print(f"stopping the {name} of an earlier demo (pid {pid})")
            _stop_pid(pid)
        pid_file.unlink(missing_ok=True)


def _foreign(role: str, ours: Iterable[int]) -> list[int]:
    mine = set(ours) | {os.getpid()}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in mine \
                and _is_hotline_process(int(entry.name), role):
            found.append(int(entry.name))
    return sorted(found)


def _start(name: str, settings: Settings, demo_dir: Path) -> _Proc:
    log_path = demo_dir / f"{name}.log"
    if log_path.exists():
        log_path.replace(demo_dir / f"{name}.previous.log")
    env = dict(os.environ)
    env["HOTLINE_TIME_SCALE"] = repr(settings.time_scale)
    env["PYTHONUNBUFFERED"] = "1"  # the ready line must reach the log at once
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            [sys.executable, "-m", "workers.cli.main", name], cwd=REPO_ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches the demo, which stops it
        )
    pid_file = demo_dir / f"{name}.pid"
    pid_file.write_text(f"{popen.pid}\n")
    return _Proc(name, popen, log_path, pid_file)


class _LogWatch:
    """Counts the warning and error lines a process adds to its JSON-lines log."""

    def __init__(self, proc: _Proc) -> None:
        self.proc = proc
        self._offset = 0
        with contextlib.suppress(OSError):
            self._offset = proc.log_path.stat().st_size

    def new_levels(self) -> Counter[str]:
        levels: Counter[str] = Counter()
        try:
            with self.proc.log_path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return levels
        end = chunk.rfind(b"\n") + 1  # only whole lines
        self._offset += end
        for line in chunk[:end].splitlines():
            if b"Failed activation on workflow" in line:
                levels["workflow task failures"] += 1  # a workflow bug: cases cannot move
            if b'"level": "error"' in line or b'"level": "critical"' in line:
                levels["error"] += 1
            elif b'"level": "warning"' in line:
                levels["warning"] += 1
        return levels


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_ready(procs: list[_Proc], timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    waiting = {p.name: p for p in procs}
    while waiting:
        for name, proc in list(waiting.items()):
            try:
                text = proc.log_path.read_text(errors="replace")
            except OSError:
                text = ""
            if PROCESSES[name] in text:
                del waiting[name]
            elif proc.popen.poll() is not None:
                raise DemoError(
                    f"`hotline {name}` exited with code {proc.popen.returncode} before it "
                    f"was ready; its log is {proc.log_path}:\n{_tail(proc.log_path)}"
                )
        if waiting and time.monotonic() > deadline:
            name, proc = next(iter(waiting.items()))
            raise DemoError(
                f"`hotline {name}` did not log '{PROCESSES[name]}' within {timeout:.0f} s; "
                f"see {proc.log_path}:\n{_tail(proc.log_path)}"
            )
        time.sleep(0.2)


def _stop(procs: list[_Proc]) -> None:
    for proc in procs:
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(timeout=10)
        # rc 134 at exit is the known temporalio teardown abort (STYLE.md): not a failure.
        proc.pid_file.unlink(missing_ok=True)


# --- run ids ---------------------------------------------------------------------------------


def _serial_base(demo_dir: Path, now: datetime, cases: int) -> int:
    """First serial of this run: from the time of day, past the last run's ids of today."""
    day = now.astimezone(BEIJING)
    midnight = day.replace(hour=0, minute=0, second=0, microsecond=0)
    base = int((day - midnight).total_seconds() * 10) + 1
    path = demo_dir / "serial.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        last = json.loads(path.read_text())
        if last["date"] == f"{day:%Y%m%d}":
            base = max(base, int(last["next"]))
    path.write_text(json.dumps({"date": f"{day:%Y%m%d}", "next": base + cases}) + "\n")
    return base


# --- summary ---------------------------------------------------------------------------------


def _rules(settings: Settings) -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(
        (settings.config_dir / "rules.yaml").read_text(encoding="utf-8"))
    return rules


def _weights(settings: Settings) -> dict[str, float]:
    return {k: float(v) for k, v in _rules(settings)["weights"].items()}


def _table(title: str, headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    heads = list(headers)
    for i, head in enumerate(heads):
        table.add_column(head, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    return table


# The handling rules in the summary: key, label, condition on ``case_events`` and what one
# event counts for. The conditions are constants of this module, never input.
_DECIDED = "event_type = 'EXTENSION_DECIDED'"
RULE_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("returns", "returns 退单", "event_type = 'RETURNED'", "1"),
    ("redispatches", "re-dispatches 改派", "event_type = 'REDISPATCHED'", "1"),
    ("city", "city coordinations 市级协调",
     "event_type = 'NOTICE' AND attributes->>'notice_type' = 'CITY_COORDINATION'", "1"),
    ("requested", "extensions requested 延期", "event_type = 'EXTENSION_REQUESTED'", "1"),
    ("by_rule", "  granted by rule", f"{_DECIDED} AND attributes->>'granted' = 'true' "
                                     "AND attributes->>'decided_by' = 'rule'", "1"),
    ("by_supervisor", "  granted by a supervisor",
     f"{_DECIDED} AND attributes->>'granted' = 'true' "
     "AND attributes->>'decided_by' IS DISTINCT FROM 'rule'", "1"),
    ("denied", "  denied", f"{_DECIDED} AND attributes->>'granted' = 'false'", "1"),
    ("whistles", "whistles 吹哨", "event_type = 'WHISTLED'", "1"),
    ("called_in", "  assisting units called in", "event_type = 'WHISTLED'",
     "coalesce(cardinality(string_to_array(attributes->>'units', ',')), 0)"),
    ("assist_replies", "  assisting units' replies", "event_type = 'ASSIST_REPLIED'", "1"),
    ("supplements", "supplements 补充", "event_type = 'SUPPLEMENTED'", "1"),
    ("urges", "urges 催办", "event_type = 'URGED'", "1"),
    ("urged", "  URGED escalations",
     "event_type = 'NOTICE' AND attributes->>'notice_type' = 'URGED'", "1"),
    ("withdrawals", "withdrawals 撤诉", "event_type = 'WITHDRAWN'", "1"),
    ("merged", "merged duplicates 重复件", "event_type = 'MERGED'", "1"),
    ("reopens", "reopens 重办", "event_type = 'REOPENED'", "1"),
    ("refused", "refused replies", "event_type = 'REPLY_REFUSED'", "1"),
)


def _rule_counts(conn: psycopg.Connection[Any], ids: list[str]) -> dict[str, tuple[int, int]]:
    """Key → (events, cases) of each handling rule, from ``case_events``."""
    columns = ",\n".join(
        f"coalesce(sum({amount}) FILTER (WHERE {cond}), 0), "
        f"count(DISTINCT complaint_id) FILTER (WHERE {cond})"
        for _, _, cond, amount in RULE_ROWS)
    row = conn.execute(f"SELECT {columns} FROM case_events WHERE complaint_id = ANY(%s)",
                       (ids,)).fetchone()
    values = list(row or [0] * (2 * len(RULE_ROWS)))
    return {key: (int(values[2 * i]), int(values[2 * i + 1]))
            for i, (key, _, _, _) in enumerate(RULE_ROWS)}


def _rules_table(counts: dict[str, tuple[int, int]]) -> Table:
    events = {key: n for key, (n, _) in counts.items()}
    pending = events["requested"] - events["by_rule"] - events["by_supervisor"] - events["denied"]
    notes = {
        "requested": f"{pending} still pending at close" if pending > 0 else "",
        "urges": (f"{events['merged']} of them by merged repeat filings"
                  if events["merged"] else ""),
        "refused": "replies the case's state or holder did not allow" if events["refused"]
                   else "",
    }
    table = Table(title="handling rules (case_events)", title_justify="left")
    for i, head in enumerate(("rule", "events", "cases", "")):
        table.add_column(head, justify="right" if i in (1, 2) else "left")
    for key, label, _, _ in RULE_ROWS:
        n, cases = counts[key]
        table.add_row(label, str(n), str(cases), notes.get(key, ""))
    return table


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f} %" if den else "n/a"


def print_summary(settings: Settings, complaint_ids: list[str], closed_seen: int,
                  console: Console) -> None:
    """Print this run's results from the PostgreSQL ledger."""
    ids = list(complaint_ids)
    with psycopg.connect(settings.dsn, connect_timeout=10, autocommit=True) as conn:
        # The ledger is written right after the lifecycle event is published: let it catch up.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM cases WHERE complaint_id = ANY(%s) "
                               "AND status = 'CLOSED'", (ids,)).fetchone()
            if row and row[0] >= closed_seen:
                break
            time.sleep(0.3)

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql, (ids,)).fetchall()

        by_status = rows("""SELECT status, coalesce(outcome, '-'), count(*) FROM cases
                            WHERE complaint_id = ANY(%s) GROUP BY 1, 2 ORDER BY 3 DESC, 1""")
        by_tier = rows("""SELECT coalesce(tier, '-'), count(*),
                                 count(*) FILTER (WHERE overdue),
                                 count(*) FILTER (WHERE escalation_level = 'DISTRICT'),
                                 count(*) FILTER (WHERE escalation_level = 'CITY')
                          FROM cases WHERE complaint_id = ANY(%s)
                          GROUP BY 1 ORDER BY 1""")
        by_district = rows("""SELECT coalesce(district, '(unknown)'), count(*),
                                     count(DISTINCT street)
                              FROM cases WHERE complaint_id = ANY(%s)
                              GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 16""")
        notices = rows("""SELECT coalesce(attributes->>'notice_type', reason, 'OTHER'),
                                 count(*), count(DISTINCT complaint_id)
                          FROM case_events
                          WHERE complaint_id = ANY(%s) AND event_type = 'NOTICE'
                          GROUP BY 1 ORDER BY 2 DESC""")
        rule_counts = _rule_counts(conn, ids)
        rates = conn.execute(
            """SELECT count(*) FILTER (WHERE counted),
                      count(*) FILTER (WHERE counted AND responded),
                      count(*) FILTER (WHERE counted AND resolved),
                      count(*) FILTER (WHERE counted AND satisfaction IS NOT NULL),
                      count(*) FILTER (WHERE counted AND satisfaction IN
                                       ('SATISFIED', 'BASICALLY_SATISFIED')),
                      avg(score) FILTER (WHERE counted)
               FROM evaluations WHERE complaint_id = ANY(%s)""", (ids,)).fetchone()

    console.rule("summary (PostgreSQL ledger)")
    in_ledger = sum(r[2] for r in by_status)
    console.print(f"{in_ledger} of {len(ids)} cases of this run are in the ledger.")
    console.print(_table("cases by final status and outcome", ("status", "outcome", "cases"),
                         by_status))
    console.print(_table("cases by tier", ("tier", "cases", "overdue", "district supervision",
                                           "city supervision"), by_tier))
    console.print(_table("cases by district", ("district", "cases", "streets"), by_district))
    console.print(_table("notices by type", ("notice", "notices", "cases"), notices or [
        ("none", 0, 0)]))
    console.print(_rules_table(rule_counts))

    counted, responded, resolved, reached, satisfied, mean_score = rates or (0, 0, 0, 0, 0, None)
    weights = _weights(settings)
    r_resp = responded / counted if counted else 0.0
    r_res = resolved / counted if counted else 0.0
    r_sat = satisfied / reached if reached else 0.0
    score = 100 * (weights.get("response", 0) * r_resp + weights.get("resolution", 0) * r_res
                   + weights.get("satisfaction", 0) * r_sat)
    three = Table(title=f"three rates over {counted} counted cases", title_justify="left")
    three.add_column("rate")
    three.add_column("value", justify="right")
    three.add_column("weight", justify="right")
    three.add_column("how")
    three.add_row("response 响应率", _pct(responded, counted), f"{weights.get('response', 0):g}",
                  f"{responded} responded / {counted} counted")
    three.add_row("resolution 解决率", _pct(resolved, counted),
                  f"{weights.get('resolution', 0):g}", f"{resolved} resolved / {counted} counted")
    three.add_row("satisfaction 满意率", _pct(satisfied, reached),
                  f"{weights.get('satisfaction', 0):g}",
                  f"{satisfied} satisfied or basically satisfied / {reached} reached")
    three.add_row("weighted score", f"{score:.1f}", "", "weights from deploy/config/rules.yaml")
    if mean_score is not None:
        three.add_row("mean case score", f"{float(mean_score):.3f}", "", "evaluations.score")
    console.print(three)


# --- the run ---------------------------------------------------------------------------------


def _follow(ctx: _Ctx, consumer: KafkaConsumer, console: Console, title: str,
            timeout: float, procs: list[_Proc]) -> bool:
    """Follow the lifecycle until every case is closed; False on timeout.

    Fails at once when the worker or the bridges exit or an actor fails.
    """
    deadline = time.monotonic() + timeout
    board = ctx.board
    last_plain = 0.0
    watches = [_LogWatch(p) for p in procs]
    last_watch = 0.0

    def step() -> bool:
        nonlocal last_watch
        if time.monotonic() - last_watch > 2:
            last_watch = time.monotonic()
            for watch in watches:
                board.count_log_lines(watch.proc.name, watch.new_levels())
                code = watch.proc.popen.poll()
                if code is not None:
                    raise DemoError(
                        f"`hotline {watch.proc.name}` exited with code {code} during the "
                        f"demo; its log is {watch.proc.log_path}:\n{_tail(watch.proc.log_path)}"
                    )
        for msg in _poll(consumer, REFRESH_S):
            try:
                rec = decode(msg.value, expected=("LifecycleEvent",)).record
            except DecodeError:
                board.count_undecodable()
                continue
            if rec["complaint_id"] in ctx.plans:
                board.lifecycle(rec)
        if board.errors:
            raise DemoError("a simulated actor failed: " + "; ".join(board.errors))
        return board.closed >= board.total

    if console.is_terminal:
        with Live(board.render(title), console=console, refresh_per_second=4) as live:
            while time.monotonic() < deadline:
                done = step()
                live.update(board.render(title))
                if done:
                    return True
        return False
    while time.monotonic() < deadline:
        if step():
            console.print(board.plain_line(), soft_wrap=True, highlight=False)
            return True
        if time.monotonic() - last_plain > 10:
            last_plain = time.monotonic()
            console.print(board.plain_line(), soft_wrap=True, highlight=False)
    return False


def _print_stuck(board: Board, status: StackStatus | None, settings: Settings,
                 console: Console, timeout: float) -> None:
    stuck = board.stuck()
    console.print(f"[bold red]timed out after {timeout:.0f} s: {len(stuck)} of {board.total} "
                  "cases are not closed.[/]")
    table = Table(title="stuck cases", title_justify="left")
    for head in ("complaint", "tier", "status", "last event", "seconds since"):
        table.add_column(head)
    now = time.monotonic()
    for cid, track in stuck[:30]:
        table.add_row(cid, track.tier or "-", track.status, track.last_event,
                      f"{now - track.last_at:.0f}" if track.last_at else "-")
    console.print(table)
    if len(stuck) > 30:
        console.print(f"... and {len(stuck) - 30} more.")
    ui = status.temporal_ui_url if status else f"http://127.0.0.1:{settings.temporal_ui_port}"
    demo_dir = settings.state_dir / "demo"
    console.print(f"Look at a case in the Temporal UI ({ui}, workflow id complaint-<id>) and "
                  f"at the logs in {demo_dir}/worker.log and {demo_dir}/bridges.log.")


def run_demo(cases: int = 100, time_scale: float = 0.00002, *,
             timeout: float = DEFAULT_TIMEOUT_S, seed: int | None = None,
             console: Console | None = None) -> None:
    """Bring the stack up and run a small simulated city through every stage.

    Args:
        cases: How many complaints the call centre files.
        time_scale: Multiplies every rule duration in the worker (0.00002: 7 days ≈ 12 s).
        timeout: Give up waiting for the cases to close after this many seconds.
        seed: The city's seed; by default this run's first serial (printed, so a run can
            be repeated).
        console: Where to print (a new rich console by default).

    Raises:
        typer.Exit: With code 1 when the stack, the processes or an actor fail, or when
            cases are still open at the timeout; 130 when interrupted.
    """
    console = console or Console()
    if cases < 1 or time_scale <= 0:
        console.print("[red]--cases must be at least 1 and --time-scale above 0[/]")
        raise typer.Exit(2)
    settings = get_settings().model_copy(update={"time_scale": time_scale})
    demo_dir = settings.state_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    procs: list[_Proc] = []
    # `timeout`, `kill` and service managers stop with SIGTERM: clean up as for Ctrl-C.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with console.status("bringing the stack up (Temporal, Kafka, PostgreSQL)..."):
            status = ensure_stack(settings)
            ensure_topics(settings)
        console.print("stack: " + ", ".join(f"{c.name} {c.address}" for c in status.components)
                      + f" · Temporal UI {status.temporal_ui_url}")

        _stop_previous(demo_dir, console)
        with console.status("starting `hotline worker`, `hotline bridges` and "
                            "`hotline projector`..."):
            procs = [_start(name, settings, demo_dir) for name in PROCESSES]
            _wait_ready(procs)
        for name in PROCESSES:
            others = _foreign(name, (p.popen.pid for p in procs))
            if others:
                console.print(
                    f"[yellow]warning: other `hotline {name}` processes are running (pids "
                    f"{', '.join(map(str, others))}); they share the work, and a worker with "
                    f"another time scale will stretch this demo's deadlines.[/]")
        console.print(f"worker, bridges and projector ready (time scale {time_scale:g}); logs in "
                      f"{demo_dir}")
        console.print(
            "metrics: worker http://127.0.0.1:"
            f"{settings.worker_metrics_port}/metrics · Temporal SDK http://127.0.0.1:"
            f"{settings.temporal_sdk_metrics_port}/metrics · bridges http://127.0.0.1:"
            f"{settings.bridge_metrics_port}/metrics")

        ok, board = _run_city(settings, cases, seed, demo_dir, status, console, timeout, procs)
        try:
            print_summary(settings, list(board.cases), board.closed, console)
            # The supervisors' monthly report for the simulated month (this month).
            from workers.reports.monthly import write_monthly_report

            month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
            html_path, csv_path = write_monthly_report(settings, month)
            console.print(f"monthly report for {month}: {html_path} (CSV: {csv_path})")
        except psycopg.Error as exc:
            raise DemoError(f"cannot read the ledger in PostgreSQL: {exc}") from exc
        if not ok:
            raise typer.Exit(1)
    except DemoError as exc:
        console.print(f"[bold red]demo failed:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None
    finally:
        if procs:
            with console.status("stopping the worker and bridges..."):
                _stop(procs)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        console.print("stack left running: `hotline stack down` (or `make down`) stops it")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_city(settings: Settings, cases: int, seed: int | None, demo_dir: Path,
              status: StackStatus, console: Console, timeout: float,
              procs: list[_Proc]) -> tuple[bool, Board]:
    start = _now()
    serial = _serial_base(demo_dir, start, cases)
    seed = serial if seed is None else seed
    config = load_config(settings.config_dir)
    city = generate_city(cases, seed=seed, start=start.astimezone(BEIJING), serial_base=serial,
                         config=config)
    # Part of the city's apps file through the Open311 API, served here on a free port.
    city = route_through_open311(city)
    via_open311 = [c.plan.complaint_id for c in city if c.open311_key is not None]
    # The service logs in this process: to a file beside the worker's, not over the board.
    configure_logging(settings, stream=(demo_dir / "open311.log").open("a", encoding="utf-8"))
    open311 = Open311Server(settings.model_copy(update={"open311_rate_per_minute": 0}),
                            port=0, config=config,
                            clients=[open311_client(ch) for ch in OPEN311_CHANNELS])
    try:
        open311.start()
    except RuntimeError as exc:
        raise DemoError(f"{exc}; see {demo_dir}/open311.log") from None
    console.print(f"Open311 GeoReport v2 at {open311.url} (e.g. {open311.url}/services.json); "
                  f"{len(via_open311)} of the complaints are filed through it; log "
                  f"{demo_dir}/open311.log")
    plans = {c.plan.complaint_id: c.plan for c in city}
    ids = list(plans)
    board = Board(ids)
    title = (f"hotline demo · {ids[0]} … {ids[-1]} · {cases} cases · seed {seed} · "
             f"time scale {settings.time_scale:g}")
    producer = make_producer(settings, client_id="hotline-demo")
    stop = threading.Event()
    threads_of: list[tuple[str, Callable[[_Ctx], None]]] = [
        ("call-centre", _call_centre(city)),
        ("unit-systems", _unit_systems),
        ("supervisor", _supervisor),
        ("callback-centre", _callback_centre),
    ]
    # The actors' consumers and the follower's, all at the end of their topics, before the
    # first filing.
    ready = threading.Barrier(len(threads_of) + 1)
    ctx = _Ctx(settings, producer, board, plans, stop, ready, open311.url)
    threads = [_actor(name, body, ctx) for name, body in threads_of]
    follower = _tail_consumer(settings, settings.topic_lifecycle, "demo-monitor")
    try:
        for thread in threads:
            thread.start()
        try:
            ready.wait(timeout=60)
        except threading.BrokenBarrierError:
            raise DemoError("the actors could not start: " + "; ".join(board.errors)) from None
        ok = _follow(ctx, follower, console, title, timeout, procs)
        if ok:
            console.print(f"[bold green]all {cases} cases closed[/] in "
                          f"{time.monotonic() - board.started:.0f} s.")
        else:
            _print_stuck(board, status, settings, console, timeout)
        if via_open311:
            _open311_report(open311.url, via_open311, console, ok)
        return ok, board
    finally:
        open311.stop()
        stop.set()
        with contextlib.suppress(threading.BrokenBarrierError):
            ready.abort()
        for thread in threads:
            thread.join(timeout=10)
        follower.close(autocommit=False)
        producer.flush(timeout=10)
        producer.close(timeout=10)
