"""What the demo's simulated actors share: their context, Kafka I/O and clock.

Each actor (the call centre, the unit systems, the supervisor, the callback centre) is a
thread with its own Kafka consumer (STYLE.md: one consumer per thread) and the run's one
shared, thread-safe producer. Its consumer is assigned every partition of its topic
directly (no group membership, no commits: a demo has nothing to resume) and starts at
the end, so only this run's records are read; records of cases that are not this run's
are ignored. Replies go out at wall-clock times through a :class:`Scheduler`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from activities.dispatch.config import HotlineConfig
from schemas.codec import encode, headers_for
from workers.devstack.city_plans import CasePlan
from workers.devstack.demo_board import Board
from workers.runtime.kafka_io import consumer_config, group_id
from workers.runtime.settings import Settings

# The least a unit system or the callback centre takes to react to a message (real time),
# and the gap it keeps between two replies to the same dispatch.
MIN_REACTION_S = 0.02
REPLY_GAP_S = 0.05
SEND_TIMEOUT_S = 30.0


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and where to look."""


@dataclass
class ActorContext:
    """What every actor of one run works with."""

    settings: Settings
    config: HotlineConfig
    producer: KafkaProducer
    board: Board
    plans: dict[str, CasePlan]
    stop: threading.Event
    ready: threading.Barrier
    open311_url: str = ""  # the in-process Open311 service the apps file through


def tail_consumer(settings: Settings, topic: str, name: str) -> KafkaConsumer:
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


def publish(ctx: ActorContext, topic: str, name: str, record: dict[str, Any]) -> None:
    """Publish one Avro record keyed by its complaint id and wait for the broker's ack."""
    future = ctx.producer.send(topic, key=str(record["complaint_id"]).encode(),
                               value=encode(name, record), headers=headers_for(name))
    future.get(timeout=SEND_TIMEOUT_S)


def poll_records(consumer: KafkaConsumer, timeout_s: float) -> list[Any]:
    """The records of one poll, all partitions together."""
    batches = consumer.poll(timeout_ms=max(1, int(timeout_s * 1000)), max_records=500)
    return [msg for msgs in batches.values() for msg in msgs]


def utc_now() -> datetime:
    """The current time (UTC), for record timestamps."""
    return datetime.now(UTC)


class Scheduler:
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


def actor_thread(name: str, body: Callable[[ActorContext], None],
                 ctx: ActorContext) -> threading.Thread:
    """A daemon thread running ``body``; its failure stops the run and is put on the board."""

    def run() -> None:
        try:
            body(ctx)
        except BaseException as exc:
            ctx.board.fail(name, exc)
            ctx.stop.set()
            with contextlib.suppress(threading.BrokenBarrierError):
                ctx.ready.abort()

    return threading.Thread(target=run, name=f"demo-{name}", daemon=True)
