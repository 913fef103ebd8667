"""The simulated city of the end-to-end bench: callers, units and the callback centre.

Files complaints on the intake topic and answers for the units (sign, progress,
complete on ``DispatchIssued``) and the callback centre (on ``CALLBACK_DUE``) over Kafka,
noting when each case was filed, dispatched, signed for and closed.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from schemas.codec import DecodeError, decode, encode, headers_for
from workers.runtime.settings import Settings

HAPPY_CONTENT = "望京街道阜通东大街6号院3号楼电梯坏了三天，楼里老人下不了楼"  # T24H
PARKED_CONTENT = "望京街道某装修公司拖欠工资三个月，包工头不给钱"  # labour.wages: T15D


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


ABORT = threading.Event()  # set when the run ends: waits in threads give up


def wait_until(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ABORT.is_set():
        if pred():
            return True
        time.sleep(0.1)
    return bool(pred())
