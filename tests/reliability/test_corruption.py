"""Corruption campaigns S03-S09 and S32 of docs/reliability.md: damage the files, reopen, check.

The rules under test (§1): an unsynced torn tail is cut back to the longest prefix of whole, valid
batches; damage inside fsynced or sealed data is an error naming the file and byte position and is
never cut, except by the explicit repair (``recover(truncate_damaged=True)``); indexes are advisory;
a batch in a newer format is refused, never "recovered" as a torn write.

tests/test_recovery.py holds the single-segment PartitionLog versions of several of these (every cut
of one segment, a few zero/garbage tails, four index damages of the active segment, stray files).
This file drives the whole store, with several segments, exhaustively or with hypothesis, and counts
iterations / faults / anomalies per scenario (tests/reliability/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logstore import (
    CorruptDataError,
    CorruptLogError,
    CorruptRecordError,
    LogStore,
    LogStoreError,
    StoreFormatError,
)
from logstore.records import build_batch, iter_batches
from logstore.records.batch import MIN_BATCH_LENGTH, BatchHeader, RecordColumns, crc32c
from logstore.storage.log import CLEAN_FILE, PartitionLog
from logstore.types import OffsetAndTimestamp
from tests.conftest import ROOT, crash
from tests.reliability.conftest import iterations
from tests.reliability.runner import tree_hashes

TOPIC = "t"
BASE_TS = 1_700_000_000_000
RECOVERY_POINT_FILE = "recovery-point-offset-checkpoint"


# --- harness ------------------------------------------------------------------------------------


def _ram_dir() -> str | None:
    """A RAM-backed directory for the hundreds of store copies these campaigns make (an fsync
    there costs nothing; what is tested is the recovery logic, not the disk), or None."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@contextlib.contextmanager
def _scratch_dir(fallback: Path) -> Iterator[Path]:
    root = _ram_dir()
    if root is None:
        yield fallback
        return
    d = Path(tempfile.mkdtemp(prefix="logstore-corruption-", dir=root))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A fresh directory for one test, in RAM where the machine has /dev/shm (else tmp_path)."""
    with _scratch_dir(tmp_path) as d:
        yield d


def value_of(offset: int, pad: int = 0) -> bytes:
    """The unique value the builders below write at ``offset``."""
    return f"v{offset:05d}".encode() + b"." * pad


def ts_of(offset: int) -> int:
    """Record timestamps: rising, but not monotonic record by record (a time index must cope)."""
    return BASE_TS + 10 * offset + (7 if offset % 4 == 1 else 0) - (15 if offset % 5 == 2 else 0)


@dataclass
class Written:
    """What a builder wrote: values and timestamps by offset, and each segment's .log path."""

    root: Path
    values: list[bytes] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)  # .log files, oldest first
    index_entries: list[tuple[int, int]] = field(default_factory=list)  # the active segment's
    time_entries: list[tuple[int, int]] = field(default_factory=list)

    @property
    def end(self) -> int:
        return len(self.values)

    def at(self, root: Path, path: Path) -> Path:
        """``path`` (under this store) in a copy of the store at ``root``."""
        return root / path.relative_to(self.root)


def abandon(store: LogStore) -> None:
    """Leave a store as kill -9 would: descriptors dropped, no flush, no clean-shutdown markers."""
    store._flusher_stop.set()
    for log in list(store._logs.values()):
        crash(log)
    store._logs.clear()
    store._closed = True
    store._store_lock.close()


def build(
    root: Path, batches: list[int], *, config: dict[str, Any], clean: bool, pad: int = 0, roll_at: tuple[int, ...] = ()
) -> Written:
    """A store with topic ``t`` (one partition) holding ``batches`` (records per batch), closed
    cleanly or abandoned as by a crash. ``roll_at``: batch numbers before which to roll."""
    w = Written(root)
    store = LogStore(root)
    store.create_topic(TOPIC, 1, config=config)
    log = store.partition(TOPIC, 0)
    for i, n in enumerate(batches):
        if i in roll_at:
            log.roll()
        first = w.end
        offsets = range(first, first + n)
        r = log.append_records([value_of(o, pad) for o in offsets], timestamps=[ts_of(o) for o in offsets])
        assert r.first_offset == first
        w.values += [value_of(o, pad) for o in offsets]
        w.timestamps += [ts_of(o) for o in offsets]
    w.segments = [Path(s.log_path) for s in log.segments]
    w.index_entries = log.active_segment.index.entries_list()
    w.time_entries = log.active_segment.time_index.entries_list()
    if clean:
        store.close()
    else:
        abandon(store)
    return w


def batches_of(path: Path) -> list[tuple[int, int, BatchHeader]]:
    """(start, end, header) of every whole batch in a .log file."""
    data = path.read_bytes()
    return [(pos, pos + h.size, h) for pos, h in iter_batches(data)]


def copy_store(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError if the block runs longer than ``seconds`` (SIGALRM, main thread):
    recovery must not loop on a zero-filled or garbage tail."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: recovery loops?")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def first_at_or_after(w: Written, t: int, below: int | None = None) -> OffsetAndTimestamp | None:
    """Kafka's ListOffsets by time, by brute force over what was written."""
    for o, ts in enumerate(w.timestamps[:below]):
        if ts >= t:
            return OffsetAndTimestamp(o, ts)
    return None


def check_prefix(store: LogStore, w: Written, end: int) -> list[str]:
    """Problems with the partition holding exactly offsets [0, end) as written, readable."""
    log = store.partition(TOPIC, 0)
    wrong = []
    if log.next_offset != end:
        wrong.append(f"next_offset {log.next_offset}, expected {end}")
    got = log.read_records(0, max_bytes=1 << 24) if end else None
    if got is not None and (got.offsets != list(range(end)) or got.values != w.values[:end]):
        wrong.append(f"read back offsets {got.offsets[:3]}..{got.offsets[-3:]} differ from the prefix [0, {end})")
    return wrong


# --- S03: the tail cut at every byte -----------------------------------------------------------


