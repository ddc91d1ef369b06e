"""Small value types shared across the library."""

from __future__ import annotations

import datetime as _dt
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


class Record(NamedTuple):
    """One consumed record, immutable, with kafka-python's ConsumerRecord field names.

    ``timestamp`` is ms since the epoch (-1 when the producer gave none); ``timestamp_type`` is
    "create" (set by the producer) or "log_append" (set by the log on append). ``key`` and ``value``
    are bytes, None where null; ``headers`` is a tuple of ``(str, bytes | None)`` pairs.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def datetime(self) -> _dt.datetime | None:
        """The timestamp as an aware UTC datetime (None for a record without a timestamp)."""
        if self.timestamp < 0:
            return None
        return _dt.datetime.fromtimestamp(self.timestamp / 1000, _dt.timezone.utc)

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)
