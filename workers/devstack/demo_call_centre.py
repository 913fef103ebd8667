"""The demo's call centre and the citizens: filings, later calls and the apps' Open311.

The call centre files each case of :mod:`workers.devstack.city` on ``hotline.intake`` at a
steady pace, and later the citizens' supplements, urges, withdrawals and repeat filings,
timed from each case's ``DISPATCHED`` lifecycle event. About 20 % of the filings (app,
WeChat, mini-program and web ones) are instead posted by the citizens' apps to the Open311
GeoReport v2 service (:mod:`workers.open311.service`) the demo serves, and the apps' view
of them (``GET requests``) is printed at the end.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any

from rich.console import Console

from schemas.codec import DecodeError, decode
from workers.devstack.city import open311_client
from workers.devstack.city_plans import SUPPLEMENT, URGE, WITHDRAW, CitizenCall, DemoCase
from workers.devstack.demo_actors import (
    SEND_TIMEOUT_S,
    ActorContext,
    DemoError,
    Scheduler,
    poll_records,
    publish,
    tail_consumer,
    utc_now,
)

# A repeat filing goes out when the case it repeats is dispatched; should that never be
# seen, this long after the first filing.
REPEAT_FALLBACK_S = 60.0


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

    def __init__(self, ctx: ActorContext, city: list[DemoCase]) -> None:
        self.ctx = ctx
        self.city = city
        self.sched = Scheduler()
        self.filed: set[str] = set()
        self.dispatched: set[str] = set()
        self.repeats: dict[str, list[DemoCase]] = {}

    def run(self) -> None:
        ctx = self.ctx
        consumer = tail_consumer(ctx.settings, ctx.settings.topic_lifecycle, "demo-call-centre")
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
                for msg in poll_records(consumer, self.sched.wait_s(0.1)):
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
            record["filed_at"] = utc_now()  # the call happens now
            publish(self.ctx, self.ctx.settings.topic_intake, "ComplaintFiled", record)
        self.ctx.board.filed(cid)
        if case.plan.duplicate_of:
            self.ctx.board.count_sent("repeat filing")

    def call(self, cid: str, call: CitizenCall) -> None:
        if self.ctx.stop.is_set():
            return
        name, record = citizen_record(cid, call, utc_now(), str(uuid.uuid4()))
        publish(self.ctx, self.ctx.settings.topic_intake, name, record)
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


def open311_report(url: str, ids: list[str], console: Console, all_closed: bool) -> None:
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


def call_centre(city: list[DemoCase]) -> Callable[[ActorContext], None]:
    """The call centre's thread body for this city."""

    def body(ctx: ActorContext) -> None:
        _CallCentre(ctx, city).run()

    return body