def test_s03_tail_cut_at_every_byte_of_the_last_two_batches(scratch: Path, campaign: Any) -> None:
    """S03: after a crash, cutting the active segment at any byte of its last two batches reopens
    (through LogStore, three segments) to the longest prefix of whole batches: the file is cut
    exactly there, index entries past it are gone, sealed segments are untouched, and the load
    report names the file and the byte position of the cut."""
    w = build(
        scratch / "src",
        [1] * 24,
        config={"segment.bytes": 700, "index.interval.bytes": 1},
        clean=False,
    )
    assert len(w.segments) >= 3
    active = w.segments[-1]
    bounds = batches_of(active)
    assert len(bounds) >= 4 and w.index_entries and w.time_entries
    size = active.stat().st_size
    sealed_before = tree_hashes(w.root, (".log",))
    del sealed_before[str(active.relative_to(w.root))]
    cuts = range(bounds[-2][0], size)  # every new size inside the last two batches
    anomalies: list[str] = []
    for new_size in cuts:
        d = copy_store(w.root, scratch / "w")
        seg = w.at(d, active)
        os.truncate(seg, new_size)
        whole = [b for b in bounds if b[1] <= new_size]
        end_pos = whole[-1][1]
        end_offset = whole[-1][2].next_offset
        wrong: list[str] = []
        try:
            with deadline(10), LogStore(d) as store:
                log = store.partition(TOPIC, 0)
                wrong += check_prefix(store, w, end_offset)
                if seg.stat().st_size != end_pos:
                    wrong.append(f"file is {seg.stat().st_size} bytes, expected {end_pos}")
                idx = log.active_segment.index.entries_list()
                if idx != [e for e in w.index_entries if e[1] < end_pos]:
                    wrong.append(f"index entries {idx}")
                tidx = log.active_segment.time_index.entries_list()
                if tidx != [e for e in w.time_entries if e[1] < end_offset]:
                    wrong.append(f"time index entries {tidx}")
                cut = [(t.path, t.valid_size, t.truncated_bytes) for t in log.load_report.truncations]
                want = [(str(seg), end_pos, new_size - end_pos)] if new_size != end_pos else []
                if cut != want:
                    wrong.append(f"load report truncations {cut}, expected {want}")
                sealed_after = tree_hashes(d, (".log",))
                del sealed_after[str(active.relative_to(w.root))]
                if sealed_after != sealed_before:
                    wrong.append("a sealed segment changed")
                # It stays appendable at the right offset.
                if store.append(TOPIC, 0, [b"after"]).first_offset != end_offset:
                    wrong.append("the next append got another offset")
        except LogStoreError as e:
            wrong.append(f"reopen failed: {e}")
        if wrong:
            anomalies.append(f"cut to {new_size}: {'; '.join(wrong)}")
    campaign("S03").add(iterations=len(cuts), faults=len(cuts), anomalies=len(anomalies))
    assert not anomalies, "\n".join(anomalies[:10])


# --- S04: zero-filled and garbage tails -----------------------------------------------------------

ZERO_TAILS = [*range(1, 66), 100, 511, 512, 4095, 4096, 8191, 8192]


def _tail_cases() -> list[tuple[str, bytes | None]]:
    rnd = random.Random(4)
    cases: list[tuple[str, bytes | None]] = [(f"zeros{n}", b"\0" * n) for n in ZERO_TAILS]
    for i in range(iterations(24)):
        n = rnd.choice([1, 7, 12, 60, 61, 62, 200, 4096, 8192, rnd.randrange(1, 8193)])
        cases.append((f"garbage{i}", rnd.randbytes(n)))
    # Garbage that begins like a batch: a header copied from a real batch, then junk.
    cases.append(("header-then-junk", None))
    cases.append(("last-batch-zeroed", None))
    return cases


def test_s04_zero_filled_and_garbage_tails_are_cut(scratch: Path, campaign: Any) -> None:
    """S04: 1..8192 zero bytes or random bytes after the last batch, and the last batch overwritten
    in place with zeros, reopen (after a crash, and after a clean close) to exactly the whole batches
    before them, without looping; a zero length or zero base offset header is never taken for an
    empty batch."""
    srcs = {
        clean: build(
            scratch / f"src{clean}",
            [2] * 14,
            config={"segment.bytes": 900, "index.interval.bytes": 100},
            clean=clean,
        )
        for clean in (False, True)
    }
    cases = _tail_cases()
    anomalies: list[str] = []
    runs = 0
    for n, (name, tail) in enumerate(cases):
        clean = n % 5 == 0  # every fifth case after a clean close: the marker no longer matches
        w = srcs[clean]
        active = w.segments[-1]
        bounds = batches_of(active)
        d = copy_store(w.root, scratch / "w")
        seg = w.at(d, active)
        data = seg.read_bytes()
        end_pos, end_offset = len(data), w.end
        if name == "header-then-junk":
            tail = data[bounds[-1][0] : bounds[-1][0] + 61] + b"\x55" * 40
        if name == "last-batch-zeroed":
            start = bounds[-1][0]
            data = data[:start] + b"\0" * (len(data) - start)
            end_pos, end_offset = start, bounds[-1][2].base_offset
            tail = b""
        assert tail is not None
        seg.write_bytes(data + tail)
        runs += 1
        wrong: list[str] = []
        try:
            with deadline(5), LogStore(d) as store:
                log = store.partition(TOPIC, 0)
                wrong += check_prefix(store, w, end_offset)
                if seg.stat().st_size != end_pos:
                    wrong.append(f"file is {seg.stat().st_size} bytes, expected {end_pos}")
                if any(pos >= end_pos for _, pos in log.active_segment.index.entries_list()):
                    wrong.append("an index entry points past the end")
                cut = [(t.path, t.valid_size) for t in log.load_report.truncations]
                if cut != [(str(seg), end_pos)]:
                    wrong.append(f"load report truncations {cut}")
                if log.verify():
                    wrong.append(f"verify: {log.verify()}")
        except (LogStoreError, TimeoutError) as e:
            wrong.append(f"reopen failed: {e!r}")
        if wrong:
            anomalies.append(f"{name} ({'clean' if clean else 'crash'}): {'; '.join(wrong)}")
            if "TimeoutError" in wrong[-1]:
                break  # one loop is enough to know; the rest would each wait out the deadline
    campaign("S04").add(iterations=runs, faults=runs, anomalies=len(anomalies))
    assert not anomalies, "\n".join(anomalies[:10])


# --- S05: bit flips in sealed segments ------------------------------------------------------------

# Byte ranges of a batch header by field (docs: records/batch.py). partitionLeaderEpoch (12-15) is
# left out: Kafka's CRC does not cover it and nothing reads it, so a flip there is harmless.
FIELDS = {"offset": (0, 8), "length": (8, 12), "magic": (16, 17), "crc": (17, 21), "payload": (21, None)}


@pytest.fixture(scope="module")
def sealed_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Written]:
    """Four segments of 6 two-record batches, closed cleanly: three sealed, fsynced segments."""
    with _scratch_dir(tmp_path_factory.mktemp("s05")) as d:
        yield build(d / "src", [2] * 24, config={"index.interval.bytes": 100}, clean=True, roll_at=(6, 12, 18))


