"""The bridges' pure parts: record → command mapping, error classification, DLQ records,
and one bridge's message/batch handling against in-process fakes. No servers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from google.protobuf.any_pb2 import Any as AnyProto
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import REGISTRY
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import NamespaceNotFoundFailure, NotFoundFailure
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from schemas import codec
from workers.bridges import consumer as bridges
from workers.bridges.apply import apply_command, update_id_for
from workers.bridges.consumer import TopicBridge, TransientError, backoff_delay
from workers.bridges.consumer import until_connected as _until_connected
from workers.bridges.outcomes import (
    APPLIED,
    CASE_CLOSED,
    DEAD_LETTERED,
    DUPLICATE,
    REFUSED,
    REJECTED,
    TRANSIENT,
    UNEXPECTED_TYPE,
    UNKNOWN_CASE,
    Verdict,
    classify_error,
    verdict_for_ack,
)
from workers.bridges.routes import (
    CALLBACKS,
    INTAKE,
    ROUTES,
    START,
    TOPIC_RECORDS,
    UNIT_REPLIES,
    Command,
    Unroutable,
    route,
)
from workers.runtime.kafka_io import DeadLetterPublisher, dead_letter_record, group_id
from workers.runtime.observability import redact_personal_data
from workers.runtime.settings import Settings
from workflows import model
from workflows.governance import UPDATE_REPORT_TASK, PlanStatus, TaskReport
from workflows.model import (
    WORKFLOW_VERSION,
    Ack,
    CallbackAnswer,
    Complete,
    Filing,
    ReportProgress,
    RequestExtension,
    ReturnDispatch,
    SignFor,
    Supplement,
    Urge,
    Whistle,
    Withdraw,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
AT = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
CID = "BJ20250601-0001"
PLAN = "2025-06-order.vendors"

# --- sample records, as the codec hands them over (datetimes aware, enums as str) -------

REPLY = {"event_id": "e-1", "complaint_id": CID, "dispatch_id": "d-1", "unit_id": "110105026",
         "at": AT}

SAMPLES: dict[str, dict[str, Any]] = {
    "ComplaintFiled": {
        "event_id": "e-1", "complaint_id": CID, "filed_at": AT, "channel": "PHONE",
        "kind": "COMPLAINT", "content": "小区门口夜间烧烤扰民", "caller_phone": "13800001111",
        "caller_name": "张先生", "anonymous": False, "district": "朝阳区", "street": "望京街道",
        "address": "阜通东大街6号院", "latitude": 39.99, "longitude": 116.47,
        "category_hint": "noise", "urgency_hint": "T24H", "answered_directly": False,
        "attachments": ["https://files.example/1.jpg"],
    },
    "ComplaintSupplemented": {"event_id": "e-1", "complaint_id": CID, "at": AT,
                              "content": "晚上十点以后更严重", "attachments": ["https://x/2.jpg"]},
    "ComplaintUrged": {"event_id": "e-1", "complaint_id": CID, "at": AT, "content": "还没人来"},
    "ComplaintWithdrawn": {"event_id": "e-1", "complaint_id": CID, "at": AT, "reason": "已解决"},
    "DispatchDecided": {"event_id": "e-1", "complaint_id": CID, "decided_at": AT,
                        "dispatcher_id": "desk-7", "decision": "DISPATCH",
                        "unit_id": "110105026", "tier": "T24H", "category": "order.vendors",
                        "note": "望京的八里庄", "redirect_to": None},
    "DispatchSigned": {**REPLY, "signer": "王师傅"},
    "DispatchReturned": {**REPLY, "reason": "不属于本单位职责"},
    "ProgressReported": {**REPLY, "text": "已联系市民，维修中", "contacted_citizen": True},
    "ExtensionRequested": {**REPLY, "extra_days": 5, "reason": "需协调产权单位"},
    "HandlingCompleted": {**REPLY, "result": "RESOLVED", "reply_text": "已修复"},
    "UnitsWhistled": {**REPLY, "units": ["bj-chengguan", "bj-urban-mgmt"],
                      "reason": "需执法部门协同"},
    "CallbackResult": {"event_id": "e-1", "complaint_id": CID, "at": AT, "reached": True,
                       "responded": True, "resolved": False, "satisfaction": "UNSATISFIED",
                       "comment": "问题还在"},
    "PlanTaskReported": {"event_id": "e-1", "plan_id": PLAN, "task_id": "t1",
                         "unit_id": "110105026", "at": AT, "note": "夜市疏导点已设"},
}

EXPECTED: dict[str, tuple[str, str, object]] = {
    "ComplaintFiled": (INTAKE, START, Filing(
        event_id="e-1", complaint_id=CID, filed_at=AT, channel="PHONE", kind="COMPLAINT",
        content="小区门口夜间烧烤扰民", caller_phone="13800001111", caller_name="张先生",
        anonymous=False, district="朝阳区", street="望京街道", address="阜通东大街6号院",
        latitude=39.99, longitude=116.47, category_hint="noise", urgency_hint="T24H",
        answered_directly=False, attachments=["https://files.example/1.jpg"])),
    "ComplaintSupplemented": (INTAKE, model.UPDATE_SUPPLEMENT, Supplement(
        event_id="e-1", at=AT, content="晚上十点以后更严重", attachments=["https://x/2.jpg"])),
    "ComplaintUrged": (INTAKE, model.UPDATE_URGE, Urge(event_id="e-1", at=AT, content="还没人来")),
    "ComplaintWithdrawn": (INTAKE, model.UPDATE_WITHDRAW,
                           Withdraw(event_id="e-1", at=AT, reason="已解决")),
    "DispatchDecided": (INTAKE, model.UPDATE_DECIDE_DISPATCH, model.DispatchDecision(
        event_id="e-1", complaint_id=CID, decided_at=AT, dispatcher_id="desk-7",
        decision="DISPATCH", unit_id="110105026", tier="T24H", category="order.vendors",
        note="望京的八里庄", redirect_to=None)),
    "DispatchSigned": (UNIT_REPLIES, model.UPDATE_SIGN_FOR, SignFor(
        event_id="e-1", dispatch_id="d-1", unit_id="110105026", at=AT, signer="王师傅")),
    "DispatchReturned": (UNIT_REPLIES, model.UPDATE_RETURN_DISPATCH, ReturnDispatch(
        event_id="e-1", dispatch_id="d-1", unit_id="110105026", at=AT,
        reason="不属于本单位职责")),
    "ProgressReported": (UNIT_REPLIES, model.UPDATE_REPORT_PROGRESS, ReportProgress(
        event_id="e-1", dispatch_id="d-1", unit_id="110105026", at=AT,
        text="已联系市民，维修中", contacted_citizen=True)),
    "ExtensionRequested": (UNIT_REPLIES, model.UPDATE_REQUEST_EXTENSION, RequestExtension(
        event_id="e-1", dispatch_id="d-1", unit_id="110105026", at=AT, extra_days=5,
        reason="需协调产权单位")),
    "HandlingCompleted": (UNIT_REPLIES, model.UPDATE_COMPLETE, Complete(
        event_id="e-1", dispatch_id="d-1", unit_id="110105026", at=AT, result="RESOLVED",
        reply_text="已修复")),
    "UnitsWhistled": (UNIT_REPLIES, model.UPDATE_WHISTLE, Whistle(
        event_id="e-1", dispatch_id="d-1", unit_id="110105026", at=AT,
        units=["bj-chengguan", "bj-urban-mgmt"], reason="需执法部门协同")),
    "CallbackResult": (CALLBACKS, model.UPDATE_CALLBACK, CallbackAnswer(
        event_id="e-1", at=AT, reached=True, responded=True, resolved=False,
        satisfaction="UNSATISFIED", comment="问题还在")),
    "PlanTaskReported": (UNIT_REPLIES, UPDATE_REPORT_TASK, TaskReport(
        event_id="e-1", task_id="t1", unit_id="110105026", note="夜市疏导点已设", at=AT)),
}

# Records addressed to a governance plan rather than to a case.
PLAN_RECORDS = {"PlanTaskReported"}


def _schema_fields(name: str) -> set[str]:
    schema = json.loads((SCHEMAS / f"hotline.events.{name}.avsc").read_text(encoding="utf-8"))
    return {f["name"] for f in schema["fields"]}


# --- the mapping table ------------------------------------------------------------------


def test_the_table_covers_exactly_the_inbound_contract() -> None:
    assert set(ROUTES) == set(SAMPLES) == set(EXPECTED)
    assert set().union(*TOPIC_RECORDS.values()) == set(ROUTES)
    # Each record belongs to exactly one inbound topic.
    assert sum(len(names) for names in TOPIC_RECORDS.values()) == len(ROUTES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_record_becomes_the_right_command(name: str) -> None:
    topic, action, arg = EXPECTED[name]
    command = route(topic, name, SAMPLES[name])
    if name in PLAN_RECORDS:
        assert command == Command(record=name, complaint_id=PLAN, event_id="e-1",
                                  action=action, arg=arg,
                                  workflow_id=f"governance-plan-{PLAN}",
                                  result_type=PlanStatus)
    else:
        assert command == Command(record=name, complaint_id=CID, event_id="e-1",
                                  action=action, arg=arg)
        assert command.workflow_id == f"complaint-{CID}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mapping_holds_for_what_the_codec_decodes(name: str) -> None:
    """Through real Avro bytes: timestamps and enums arrive as the builders expect."""
    topic, action, arg = EXPECTED[name]
    decoded = codec.decode(codec.encode(name, SAMPLES[name]))
    command = route(topic, decoded.name, decoded.record)
    assert (command.action, command.arg) == (action, arg)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_every_dataclass_field_comes_from_the_avro_record(name: str) -> None:
    """A field the record lacks would silently keep its default; none may exist today."""
    cls = type(EXPECTED[name][2])
    # ``carried`` is the workflow's own state across continue-as-new, never on the wire;
    # ``governance`` is set only by the hotspot scan that starts a governance case;
    # ``workflow_version`` by whoever starts a case (the bridge, the scan), never the record.
    internal = {"carried", "governance", "workflow_version"}
    fields = {f.name for f in dataclasses.fields(cls)} - internal  # type: ignore[arg-type]
    assert fields - _schema_fields(name) == set()


def test_optional_fields_left_out_keep_their_defaults() -> None:
    record = {"event_id": "e-2", "complaint_id": CID, "at": AT, "content": "补充"}
    command = route(INTAKE, "ComplaintSupplemented", record)
    assert command.arg == Supplement(event_id="e-2", at=AT, content="补充", attachments=[])


def test_lists_are_copied_not_shared_with_the_decoder() -> None:
    record = dict(SAMPLES["ComplaintSupplemented"])
    command = route(INTAKE, "ComplaintSupplemented", record)
    record["attachments"].append("later")
    assert cast(Supplement, command.arg).attachments == ["https://x/2.jpg"]


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        (INTAKE, "DispatchSigned"),
        (UNIT_REPLIES, "ComplaintFiled"),
        (CALLBACKS, "HandlingCompleted"),
        (UNIT_REPLIES, "DispatchIssued"),  # an outbound record on an inbound topic
        (INTAKE, "DeadLetter"),
        ("hotline.lifecycle", "ComplaintFiled"),  # not an inbound topic at all
    ],
)
def test_a_record_on_the_wrong_topic_is_unexpected(topic: str, name: str) -> None:
    with pytest.raises(Unroutable) as caught:
        route(topic, name, SAMPLES.get(name, {"event_id": "e", "complaint_id": CID}))
    assert caught.value.reason == UNEXPECTED_TYPE
    assert name in caught.value.detail


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"event_id": "e-1", "at": AT, "content": "x"}, "complaint_id"),
        ({"event_id": "", "complaint_id": CID, "at": AT, "content": "x"}, "event_id"),
        ({"event_id": "e-1", "complaint_id": CID, "at": AT}, "content"),  # required field
    ],
)
def test_a_record_that_does_not_fit_is_invalid(record: dict[str, Any], problem: str) -> None:
    with pytest.raises(Unroutable) as caught:
        route(INTAKE, "ComplaintSupplemented", record)
    assert caught.value.reason == "INVALID_RECORD"
    assert problem in caught.value.detail


# --- classifying Temporal answers -------------------------------------------------------


def _rpc(message: str, status: RPCStatusCode, *details: Any) -> RPCError:
    packed = []
    for detail in details:
        any_proto = AnyProto()
        any_proto.Pack(detail)
        packed.append(any_proto)
    raw = GrpcStatus(code=int(status), message=message, details=packed).SerializeToString()
    return RPCError(message, status, raw)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        # Server 1.32's answers, as seen on the dev server.
        (_rpc("workflow not found for ID: complaint-x", RPCStatusCode.NOT_FOUND,
              NotFoundFailure()), Verdict(DEAD_LETTERED, UNKNOWN_CASE)),
        (_rpc("workflow execution already completed", RPCStatusCode.NOT_FOUND,
              NotFoundFailure()), Verdict(DEAD_LETTERED, CASE_CLOSED)),
        (_rpc("workflow update was aborted by closing workflow", RPCStatusCode.NOT_FOUND),
         Verdict(DEAD_LETTERED, CASE_CLOSED)),
        (RPCError("workflow not found for ID: x", RPCStatusCode.NOT_FOUND, b""),
         Verdict(DEAD_LETTERED, UNKNOWN_CASE)),
        # A missing namespace is the deployment's fault, not the message's.
        (_rpc("Namespace hotline is not found.", RPCStatusCode.NOT_FOUND,
              NamespaceNotFoundFailure(namespace="hotline")), Verdict(TRANSIENT)),
        (RPCError("Namespace hotline is not found.", RPCStatusCode.NOT_FOUND, b""),
         Verdict(TRANSIENT)),
        (_rpc("connection refused", RPCStatusCode.UNAVAILABLE), Verdict(TRANSIENT)),
        (_rpc("Timeout expired", RPCStatusCode.DEADLINE_EXCEEDED), Verdict(TRANSIENT)),
        (_rpc("namespace rate limit exceeded", RPCStatusCode.RESOURCE_EXHAUSTED),
         Verdict(TRANSIENT)),
        (_rpc("context canceled", RPCStatusCode.CANCELLED), Verdict(TRANSIENT)),
        (_rpc("shard moved", RPCStatusCode.INTERNAL), Verdict(TRANSIENT)),
        (_rpc("connection closed", RPCStatusCode.ABORTED), Verdict(TRANSIENT)),
        (_rpc("namespace not active", RPCStatusCode.FAILED_PRECONDITION), Verdict(TRANSIENT)),
        (_rpc("blob size exceeds limit", RPCStatusCode.INVALID_ARGUMENT),
         Verdict(REFUSED, REJECTED)),
        (WorkflowUpdateRPCTimeoutOrCancelledError(), Verdict(TRANSIENT)),
        (WorkflowAlreadyStartedError("complaint-x", "ComplaintWorkflow"), Verdict(DUPLICATE)),
        (WorkflowUpdateFailedError(ApplicationError(
            "Workflow Update failed because the Workflow completed before the Update "
            "completed.", type="AcceptedUpdateCompletedWorkflow")),
         Verdict(DEAD_LETTERED, CASE_CLOSED)),
        (WorkflowUpdateFailedError(ApplicationError("unit 42 unknown", type="UnknownUnit")),
         Verdict(REFUSED, REJECTED)),
        (ConnectionResetError("peer went away"), Verdict(TRANSIENT)),
        (TimeoutError(), Verdict(TRANSIENT)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_temporal_errors_are_classified(exc: BaseException, expected: Verdict) -> None:
    verdict = classify_error(exc)
    assert (verdict.outcome, verdict.reason) == (expected.outcome, expected.reason)


def test_a_rejected_update_keeps_the_handlers_message() -> None:
    exc = WorkflowUpdateFailedError(ApplicationError("unit 42 unknown", type="UnknownUnit"))
    assert classify_error(exc).detail == "UnknownUnit: unit 42 unknown"


@pytest.mark.parametrize(
    ("ack", "expected"),
    [
        (Ack(accepted=True), Verdict(APPLIED)),
        (Ack(accepted=True, duplicate=True), Verdict(DUPLICATE)),
        (Ack(accepted=False, reason="UNIT_NOT_HOLDING", detail="unit bj-power"),
         Verdict(REFUSED, "UNIT_NOT_HOLDING", "unit bj-power")),
        (Ack(accepted=False, reason="STATE_NOT_ALLOWED"), Verdict(REFUSED, "STATE_NOT_ALLOWED")),
        (Ack(accepted=False), Verdict(REFUSED, "REFUSED")),
    ],
)
def test_acks_become_verdicts(ack: Ack, expected: Verdict) -> None:
    assert verdict_for_ack(ack) == expected


def test_backoff_grows_and_is_capped() -> None:
    assert 0.4 <= backoff_delay(1) <= 0.6
    assert 3.2 <= backoff_delay(4) <= 4.8
    assert all(backoff_delay(n) <= 30.0 for n in range(1, 80))


async def test_a_connection_is_retried_until_it_succeeds_or_the_bridges_stop() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("refused")
        return "connected"

    stop = asyncio.Event()
    assert await _until_connected(flaky, stop, "test") == "connected"
    assert calls == 3  # two failures, backed off 0.5 s then 1 s, third attempt lands

    async def never() -> str:
        raise ConnectionError("refused")

    waiting = asyncio.create_task(_until_connected(never, stop, "test"))
    await asyncio.sleep(0.2)
    stop.set()  # SIGTERM while the broker is down: no connection, no hang
    assert await asyncio.wait_for(waiting, timeout=5) is None


# --- applying commands, against a fake client -------------------------------------------


@dataclass
class FakeClient:
    """Records calls; answers with ``outcome`` (an Ack, or an exception to raise)."""

    outcome: object = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    async def start_workflow(self, workflow: str, arg: object, **kwargs: Any) -> None:
        self.calls.append(("start", workflow, arg, kwargs))
        if isinstance(self.outcome, BaseException):
            raise self.outcome

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@dataclass
class FakeHandle:
    client: FakeClient
    workflow_id: str

    async def execute_update(self, name: str, arg: object, **kwargs: Any) -> object:
        self.client.calls.append(("update", self.workflow_id, name, arg, kwargs))
        if isinstance(self.client.outcome, BaseException):
            raise self.client.outcome
        return self.client.outcome


SETTINGS = Settings(topic_prefix="t.", consumer_group_prefix="g", task_queue="q-test",
                    bridge_metrics_port=0)


async def test_a_filing_starts_the_case_once_with_the_chosen_policies() -> None:
    client = FakeClient()
    command = route(INTAKE, "ComplaintFiled", SAMPLES["ComplaintFiled"])
    assert await apply_command(cast(Client, client), SETTINGS, command) == Verdict(APPLIED)
    (kind, workflow, arg, kwargs), = client.calls
    assert (kind, workflow) == ("start", "ComplaintWorkflow")
    assert arg == dataclasses.replace(command.arg, workflow_version=WORKFLOW_VERSION)
    assert kwargs["id"] == f"complaint-{CID}"
    assert kwargs["task_queue"] == "q-test"
    assert kwargs["id_reuse_policy"] == WorkflowIDReusePolicy.REJECT_DUPLICATE
    assert kwargs["id_conflict_policy"] == WorkflowIDConflictPolicy.FAIL


@pytest.mark.parametrize("version", [WORKFLOW_VERSION, 0])
async def test_a_filing_is_started_on_the_configured_workflow_version(version: int) -> None:
    """``Filing.workflow_version`` is the starter's (``case_workflow_version``), never the
    record's: 0 during a rollout from a release whose workers do not read it."""
    client = FakeClient()
    record = {**SAMPLES["ComplaintFiled"], "workflow_version": 7}
    command = route(INTAKE, "ComplaintFiled", record)
    settings = SETTINGS.model_copy(update={"case_workflow_version": version})
    assert await apply_command(cast(Client, client), settings, command) == Verdict(APPLIED)
    (_, _, arg, _), = client.calls
    assert arg == dataclasses.replace(command.arg, workflow_version=version)


