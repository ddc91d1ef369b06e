"""Key -> partition, compatible with Kafka's clients.

* ``murmur2`` (the default): Kafka's Java client and kafka-python: ``(murmur2(key) & 0x7fffffff) %
  partitions`` with seed 0x9747b28c. An empty key is hashed; a null key has no partition here (the
  producer picks one, sticky or round-robin).
* ``crc32``: librdkafka's ``consistent``: ``crc32(key) % partitions`` (zlib's CRC-32).
"""

from __future__ import annotations

import zlib

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` as a signed int32 (``Utils.murmur2`` in the Java client)."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    if tail == 3:
        h ^= data[end + 2] << 16
    if tail >= 2:
        h ^= data[end + 1] << 8
    if tail >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's Java client picks for ``key``: ``toPositive(murmur2) % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's ``consistent`` partitioner: ``crc32(key) % partitions``."""
    return zlib.crc32(key) % partitions
