"""Kafka → Temporal bridges: intake, unit replies and callbacks into the case workflows.

One consumer (and consumer group) per inbound topic. Each message is decoded (Avro
single-object encoding), mapped by :data:`ROUTES` to a workflow start or update, applied,
and only then is its offset committed. What cannot be applied goes to the DLQ with a
reason; what fails for a passing reason (Temporal down, timeouts, Kafka write not acked)
is retried with capped exponential backoff and never committed past.

Concurrency: one asyncio task per topic, and each task owns its ``KafkaConsumer`` through
a private single-thread executor. kafka-python's consumer is blocking and not thread-safe,
so every call on a consumer (poll, commit, seek, close) runs on that one thread and never
blocks the event loop; ``asyncio.to_thread`` would hop between pool threads and share the
pool with other blocking work. The Temporal client is async and shared by all tasks, so
the partitions of a poll batch are applied concurrently (``asyncio.gather``). Within a
partition each key's messages (one case's, keyed by complaint id) are applied in order,
and up to ``HOTLINE_BRIDGE_KEYS_IN_FLIGHT`` cases side by side (:func:`apply_by_key`);
the next poll waits for the whole batch. With ``HOTLINE_BRIDGE_PIPELINES=true`` partitions
are independent pipelines instead (see :meth:`TopicBridge.run`): one slow update holds
only its own partition. A partition once stopped being fetched after its resume; that was
kafka-python's doing and is worked around (``workers.runtime.kafka_io.resume_partitions``). It is
off by default because the benchmark shows no throughput gain for more CPU per case.

Failure cases (what happens to the message, and whether its offset is committed):

============================================  ============================  ==========
case                                          action                        committed
============================================  ============================  ==========
undecodable / unknown schema / invalid        DLQ with the codec's reason   yes
record type not allowed on the topic          DLQ ``UNEXPECTED_TYPE``       yes
ComplaintFiled for an existing case           duplicate, nothing started    yes
update refused: ``Ack(accepted=False)``       DLQ ``ack.reason``            yes
update raised ``ApplicationError``            DLQ ``REJECTED``              yes
no such workflow                              DLQ ``UNKNOWN_CASE``          yes
workflow closed (before/while updating)       DLQ ``CASE_CLOSED``           yes
Temporal unavailable, timeout, overloaded     retry with backoff            no
DLQ write not acknowledged                    retry with backoff            no
commit fails (rebalance)                      counted; redelivered later    —
============================================  ============================  ==========
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Histogram
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from schemas.codec import DecodeError, decode
from workers.runtime.kafka_io import (
    DeadLetterPublisher,
    SourceMessage,
    group_id,
    make_consumer,
    make_producer,
    resume_partitions,
)
from workers.runtime.metrics_exporter import ConsumerLagReporter
from workers.runtime.observability import configure_logging, start_metrics_server, temporal_runtime
from workers.runtime.security import temporal_connect_options
from workers.runtime.settings import Settings, get_settings
from workers.runtime.temporal import connect_temporal
from workflows.governance import (
    UPDATE_REPORT_TASK,
    PlanStatus,
    TaskReport,
)
from workflows.ids import complaint_workflow_id, plan_workflow_id
from workflows.model import (
    UPDATE_CALLBACK,
    UPDATE_COMPLETE,
    UPDATE_REPORT_PROGRESS,
    UPDATE_REQUEST_EXTENSION,
    UPDATE_RETURN_DISPATCH,
    UPDATE_SIGN_FOR,
    UPDATE_SUPPLEMENT,
    UPDATE_URGE,
    UPDATE_WHISTLE,
    UPDATE_WITHDRAW,
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

log = structlog.get_logger("hotline.bridges")

WORKFLOW_TYPE = "ComplaintWorkflow"

# Contract topic names (unprefixed); also the ``topic`` metric label, so dashboards do
# not depend on a deployment's prefix.
INTAKE = "hotline.intake"
UNIT_REPLIES = "hotline.unit-replies"
CALLBACKS = "hotline.callbacks"

# --- metrics ----------------------------------------------------------------------------

MESSAGES = Counter(
    "hotline_bridge_messages_total",
    "Inbound messages by outcome: applied, duplicate, refused (the case said no, "
    "dead-lettered) or dead_lettered (undecodable, unroutable, unknown or closed case).",
    ["topic", "record", "outcome"],
)
DLQ_MESSAGES = Counter(
    "hotline_dlq_messages_total", "Messages written to the DLQ, by reason.", ["reason"]
)
APPLY_SECONDS = Histogram(
    "hotline_bridge_apply_seconds",
    "Time to handle one message once (decode, Temporal call, DLQ write).",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
COMMIT_FAILURES = Counter(
    "hotline_bridge_commit_failures_total",
    "Offset commits that failed (the messages will be redelivered).",
    ["topic"],
)
TRANSIENT_ERRORS = Counter(
    "hotline_bridge_transient_errors_total",
    "Attempts that failed for a passing reason and will be retried.",
    ["topic"],
)

# --- outcomes and reasons ---------------------------------------------------------------

APPLIED = "applied"
DUPLICATE = "duplicate"
REFUSED = "refused"
DEAD_LETTERED = "dead_lettered"
TRANSIENT = "transient"  # never counted as an outcome: the message is retried

UNEXPECTED_TYPE = "UNEXPECTED_TYPE"
INVALID_RECORD = "INVALID_RECORD"
MALFORMED = "MALFORMED"
UNKNOWN_CASE = "UNKNOWN_CASE"
CASE_CLOSED = "CASE_CLOSED"
REJECTED = "REJECTED"
REFUSED_REASON = "REFUSED"  # an Ack(accepted=False) that named no reason

# --- the mapping table ------------------------------------------------------------------

START = "start"  # Route.action for the record that starts a case

_D = TypeVar("_D")


def _from_record(cls: type[_D]) -> Callable[[Mapping[str, Any]], _D]:
    """Builder that fills dataclass ``cls`` from the Avro fields of the same name.

    Fields absent from the record keep their defaults; a required field that is absent
    raises ``TypeError``. Lists are copied, so the dataclass never shares the decoder's.
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]

    def build(record: Mapping[str, Any]) -> _D:
        kwargs = {}
        for name in names:
            if name in record:
                value = record[name]
                kwargs[name] = list(value) if isinstance(value, list) else value
        return cls(**kwargs)

    build.__name__ = f"build_{cls.__name__}"
    return build