async def test_a_repeated_filing_is_a_duplicate() -> None:
    client = FakeClient(WorkflowAlreadyStartedError(f"complaint-{CID}", "ComplaintWorkflow"))
    command = route(INTAKE, "ComplaintFiled", SAMPLES["ComplaintFiled"])
    verdict = await apply_command(cast(Client, client), SETTINGS, command)
    assert verdict.outcome == DUPLICATE


async def test_a_reply_runs_the_named_update_on_the_case() -> None:
    client = FakeClient(Ack(accepted=False, reason="UNIT_NOT_HOLDING", detail="not yours"))
    command = route(UNIT_REPLIES, "DispatchSigned", SAMPLES["DispatchSigned"])
    verdict = await apply_command(cast(Client, client), SETTINGS, command, update_id="u-1")
    assert verdict == Verdict(REFUSED, "UNIT_NOT_HOLDING", "not yours")
    (kind, workflow_id, name, arg, kwargs), = client.calls
    assert (kind, workflow_id, name, arg) == (
        "update", f"complaint-{CID}", model.UPDATE_SIGN_FOR, command.arg)
    assert kwargs["id"] == "u-1" and kwargs["result_type"] is Ack


def test_update_ids_tie_the_event_to_its_kafka_position() -> None:
    """The same event at the same position gets the same id (a retry gets the first
    answer); another position or another event gets another; and it is short."""
    command = route(UNIT_REPLIES, "DispatchSigned", SAMPLES["DispatchSigned"])
    message = Msg(topic="t.hotline.unit-replies", partition=3, offset=17, key=None, value=b"")
    first = update_id_for(command, message)
    assert first == update_id_for(command, message) and len(first) == 22
    others = {update_id_for(command, replace(message, offset=18)),
              update_id_for(command, replace(message, partition=2)),
              update_id_for(command, replace(message, topic="t.hotline.unit-replies-2")),
              update_id_for(replace(command, event_id="e-2"), message)}
    assert first not in others and len(others) == 4


