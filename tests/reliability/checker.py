"""H4: check a reopened store against what a writer was told, naming anomalies as Jepsen does.

A writer's history says, for each record it tried to write (identified by the digest of its value,
values being unique), one of:

* ``ack``: the send returned; the record's (topic, partition, offset) is known;
* ``fail``: the send raised an error that says nothing was written (a definite failure);
* ``info``: the send was in flight when the writer died, or raised an error that leaves the
  outcome unknown (an fsync error after the bytes were written): it may be visible or not.

and which records were sent together in one batch (a batch is all-or-nothing).

Anomalies (Jepsen's Kafka checker names, plus two of ours):

``lost-write``            an acked record is not at its offset (missing, or the log ends before it)
``inconsistent-offsets``  an acked offset holds other bytes than the acked record's
``duplicate``             one record at two offsets
``G1a``                   a record whose send failed is visible
``partial-batch``         some but not all records of one batch are visible
``offset-gap``            offsets not contiguous from the log start offset
``unknown-record``        a record no writer sent
``nonmonotonic-poll``     a consumer saw an offset not above the previous one (no seek between)
``poll-skip``             a consumer skipped offsets
``verify``                ``LogStore.verify`` reported a problem
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from logstore import LogStore

Key = tuple[str, int]  # (topic, partition)


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()[:32]


@dataclass
class History:
    acked: dict[tuple[str, int, int], str] = field(default_factory=dict)  # (t, p, offset) -> digest
    failed: set[str] = field(default_factory=set)
    info: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)  # every record tried (ack, fail or info)
    batches: list[list[str]] = field(default_factory=list)

    def ack(self, topic: str, partition: int, offset: int, d: str) -> None:
        self.acked[(topic, partition, offset)] = d
        self.info.discard(d)

    def parse(self, lines: Iterable[str]) -> History:
        """Read a writer's protocol (see writer.py): ``send d1 d2 ..`` (one batch, before the send),
        ``ack TOPIC PARTITION OFFSET DIGEST``, ``fail DIGEST``, ``info DIGEST``. A batch sent
        but neither acked nor failed is ``info`` (the writer died while it was in flight)."""
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "send":
                self.batches.append(parts[1:])
                self.sent.update(parts[1:])
                self.info.update(parts[1:])
            elif parts[0] == "ack" and len(parts) == 5:
                self.ack(parts[1], int(parts[2]), int(parts[3]), parts[4])
            elif parts[0] == "fail" and len(parts) == 2:
                self.failed.add(parts[1])
                self.info.discard(parts[1])
            elif parts[0] == "info" and len(parts) == 2:
                self.info.add(parts[1])
        return self


@dataclass
class Report:
    anomalies: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    records: int = 0  # records read back
    acked: int = 0

    @property
    def ok(self) -> bool:
        return not any(self.anomalies.values())

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.anomalies.values())

    def add(self, kind: str, example: object) -> None:
        self.anomalies[kind].append(example)

    def __str__(self) -> str:
        if self.ok:
            return f"no anomalies ({self.records} records read, {self.acked} acked)"
        parts = [f"{k}: {len(v)} (e.g. {v[:3]})" for k, v in self.anomalies.items() if v]
        return "anomalies: " + "; ".join(parts)


def records_of(log: object) -> Iterator[tuple[int, bytes | None]]:
    """Every (offset, value) of a partition log from its log start offset, in offset order."""
    o = log.log_start_offset
    while o < log.next_offset:
        cols = log.read_records(o)
        if not len(cols):
            break
        yield from zip(cols.offsets, cols.values, strict=True)
        o = cols.offsets[-1] + 1


def read_log(store: LogStore) -> dict[Key, tuple[int, list[tuple[int, str]]]]:
    """Every partition's (log start offset, [(offset, digest), ...]) read front to back."""
    out: dict[Key, tuple[int, list[tuple[int, str]]]] = {}
    for info in store.list_topics():
        for p in range(info.partition_count):
            log = store.partition(info.name, p)
            rows = [(o, digest(v or b"")) for o, v in records_of(log)]
            out[(info.name, p)] = (log.log_start_offset, rows)
    return out


def values_of(log: object) -> list[bytes]:
    """Every value of a partition log from its log start offset, in offset order."""
    return [v for _, v in records_of(log)]


def stored_values(path: str, topic: str = "t", partition: int = 0) -> list[bytes]:
    """Reopen the store at ``path`` and return :func:`values_of` one partition, after asserting
    that ``verify()`` finds nothing wrong with it."""
    with LogStore(path, create=False) as s:
        log = s.partition(topic, partition)
        assert log.verify() == []
        return values_of(log)


def check(history: History, store_path: str, *, verify: bool = True, **open_kwargs: object) -> Report:
    """Reopen the store at ``store_path`` (running its recovery) and check it against ``history``."""
    report = Report(acked=len(history.acked))
    with LogStore(store_path, create=False, **open_kwargs) as store:
        if verify:
            for problem in store.verify():
                report.add("verify", str(problem))
        logs = read_log(store)
    check_logs(history, logs, report)
    return report


def check_logs(history: History, logs: dict[Key, tuple[int, list[tuple[int, str]]]], report: Report) -> None:
    where: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    at: dict[tuple[str, int, int], str] = {}
    starts: dict[Key, int] = {}
    for (topic, p), (start, rows) in logs.items():
        starts[(topic, p)] = start
        expected = start
        for offset, d in rows:
            if offset != expected:
                report.add("offset-gap", (topic, p, expected, offset))
            expected = offset + 1
            where[d].append((topic, p, offset))
            at[(topic, p, offset)] = d
        report.records += len(rows)
    for (topic, p, offset), d in history.acked.items():
        if offset < starts.get((topic, p), 0):
            continue  # deleted by retention / delete_records: not a loss
        found = at.get((topic, p, offset))
        if found is None:
            report.add("lost-write", (topic, p, offset))
        elif found != d:
            report.add("inconsistent-offsets", (topic, p, offset))
    for d, places in where.items():
        if len(places) > 1:
            report.add("duplicate", (d[:8], places))
        if d in history.failed:
            report.add("G1a", (d[:8], places))
        if history.sent and d not in history.sent:
            report.add("unknown-record", (d[:8], places))
    for batch in history.batches:
        seen = [d in where for d in batch]
        if any(seen) and not all(seen):
            report.add("partial-batch", [d[:8] for d in batch])


def check_polls(polls: Iterable[tuple[str, int, int]], report: Report, seeks: Iterable[int] = ()) -> None:
    """Check a consumer's sequence of (topic, partition, offset) polls: each partition's offsets
    must go up by exactly one (no compaction or transactions here), except right after the poll
    indexes in ``seeks`` (an explicit seek or a rebalance)."""
    last: dict[Key, int] = {}
    reset = set(seeks)
    for i, (topic, p, offset) in enumerate(polls):
        prev = last.get((topic, p))
        if prev is not None and i not in reset:
            if offset <= prev:
                report.add("nonmonotonic-poll", (topic, p, prev, offset))
            elif offset != prev + 1:
                report.add("poll-skip", (topic, p, prev, offset))
        last[(topic, p)] = offset
