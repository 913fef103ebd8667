"""A consumer started right after its topic is created must get that topic's partitions.

A fresh clone's ``make test`` once failed two end-to-end tests: the unit-replies bridge,
started a moment after its topics were created, was assigned no partition and stayed so
for the rest of the test. Its group's first assignment was made before the consumer knew
the topic's partitions, and kafka-python missed the metadata update that should have made
it rejoin; it would have noticed only when its metadata aged, 5 minutes later.
``workers.runtime.kafka_io.make_consumer`` now fetches the topics' metadata before subscribing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import ConsumerRebalanceListener
from kafka.structs import TopicPartition

from tests.live import stack_settings, throwaway_topic
from workers.runtime.kafka_io import consumer_config, make_consumer
from workers.runtime.settings import Settings

pytestmark = pytest.mark.stack

PARTITIONS = 6


@pytest.fixture(scope="module")
def settings() -> Settings:
    return stack_settings()


@pytest.fixture
def fresh_topic(settings: Settings) -> Iterator[str]:
    with throwaway_topic(settings, "fresh", PARTITIONS) as name:
        yield name


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.assigned: list[set[TopicPartition]] = []

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        pass

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned.append(set(assigned))


def test_the_first_assignment_of_a_just_created_topic_has_all_its_partitions(
    settings: Settings, fresh_topic: str,
) -> None:
    listener = _Assignments()
    consumer = make_consumer(settings, [fresh_topic], f"fresh-{uuid.uuid4().hex[:8]}",
                             listener=listener)
    try:
        deadline = time.monotonic() + 30
        while not listener.assigned and time.monotonic() < deadline:
            consumer.poll(timeout_ms=200)
        assert listener.assigned, "the consumer never joined its group"
        # Before the fix the first assignment was empty ("No partition metadata"), and the
        # consumer depended on a later rejoin that did not always come.
        assert listener.assigned[0] == {
            TopicPartition(fresh_topic, p) for p in range(PARTITIONS)}
    finally:
        consumer.close()


def test_consumers_notice_new_topics_and_partitions_within_30_seconds(
    settings: Settings,
) -> None:
    # The safety net if an update is missed anyway (or a topic is created later).
    assert consumer_config(settings, "g")["metadata_max_age_ms"] <= 30_000