# --- DLQ records ------------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def test_dead_letter_record_carries_the_original_and_encodes() -> None:
    message = Msg("t.hotline.intake", 4, 99, b"K-1", b"\xc3\x01junk",
                  [("event-type", b"hotline.events.ComplaintFiled")])
    record = dead_letter_record(message, reason="MALFORMED", error="bad\x00bytes",
                                consumer_group="g-intake", at=AT)
    assert record == {
        "event_id": "dlq:t.hotline.intake:4:99", "at": AT, "topic": "t.hotline.intake",
        "partition": 4, "offset": 99, "key": b"K-1", "value": b"\xc3\x01junk",
        "event_type": "hotline.events.ComplaintFiled", "reason": "MALFORMED",
        "error": "bad\ufffdbytes", "consumer_group": "g-intake",
    }
    decoded = codec.decode(codec.encode("DeadLetter", record))
    assert decoded.record == record


def test_dead_letter_record_survives_hostile_headers_and_long_topics() -> None:
    message = Msg("x" * 240, 0, 1, None, None, [("event-type", b"evil\x00type" * 100)])
    record = dead_letter_record(message, reason="MALFORMED", error="e" * 10_000,
                                consumer_group="g")
    codec.decode(codec.encode("DeadLetter", record))  # encodes, decodes
    assert record["value"] == b"" and record["key"] is None
    assert len(record["event_id"]) <= 128


