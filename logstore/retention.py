"""Retention: which whole segments a partition can delete, by Kafka's rules.

With ``cleanup.policy=delete`` (the only policy logstore has), Kafka deletes a partition's oldest
segments when any of these holds, and only whole segments, oldest first:

* **time**: the segment's largest record timestamp is more than ``retention.ms`` before now
  (``-1``: never). A segment whose records carry no timestamp uses its file's modification time;
* **size**: the partition is over ``retention.bytes`` (``-1``: no limit) by at least the whole
  segment: the oldest go while the partition stays at or above the limit without them;
* **log start offset**: every record of the segment is below the log start offset (after
  ``delete_records``).

The rules run in Kafka's order (log start offset, size, time), each going on from the segment
where the one before stopped and stopping at the first segment it would keep, so the result is
always the oldest ``n`` segments; the deletion itself (rolling first when every segment is due, so the log end offset is
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

    def choose(infos: list[SegmentInfo], log_start_offset: int) -> tuple[int, str]:
        # The last segment when it is empty is never "deleted": it holds the log end offset.
        last = len(infos) - 1 if infos and infos[-1].size == 0 else len(infos)
        # Kafka's order: log start offset, then size, then time, each going on from where the
        # one before stopped (so one pass does what Kafka's deleteOldSegments does).
        k = 0
        counts = []
        # start offset: a segment whose next segment starts at or below the log start (never the last)
        n = 0
        while k + n < min(last, len(infos) - 1) and infos[k + n + 1].base_offset <= log_start_offset:
            n += 1
        counts.append(("log-start-offset", n))
        k += n
        n = 0
        if config.retention_bytes >= 0:
            over = sum(i.size for i in infos[k:]) - config.retention_bytes
            while k + n < last and over - infos[k + n].size >= 0:
                over -= infos[k + n].size
                n += 1
        counts.append(("retention.bytes", n))
        k += n
        n = 0
        if config.retention_ms >= 0:
            while k + n < last and now_ms - infos[k + n].largest_timestamp > config.retention_ms:
                n += 1
        counts.append(("retention.ms", n))
        k += n
        return k, ",".join(name for name, c in counts if c)

    return choose
