"""Partition assignors: who reads which partition after a rebalance.

Both follow Kafka's Java assignors exactly, so a group moved between logstore and Kafka sees the
same partition owners:

* :func:`roundrobin` (``RoundRobinAssignor``, logstore's default): every subscribed partition,
  sorted by topic then partition, dealt in turn to the members sorted by member id; a member that
  is not subscribed to a partition's topic is passed over for it.
* :func:`range_assign` (``RangeAssignor``, Kafka's default): topic by topic, the members subscribed
  to it (sorted) get consecutive ranges; the first ``partitions % members`` get one extra.

An assignor is a pure function ``(subscriptions, partitions_per_topic) -> assignment``:
``subscriptions`` maps member id to the topics it subscribes to, ``partitions_per_topic`` maps
topic to its partition count (topics missing from it are not assigned). Every member gets an entry,
empty when it has nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ..errors import InvalidConfigError
from ..types import TopicPartition

Assignment = dict[str, list[TopicPartition]]
Assignor = Callable[[Mapping[str, Iterable[str]], Mapping[str, int]], Assignment]


def roundrobin(subscriptions: Mapping[str, Iterable[str]], partitions_per_topic: Mapping[str, int]) -> Assignment:
    """Kafka's RoundRobinAssignor (see the module docstring)."""
    subs = {m: set(topics) for m, topics in subscriptions.items()}
    members = sorted(subs)
    out: Assignment = {m: [] for m in members}
    if not members:
        return out
    topics = sorted({t for s in subs.values() for t in s if t in partitions_per_topic})
    turn = 0
    for topic in topics:
        for p in range(partitions_per_topic[topic]):
            # The next member in the circle that subscribes to this topic (one always does).
            while topic not in subs[members[turn % len(members)]]:
                turn += 1
            out[members[turn % len(members)]].append(TopicPartition(topic, p))
            turn += 1
    return out


def range_assign(subscriptions: Mapping[str, Iterable[str]], partitions_per_topic: Mapping[str, int]) -> Assignment:
    """Kafka's RangeAssignor (see the module docstring)."""
    subs = {m: set(topics) for m, topics in subscriptions.items()}
    out: Assignment = {m: [] for m in sorted(subs)}
    for topic in sorted({t for s in subs.values() for t in s if t in partitions_per_topic}):
        members = sorted(m for m, s in subs.items() if topic in s)
        n = partitions_per_topic[topic]
        each, extra = divmod(n, len(members))
        start = 0
        for i, m in enumerate(members):
            count = each + (1 if i < extra else 0)
            out[m].extend(TopicPartition(topic, p) for p in range(start, start + count))
            start += count
    return out


ASSIGNORS: dict[str, Assignor] = {"roundrobin": roundrobin, "range": range_assign}
_ALIASES = {
    "roundrobin": "roundrobin",
    "round_robin": "roundrobin",
    "org.apache.kafka.clients.consumer.roundrobinassignor": "roundrobin",
    "roundrobinassignor": "roundrobin",
    "range": "range",
    "org.apache.kafka.clients.consumer.rangeassignor": "range",
    "rangeassignor": "range",
}


def strategy_names(value: str | Iterable[str]) -> list[str]:
    """The assignor names a ``partition.assignment.strategy`` setting asks for, in preference
    order: ``"roundrobin"``, ``"range"``, a comma-separated list of them, a list, or Kafka's class
    names (``org.apache.kafka.clients.consumer.RangeAssignor``). Raises InvalidConfigError for an
    unknown name."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in items:
        key = str(item).strip().lower()
        if key not in _ALIASES:
            raise InvalidConfigError(
                f"partition_assignment_strategy {item!r} is not an assignor logstore knows.",
                "Use 'roundrobin' (the default) or 'range' (or Kafka's class names for them).",
            )
        if _ALIASES[key] not in out:
            out.append(_ALIASES[key])
    if not out:
        raise InvalidConfigError("partition_assignment_strategy is empty.", "Use 'roundrobin' or 'range'.")
    return out