@dataclass
class FakeFuture:
    error: BaseException | None = None

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


@dataclass
class FakeProducer:
    error: BaseException | None = None
    sent: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = field(
        default_factory=list)

    def send(self, topic: str, *, key: bytes | None, value: bytes,
             headers: list[tuple[str, bytes]]) -> FakeFuture:
        self.sent.append((topic, key, value, headers))
        return FakeFuture(self.error)

    def dead_letters(self) -> list[dict[str, Any]]:
        return [codec.decode(value).record for _, _, value, _ in self.sent]


def test_publisher_writes_to_the_dlq_topic_with_the_original_key() -> None:
    producer = FakeProducer()
    publisher = DeadLetterPublisher(producer, "t.hotline.dlq")
    message = Msg("t.hotline.intake", 0, 5, b"K", b"v", [("event-type", b"x.Y")])
    publisher.publish(message, reason="UNKNOWN_CASE", error="no case", consumer_group="g")
    (topic, key, value, headers), = producer.sent
    assert (topic, key) == ("t.hotline.dlq", b"K")
    assert ("event-type", b"hotline.events.DeadLetter") in headers
    assert ("original-event-type", b"x.Y") in headers
    assert codec.decode(value).record["reason"] == "UNKNOWN_CASE"


# --- one bridge, with fake Temporal, producer and consumer -------------------------------


