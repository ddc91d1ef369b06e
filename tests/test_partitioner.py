"""Partitioners against the Java client's and librdkafka's own test vectors (fact sheet section 8)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstore.partitioner import crc32_partition, murmur2, murmur2_partition, murmur2_partitions


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_kafka_murmur2_vectors(data, expected):
    assert murmur2(data) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"kafka", 0xD067CF64), (b"giberish123456789", 0x8F552B0C), (b"1234", 0x9FC97B14), (b"", 0x106E08D9)],
)
def test_librdkafka_murmur2_vectors(data, expected):
    assert murmur2(data) & 0xFFFFFFFF == expected


@pytest.mark.parametrize(
    ("key", "m3", "m6", "m10", "c3", "c6", "c10"),
    [
        (b"", 0, 3, 1, 0, 0, 0),
        (b"a", 1, 4, 4, 0, 3, 7),
        (b"key", 1, 1, 1, 1, 1, 7),
        (b"foobar", 0, 0, 6, 2, 5, 9),
        (b"user-42", 1, 4, 0, 1, 1, 5),
        (b"hello world", 1, 1, 9, 0, 3, 7),
    ],
)
def test_partition_table(key, m3, m6, m10, c3, c6, c10):
    assert [murmur2_partition(key, n) for n in (3, 6, 10)] == [m3, m6, m10]
    assert [crc32_partition(key, n) for n in (3, 6, 10)] == [c3, c6, c10]


@settings(max_examples=200, deadline=None)
@given(
    keys=st.one_of(
        st.lists(st.binary(min_size=0, max_size=40), max_size=60),
        st.integers(1, 24).flatmap(lambda n: st.lists(st.binary(min_size=n, max_size=n), min_size=1, max_size=60)),
    ),
    partitions=st.integers(1, 1000),
    give_lengths=st.booleans(),
)
def test_murmur2_partitions_matches_one_key_at_a_time(keys, partitions, give_lengths):
    # Mixed lengths take the grouped path; keys of one length the single-join path.
    lengths = np.array([len(k) for k in keys], np.int64) if give_lengths else None
    got = murmur2_partitions(keys, partitions, hash_null=True, lengths=lengths)
    assert got.tolist() == [murmur2_partition(k, partitions) for k in keys]


def test_murmur2_partitions_hashes_null_keys_as_empty_only_when_asked():
    keys = [b"a", None, b"bb", None]
    got = murmur2_partitions(keys, 7, hash_null=True)
    assert got.tolist() == [murmur2_partition(k or b"", 7) for k in keys]
    spread = murmur2_partitions(keys, 7, rng=np.random.default_rng(1))
    assert spread[0] == murmur2_partition(b"a", 7) and spread[2] == murmur2_partition(b"bb", 7)
    assert 0 <= spread[1] < 7 and 0 <= spread[3] < 7