@dataclass(frozen=True)
class Route:
    """What a record becomes: ``action`` (``START`` or an update name) and its argument.

    Case records name their case by ``complaint_id``; a governance plan's task report
    names its plan by ``plan_id`` (``id_field``) and reaches the plan's workflow, whose
    update answers with a status rather than an :class:`Ack` (``result_type``).
    """

    action: str
    build: Callable[[Mapping[str, Any]], object]
    id_field: str = "complaint_id"
    workflow_id: Callable[[str], str] = complaint_workflow_id
    result_type: type = Ack


# Record name (short) → action and builder. The only place an Avro record meets the
# workflow interface; tests/test_bridge_mapping.py covers every row.
ROUTES: dict[str, Route] = {
    "ComplaintFiled": Route(START, _from_record(Filing)),
    "ComplaintSupplemented": Route(UPDATE_SUPPLEMENT, _from_record(Supplement)),
    "ComplaintUrged": Route(UPDATE_URGE, _from_record(Urge)),
    "ComplaintWithdrawn": Route(UPDATE_WITHDRAW, _from_record(Withdraw)),
    "DispatchSigned": Route(UPDATE_SIGN_FOR, _from_record(SignFor)),
    "DispatchReturned": Route(UPDATE_RETURN_DISPATCH, _from_record(ReturnDispatch)),
    "ProgressReported": Route(UPDATE_REPORT_PROGRESS, _from_record(ReportProgress)),
    "ExtensionRequested": Route(UPDATE_REQUEST_EXTENSION, _from_record(RequestExtension)),
    "HandlingCompleted": Route(UPDATE_COMPLETE, _from_record(Complete)),
    "UnitsWhistled": Route(UPDATE_WHISTLE, _from_record(Whistle)),
    "CallbackResult": Route(UPDATE_CALLBACK, _from_record(CallbackAnswer)),
    "PlanTaskReported": Route(UPDATE_REPORT_TASK, _from_record(TaskReport),
                              id_field="plan_id", workflow_id=plan_workflow_id,
                              result_type=PlanStatus),
}

# Which records each inbound topic may carry (DESIGN.md, "The event contract").
TOPIC_RECORDS: dict[str, frozenset[str]] = {
    INTAKE: frozenset(
        {"ComplaintFiled", "ComplaintSupplemented", "ComplaintUrged", "ComplaintWithdrawn"}
    ),
    UNIT_REPLIES: frozenset(
        {
            "DispatchSigned",
            "DispatchReturned",
            "ProgressReported",
            "ExtensionRequested",
            "HandlingCompleted",
            "UnitsWhistled",
            "PlanTaskReported",
        }
    ),
    CALLBACKS: frozenset({"CallbackResult"}),
}

# Consumer name (group suffix) → contract topic.
BRIDGES: dict[str, str] = {
    "intake": INTAKE,
    "unit-replies": UNIT_REPLIES,
    "callbacks": CALLBACKS,
}


@dataclass(frozen=True)
class Command:
    """One routed inbound event: what to do to which case (or governance plan).

    ``complaint_id`` is the id the record is keyed by: the complaint's, or for a plan's
    task report the plan's (``workflow_id`` then names the plan's workflow).
    """

    record: str
    complaint_id: str
    event_id: str
    action: str
    arg: object
    workflow_id: str = ""
    result_type: type = Ack

    def __post_init__(self) -> None:
        if not self.workflow_id:
            object.__setattr__(self, "workflow_id", complaint_workflow_id(self.complaint_id))