# The three ways a partition is read at an offset: a lookup of one record, a decode of many, a
# fetch of numpy columns (as a consumer does), each as RecordColumns.
READS = ("one", "many", "fetch")


def read_as(log: PartitionLog, o: int, how: str) -> RecordColumns:
    """Read ``log`` at offset ``o`` the way ``how`` (one of READS) names."""
    if how == "one":
        return log.read_records(o, max_records=1)
    if how == "many":
        return log.read_records(o)
    return log.fetch(o).to_columns()


def _read_outcomes(store: LogStore, w: Written, offsets: range, damaged: Path) -> tuple[list[str], set[int]]:
    """Read each offset three ways (a lookup of one record, a decode of many, a fetch). Returns the
    wrong answers (a record that is not what was written) and the offsets that raised."""
    log = store.partition(TOPIC, 0)
    wrong, raised = [], set()
    for o in offsets:
        for how in READS:
            try:
                got = read_as(log, o, how)
            except CorruptRecordError as e:
                raised.add(o)
                if e.path != str(damaged):
                    wrong.append(f"offset {o} ({how}): error names {e.path}, not {damaged}")
                continue
            pairs = list(zip(got.offsets, got.values, strict=True))
            if not pairs or pairs[0][0] != o or any(v != w.values[k] for k, v in pairs):
                wrong.append(f"offset {o} ({how}): read {pairs[:2]} (wrong records, no error)")
    return wrong, raised


@settings(
    deadline=None,
    max_examples=iterations(40),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), field_name=st.sampled_from(sorted(FIELDS)))
@example(data=None, field_name="offset")  # explicit points below; None = a fixed set of cases
def test_s05_bit_flip_in_a_sealed_segment(
    scratch: Path, campaign: Any, sealed_store: Written, data: Any, field_name: str
) -> None:
    """S05: one flipped bit in a sealed segment (in the CRC, length, offset, magic or payload of a
    batch). Reading the damaged batch's offsets raises CorruptRecordError naming the file; no read
    returns a wrong record; opening the store deletes nothing and truncates nothing, even with the
    recovery point lost (a full rescan); verify reports it; recover without truncate_damaged cuts
    nothing; only recover(truncate_damaged=True) cuts, exactly at the damaged batch."""
    w = sealed_store
    if data is None:
        # The low bits of the offset field: CRC-32C does not cover it, so only the offset checks
        # can catch these (downward / upward by 1, 2, 4), in a first, middle and last batch.
        points = [(1, b, "offset", 7, bit) for b in (0, 2, 5) for bit in (0, 1, 2)]
        points += [(0, 0, "offset", 0, 7), (2, 5, "magic", 0, 0), (1, 3, "length", 3, 2), (0, 4, "crc", 2, 5)]
    else:
        seg_i = data.draw(st.integers(0, len(w.segments) - 2), label="segment")
        bounds = batches_of(w.segments[seg_i])
        b = data.draw(st.integers(0, len(bounds) - 1), label="batch")
        lo, hi = FIELDS[field_name]
        hi = bounds[b][2].size if hi is None else hi
        points = [(seg_i, b, field_name, data.draw(st.integers(0, hi - lo - 1), label="byte"), 0)]
        points[0] = (*points[0][:4], data.draw(st.integers(0, 7), label="bit"))
    anomalies: list[str] = []
    for seg_i, b, name, byte, bit in points:
        anomalies += _bit_flip_case(scratch, w, seg_i, b, name, byte, bit)
    campaign("S05").add(iterations=len(points), faults=len(points), anomalies=len(anomalies))
    assert not anomalies, "\n".join(anomalies[:10])


def _bit_flip_case(scratch: Path, w: Written, seg_i: int, b: int, name: str, byte: int, bit: int) -> list[str]:
    d = copy_store(w.root, scratch / "w")
    victim = w.at(d, w.segments[seg_i])
    bounds = batches_of(victim)
    start, _, h = bounds[b]
    raw = bytearray(victim.read_bytes())
    raw[start + FIELDS[name][0] + byte] ^= 1 << bit
    victim.write_bytes(raw)
    where = f"segment {seg_i} batch {b} {name} byte {byte} bit {bit}"
    logs = tree_hashes(d, (".log",))
    wrong: list[str] = []
    new_magic = raw[start + 16] if raw[start + 16] < 128 else raw[start + 16] - 256
    with LogStore(d) as store:  # a clean open: sealed segments are not rescanned
        damaged_offsets = range(h.base_offset, h.next_offset)
        seg_offsets = range(batches_of(w.segments[seg_i])[0][2].base_offset, bounds[-1][2].next_offset + 2)
        bad, raised = _read_outcomes(store, w, seg_offsets, victim)
        wrong += bad
        if missed := [o for o in damaged_offsets if o not in raised]:
            wrong.append(f"reading damaged offsets {missed} raised nothing")
        problems = store.verify()
        if not any(p.path == str(victim) for p in problems):
            wrong.append(f"verify did not report {victim.name}: {problems}")
        results = store.recover(TOPIC)  # without truncate_damaged: report, cut nothing
        if not results[0].error:
            wrong.append("recover without truncate_damaged reported no damage")
    if tree_hashes(d, (".log",)) != logs:
        wrong.append("a clean open, reads, verify or recover changed a .log file")
    # The recovery point lost (no checkpoint, no clean marker): open rescans every segment. Damage
    # in a sealed segment followed by valid batches is an error, never cut. (Damage in a sealed
    # segment's last batch is cut, and the later segments dropped, as Kafka does for a torn
    # segment: see test_s05_known_last_batch_of_a_sealed_segment_cut_when_the_recovery_point_is_lost.)
    if b < len(bounds) - 1:
        os.unlink(d / RECOVERY_POINT_FILE)
        (victim.parent / CLEAN_FILE).unlink(missing_ok=True)
        try:
            with LogStore(d) as store:
                store.partition(TOPIC, 0)
            wrong.append("an open that rescans sealed data accepted the damage")
        except CorruptDataError as e:
            if e.path != str(victim):
                wrong.append(f"rescan error names {e.path}")
        except StoreFormatError as e:
            if new_magic <= 2:
                wrong.append(f"rescan called damage a newer format: {e}")
        if tree_hashes(d, (".log",)) != logs:
            wrong.append("an open with the recovery point lost changed a .log file")
    # The explicit repair cuts at the damaged batch and drops later segments.
    if new_magic <= 2:
        try:
            with LogStore(d) as store:
                results = store.recover(TOPIC, truncate_damaged=True)
                if results[0].error:
                    wrong.append(f"recover(truncate_damaged=True) failed: {results[0].error}")
                wrong += check_prefix(store, w, h.base_offset)
        except LogStoreError as e:
            wrong.append(f"after recover(truncate_damaged=True): {e!r}")
        if victim.stat().st_size != start:
            wrong.append(f"repair cut {victim.name} to {victim.stat().st_size}, expected {start}")
        if any(p.exists() for p in (w.at(d, s) for s in w.segments[seg_i + 1 :])):
            wrong.append("repair kept segments after the cut")
    shutil.rmtree(d)
    return [f"{where}: {x}" for x in wrong]


