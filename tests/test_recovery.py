"""Recovery after an unclean shutdown: torn tails are cut, indexes rebuilt, damage is an error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from logstore import CorruptLogError, CorruptRecordError
from logstore.config import TopicConfig
from logstore.records import iter_batches
from logstore.storage.log import CLEAN_FILE, PartitionLog
from tests.conftest import crash

CFG = TopicConfig.from_layers({"index.interval.bytes": 200})


def make(d, batches=12, per=5, cfg=CFG):
    log = PartitionLog(str(d), "t", 0, cfg)
    for b in range(batches):
        log.append_records([f"{b}-{i}".encode() * (1 + b % 4) for i in range(per)], timestamps=1_700_000_000_000 + b)
    return log


def batch_bounds(path):
    data = Path(path).read_bytes()
    return [(pos, pos + h.size, h) for pos, h in iter_batches(data)]


def test_clean_reopen_does_not_recover(tmp_path):
    log = make(tmp_path / "t-0")
    log.close()
    again = PartitionLog(str(tmp_path / "t-0"), "t", 0, CFG)
    assert again.load_report.clean and again.load_report.recovered == []
    again.close()


def test_unclean_reopen_recovers_and_keeps_everything(tmp_path):
    log = make(tmp_path / "t-0")
    crash(log)
    again = PartitionLog(str(tmp_path / "t-0"), "t", 0, CFG)
    assert not again.load_report.clean and again.load_report.recovered
    assert again.load_report.truncations == []
    assert again.next_offset == 60
    assert again.read_records(0).offsets == list(range(60))
    again.close()


def test_cut_at_every_byte_of_the_last_two_batches(tmp_path):
    src = tmp_path / "src" / "t-0"
    log = make(src)
    name = os.path.basename(log.active_segment.log_path)
    log.close()
    os.unlink(src / CLEAN_FILE)  # as after a crash
    original = (src / name).read_bytes()
    bounds = batch_bounds(str(src / name))
    for cut in range(bounds[-2][0], len(original) + 1):
        d = tmp_path / f"cut{cut}" / "t-0"
        shutil.copytree(src, d)
        (d / name).write_bytes(original[:cut])
        again = PartitionLog(str(d), "t", 0, CFG)
        whole = [b for b in bounds if b[1] <= cut]
        expected_end = whole[-1][1]
        assert again.active_segment.size == expected_end
        assert again.next_offset == whole[-1][2].next_offset
        assert os.path.getsize(d / name) == expected_end
        cut_bytes = sum(t.truncated_bytes for t in again.load_report.truncations)
        assert cut_bytes == cut - expected_end
        assert again.read_records(0).offsets == list(range(again.next_offset))
        assert again.verify() == []
        # It stays appendable at the right offset.
        r = again.append_records([b"after"], timestamps=1_700_000_000_100)
        assert r.first_offset == whole[-1][2].next_offset
        again.close()
        shutil.rmtree(d.parent)


@pytest.mark.parametrize("tail", [b"\x00" * 5000, os.urandom(3000), b"\x00" * 7, os.urandom(61)])
def test_zero_filled_and_garbage_tails_are_cut(tmp_path, tail):
    d = tmp_path / "t-0"
    log = make(d)
    path = log.active_segment.log_path
    crash(log)
    size = os.path.getsize(path)
    with open(path, "ab") as f:
        f.write(tail)
    again = PartitionLog(str(d), "t", 0, CFG)
    assert os.path.getsize(path) == size
    assert again.next_offset == 60
    assert again.load_report.truncations[0].truncated_bytes == len(tail)
    again.close()


@pytest.mark.parametrize("damage", ["delete", "empty", "garbage", "zeros"])
@pytest.mark.parametrize("which", ["index", "timeindex"])
def test_damaged_index_files_are_rebuilt(tmp_path, damage, which):
    d = tmp_path / "t-0"
    log = make(d, batches=60)
    seg = log.active_segment
    before_index = seg.index.entries_list()
    before_time = seg.time_index.entries_list()
    assert before_index and before_time
    path = seg.index_path if which == "index" else seg.timeindex_path
    crash(log)
    if damage == "delete":
        os.unlink(path)
    elif damage == "empty":
        open(path, "wb").close()
    elif damage == "garbage":
        with open(path, "r+b") as f:
            f.write(os.urandom(96))
    else:
        with open(path, "r+b") as f:
            f.write(b"\x00" * 96)
    again = PartitionLog(str(d), "t", 0, CFG)
    seg = again.active_segment
    assert seg.index.entries_list() == before_index
    assert seg.time_index.entries_list()[: len(before_time)] == before_time
    for probe in (0, 7, 150, 299):
        assert again.read_records(probe, max_records=1).offsets == [probe]
    assert again.verify() == []
    again.close()


def test_bit_flip_in_the_middle_is_an_error_not_a_truncation(tmp_path):
    d = tmp_path / "t-0"
    log = make(d)
    path = log.active_segment.log_path
    crash(log)
    bounds = batch_bounds(path)
    victim = bounds[4]
    data = bytearray(Path(path).read_bytes())
    data[victim[0] + 70] ^= 0x10
    Path(path).write_bytes(data)
    with pytest.raises(CorruptLogError) as e:
        PartitionLog(str(d), "t", 0, CFG)
    assert e.value.path == path and e.value.position == victim[0]
    assert Path(path).read_bytes() == bytes(data)  # nothing was cut


def test_bit_flip_in_a_length_field_in_the_middle_is_an_error(tmp_path):
    d = tmp_path / "t-0"
    log = make(d)
    path = log.active_segment.log_path
    crash(log)
    bounds = batch_bounds(path)
    data = bytearray(Path(path).read_bytes())
    data[bounds[3][0] + 10] ^= 0x40  # batchLength now runs far
    Path(path).write_bytes(data)
    with pytest.raises(CorruptLogError):
        PartitionLog(str(d), "t", 0, CFG)
    assert os.path.getsize(path) == len(data)


def test_damage_below_the_recovery_point_is_found_by_verify_and_reads(tmp_path):
    d = tmp_path / "t-0"
    cfg = TopicConfig.from_layers({"segment.bytes": 1000, "index.interval.bytes": 200})
    log = make(d, batches=40, cfg=cfg)
    first = log.segments[0]
    log.close()
    bounds = batch_bounds(first.log_path)
    data = bytearray(Path(first.log_path).read_bytes())
    data[bounds[1][0] + 65] ^= 0xFF
    Path(first.log_path).write_bytes(data)
    again = PartitionLog(str(d), "t", 0, cfg)  # clean open: no rescan of sealed data
    problems = again.verify()
    assert len(problems) == 1 and problems[0].path == first.log_path and problems[0].position == bounds[1][0]
    assert "CRC" in problems[0].what
    with pytest.raises(CorruptRecordError) as e:
        again.read_records(bounds[1][2].base_offset)
    assert e.value.position == bounds[1][0]
    again.close()


def test_torn_sealed_segment_is_reported_and_the_repair_drops_later_segments(tmp_path):
    """A segment with a successor was fsynced when it was sealed, so a tear in it is damage, not a
    crash: the open refuses and changes nothing, even without a recovery point. The explicit
    repair (truncate_damaged) cuts it and drops the later segments, whose offsets no longer follow."""
    d = tmp_path / "t-0"
    cfg = TopicConfig.from_layers({"segment.bytes": 800})
    log = make(d, batches=30, cfg=cfg)
    segs = log.segments
    assert len(segs) >= 4
    crash(log)
    victim = segs[-3]
    size = os.path.getsize(victim.log_path)
    with open(victim.log_path, "r+b") as f:
        f.truncate(size - 5)
    with pytest.raises(CorruptLogError) as e:
        PartitionLog(str(d), "t", 0, cfg, recovery_point=0)
    assert e.value.path == victim.log_path and os.path.getsize(victim.log_path) == size - 5
    assert os.path.exists(segs[-1].log_path)
    again = PartitionLog(str(d), "t", 0, cfg, recovery_point=0, read_only=True)
    again.close()
    again = PartitionLog(str(d), "t", 0, cfg, recovery_point=10**9)  # opens: damage is below it
    again.repair(truncate_damaged=True)
    assert again.active_segment.base_offset == victim.base_offset
    assert len(again.segments) == len(segs) - 2
    assert not os.path.exists(segs[-1].log_path)
    assert again.read_records(0, max_bytes=1 << 20).offsets == list(range(again.next_offset))
    again.close()


def test_leftover_temp_and_deleted_files_are_removed(tmp_path):
    d = tmp_path / "t-0"
    log = make(d)
    crash(log)
    for name in ("00000000000000000000.log.deleted", "x.tmp", "00000000000000000005.index.cleaned"):
        (d / name).write_bytes(b"junk")
    (d / "00000000000000999999.index").write_bytes(b"")  # orphan index without a .log
    again = PartitionLog(str(d), "t", 0, CFG)
    names = set(os.listdir(d))
    assert not {n for n in names if n.endswith((".deleted", ".tmp", ".cleaned"))}
    assert "00000000000000999999.index" not in names
    again.close()


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=400), min_size=2, max_size=15),
    cut_back=st.integers(min_value=0, max_value=2000),
    garbage=st.binary(max_size=200),
)
@example(sizes=[1, 1], cut_back=1, garbage=b"\x00")  # garbage that restores the byte cut off
def test_recovery_keeps_exactly_the_whole_batches(tmp_path_factory, sizes, cut_back, garbage):
    d = tmp_path_factory.mktemp("r") / "t-0"
    log = PartitionLog(str(d), "t", 0, CFG)
    for i, n in enumerate(sizes):
        log.append_records([bytes([i % 251]) * n])
    path = log.active_segment.log_path
    crash(log)
    data = Path(path).read_bytes()
    cut = max(0, len(data) - cut_back)
    bounds = batch_bounds(path)
    damaged = data[:cut] + (garbage if not garbage.startswith(b"\x00" * 16) else b"")
    with open(path, "wb") as f:
        f.write(damaged)
    try:
        again = PartitionLog(str(d), "t", 0, CFG)
    except CorruptLogError:
        # Only legitimate when the garbage happens to hold a valid-looking batch: never here.
        raise
    # A batch survives when its bytes are intact: before the cut, or restored by garbage that
    # happens to equal what was cut (e.g. a record's final 0x00 headers count).
    keep = []
    for b in bounds:
        if damaged[b[0] : b[1]] != data[b[0] : b[1]]:
            break
        keep.append(b)
    assert again.next_offset == len(keep)
    vals = again.read_records(0).values if keep else []
    assert vals == [bytes([i % 251]) * sizes[i] for i in range(len(keep))]
    again.close()
