"""Partitioners against the Java client's and librdkafka's own test vectors (fact sheet section 8)."""

from __future__ import annotations

import pytest

from logstore.partitioner import crc32_partition, murmur2, murmur2_partition


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