def test_regression_last_batch_of_a_sealed_segment_cut_when_the_recovery_point_is_lost(
    scratch: Path, campaign: Any, sealed_store: Written
) -> None:
    """S05: one flipped CRC bit in the last batch of the first sealed segment, the recovery-point
    checkpoint lost. Every segment after it is valid, fsynced data (a seal fsyncs before the next
    segment is created), so the open must refuse and change nothing. It used to cut the batch as a
    torn tail and delete the three later segments."""
    w = sealed_store
    d = copy_store(w.root, scratch / "w")
    victim = w.at(d, w.segments[0])
    start = batches_of(victim)[-1][0]
    raw = bytearray(victim.read_bytes())
    raw[start + 18] ^= 0x04
    victim.write_bytes(raw)
    os.unlink(d / RECOVERY_POINT_FILE)
    (victim.parent / CLEAN_FILE).unlink(missing_ok=True)
    logs = tree_hashes(d, (".log",))
    refused = False
    try:
        with LogStore(d) as store:
            store.partition(TOPIC, 0)
    except CorruptDataError:
        refused = True
    kept = tree_hashes(d, (".log",)) == logs
    campaign("S05").add(iterations=1, faults=1, anomalies=int(not (refused and kept)))
    assert refused and kept, "the damaged sealed segment was cut and the later segments deleted"


# --- S06: hostile length fields ---------------------------------------------------------------------

S06_CHILD = textwrap.dedent(
    """
    import json, os, resource, shutil, sys, tracemalloc
    resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))
    sys.path.insert(0, sys.argv[1])
    from logstore import CorruptDataError, CorruptLogError, CorruptRecordError, LogStore
    from logstore.records import iter_batches

    spec = json.loads(sys.argv[2])
    out = []
    for case in spec["cases"]:
        d = case["dir"]
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(case["src"], d)
        seg = os.path.join(d, case["segment"])
        with open(seg, "r+b") as f:
            f.seek(case["position"] + 8)
            f.write(case["length"].to_bytes(4, "big", signed=True))
        before = os.path.getsize(seg)
        result = {"case": case["name"]}
        tracemalloc.start()
        tracemalloc.reset_peak()
        try:
            with LogStore(d) as store:
                log = store.partition("t", 0)
                result["opened"] = True
                result["truncations"] = [[t.path, t.valid_size] for t in log.load_report.truncations]
                result["next_offset"] = log.next_offset
                errors = []
                for o in case["read"]:
                    for how in ("one", "many", "fetch"):
                        try:
                            if how == "one":
                                log.read_records(o, max_records=1)
                            elif how == "many":
                                log.read_records(o)
                            else:
                                log.fetch(o)
                        except CorruptRecordError as e:
                            errors.append([o, how, e.path, e.position])
                result["read_errors"] = errors
                result["verify"] = [[p.path, p.position] for p in log.verify()]
        except CorruptDataError as e:
            result["open_error"] = [type(e).__name__, e.path, e.position]
        except MemoryError:
            result["memory_error"] = True
        result["peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result["size_before"], result["size_after"] = before, os.path.getsize(seg)
        out.append(result)
        shutil.rmtree(d)
    print(json.dumps(out))
    """
)

MAX_BATCH = 1048588  # the topic's max.message.bytes (Kafka's default): the biggest batch it takes
S06_LENGTHS = {"2GiB": 0x7FFFFFFF, "-1": -1, "0": 0, "min-1": MIN_BATCH_LENGTH - 1}


def test_s06_length_fields_claiming_2gib_negative_or_too_small(scratch: Path, campaign: Any) -> None:
    """S06: a batch length of 0x7fffffff, -1, 0 or 48 (one below the minimum), in the last batch
    (the tail) or the second batch (mid-file) of two ~3 MiB segments. After a crash the active
    segment's tail is cut as torn and a mid-file one is a CorruptLogError that cuts nothing; in a
    sealed segment, reads raise CorruptRecordError naming file and position and verify reports it.
    All in a child limited to 512 MiB of address space: no MemoryError, and the peak Python
    allocation stays below twice the largest batch."""
    config = {"index.interval.bytes": 65536, "max.message.bytes": MAX_BATCH}
    per_batch, pad = 1, 100 * 1024
    srcs = {
        clean: build(scratch / f"src{clean}", [per_batch] * 60, config=config, clean=clean, pad=pad, roll_at=(30,))
        for clean in (False, True)
    }
    cases, expect = [], {}
    for lname, length in S06_LENGTHS.items():
        for where in ("tail", "mid"):
            for mode in ("open", "read"):
                w = srcs[mode == "read"]
                seg = w.segments[-1] if mode == "open" else w.segments[0]
                bounds = batches_of(seg)
                start, _, h = bounds[-1] if where == "tail" else bounds[1]
                name = f"{lname}-{where}-{mode}"
                cases.append(
                    {
                        "name": name,
                        "src": str(w.root),
                        "dir": str(scratch / "w"),
                        "segment": str(seg.relative_to(w.root)),
                        "position": start,
                        "length": length,
                        "read": [h.base_offset, max(0, h.base_offset - 1)] if mode == "read" else [],
                    }
                )
                expect[name] = (str(scratch / "w" / seg.relative_to(w.root)), start, h, seg.stat().st_size)
    proc = subprocess.run(
        [sys.executable, "-c", S06_CHILD, ROOT, json.dumps({"cases": cases})],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    anomalies = []
    for r in results:
        path, start, h, size = expect[r["case"]]
        wrong = []
        if r.get("memory_error"):
            wrong.append("MemoryError")
        if r["peak"] >= 2 * MAX_BATCH:
            wrong.append(f"peak allocation {r['peak']} bytes >= 2 x {MAX_BATCH}")
        if r["case"].endswith("tail-open"):
            if r.get("truncations") != [[path, start]] or r.get("next_offset") != h.base_offset:
                wrong.append(f"tail not cut as torn at {start}: {r}")
        elif r["case"].endswith("mid-open"):
            if r.get("open_error") != ["CorruptLogError", path, start] or r["size_after"] != size:
                wrong.append(f"mid-file damage not refused at {start} with the file kept: {r}")
        else:
            if not r.get("opened") or r["size_after"] != size:
                wrong.append(f"clean open failed or changed the sealed file: {r}")
            elif any([h.base_offset, how, path, start] not in r["read_errors"] for how in READS):
                wrong.append(f"reads: {r['read_errors']} (expected errors at {path}:{start} for {h.base_offset})")
            elif any(e[:2] == [h.base_offset - 1, "one"] for e in r["read_errors"]):
                wrong.append(f"reading the batch before the damage failed: {r['read_errors']}")
            elif [path, start] not in r["verify"]:
                wrong.append(f"verify: {r['verify']}")
        if wrong:
            anomalies.append(f"{r['case']}: {'; '.join(wrong)}")
    campaign("S06").add(iterations=len(results), faults=len(results), anomalies=len(anomalies))
    assert len(results) == len(cases)
    assert not anomalies, "\n".join(anomalies)


# --- S07: damaged indexes ---------------------------------------------------------------------------

# "none" is the control: the undamaged copy must give the same answers as every damaged one.
INDEX_DAMAGE = ["none", "deleted", "empty", "partial", "random", "plausible", "out-of-order", "past-end", "zero-tail"]


@pytest.fixture(scope="module")
def s07_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, Written]]:
    """Three segments of two-record batches with dense indexes, closed cleanly and after a crash."""
    config = {"segment.bytes": 1000, "index.interval.bytes": 60}
    with _scratch_dir(tmp_path_factory.mktemp("s07")) as d:
        yield {clean: build(d / f"src{clean}", [2] * 30, config=config, clean=clean) for clean in (True, False)}


