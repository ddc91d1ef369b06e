"""Small value types shared across the library."""

from __future__ import annotations

from typing import NamedTuple


class TopicPartition(NamedTuple):
    """One partition of a topic: ``TopicPartition("orders", 0)``. Hashable; sorts by topic, then partition."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


class OffsetAndTimestamp(NamedTuple):
    """The result of a lookup by time: the first offset whose timestamp (ms) is >= the one asked for."""

    offset: int
    timestamp: int