class Unroutable(Exception):
    """A decoded record that cannot become a command; ``reason`` is the DLQ reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def route(topic: str, record_name: str, record: Mapping[str, Any]) -> Command:
    """Map a decoded record on contract topic ``topic`` to a :class:`Command`.

    Raises:
        Unroutable: ``UNEXPECTED_TYPE`` if the record does not belong on the topic,
            ``INVALID_RECORD`` if it lacks ids or does not fit the dataclass.
    """
    allowed = TOPIC_RECORDS.get(topic, frozenset())
    if record_name not in allowed or record_name not in ROUTES:
        raise Unroutable(
            UNEXPECTED_TYPE,
            f"{record_name} is not accepted on {topic} (expected one of {sorted(allowed)})",
        )
    entry = ROUTES[record_name]
    complaint_id = record.get(entry.id_field)
    event_id = record.get("event_id")
    if not isinstance(complaint_id, str) or not complaint_id.strip():
        raise Unroutable(INVALID_RECORD, f"{record_name} has no {entry.id_field}")
    if not isinstance(event_id, str) or not event_id.strip():
        raise Unroutable(INVALID_RECORD, f"{record_name} has no event_id")
    try:
        arg = entry.build(record)
    except (TypeError, ValueError, KeyError) as exc:
        raise Unroutable(INVALID_RECORD, f"{record_name}: {exc}") from exc
    return Command(
        record=record_name,
        complaint_id=complaint_id,
        event_id=event_id,
        action=entry.action,
        arg=arg,
        workflow_id=entry.workflow_id(complaint_id),
        result_type=entry.result_type,
    )


# --- classifying Temporal answers -------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What became of one attempt: an outcome and, for the DLQ, a reason and detail."""

    outcome: str
    reason: str = ""
    detail: str = ""

    @property
    def dead_letter(self) -> bool:
        return self.outcome in (REFUSED, DEAD_LETTERED)


def verdict_for_ack(ack: Ack) -> Verdict:
    """An update's answer: applied, a duplicate, or refused with the workflow's reason."""
    if ack.accepted:
        return Verdict(DUPLICATE if ack.duplicate else APPLIED)
    return Verdict(REFUSED, ack.reason or REFUSED_REASON, ack.detail)


# Server messages for a closed run (Temporal server 1.32, checked against the dev server):
#   update on a completed/terminated run: NOT_FOUND "workflow execution already completed"
#   update admitted, run closed before it was accepted:
#       NOT_FOUND "workflow update was aborted by closing workflow"
#   update accepted, run closed before it completed: the update fails with
#       ApplicationError type "AcceptedUpdateCompletedWorkflow".
# Specific phrases only: a bare "closed" would also match "connection closed".
_CLOSED_MARKERS = (
    "execution already completed",
    "aborted by closing workflow",
    "workflow is closing",
    "workflow is closed",
    "workflow execution is closed",
)
_CLOSED_UPDATE_FAILURE = "AcceptedUpdateCompletedWorkflow"

# Passing conditions: the server or the network will recover, or an operator will fix the
# deployment (credentials, namespace) without the message changing. Retried, never DLQ'd.
_TRANSIENT_STATUS = frozenset(
    {
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.PERMISSION_DENIED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        # FAILED_PRECONDITION covers namespace-not-active (failover) and similar states.
        RPCStatusCode.FAILED_PRECONDITION,
        RPCStatusCode.ABORTED,
        RPCStatusCode.INTERNAL,
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DATA_LOSS,
        RPCStatusCode.UNAUTHENTICATED,
    }
)


def _is_namespace_not_found(err: RPCError) -> bool:
    try:
        type_urls = [d.type_url for d in err.grpc_status.details]
    except Exception:  # raw status bytes that do not parse
        type_urls = []
    if any(url.endswith("NamespaceNotFoundFailure") for url in type_urls):
        return True
    message = err.message.lower()
    return message.startswith("namespace ") and "not found" in message


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApplicationError):
        return f"{exc.type}: {exc.message}" if exc.type else exc.message
    return f"{type(exc).__name__}: {exc}"


