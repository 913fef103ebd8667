"""One bridge: the consumer loop of one inbound topic into Temporal.

One consumer (and consumer group) per inbound topic. Each message is decoded (Avro
single-object encoding), mapped by :data:`~workers.bridges.routes.ROUTES` to a workflow
start or update, applied, and only then is its offset committed. What cannot be applied
goes to the DLQ with a reason; what fails for a passing reason (Temporal down, timeouts,
Kafka write not acked) is retried with capped exponential backoff and never committed
past.

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
schema registry did not answer (its option)   retry with backoff            no
DLQ write not acknowledged                    retry with backoff            no
commit fails (rebalance)                      counted; redelivered later    —
still applying when the drain time ran out    cancelled; redelivered later  no
============================================  ============================  ==========

Shutdown (SIGTERM): the loop polls no more, the batch in hand is applied for up to
``HOTLINE_GRACEFUL_SHUTDOWN_S``, the offsets of what was applied are committed, and the
consumer leaves its group. A message still applying when that time runs out is cancelled
and not committed: the next owner of its partition applies it (an update that reached the
workflow anyway is dropped there by its event id).
"""


from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Histogram
from temporalio.client import Client

from schemas.codec import DecodeError
from workers.bridges.apply import apply_command, update_id_for
from workers.bridges.outcomes import (
    DEAD_LETTERED,
    DUPLICATE,
    MALFORMED,
    TRANSIENT,
    Verdict,
    describe_error,
)
from workers.bridges.routes import BRIDGES, Unroutable, route
from workers.runtime.kafka_io import (
    DeadLetterPublisher,
    group_id,
    make_consumer,
    resume_partitions,
)
from workers.runtime.metrics_exporter import ConsumerLagReporter
from workers.runtime.schema_registry import (
    RegistryUnavailable,
    decode_value,
    register_until_done,
    registry_wire,
)
from workers.runtime.settings import Settings

log = structlog.get_logger("hotline.bridges")

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

# --- the consumer loop ------------------------------------------------------------------


class TransientError(Exception):
    """An attempt failed for a passing reason; the message is retried, not committed."""


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Capped exponential backoff with ±20 % jitter; ``attempt`` counts from 1."""
    raw = min(cap, base * 2 ** max(0, attempt - 1))
    return min(cap, raw * random.uniform(0.8, 1.2))


_C = TypeVar("_C")


async def until_connected(connect: Callable[[], Awaitable[_C]], stop: asyncio.Event,
                          what: str, *, logger: Any = None, **where: str) -> _C | None:
    """``connect()`` again with backoff until it succeeds; None once ``stop`` is set.

    Each failure is logged (on ``logger``, else this module's) as ``<what> not connected,
    retrying`` with ``where``, the error and the delay.
    """
    attempt = 0
    while not stop.is_set():
        try:
            return await connect()
        except Exception as exc:
            attempt += 1
            delay = backoff_delay(attempt, cap=10.0)
            (logger or log).warning(f"{what} not connected, retrying", **where,
                                    error=describe_error(exc), retry_in_s=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
    return None


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
        drain_s: float | None = None,
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
        # With HOTLINE_SCHEMA_REGISTRY_URL: the Confluent wire format too (shared cache).
        self._wire = registry_wire(settings)
        self._retry_budget_s = retry_budget_s
        self._batch_budget_s = batch_budget_s
        self._poll_timeout_ms = poll_timeout_ms
        self._consumer_overrides = dict(consumer_overrides or {})
        self._drain_s = settings.graceful_shutdown_s if drain_s is None else drain_s
        # Done once stop was set ``drain_s`` ago: what still applies then is cancelled.
        self._drain_over: asyncio.Task[None] | None = None
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
        self._drain_over = asyncio.create_task(self._drain_clock(),
                                               name=f"bridge-{self.name}-drain")
        registering = asyncio.create_task(
            register_until_done(self._wire, self._stop, process="bridges", bridge=self.name))
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
            registering.cancel()
            for task in self._chunks.values():
                task.cancel()
            self._drain_over.cancel()
            if self._consumer is not None:
                try:
                    await self._on_thread(self._consumer.close, autocommit=False)
                except Exception as exc:
                    self._log.warning("consumer close failed", error=describe_error(exc))
            self._executor.shutdown(wait=True)
            self._log.info("bridge stopped")

    async def _drain_clock(self) -> None:
        await self._stop.wait()
        self._log.info("bridge stopping: finishing the batch in hand", drain_s=self._drain_s)
        await asyncio.sleep(self._drain_s)

    def _drain_ran_out(self) -> bool:
        return self._drain_over is not None and self._drain_over.done()

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
        return await until_connected(
            lambda: self._on_thread(
                make_consumer,
                self._settings,
                [self.topic],
                self.group,
                listener=self._listener,
                **self._consumer_overrides,
            ),
            self._stop, "kafka consumer", logger=self._log,
        )

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
            self._log.warning("poll failed", error=describe_error(exc))
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
                    error=describe_error(exc),
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
                error=describe_error(exc),
            )

    async def _process_partition(
        self, tp: TopicPartition, messages: Sequence[Any], deadline: float
    ) -> tuple[int | None, int | None]:
        """Apply one partition's messages, each case's in order, until done or past ``deadline``.

        Returns:
            ``(offset to commit or None, offset to fetch again or None)``.
        """

        async def apply(message: Any) -> bool:
            if time.monotonic() > deadline or self._drain_ran_out():
                return False
            return await self._handle_with_retry(tp, message)

        return await apply_by_key(messages, apply, self._settings.bridge_keys_in_flight)

    async def _handle_with_retry(self, tp: TopicPartition, message: Any) -> bool:
        """Handle until done; ``False`` when stop is requested or the budget is spent."""
        deadline = time.monotonic() + self._retry_budget_s
        while True:
            try:
                if not await self._handle_unless_drained(message):
                    return False
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

    async def _handle_unless_drained(self, message: Any) -> bool:
        """:meth:`handle`, cancelled if the drain time runs out first (then ``False``).

        Raises:
            TransientError: As :meth:`handle`.
        """
        drain = self._drain_over
        if drain is None:  # not running under run() (tests call handle directly)
            await self.handle(message)
            return True
        if drain.done():
            return False
        task = asyncio.ensure_future(self.handle(message))
        try:
            await asyncio.wait((task, drain), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task.done():
            task.result()
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TransientError):
            await task
        self._log.warning("drain time over; message left for redelivery",
                          partition=message.partition, offset=message.offset)
        return False

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
            decoded = await decode_value(self._wire, message.value)
        except DecodeError as exc:
            return Verdict(DEAD_LETTERED, exc.reason, exc.detail), "unknown", mlog
        except RegistryUnavailable as exc:  # the record is not at fault: retry it
            return Verdict(TRANSIENT, "", f"schema registry: {exc}"), "unknown", mlog
        except Exception as exc:  # the codec should wrap everything; never trust it to
            return Verdict(DEAD_LETTERED, MALFORMED, describe_error(exc)), "unknown", mlog
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
            raise TransientError(f"DLQ write not acknowledged: {describe_error(exc)}") from exc
        DLQ_MESSAGES.labels(verdict.reason).inc()
        mlog.warning("dead-lettered", reason=verdict.reason, error=verdict.detail)