def _damage_index(path: Path, kind: str, entry: int, log_size: int, seed: int) -> None:
    data = path.read_bytes()
    n = len(data) // entry
    entries = [data[i * entry : (i + 1) * entry] for i in range(n)]
    real = [e for e in entries if e.strip(b"\0")]
    rnd = random.Random(seed)
    if kind == "none":
        pass
    elif kind == "deleted":
        path.unlink()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "partial":
        path.write_bytes(data[: len(real) * entry - 3] if real else data + b"\1\2\3")
    elif kind == "random":
        path.write_bytes(rnd.randbytes(max(len(data), 10 * entry)))
    elif kind == "plausible":  # random entries that pass a glance: sorted, inside the segment
        k = max(len(real), 4)
        keys = sorted(rnd.sample(range(1, 60), k))
        vals = sorted(rnd.sample(range(1, log_size), k) if entry == 8 else rnd.sample(range(0, 20), k))
        width = 4 if entry == 8 else 8
        keys = keys if entry == 8 else [BASE_TS + a for a in keys]
        raw = b"".join(a.to_bytes(width, "big") + v.to_bytes(4, "big") for a, v in zip(keys, vals, strict=True))
        path.write_bytes(raw + data[len(raw) :])
    elif kind == "out-of-order":
        assert len(real) >= 2
        path.write_bytes(b"".join(real[::-1]) + data[len(real) * entry :])
    elif kind == "past-end":
        last = bytearray(real[-1])
        if entry == 8:  # offset index: the next offset, at a position past the end of the .log
            last[0:4] = (int.from_bytes(last[0:4], "big") + 1).to_bytes(4, "big")
            last[4:8] = (log_size + 1000).to_bytes(4, "big")
        else:  # time index: a later timestamp, at an offset past the segment's end
            last[0:8] = (int.from_bytes(last[0:8], "big") + 1).to_bytes(8, "big")
            last[8:12] = (int.from_bytes(last[8:12], "big") + 1000).to_bytes(4, "big")
        path.write_bytes(b"".join([*real, bytes(last)]) + data[(len(real) + 1) * entry :])
    else:  # zero-tail: a preallocated run of zeros left by a crash
        path.write_bytes(data + b"\0" * (entry * 64))


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "crash"])
@pytest.mark.parametrize("segment", ["sealed", "active"])
@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
@pytest.mark.parametrize("kind", INDEX_DAMAGE)
def test_s07_damaged_index_is_advisory(
    scratch: Path, campaign: Any, s07_stores: dict[bool, Written], kind: str, suffix: str, segment: str, clean: bool
) -> None:
    """S07: an index file deleted, empty, of a partial size, random, out of order, pointing past the
    end of the log, or with a zero tail, on a sealed or the active segment, after a clean or an
    unclean close: the store opens, every offset reads its record and every timestamp lookup gives
    Kafka's answer (by brute force over what was written, which the undamaged copy, variant "none",
    gives too): the index is rebuilt or ignored."""
    w = s07_stores[clean]
    assert len(w.segments) >= 3
    d = copy_store(w.root, scratch / "w")
    log_path = w.at(d, w.segments[0 if segment == "sealed" else -1])
    target = log_path.with_suffix(suffix)
    _damage_index(target, kind, 8 if suffix == ".index" else 12, log_path.stat().st_size, seed=len(kind))
    wrong: list[str] = []
    probes = [BASE_TS - 1, *range(BASE_TS, ts_of(w.end - 1) + 12, 3)]
    try:
        with LogStore(d) as store:
            log = store.partition(TOPIC, 0)
            wrong += check_prefix(store, w, w.end)
            for o in range(w.end):
                got = log.read_records(o, max_records=1)
                if got.offsets != [o] or got.values != [w.values[o]] or got.timestamps != [w.timestamps[o]]:
                    wrong.append(f"lookup of offset {o}: {got.offsets} {got.values}")
            for t in probes:
                got_t = log.offset_for_time(t)
                if got_t != first_at_or_after(w, t):
                    wrong.append(f"offset_for_time({t}) = {got_t}, expected {first_at_or_after(w, t)}")
            top = max(range(w.end), key=lambda o: (w.timestamps[o], -o))
            if log.offset_of_max_timestamp() != top:
                wrong.append(f"offset_of_max_timestamp {log.offset_of_max_timestamp()}, expected {top}")
            # It takes appends (the index may be appended to) and reads them back.
            r = store.append(TOPIC, 0, [b"x", b"y"], timestamps=[ts_of(w.end) + 100] * 2)
            if r.first_offset != w.end or log.read_records(w.end).values != [b"x", b"y"]:
                wrong.append("an append after the damage went wrong")
            if log.offset_for_time(ts_of(w.end) + 100) != OffsetAndTimestamp(w.end, ts_of(w.end) + 100):
                wrong.append("offset_for_time of the new records")
    except (LogStoreError, OSError) as e:
        wrong.append(f"{type(e).__name__}: {e}")
    campaign("S07").add(iterations=1, faults=int(kind != "none"), anomalies=len(wrong))
    assert not wrong, "\n".join(wrong[:10])


# --- S08: stray files -------------------------------------------------------------------------------


