"""Retention: which whole segments a partition can delete, by Kafka's rules.

With ``cleanup.policy=delete`` (the only policy logstore has), Kafka deletes a partition's oldest
segments when any of these holds, and only whole segments, oldest first:

* **time**: the segment's largest record timestamp is more than ``retention.ms`` before now
  (``-1``: never). A segment whose records carry no timestamp uses its file's modification time;
* **size**: the partition is over ``retention.bytes`` (``-1``: no limit) by at least the whole
  segment: the oldest go while the partition stays at or above the limit without them;
* **log start offset**: every record of the segment is below the log start offset (after
  ``delete_records``).

Each rule stops at the first segment it would keep, so the result is always the oldest ``n``
segments; the deletion itself (rolling first when every segment is due, so the log end offset is
kept) is :meth:`logstore.storage.log.PartitionLog.delete_oldest_segments`.

The store runs this over every partition with :meth:`logstore.LogStore.apply_retention`, and
optionally every ``log.retention.check.interval.ms`` in a background thread.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import TopicConfig
from .storage.log import SegmentInfo

__all__ = ["RETENTION_CHECK_INTERVAL_MS", "choose_segments"]

RETENTION_CHECK_INTERVAL_MS = 300_000  # Kafka's log.retention.check.interval.ms


def choose_segments(config: TopicConfig, now_ms: int) -> Callable[[list[SegmentInfo], int], tuple[int, str]]:
    """The chooser :meth:`PartitionLog.delete_oldest_segments` takes: given the segments (oldest
    first) and the log start offset, how many of the oldest to delete and why (the names of the
    rules that apply, comma-separated)."""

    def deletable(infos: list[SegmentInfo]) -> list[SegmentInfo]:
        # The last segment when it is empty is never "deleted": it holds the log end offset.
        return infos[:-1] if infos and infos[-1].size == 0 else infos

    def choose(infos: list[SegmentInfo], log_start_offset: int) -> tuple[int, str]:
        segs = deletable(infos)
        by_time = 0
        if config.retention_ms >= 0:
            for info in segs:
                if now_ms - info.largest_timestamp <= config.retention_ms:
                    break
                by_time += 1
        by_size = 0
        if config.retention_bytes >= 0:
            over = sum(i.size for i in infos) - config.retention_bytes
            for info in segs:
                if over - info.size < 0:
                    break
                over -= info.size
                by_size += 1
        by_start = 0
        for info in segs:
            if info.next_offset > log_start_offset or info.active:
                break
            by_start += 1
        n = max(by_time, by_size, by_start)
        reasons = [
            name
            for name, count in (("retention.ms", by_time), ("retention.bytes", by_size), ("log-start-offset", by_start))
            if count
        ]
        return n, ",".join(reasons)

    return choose