def _message(name: str, offset: int = 0, partition: int = 0,
             topic: str = "t.hotline.unit-replies", **changes: Any) -> Msg:
    record = {**SAMPLES[name], **changes}
    return Msg(topic, partition, offset, str(record["complaint_id"]).encode(),
               codec.encode(name, record), codec.headers_for(name))  # type: ignore[arg-type]


def _bridge(client: FakeClient, producer: FakeProducer, name: str = "unit-replies",
            **kwargs: Any) -> TopicBridge:
    return TopicBridge(name=name, settings=SETTINGS, client=cast(Client, client),
                       producer=producer, stop=asyncio.Event(), **kwargs)


def _count(topic: str, record: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "hotline_bridge_messages_total", {"topic": topic, "record": record, "outcome": outcome})
    return value or 0.0


async def test_an_applied_reply_writes_nothing_to_the_dlq() -> None:
    producer = FakeProducer()
    bridge = _bridge(FakeClient(Ack(accepted=True)), producer)
    before = _count(UNIT_REPLIES, "DispatchSigned", APPLIED)
    assert await bridge.handle(_message("DispatchSigned")) == APPLIED
    assert producer.sent == []
    assert _count(UNIT_REPLIES, "DispatchSigned", APPLIED) == before + 1


async def test_a_refused_reply_is_dead_lettered_with_the_workflows_reason() -> None:
    producer = FakeProducer()
    bridge = _bridge(FakeClient(Ack(accepted=False, reason="STATE_NOT_ALLOWED",
                                    detail="case is DISPATCHED")), producer)
    message = _message("HandlingCompleted", offset=7, partition=2)
    assert await bridge.handle(message) == REFUSED
    (dead,) = producer.dead_letters()
    assert dead["reason"] == "STATE_NOT_ALLOWED" and dead["error"] == "case is DISPATCHED"
    assert dead["event_id"] == "dlq:t.hotline.unit-replies:2:7"
    assert dead["consumer_group"] == group_id(SETTINGS, "unit-replies") == "g-unit-replies"
    assert dead["value"] == message.value and dead["key"] == CID.encode()
    assert dead["event_type"] == "hotline.events.HandlingCompleted"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xc3\x01not avro at all", "UNKNOWN_SCHEMA"),  # "not avr" read as a fingerprint
        (b"\xc3\x01" + codec.fingerprint("DispatchSigned") + b"\xff\xff", "MALFORMED"),
        (b"{\"json\": true}", "MALFORMED"),
        (b"", "MALFORMED"),
        (b"\xc3\x01" + bytes(8) + b"\x00", "UNKNOWN_SCHEMA"),
    ],
)
async def test_undecodable_messages_are_dead_lettered(value: bytes, reason: str) -> None:
    client = FakeClient(Ack(accepted=True))
    producer = FakeProducer()
    bridge = _bridge(client, producer)
    assert await bridge.handle(Msg("t.hotline.unit-replies", 0, 3, b"junk", value)) == (
        DEAD_LETTERED)
    (dead,) = producer.dead_letters()
    assert dead["reason"] == reason and dead["key"] == b"junk" and dead["value"] == value
    assert client.calls == []