def test_s08_stray_files(scratch: Path, campaign: Any) -> None:
    """S08: in a partition directory, index files with no .log, a leftover .tmp, a *.deleted file and
    a README go their ways on open after a crash: orphans and temp files are removed, the unknown
    file is left as it was; the log is intact."""
    w = build(scratch / "src", [2] * 10, config={"segment.bytes": 600}, clean=False)
    d = w.segments[0].parent
    strays = {
        "00000000000000000500.index": b"\0" * 16,  # orphan: no 500.log
        "00000000000000000500.timeindex": b"",
        "00000000000000000000.index.tmp": b"half an index rewrite",
        "00000000000000000000.log.deleted": b"a segment retention was removing",
    }
    for name, content in strays.items():
        (d / name).write_bytes(content)
    (d / "README").write_text("notes a person left here\n")
    logs = tree_hashes(d, (".log",))
    wrong: list[str] = []
    with LogStore(w.root) as store:
        wrong += check_prefix(store, w, w.end)
        names = set(os.listdir(d))
        if left := sorted(set(strays) & names):
            wrong.append(f"not removed: {left}")
        if (d / "README").read_text() != "notes a person left here\n":
            wrong.append("README was changed or removed")
        if tree_hashes(d, (".log",)) != logs:
            wrong.append("a segment changed")
        if problems := store.verify():
            wrong.append(f"verify: {problems}")
    campaign("S08").add(iterations=1, faults=len(strays) + 1, anomalies=len(wrong))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("clean", [True, False], ids=["clean", "crash"])
def test_s08_junk_named_like_a_segment_is_reported_not_parsed_or_deleted(
    scratch: Path, campaign: Any, clean: bool
) -> None:
    """S08: ``00000000000000000999.log`` full of garbage, past the log's end (offsets 20..998 would
    be missing). It is a segment by its name, so opening the partition is refused with an error
    naming it; it is not cut to an empty segment (which would renumber the next offset to 999) and
    not deleted; verify reports it."""
    w = build(scratch / "src", [2] * 10, config={"segment.bytes": 600}, clean=clean)
    d = w.segments[0].parent
    junk = d / "00000000000000000999.log"
    junk.write_bytes(random.Random(8).randbytes(3000))
    before = tree_hashes(d, (".log",))
    wrong: list[str] = []
    with LogStore(w.root) as store:
        try:
            log = store.partition(TOPIC, 0)
            wrong.append(f"opened with next_offset {log.next_offset}: the junk was taken for a segment")
        except CorruptLogError as e:
            if e.path != str(junk):
                wrong.append(f"the error names {e.path}, not {junk}")
            if "999" not in str(e) or str(w.end) not in str(e):
                wrong.append(f"the error does not name the missing offsets: {e}")
        if not any(p.path == str(junk) for p in store.verify()):
            wrong.append("verify did not report the junk segment")
    if not junk.exists() or tree_hashes(d, (".log",)) != before:
        wrong.append("the junk segment or another .log was changed or deleted")
    campaign("S08").add(iterations=1, faults=1, anomalies=len(wrong))
    assert not wrong, "\n".join(wrong)


# --- S09: a missing middle segment -----------------------------------------------------------------


@pytest.mark.parametrize("with_indexes", [True, False], ids=["all-files", "log-only"])
@pytest.mark.parametrize("clean", [True, False], ids=["clean", "crash"])
def test_s09_missing_middle_segment_is_refused_never_renumbered(
    scratch: Path, campaign: Any, clean: bool, with_indexes: bool
) -> None:
    """S09: segment 2 of 4 deleted (its .log alone, or with its indexes). Offsets are never
    renumbered: the records around the hole keep their offsets and the next append gets the old log
    end. What the store does: it opens, and every read of an offset in the hole, or across it, raises
    CorruptRecordError naming the missing range (from the offset asked for); verify reports the
    whole hole."""
    w = build(scratch / "src", [2] * 12, config={"segment.bytes": 1 << 20}, clean=clean, roll_at=(3, 6, 9))
    assert len(w.segments) == 4
    victim = w.segments[1]
    lo, hi = batches_of(victim)[0][2].base_offset, batches_of(w.segments[2])[0][2].base_offset
    victim.unlink()
    if with_indexes:
        victim.with_suffix(".index").unlink()
        victim.with_suffix(".timeindex").unlink()
    wrong: list[str] = []
    with LogStore(w.root) as store:
        log = store.partition(TOPIC, 0)
        if log.next_offset != w.end:
            wrong.append(f"next_offset {log.next_offset}, expected {w.end}")
        for o in [*range(lo - 1, hi + 1), 0]:
            for how in READS:
                try:
                    got = read_as(log, o, how)
                except CorruptRecordError as e:
                    if not (o < hi and (o >= lo or how != "one")):
                        wrong.append(f"offset {o} ({how}) outside the hole raised {e}")
                    elif f"{max(o, lo)}..{hi - 1}" not in str(e):
                        wrong.append(f"offset {o} ({how}): the error does not name offsets {max(o, lo)}..{hi - 1}: {e}")
                    continue
                if lo <= o < hi or (how != "one" and o < lo and got.offsets[-1] >= hi):
                    wrong.append(f"offset {o} ({how}) read {got.offsets[:4]} across the hole")
                elif any(w.values[k] != v for k, v in zip(got.offsets, got.values, strict=True)):
                    wrong.append(f"offset {o} ({how}) read wrong records")
        if not any(f"{lo}..{hi - 1}" in p.what for p in log.verify()):
            wrong.append(f"verify did not report the missing offsets {lo}..{hi - 1}: {log.verify()}")
        if store.append(TOPIC, 0, [b"next"]).first_offset != w.end:
            wrong.append("the next append was renumbered")
    campaign("S09").add(iterations=1, faults=1, anomalies=len(wrong))
    assert not wrong, "\n".join(wrong)


# --- S32: a newer format ----------------------------------------------------------------------------


def test_s32_store_of_a_newer_format_version_is_refused_untouched(scratch: Path, campaign: Any) -> None:
    """S32: logstore.json at format version current+1: opening is refused with an error naming the
    file, the version found and the version supported, and no file changes (not even the partition
    data). (tests/test_store.py covers the bare refusal.)"""
    w = build(scratch / "s", [2] * 4, config={}, clean=False)
    meta = w.root / "logstore.json"
    doc = json.loads(meta.read_text())
    doc["format_version"] += 1
    meta.write_text(json.dumps(doc))
    before = tree_hashes(w.root)
    wrong = []
    try:
        LogStore(w.root).close()
        wrong.append("opened")
    except StoreFormatError as e:
        for part in ("logstore.json", f"version {doc['format_version']}", f"up to {doc['format_version'] - 1}"):
            if part not in str(e):
                wrong.append(f"the error does not say {part!r}: {e}")
    if tree_hashes(w.root) != before:
        wrong.append("files changed")
    campaign("S32").add(iterations=1, faults=1, anomalies=len(wrong))
    assert not wrong, "\n".join(wrong)


