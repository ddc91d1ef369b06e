"""Offset and time indexes: byte layout, lookup against a bisect oracle, trimming, reloading."""

from __future__ import annotations

import bisect
import os

from hypothesis import example, given, settings
from hypothesis import strategies as st

from logstore.storage.index import OffsetIndex, TimeIndex


def test_offset_index_entry_bytes_match_kafka(tmp_path):
    # Fact sheet: base 100, offset 150 at position 4133 -> 00000032 00001025
    idx = OffsetIndex(str(tmp_path / "x.index"), 100, 4096, active=True, create=True)
    idx.append(150, 4133)
    idx.seal()
    assert (tmp_path / "x.index").read_bytes() == bytes.fromhex("0000003200001025")


def test_time_index_entry_bytes_match_kafka(tmp_path):
    idx = TimeIndex(str(tmp_path / "x.timeindex"), 100, 4096, active=True, create=True)
    assert idx.maybe_append(1700000000123, 150)
    assert not idx.maybe_append(1700000000123, 151)  # only when the timestamp grew
    idx.seal()
    assert (tmp_path / "x.timeindex").read_bytes() == bytes.fromhex("0000018bcfe5687b00000032")


def test_active_index_is_preallocated_and_trimmed_on_seal(tmp_path):
    path = tmp_path / "0.index"
    idx = OffsetIndex(str(path), 0, 8192, active=True, create=True)
    assert path.stat().st_size == 8192
    for i in range(1, 11):
        idx.append(i * 10, i * 5000)
    idx.seal()
    assert path.stat().st_size == 80
    again = OffsetIndex(str(path), 0, 8192, active=False)
    assert again.entries == 10
    assert again.lookup(55) == (50, 25000)


def test_untrimmed_index_counts_only_written_entries(tmp_path):
    # A crash leaves the preallocated zeros behind: they are not entries.
    path = tmp_path / "0.index"
    idx = OffsetIndex(str(path), 0, 8192, active=True, create=True)
    for i in range(1, 6):
        idx.append(i, i * 100)
    idx.close()
    assert path.stat().st_size == 8192
    assert OffsetIndex(str(path), 0, 8192, active=True, create=True).entries == 5


def test_time_index_reserves_last_slot(tmp_path):
    idx = TimeIndex(str(tmp_path / "t.timeindex"), 0, 12 * 4, active=True, create=True)
    for i in range(3):
        assert idx.maybe_append(1000 + i, i)
    assert idx.is_full()
    assert idx.maybe_append(5000, 10, skip_full_check=True)  # the final entry on roll
    assert idx.entries == 4


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=1, max_value=5000), min_size=0, max_size=700),
    probes=st.lists(st.integers(min_value=-10, max_value=4_000_000), min_size=1, max_size=40),
    base=st.integers(min_value=0, max_value=10**12),
)
@example(gaps=[1, 2, 3] * 200, probes=[-1, 0, 1, 2, 3, 600, 601, 1199, 1200, 1201, 10**6], base=7)
def test_offset_lookup_matches_bisect_oracle(tmp_path_factory, gaps, probes, base):
    # Up to 700 entries: a sealed index of more than 512 (4 KiB) is searched through its map,
    # a smaller one through one read; the active one always through its map.
    path = str(tmp_path_factory.mktemp("idx") / "o.index")
    idx = OffsetIndex(path, base, 1 << 16, active=True, create=True)
    offsets, positions = [], []
    off, pos = base, 0
    for g in gaps:
        off += g
        pos += g * 7 + 1
        idx.append(off, pos)
        offsets.append(off)
        positions.append(pos)
    for probe in probes:
        target = base + probe
        i = bisect.bisect_right(offsets, target) - 1
        expected = (offsets[i], positions[i]) if i >= 0 else (base, 0)
        assert idx.lookup(target) == expected
    idx.seal()
    sealed = OffsetIndex(path, base, 1 << 16, active=False)
    for probe in probes:
        target = base + probe
        i = bisect.bisect_right(offsets, target) - 1
        assert sealed.lookup(target) == ((offsets[i], positions[i]) if i >= 0 else (base, 0))
    sealed.close()
    os.unlink(path)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 100)), min_size=0, max_size=200),
    probes=st.lists(st.integers(min_value=-5, max_value=10**9), min_size=1, max_size=30),
)
def test_time_lookup_matches_bisect_oracle(tmp_path_factory, steps, probes):
    path = str(tmp_path_factory.mktemp("tidx") / "t.timeindex")
    idx = TimeIndex(path, 0, 1 << 16, active=True, create=True)
    stamps, offsets = [], []
    ts, off = 1_600_000_000_000, 0
    for dt, doff in steps:
        ts += dt
        off += doff
        if idx.maybe_append(ts, off):
            stamps.append(ts)
            offsets.append(off)
    assert stamps == sorted(set(stamps))
    for probe in probes:
        target = 1_600_000_000_000 + probe
        i = bisect.bisect_right(stamps, target) - 1
        assert idx.lookup(target) == ((stamps[i], offsets[i]) if i >= 0 else (-1, 0))
    idx.close()
    os.unlink(path)


def test_truncate_to_removes_entries_at_and_after(tmp_path):
    idx = OffsetIndex(str(tmp_path / "o.index"), 0, 4096, active=True, create=True)
    for i in range(1, 11):
        idx.append(i * 10, i * 100)
    idx.truncate_to(55)
    assert idx.entries == 5
    assert idx.lookup(1000) == (50, 500)
    idx.truncate_to(50)
    assert idx.entries == 4
    idx.append(45, 450)  # appending again after truncation works
    assert idx.lookup(1000) == (45, 450)


def test_refresh_discovers_entries_written_by_another_handle(tmp_path):
    path = str(tmp_path / "o.index")
    writer = OffsetIndex(path, 0, 4096, active=True, create=True)
    reader = OffsetIndex(path, 0, 4096, active=False)
    assert reader.entries == 0
    for i in range(1, 100):
        writer.append(i, i * 10)
    reader.refresh(limit_position=500)  # only entries pointing below the validated size
    assert reader.entries == 49
    assert reader.lookup(30) == (30, 300)
