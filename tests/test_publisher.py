"""KafkaPublisher's wait for acknowledgements (pure logic: the producer is replaced)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from activities.publisher import KafkaPublisher


class _AckAt:
    """A send future acknowledged at a fixed monotonic time, like kafka-python's get()."""

    def __init__(self, at: float) -> None:
        self.at = at

    def get(self, timeout: float) -> None:
        wait = self.at - time.monotonic()
        if wait > timeout:
            time.sleep(timeout)
            raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")
        time.sleep(max(wait, 0.0))


class _Producer:
    def __init__(self, delays: list[float]) -> None:
        self.delays = delays

    def send(self, topic: str, **_: Any) -> _AckAt:
        return _AckAt(time.monotonic() + self.delays.pop(0))


def _publisher(delays: list[float]) -> KafkaPublisher:
    publisher = object.__new__(KafkaPublisher)
    publisher._producer = _Producer(delays)  # type: ignore[assignment]
    return publisher


MESSAGES = [("t", "k", "ComplaintFiled", b"x"), ("t", "k", "ComplaintFiled", b"y")]


def test_every_record_acknowledged_within_the_timeout_returns() -> None:
    _publisher([0.1, 0.3]).publish_encoded(MESSAGES, timeout=1.0)


def test_the_timeout_bounds_the_whole_batch_not_each_record() -> None:
    # Each record alone is acknowledged within 0.4 s of the previous wait, but the second
    # comes 0.6 s after the call: a timeout per record would have waited and returned.
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError):
        _publisher([0.3, 0.6]).publish_encoded(MESSAGES, timeout=0.4)
    assert time.monotonic() - started < 0.55