def _future_batch(base_offset: int, magic: int = 3, value: bytes = b"from the future") -> bytes:
    """A batch framed as Kafka frames every version (baseOffset, length, epoch, magic at byte 16)
    with ``magic`` and a CRC over the rest, as a newer format might write."""
    b = bytearray(build_batch([value], timestamps=BASE_TS + 10**6))
    b[0:8] = base_offset.to_bytes(8, "big")
    b[16] = magic
    b[17:21] = crc32c(bytes(b[21:])).to_bytes(4, "big")
    return bytes(b)


@pytest.mark.parametrize("where", ["tail", "new-segment", "tail-clean", "before-valid"])
def test_s32_unknown_batch_magic_is_refused_not_truncated(scratch: Path, campaign: Any, where: str) -> None:
    """S32: a whole batch with magic 3 at the expected next offset, at the tail of the active segment
    (after a crash, or after a clean close), as the first batch of a new segment, or followed by
    valid magic-2 batches: opening refuses with a StoreFormatError naming the file, the byte
    position, the magic found and the magic supported, and no .log file or store metadata changes:
    it is not cut as a torn tail. Where the refusal comes from the segment being scanned first, no
    file at all changes; where earlier segments were recovered first (a clean close whose marker
    no longer matches, a new segment), their index files, which recovery always rebuilds, may be
    rewritten before the refusal."""
    w = build(scratch / "s", [2] * 6, config={"segment.bytes": 500}, clean=where == "tail-clean")
    active = w.segments[-1]
    if where == "new-segment":
        seg, position = active.parent / f"{w.end:020d}.log", 0
        seg.write_bytes(_future_batch(w.end))
    else:
        seg, position = active, active.stat().st_size
        extra = _future_batch(w.end)
        if where == "before-valid":
            extra += _future_batch(w.end + 1, magic=2)
        with open(seg, "ab") as f:
            f.write(extra)
    kept = None if where in ("tail", "before-valid") else (".log", ".json", "checkpoint", "metadata")
    before = tree_hashes(w.root, kept)
    wrong: list[str] = []
    with LogStore(w.root) as store:
        try:
            log = store.partition(TOPIC, 0)
            wrong.append(f"opened, next_offset {log.next_offset}: {log.load_report}")
        except StoreFormatError as e:
            for part in (str(seg), f"byte {position}", "magic 3", "magic 2"):
                if part not in str(e):
                    wrong.append(f"the error does not say {part!r}: {e}")
            if (getattr(e, "path", None), getattr(e, "position", None)) != (str(seg), position):
                wrong.append(f"error .path/.position {getattr(e, 'path', None)}:{getattr(e, 'position', None)}")
        except LogStoreError as e:
            wrong.append(f"refused as damage, not as a newer format: {e!r}")
    if tree_hashes(w.root, kept) != before:
        wrong.append("files changed")
    campaign("S32").add(iterations=1, faults=1, anomalies=len(wrong))
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "tail",
    ["wrong-offset", "cut-short", "magic-0"],
)
def test_s32_garbage_that_looks_like_a_newer_batch_is_still_cut(scratch: Path, campaign: Any, tail: str) -> None:
    """S32 beside S04: the newer-format rule needs all of magic > 2, the expected next offset and a
    length that fits the file. A magic-3 batch at another offset, one cut short by the end of the
    file, or a batch with magic 0 is a torn tail and is cut."""
    w = build(scratch / "s", [2] * 6, config={}, clean=False)
    seg = w.segments[-1]
    size = seg.stat().st_size
    extra = {
        "wrong-offset": _future_batch(w.end + 7),
        "cut-short": _future_batch(w.end)[:-5],
        "magic-0": _future_batch(w.end, magic=0),
    }[tail]
    with open(seg, "ab") as f:
        f.write(extra)
    wrong: list[str] = []
    with LogStore(w.root) as store:
        log = store.partition(TOPIC, 0)
        wrong += check_prefix(store, w, w.end)
        if seg.stat().st_size != size or [t.valid_size for t in log.load_report.truncations] != [size]:
            wrong.append(f"not cut at {size}: {log.load_report}")
    campaign("S32").add(iterations=1, faults=1, anomalies=len(wrong))
    assert not wrong, "\n".join(wrong)


# --- regressions: bugs these campaigns found --------------------------------------------------------


def _sealed(scratch: Path, **config: Any) -> Written:
    """Three segments of four two-record batches, closed cleanly (two sealed segments)."""
    return build(scratch / "s", [2] * 12, config={"index.interval.bytes": 100, **config}, clean=True, roll_at=(4, 8))