def classify_error(exc: BaseException) -> Verdict:
    """Sort an exception from ``start_workflow`` / ``execute_update`` into an outcome.

    Returns:
        ``DUPLICATE`` for an already-started case; ``DEAD_LETTERED`` with
        ``UNKNOWN_CASE`` / ``CASE_CLOSED``; ``REFUSED`` with ``REJECTED`` when the update
        handler or validator raised, or the request can never succeed; ``TRANSIENT``
        for everything that may pass (including errors this function does not know:
        retrying an unknown error is safer than dropping a citizen's event).
    """
    if isinstance(exc, WorkflowAlreadyStartedError):
        return Verdict(DUPLICATE, detail=_describe(exc))
    if isinstance(exc, WorkflowUpdateFailedError):
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == _CLOSED_UPDATE_FAILURE:
            return Verdict(DEAD_LETTERED, CASE_CLOSED, cause.message)
        return Verdict(REFUSED, REJECTED, _describe(cause))
    if isinstance(exc, ApplicationError):
        return Verdict(REFUSED, REJECTED, _describe(exc))
    if isinstance(exc, RPCTimeoutOrCancelledError):
        return Verdict(TRANSIENT, detail=_describe(exc))
    if isinstance(exc, RPCError):
        detail = f"{exc.status.name}: {exc.message}"
        message = exc.message.lower()
        if exc.status in (
            RPCStatusCode.NOT_FOUND,
            RPCStatusCode.ABORTED,
            RPCStatusCode.FAILED_PRECONDITION,
        ) and any(marker in message for marker in _CLOSED_MARKERS):
            return Verdict(DEAD_LETTERED, CASE_CLOSED, detail)
        if exc.status == RPCStatusCode.NOT_FOUND:
            # A missing namespace is a deployment error, not a missing case: dead-lettering
            # would empty the topic into the DLQ.
            if _is_namespace_not_found(exc):
                return Verdict(TRANSIENT, detail=detail)
            return Verdict(DEAD_LETTERED, UNKNOWN_CASE, detail)
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return Verdict(DUPLICATE, detail=detail)
        if exc.status in _TRANSIENT_STATUS:
            return Verdict(TRANSIENT, detail=detail)
        # INVALID_ARGUMENT, OUT_OF_RANGE, UNIMPLEMENTED: this request will never pass.
        return Verdict(REFUSED, REJECTED, detail)
    return Verdict(TRANSIENT, detail=_describe(exc))


# --- applying a command -----------------------------------------------------------------

START_RPC_TIMEOUT = timedelta(seconds=10)
# An update waits for the workflow to handle it; with no worker polling it would wait for
# ever. Past this the attempt counts as transient, and the retry (same update id) picks up
# the outcome of the update the server still holds.
UPDATE_RPC_TIMEOUT = timedelta(seconds=20)
# Outer bound on one attempt, in case the SDK's polling loop outlives the RPC timeout.
ATTEMPT_TIMEOUT_S = 40.0


def update_id_for(command: Command, message: SourceMessage) -> str:
    """Temporal update id: the event id plus where it was read.

    The server de-duplicates updates by id within a run, so a retry after a timeout, or a
    redelivery after a failed commit, gets the first attempt's answer. The Kafka position
    is part of the id so that a message re-driven from the DLQ (new offset) reaches the
    handler again, and a recreated topic can never make two events share an id.
    """
    return f"{command.event_id}@{message.topic}:{message.partition}:{message.offset}"


async def _running_again(handle: WorkflowHandle[Any, Any]) -> bool:
    """True when the workflow id has a running run now (after a continue-as-new)."""
    try:
        description = await handle.describe(rpc_timeout=START_RPC_TIMEOUT)
    except Exception:
        return False
    return description.status == WorkflowExecutionStatus.RUNNING


async def apply_command(
    client: Client, settings: Settings, command: Command, *, update_id: str | None = None
) -> Verdict:
    """Start the case or run the update; never raises, the verdict says what happened."""
    try:
        if command.action == START:
            # Start, not signal-with-start: a repeated signal-with-start re-delivers a
            # signal to a running case. REJECT_DUPLICATE + FAIL: a duplicate ComplaintFiled
            # never makes a second run, even after the case closed.
            await asyncio.wait_for(
                client.start_workflow(
                    WORKFLOW_TYPE,
                    command.arg,
                    id=command.workflow_id,
                    task_queue=settings.task_queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    rpc_timeout=START_RPC_TIMEOUT,
                ),
                ATTEMPT_TIMEOUT_S,
            )
            return Verdict(APPLIED)
        handle = client.get_workflow_handle(command.workflow_id)
        ack = await asyncio.wait_for(
            handle.execute_update(
                command.action,
                command.arg,
                id=update_id,
                result_type=command.result_type,
                rpc_timeout=UPDATE_RPC_TIMEOUT,
            ),
            ATTEMPT_TIMEOUT_S,
        )
    except Exception as exc:
        verdict = classify_error(exc)
        if verdict.reason == CASE_CLOSED and await _running_again(handle):
            # The run closed by continuing as new: the case lives on in a new run, which
            # takes the update on retry (it de-duplicates by event id).
            return Verdict(TRANSIENT, detail=f"continued as new: {verdict.detail}")
        return verdict
    if not isinstance(ack, command.result_type):
        return Verdict(TRANSIENT, detail=f"unexpected update result {type(ack).__name__}")
    # Only case updates answer with an Ack; a plan refuses by failing the update instead.
    return verdict_for_ack(ack) if isinstance(ack, Ack) else Verdict(APPLIED)


# --- the consumer loop ------------------------------------------------------------------


