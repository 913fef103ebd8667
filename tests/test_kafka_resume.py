"""Pausing and resuming a partition on the real broker: it must be fetched again.

The bridges' partition pipelines (``HOTLINE_BRIDGE_PIPELINES=true``) pause a partition
while its chunk is applied and resume it afterwards. In a benchmark run one intake
partition was never fetched again after a resume. The cause is in kafka-python (see
``workers.runtime.kafka_io.resume_partitions``): records it had parsed for a partition paused
mid-batch are kept and never handed back, and the partition is not fetched while they
are kept. The first test pins that behaviour down with a plain ``resume``; if it starts
failing, kafka-python has fixed it and the workaround can go.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import TopicPartition

from tests.live import stack_settings, throwaway_topic
from workers.runtime.kafka_io import resume_partitions
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

PER_PARTITION = 40


@pytest.fixture(scope="module")
def settings() -> Settings:
    return stack_settings()


@pytest.fixture
def topic(settings: Settings) -> Iterator[str]:
    """A fresh two-partition topic with ``PER_PARTITION`` records in each partition."""
    with throwaway_topic(settings, "resume", partitions=2) as name:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        for partition in (0, 1):
            for i in range(PER_PARTITION):
                producer.send(name, value=f"{partition}-{i}".encode(), partition=partition)
        producer.flush()
        producer.close()
        yield name


def _pause_mid_batch_then_resume(settings: Settings, topic: str,
                                 resume: Callable[[KafkaConsumer, list[TopicPartition]], None]
                                 ) -> list[int]:
    """Offsets of partition 0 handed out, after pausing it with records of its fetch
    still unreturned, draining partition 1, then resuming partition 0 with ``resume``."""
    p0, p1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    # Small polls: one fetch of a partition is handed out over several polls.
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                             enable_auto_commit=False, max_poll_records=5,
                             fetch_max_wait_ms=100)
    try:
        consumer.assign([p0, p1])
        consumer.seek_to_beginning(p0, p1)
        got: dict[int, list[int]] = {0: [], 1: []}
        deadline = time.monotonic() + 20
        # Poll until partition 0 has handed out some, not all, of its records: the rest of
        # its fetch sits in the consumer, as when a pipeline pauses it with a chunk.
        while not got[0] and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                got[tp.partition] += [r.offset for r in records]
        assert 0 < len(got[0]) < PER_PARTITION, got
        consumer.pause(p0)
        while len(got[1]) < PER_PARTITION and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                assert tp == p1, "a paused partition handed out records"
                got[1] += [r.offset for r in records]
        assert len(got[1]) == PER_PARTITION
        resume(consumer, [p0])
        until = time.monotonic() + 5
        while len(got[0]) < PER_PARTITION and time.monotonic() < until:
            for tp, records in consumer.poll(timeout_ms=200).items():
                got[tp.partition] += [r.offset for r in records]
        return got[0]
    finally:
        consumer.close()


def test_a_plain_resume_leaves_the_partition_stalled(settings: Settings, topic: str) -> None:
    offsets = _pause_mid_batch_then_resume(
        settings, topic, lambda consumer, tps: consumer.resume(*tps))
    assert len(offsets) < PER_PARTITION


def test_resume_partitions_fetches_the_partition_again_from_where_it_stopped(
        settings: Settings, topic: str) -> None:
    offsets = _pause_mid_batch_then_resume(settings, topic, resume_partitions)
    assert offsets == list(range(PER_PARTITION))