def _patch(path: Path, position: int, raw: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        f.write(raw)


def test_regression_damaged_base_offset_read_as_other_offsets(scratch: Path) -> None:
    """S05 found: the base offset is not covered by the CRC, and a lookup (read_records with
    max_records=1) trusted any magic-2 header, so a base offset one lower or higher in a sealed
    segment returned other records under the asked-for offsets, with no error."""
    w = _sealed(scratch)
    bounds = batches_of(w.segments[1])
    start, _, h = bounds[1]
    for bit in (0, 1):
        raw = bytearray(w.segments[1].read_bytes())
        raw[start + 7] ^= 1 << bit
        d = copy_store(w.root, scratch / "w")
        w.at(d, w.segments[1]).write_bytes(raw)
        with LogStore(d) as store:
            for o in range(h.base_offset, h.next_offset):
                with pytest.raises(CorruptRecordError):
                    store.read(TOPIC, 0, o, max_records=1)


def test_regression_missing_segment_reads_skip_its_offsets_silently(scratch: Path) -> None:
    """S09 found: with a middle segment's files gone, reading from an offset in it returned the next
    segment's records (offsets 4..7 skipped without an error), and verify found nothing."""
    w = _sealed(scratch)
    lo, hi = 8, 16  # segment 1 holds offsets 8..15
    assert batches_of(w.segments[1])[0][2].base_offset == lo
    w.segments[1].unlink()
    with LogStore(w.root) as store:
        log = store.partition(TOPIC, 0)
        with pytest.raises(CorruptRecordError, match=f"offsets {lo}..{hi - 1} are missing"):
            log.read_records(lo)
        with pytest.raises(CorruptRecordError, match=f"offsets {lo}..{hi - 1} are missing"):
            log.read_records(lo - 1)  # reading across the hole
        assert any(f"offsets {lo}..{hi - 1} are missing" in p.what for p in log.verify())
        assert log.next_offset == w.end


def test_regression_stray_file_named_like_a_segment_renumbers_the_log(scratch: Path) -> None:
    """S08 found: a garbage file named 00000000000000000999.log was recovered as an empty active
    segment: the log end jumped from 24 to 999 (offsets renumbered) and the file was cut to 0."""
    w = _sealed(scratch)
    junk = w.segments[0].parent / "00000000000000000999.log"
    junk.write_bytes(b"\x07" * 500)
    with LogStore(w.root) as store, pytest.raises(CorruptLogError, match=f"offsets {w.end}..998 are missing"):
        store.partition(TOPIC, 0)
    assert junk.read_bytes() == b"\x07" * 500


def test_regression_unknown_magic_batch_cut_as_a_torn_tail(scratch: Path) -> None:
    """S32 found: a whole magic-3 batch at the log's next offset was cut as a torn write."""
    w = build(scratch / "s", [2] * 3, config={}, clean=False)
    with open(w.segments[-1], "ab") as f:
        f.write(_future_batch(w.end))
    size = w.segments[-1].stat().st_size
    with LogStore(w.root) as store, pytest.raises(StoreFormatError, match="magic 3"):
        store.partition(TOPIC, 0)
    assert w.segments[-1].stat().st_size == size


def test_regression_newer_store_version_error_does_not_name_the_file(scratch: Path) -> None:
    """S32 found: the refusal named the store directory but not the file holding the version."""
    w = build(scratch / "s", [1], config={}, clean=True)
    meta = w.root / "logstore.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 99}))
    with pytest.raises(StoreFormatError, match=r"logstore\.json"):
        LogStore(w.root)


def _largest_pread(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every LogSegment.pread size; refuse (AssertionError) any above 64 MiB."""
    from logstore.storage.segment import LogSegment

    sizes: list[int] = []
    real = LogSegment.pread

    def pread(self: LogSegment, size: int, position: int) -> bytes:
        sizes.append(size)
        assert size <= 64 << 20, f"pread of {size} bytes"
        return real(self, size, position)

    monkeypatch.setattr(LogSegment, "pread", pread)
    return sizes


def test_regression_read_of_a_2gib_length_allocates_2gib(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """S06 found: a lookup of an offset whose batch length claims 0x7fffffff read that many bytes
    (MemoryError under a 512 MiB address-space limit) instead of reporting damage."""
    w = _sealed(scratch)
    start, _, h = batches_of(w.segments[0])[1]
    _patch(w.segments[0], start + 8, (0x7FFFFFFF).to_bytes(4, "big"))
    sizes = _largest_pread(monkeypatch)
    with LogStore(w.root) as store, pytest.raises(CorruptRecordError):
        store.read(TOPIC, 0, h.base_offset, max_records=1)
    assert max(sizes) <= 1 << 20


def test_regression_recovery_reads_the_whole_rest_of_a_damaged_segment(
    scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S06 found: after mid-file damage in the active segment, recovery read everything after it
    in one pread (looking for a valid batch), so memory grew with the segment's size."""
    w = build(scratch / "s", [1] * 30, config={}, clean=False, pad=100 * 1024)  # ~3 MiB
    start = batches_of(w.segments[-1])[1][0]
    _patch(w.segments[-1], start + 8, (-1).to_bytes(4, "big", signed=True))
    sizes = _largest_pread(monkeypatch)
    with LogStore(w.root) as store, pytest.raises(CorruptLogError):
        store.partition(TOPIC, 0)
    assert max(sizes) <= 1 << 20


def test_regression_damaged_sealed_time_index_gives_wrong_times(scratch: Path) -> None:
    """S07 found: a sealed segment's time index was trusted as it was. Empty, it made
    offset_for_time skip the segment (answering 8 for the first record, 0); deleted, reads raised
    StaleSegmentError; cut to a partial entry, CorruptIndexError."""
    w = _sealed(scratch)
    tidx = w.segments[0].with_suffix(".timeindex")
    for damage in ("empty", "deleted", "partial"):
        d = copy_store(w.root, scratch / "w")
        target = w.at(d, tidx)
        if damage == "empty":
            target.write_bytes(b"")
        elif damage == "deleted":
            target.unlink()
        else:
            target.write_bytes(tidx.read_bytes()[:-3])
        with LogStore(d) as store:
            assert store.offset_for_time(TOPIC, 0, BASE_TS - 1) == OffsetAndTimestamp(0, ts_of(0)), damage
            assert store.read(TOPIC, 0, 3, max_records=1).offsets == [3]


def test_regression_recover_truncate_damaged_gives_up_when_opening_finds_damage(scratch: Path) -> None:
    """Found with S05/S06: when the automatic recovery on opening refused damage (here a CRC flip
    before valid batches in the active segment after a crash), recover(truncate_damaged=True)
    returned that error instead of cutting: the documented repair could not run."""
    w = build(scratch / "s", [2] * 6, config={}, clean=False)
    start, _, h = batches_of(w.segments[-1])[2]
    _patch(w.segments[-1], start + 30, b"\xff")
    with LogStore(w.root) as store:
        with pytest.raises(CorruptLogError):
            store.partition(TOPIC, 0)
        (result,) = store.recover(TOPIC, truncate_damaged=True)
        assert result.error is None
        assert store.partition(TOPIC, 0).next_offset == h.base_offset
    assert w.segments[-1].stat().st_size == start


def test_regression_verify_misses_a_negative_first_base_offset(scratch: Path) -> None:
    """S05 found: verify compared a batch only with the one before it, so the very first batch's
    base offset flipped negative (or any batch starting past the previous one's end) passed."""
    w = _sealed(scratch)
    _patch(w.segments[0], 0, bytes([0x80]))
    with LogStore(w.root) as store:
        problems = store.verify()
    assert problems and (problems[0].path, problems[0].position) == (str(w.segments[0]), 0)


def test_regression_offset_for_time_loops_on_a_zero_size_header(scratch: Path) -> None:
    """Found reading the time-lookup walk: it stepped from header to header by the length field
    unchecked, so a batch length of -12 (size 0) in a sealed segment looped forever."""
    w = build(scratch / "s", [1] * 8, config={"index.interval.bytes": 1 << 20}, clean=True, roll_at=(4,))
    start = batches_of(w.segments[0])[2][0]
    _patch(w.segments[0], start + 8, (-12).to_bytes(4, "big", signed=True))
    with LogStore(w.root) as store, deadline(5), pytest.raises(CorruptRecordError):
        store.offset_for_time(TOPIC, 0, ts_of(3) + 1)