async def test_a_record_of_another_topic_is_dead_lettered_as_unexpected() -> None:
    client = FakeClient(Ack(accepted=True))
    producer = FakeProducer()
    bridge = _bridge(client, producer)
    assert await bridge.handle(_message("ComplaintFiled")) == DEAD_LETTERED
    assert producer.dead_letters()[0]["reason"] == UNEXPECTED_TYPE
    assert client.calls == []


async def test_unknown_and_closed_cases_are_dead_lettered() -> None:
    for error, reason in [
        (RPCError("workflow not found for ID: x", RPCStatusCode.NOT_FOUND, b""), UNKNOWN_CASE),
        (RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b""),
         CASE_CLOSED),
    ]:
        producer = FakeProducer()
        assert await _bridge(FakeClient(error), producer).handle(
            _message("DispatchSigned")) == DEAD_LETTERED
        assert producer.dead_letters()[0]["reason"] == reason


async def test_transient_failures_raise_and_write_no_dead_letter() -> None:
    producer = FakeProducer()
    bridge = _bridge(FakeClient(RPCError("down", RPCStatusCode.UNAVAILABLE, b"")), producer)
    with pytest.raises(TransientError):
        await bridge.handle(_message("DispatchSigned"))
    assert producer.sent == []


async def test_an_unacknowledged_dlq_write_is_transient() -> None:
    from kafka.errors import KafkaTimeoutError

    bridge = _bridge(FakeClient(), FakeProducer(KafkaTimeoutError("no ack")))
    with pytest.raises(TransientError):
        await bridge.handle(Msg("t.hotline.unit-replies", 0, 0, None, b"junk"))