class TransientError(Exception):
    """An attempt failed for a passing reason; the message is retried, not committed."""


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Capped exponential backoff with ±20 % jitter; ``attempt`` counts from 1."""
    raw = min(cap, base * 2 ** max(0, attempt - 1))
    return min(cap, raw * random.uniform(0.8, 1.2))


class _AssignmentListener(ConsumerRebalanceListener):
    """Notes the first assignment (runs on kafka-python's IO thread: only sets a flag)."""

    def __init__(self, bridge: str) -> None:
        self.assigned = threading.Event()
        self._bridge = bridge

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("partitions revoked", bridge=self._bridge, partitions=_tps(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned", bridge=self._bridge, partitions=_tps(assigned))
        self.assigned.set()


def _tps(tps: Any) -> list[str]:
    return [f"{tp.topic}:{tp.partition}" for tp in sorted(tps or ())]


def _key_text(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", errors="replace")[:200]


_T = TypeVar("_T")


async def apply_by_key(
    messages: Sequence[Any], apply: Callable[[Any], Awaitable[bool]], lanes: int
) -> tuple[int | None, int | None]:
    """Apply a partition's messages in order per key, up to ``lanes`` keys side by side.

    A key is one case (or plan): its records must be applied in the order they were sent,
    but different cases do not wait for each other. Each update waits for the workflow
    (and often an activity), so one-at-a-time capped a bridge at a few updates in flight
    per partition whatever the load.

    ``apply`` returns ``False`` for a message it could not apply (stop, budget spent):
    that key stops there, the others go on.

    Returns:
        ``(next_offset, stalled_at)``: one past the longest run of applied messages from
        the start (``None`` if the first was not applied), and the first message not
        applied (``None`` if all were). Messages after ``stalled_at`` that were applied
        are fetched again and dropped as duplicates by event id.
    """
    by_key: dict[bytes | None, list[Any]] = {}
    for message in messages:
        by_key.setdefault(message.key, []).append(message)
    applied: set[int] = set()
    gate = asyncio.Semaphore(max(1, lanes))

    async def lane(queue: list[Any]) -> None:
        async with gate:
            for message in queue:
                if not await apply(message):
                    return
                applied.add(message.offset)

    await asyncio.gather(*(lane(queue) for queue in by_key.values()))
    next_offset: int | None = None
    for message in messages:
        if message.offset not in applied:
            return next_offset, message.offset
        next_offset = message.offset + 1
    return next_offset, None


class TopicBridge:
    """Consumes one inbound topic into Temporal; see the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        settings: Settings,
        client: Client,
        producer: KafkaProducer,
        stop: asyncio.Event,
        retry_budget_s: float = 60.0,
        batch_budget_s: float = 120.0,
        poll_timeout_ms: int = 500,
        consumer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.contract_topic = BRIDGES[name]
        self.topic = settings.topic(self.contract_topic)
        self.group = group_id(settings, name)
        self.ready = asyncio.Event()
        self._settings = settings
        self._client = client
        self._stop = stop
        self._dlq = DeadLetterPublisher(producer, settings.topic_dlq)
        self._retry_budget_s = retry_budget_s
        self._batch_budget_s = batch_budget_s
        self._poll_timeout_ms = poll_timeout_ms
        self._consumer_overrides = dict(consumer_overrides or {})
        self._listener = _AssignmentListener(name)
        self._lag = ConsumerLagReporter(self.contract_topic)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"kafka-{name}")
        self._consumer: KafkaConsumer | None = None
        # Partition → the task applying its current chunk (the partition is paused).
        self._chunks: dict[TopicPartition, asyncio.Task[tuple[int | None, int | None]]] = {}
        # Consecutive transient failures per message; survives a re-poll so the backoff
        # keeps growing while Temporal is down.
        self._attempts: dict[tuple[TopicPartition, int], int] = {}
        self._log = log.bind(bridge=name, topic=self.topic, group=self.group)

    async def _on_thread(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a blocking call on this bridge's consumer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    async def _sleep(self, seconds: float) -> None:
        """Sleep, waking early when stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def run(self) -> None:
        """Consume until ``stop`` is set, then finish the chunks in flight, commit, close.

        By default each poll batch is applied whole before the next poll. With
        ``bridge_pipelines`` partitions are independent pipelines: the chunk of a poll
        for one partition is applied by its own task while that partition is paused,
        and the loop goes on polling the others. A finished chunk's offsets are
        committed on the loop's next turn (one commit for every chunk that finished
        meanwhile), then its partition is resumed, fetching again from its first
        unapplied message if it stalled. So one slow update holds its own partition
        only, each partition keeps its order, and an
        offset is committed only after its message's effect.
        """
        try:
            consumer = await self._connect()
            if consumer is None:
                return
            self._consumer = consumer
            while not self._stop.is_set():
                batch = await self._poll(consumer)
                if self._listener.assigned.is_set() and not self.ready.is_set():
                    self.ready.set()
                if not self._settings.bridge_pipelines:
                    if batch:
                        await self._process_batch(consumer, batch)
                elif batch:
                    await self._start_chunks(consumer, batch)
                await self._finish_chunks(consumer)
                # After processing: the position is the next message to apply.
                await self._on_thread(self._lag.report, consumer)
            if self._chunks:
                await asyncio.gather(*self._chunks.values(), return_exceptions=True)
                await self._finish_chunks(consumer)
        finally:
            for task in self._chunks.values():
                task.cancel()
            if self._consumer is not None:
                try:
                    await self._on_thread(self._consumer.close, autocommit=False)
                except Exception as exc:
                    self._log.warning("consumer close failed", error=_describe(exc))
            self._executor.shutdown(wait=True)
            self._log.info("bridge stopped")

    async def _start_chunks(
        self, consumer: KafkaConsumer, batch: Mapping[TopicPartition, Sequence[Any]]
    ) -> None:
        """Pause each polled partition and apply its messages in a task of its own."""
        tps = list(batch)
        await self._on_thread(consumer.pause, *tps)
        deadline = time.monotonic() + self._batch_budget_s
        for tp in tps:
            # A partition revoked and assigned back while a chunk of it still runs:
            # the new chunk waits for the old one, so the partition stays in order.
            previous = self._chunks.get(tp)
            self._chunks[tp] = asyncio.create_task(
                self._chained(previous, tp, batch[tp], deadline),
                name=f"bridge-{self.name}-{tp.partition}",
            )

    async def _chained(
        self, previous: asyncio.Task[tuple[int | None, int | None]] | None,
        tp: TopicPartition, messages: Sequence[Any], deadline: float,
    ) -> tuple[int | None, int | None]:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        return await self._process_partition(tp, messages, deadline)

    async def _finish_chunks(self, consumer: KafkaConsumer) -> None:
        """Commit the chunks that finished, then resume (and rewind) their partitions."""
        done = {tp: task for tp, task in self._chunks.items() if task.done()}
        if not done:
            return
        for tp in done:
            del self._chunks[tp]
        results: dict[TopicPartition, tuple[int | None, int | None]] = {}
        for tp, task in done.items():
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                raise exc  # a bug in a bridge: run_bridges stops the others
            results[tp] = task.result()
        await self._commit_and_rewind(consumer, results)
        if not self._stop.is_set():
            await self._on_thread(self._resume, consumer, list(done))

    def _resume(self, consumer: KafkaConsumer, tps: list[TopicPartition]) -> None:
        assigned = consumer.assignment()
        # A partition lost in a rebalance meanwhile is no longer ours to resume.
        mine = [tp for tp in tps if tp in assigned]
        if mine:
            resume_partitions(consumer, mine)

    async def _connect(self) -> KafkaConsumer | None:
        attempt = 0
        while not self._stop.is_set():
            try:
                return await self._on_thread(
                    make_consumer,
                    self._settings,
                    [self.topic],
                    self.group,
                    listener=self._listener,
                    **self._consumer_overrides,
                )
            except Exception as exc:
                attempt += 1
                delay = backoff_delay(attempt, cap=10.0)
                self._log.warning(
                    "kafka consumer not connected, retrying",
                    error=_describe(exc),
                    retry_in_s=round(delay, 2),
                )
                await self._sleep(delay)
        return None

    async def _poll(self, consumer: KafkaConsumer) -> dict[TopicPartition, list[Any]]:
        try:
            # While chunks run, poll briefly: their commits and their partitions' next
            # messages wait for this loop's next turn. 100 ms, not less: at 20 ms the
            # idle polling tripled the bridges' CPU per case (bench/e2e.py).
            timeout = min(self._poll_timeout_ms, 100) if self._chunks else self._poll_timeout_ms
            batch: dict[TopicPartition, list[Any]] = await self._on_thread(
                consumer.poll, timeout_ms=timeout
            )
            return batch
        except Exception as exc:  # broker away, corrupt batch: log, wait, poll again
            self._log.warning("poll failed", error=_describe(exc))
            await self._sleep(1.0)
            return {}

    async def _process_batch(
        self, consumer: KafkaConsumer, batch: Mapping[TopicPartition, Sequence[Any]]
    ) -> None:
        """Apply a whole batch and commit it (the pipelines' steps, waited for at once)."""
        tps = list(batch)
        deadline = time.monotonic() + self._batch_budget_s
        results = await asyncio.gather(
            *(self._process_partition(tp, batch[tp], deadline) for tp in tps)
        )
        await self._commit_and_rewind(consumer, dict(zip(tps, results, strict=True)))

    async def _commit_and_rewind(
        self, consumer: KafkaConsumer,
        results: Mapping[TopicPartition, tuple[int | None, int | None]],
    ) -> None:
        # A chunk must end well inside max_poll_interval_ms (300 s) no longer: the loop
        # polls on. The budget still bounds how long one chunk holds its partition.
        offsets = {
            tp: OffsetAndMetadata(next_offset, "", -1)
            for tp, (next_offset, _) in results.items()
            if next_offset is not None
        }
        if offsets:
            await self._commit(consumer, offsets)
        if self._stop.is_set():
            return
        for tp, (_, stalled_at) in results.items():
            if stalled_at is None:
                continue
            # Fetch again from the message that could not be applied: nothing after it
            # on this partition is committed or skipped.
            try:
                await self._on_thread(consumer.seek, tp, stalled_at)
            except Exception as exc:  # partition lost in a rebalance meanwhile
                self._log.warning(
                    "seek failed", partition=tp.partition, offset=stalled_at,
                    error=_describe(exc),
                )

    async def _commit(
        self, consumer: KafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        try:
            await self._on_thread(consumer.commit, offsets, timeout_ms=15_000)
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions (or the coordinator is away): the messages
            # are redelivered and the workflow handlers drop them by event_id.
            COMMIT_FAILURES.labels(self.contract_topic).inc()
            self._log.warning(
                "commit failed; messages will be redelivered",
                offsets={f"{tp.topic}:{tp.partition}": om.offset for tp, om in offsets.items()},
                error=_describe(exc),
            )

    async def _process_partition(
        self, tp: TopicPartition, messages: Sequence[Any], deadline: float
    ) -> tuple[int | None, int | None]:
        """Apply one partition's messages, each case's in order, until done or past ``deadline``.

        Returns:
            ``(offset to commit or None, offset to fetch again or None)``.
        """

        async def apply(message: Any) -> bool:
            if time.monotonic() > deadline:
                return False
            return await self._handle_with_retry(tp, message)

        return await apply_by_key(messages, apply, self._settings.bridge_keys_in_flight)

    async def _handle_with_retry(self, tp: TopicPartition, message: Any) -> bool:
        """Handle until done; ``False`` when stop is requested or the budget is spent."""
        deadline = time.monotonic() + self._retry_budget_s
        while True:
            try:
                await self.handle(message)
            except TransientError as exc:
                TRANSIENT_ERRORS.labels(self.contract_topic).inc()
                key = (tp, message.offset)
                attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
                delay = backoff_delay(attempt)
                self._log.warning(
                    "transient failure, will retry",
                    partition=message.partition,
                    offset=message.offset,
                    attempt=attempt,
                    retry_in_s=round(delay, 2),
                    error=str(exc),
                )
                if self._stop.is_set() or time.monotonic() + delay > deadline:
                    return False
                await self._sleep(delay)
            else:
                self._attempts.pop((tp, message.offset), None)
                return True

    async def handle(self, message: Any) -> str:
        """Decode, route and apply one message, dead-lettering what cannot be applied.

        Returns:
            The outcome (applied, duplicate, refused, dead_lettered).

        Raises:
            TransientError: Try again later; do not commit this offset.
        """
        started = time.perf_counter()
        mlog = self._log.bind(
            partition=message.partition, offset=message.offset, key=_key_text(message.key)
        )
        record_name = "unknown"
        try:
            verdict, record_name, mlog = await self._decide(message, mlog)
            if verdict.outcome == TRANSIENT:
                raise TransientError(verdict.detail)
            if verdict.dead_letter:
                await self._dead_letter(message, verdict, mlog)
            elif verdict.outcome == DUPLICATE:
                mlog.info("duplicate", record=record_name, detail=verdict.detail or None)
            else:
                mlog.info("applied", record=record_name)
            MESSAGES.labels(self.contract_topic, record_name, verdict.outcome).inc()
            return verdict.outcome
        finally:
            APPLY_SECONDS.labels(self.contract_topic).observe(time.perf_counter() - started)

    async def _decide(self, message: Any, mlog: Any) -> tuple[Verdict, str, Any]:
        if not message.value:
            return Verdict(DEAD_LETTERED, MALFORMED, "empty message value"), "unknown", mlog
        try:
            decoded = decode(message.value)
        except DecodeError as exc:
            return Verdict(DEAD_LETTERED, exc.reason, exc.detail), "unknown", mlog
        except Exception as exc:  # the codec should wrap everything; never trust it to
            return Verdict(DEAD_LETTERED, MALFORMED, _describe(exc)), "unknown", mlog
        name = decoded.name
        complaint_id = decoded.record.get("complaint_id")
        mlog = mlog.bind(record=name, complaint_id=complaint_id,
                         plan_id=decoded.record.get("plan_id"))
        try:
            command = route(self.contract_topic, name, decoded.record)
        except Unroutable as exc:
            # ``name`` is a contract record (the codec knows it): bounded label values.
            return Verdict(DEAD_LETTERED, exc.reason, exc.detail), name, mlog
        mlog = mlog.bind(event_id=command.event_id, workflow_id=command.workflow_id)
        if message.key is not None and _key_text(message.key) != command.complaint_id:
            # Per-case order relies on key = complaint_id (plan_id for a plan's reports);
            # apply anyway, but say so.
            mlog.warning("message key differs from the record's id")
        verdict = await apply_command(
            self._client, self._settings, command, update_id=update_id_for(command, message)
        )
        return verdict, name, mlog

    async def _dead_letter(self, message: Any, verdict: Verdict, mlog: Any) -> None:
        try:
            await self._on_thread(
                self._dlq.publish,
                message,
                reason=verdict.reason,
                error=verdict.detail,
                consumer_group=self.group,
            )
        except Exception as exc:
            raise TransientError(f"DLQ write not acknowledged: {_describe(exc)}") from exc
        DLQ_MESSAGES.labels(verdict.reason).inc()
        mlog.warning("dead-lettered", reason=verdict.reason, error=verdict.detail)


# --- process ----------------------------------------------------------------------------


_C = TypeVar("_C")


async def _until_connected(connect: Callable[[], Awaitable[_C]], stop: asyncio.Event,
                           what: str, **where: str) -> _C | None:
    """``connect()`` again with backoff until it succeeds; None once ``stop`` is set."""
    attempt = 0
    while not stop.is_set():
        try:
            return await connect()
        except Exception as exc:
            attempt += 1
            delay = backoff_delay(attempt, cap=10.0)
            log.warning(f"{what} not connected, retrying", **where, error=_describe(exc),
                        retry_in_s=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    return None


async def _connect_temporal(settings: Settings, stop: asyncio.Event) -> Client | None:
    temporal_connect_options(settings)  # outside the retry: a bad setting stops here
    return await _until_connected(
        lambda: connect_temporal(settings, runtime=temporal_runtime(), timeout=None),
        stop, "temporal", address=settings.temporal_address)


async def _connect_producer(settings: Settings, stop: asyncio.Event) -> KafkaProducer | None:
    return await _until_connected(
        lambda: asyncio.to_thread(make_producer, settings, client_id="hotline-bridges"),
        stop, "kafka producer", bootstrap=settings.kafka_bootstrap)


async def _announce_ready(
    bridges: Sequence[TopicBridge], ready: asyncio.Event | None
) -> None:
    await asyncio.gather(*(b.ready.wait() for b in bridges))
    log.info(
        "bridges ready",
        topics=[b.topic for b in bridges],
        groups=[b.group for b in bridges],
    )
    if ready is not None:
        ready.set()


async def run_bridges(
    settings: Settings,
    stop: asyncio.Event,
    *,
    ready: asyncio.Event | None = None,
    retry_budget_s: float = 60.0,
) -> None:
    """Run the three bridges until ``stop`` is set.

    Logs ``bridges ready`` (and sets ``ready``) once every consumer has joined its group
    and received its assignment. On stop, each bridge finishes its in-flight batch,
    commits and closes; then the DLQ producer is flushed and closed.

    Args:
        settings: Process settings (addresses, topic prefix, group prefix, task queue).
        stop: Set it to stop.
        ready: Optional event set together with the ``bridges ready`` line.
        retry_budget_s: How long one batch retries a transient failure before it goes
            back to polling (and fetches the message again).

    Raises:
        Exception: Only a bug in a bridge loop; the other bridges are stopped first.
    """
    client = await _connect_temporal(settings, stop)
    if client is None:
        return
    producer = await _connect_producer(settings, stop)
    if producer is None:
        return
    bridges = [
        TopicBridge(
            name=name,
            settings=settings,
            client=client,
            producer=producer,
            stop=stop,
            retry_budget_s=retry_budget_s,
        )
        for name in BRIDGES
    ]
    tasks = [asyncio.create_task(b.run(), name=f"bridge-{b.name}") for b in bridges]
    announcer = asyncio.create_task(_announce_ready(bridges, ready))
    log.info(
        "bridges starting",
        topics=[b.topic for b in bridges],
        dlq=settings.topic_dlq,
        temporal=settings.temporal_address,
        namespace=settings.temporal_namespace,
    )
    failure: BaseException | None = None
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                failure = task.exception()
                log.error(
                    "bridge failed; stopping the others",
                    bridge=task.get_name(),
                    exc_info=failure,
                )
                break
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        announcer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await announcer
        await asyncio.to_thread(_close_producer, producer)
        # temporalio's Client has no close(); dropping the reference releases the
        # connection before the loop ends.
        del client
        log.info("bridges stopped")
    if failure is not None:
        raise failure


def _close_producer(producer: KafkaProducer) -> None:
    try:
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=10)


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_bridges(settings, stop)


def main() -> None:
    """Entry point of ``hotline bridges``: serve until SIGTERM/SIGINT, then exit 0."""
    settings = get_settings()
    configure_logging(settings)
    metrics = start_metrics_server(settings.bridge_metrics_port)
    if metrics is not None:
        log.info("metrics served", port=metrics.port)
    try:
        asyncio.run(_serve(settings))
    finally:
        if metrics is not None:
            metrics.close()