@dataclass
class FakeConsumer:
    commits: list[dict[TopicPartition, OffsetAndMetadata]] = field(default_factory=list)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    commit_error: BaseException | None = None

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata],
               timeout_ms: int | None = None) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        self.commits.append(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


class ScriptedClient(FakeClient):
    """Answers per update by the event id: an exception to raise or an Ack."""

    def __init__(self, script: Callable[[str], object]) -> None:
        super().__init__()
        self.script = script

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        client = self

        class Handle(FakeHandle):
            async def execute_update(self, name: str, arg: object, **kwargs: Any) -> object:
                event_id = cast(Any, arg).event_id
                client.calls.append(("update", workflow_id, name, event_id))
                outcome = client.script(event_id)
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome

        return Handle(self, workflow_id)


async def test_a_batch_commits_each_partition_up_to_its_first_stuck_message() -> None:
    down = RPCError("down", RPCStatusCode.UNAVAILABLE, b"")
    client = ScriptedClient(lambda event_id: down if event_id == "p1-o11" else Ack(True))
    bridge = _bridge(client, FakeProducer(), retry_budget_s=0.0)
    tp0 = TopicPartition("t.hotline.unit-replies", 0)
    tp1 = TopicPartition("t.hotline.unit-replies", 1)
    batch = {
        tp0: [_message("DispatchSigned", o, 0, event_id=f"p0-o{o}") for o in (5, 6, 7)],
        tp1: [_message("DispatchSigned", o, 1, event_id=f"p1-o{o}") for o in (10, 11, 12)],
    }
    consumer = FakeConsumer()
    try:
        await bridge._process_batch(consumer, batch)
    finally:
        bridge._executor.shutdown()
    assert consumer.commits == [{tp0: OffsetAndMetadata(8, "", -1),
                                 tp1: OffsetAndMetadata(11, "", -1)}]
    assert consumer.seeks == [(tp1, 11)]  # fetched again from the stuck message
    # Per partition in order; nothing after the stuck message was tried.
    tried = [call[3] for call in client.calls]
    assert [e for e in tried if e.startswith("p0")] == ["p0-o5", "p0-o6", "p0-o7"]
    assert [e for e in tried if e.startswith("p1")] == ["p1-o10", "p1-o11"]


async def test_past_the_batch_budget_no_new_message_is_started() -> None:
    client = FakeClient(Ack(True))
    bridge = _bridge(client, FakeProducer(), batch_budget_s=-1.0)
    tp = TopicPartition("t.hotline.unit-replies", 0)
    consumer = FakeConsumer()
    try:
        await bridge._process_batch(consumer, {tp: [_message("DispatchSigned", 3)]})
    finally:
        bridge._executor.shutdown()
    assert client.calls == [] and consumer.commits == []
    assert consumer.seeks == [(tp, 3)]


async def test_a_transient_failure_is_retried_until_it_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    attempts: list[str] = []

    def script(event_id: str) -> object:
        attempts.append(event_id)
        if len(attempts) < 3:
            return RPCError("busy", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
        return Ack(True)

    bridge = _bridge(ScriptedClient(script), FakeProducer(), retry_budget_s=30.0)
    tp = TopicPartition("t.hotline.unit-replies", 0)
    consumer = FakeConsumer()
    monkeypatch.setattr(bridges, "backoff_delay", lambda attempt, **_: 0.01)
    try:
        await bridge._process_batch(consumer, {tp: [_message("DispatchSigned", 40)]})
    finally:
        bridge._executor.shutdown()
    assert len(attempts) == 3
    assert consumer.commits == [{tp: OffsetAndMetadata(41, "", -1)}]
    assert consumer.seeks == []


async def test_a_failed_commit_is_counted_not_fatal() -> None:
    from kafka.errors import CommitFailedError

    bridge = _bridge(FakeClient(Ack(True)), FakeProducer())
    tp = TopicPartition("t.hotline.unit-replies", 0)
    before = REGISTRY.get_sample_value(
        "hotline_bridge_commit_failures_total", {"topic": UNIT_REPLIES}) or 0.0
    try:
        await bridge._process_batch(FakeConsumer(commit_error=CommitFailedError("rebalance")),
                                    {tp: [_message("DispatchSigned", 1)]})
    finally:
        bridge._executor.shutdown()
    after = REGISTRY.get_sample_value(
        "hotline_bridge_commit_failures_total", {"topic": UNIT_REPLIES})
    assert after == before + 1


# --- logging ----------------------------------------------------------------------------


def test_personal_data_never_reaches_a_log_line() -> None:
    event = redact_personal_data(None, "info", {
        "event": "x", "caller_phone": "13800001111", "caller_name": "张先生",
        "error": "field caller_phone='13800001111' rejected", "offset": 13800001111,
        "complaint_id": CID,
    })
    assert "caller_phone" not in event and "caller_name" not in event
    assert "13800001111" not in event["error"]
    assert event["complaint_id"] == CID and event["offset"] == 13800001111


def test_stale_timestamps_still_route() -> None:
    """Routing does not judge time; the workflow does."""
    record = {**SAMPLES["DispatchSigned"], "at": AT - timedelta(days=400)}
    assert route(UNIT_REPLIES, "DispatchSigned", record).action == model.UPDATE_SIGN_FOR
