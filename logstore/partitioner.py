"""Key -> partition, compatible with Kafka's clients.

* ``murmur2`` (the default): Kafka's Java client and kafka-python: ``(murmur2(key) & 0x7fffffff) %
  partitions`` with seed 0x9747b28c. An empty key is hashed; a null key has no partition here (the
  producer picks one, sticky or round-robin).
* ``crc32``: librdkafka's ``consistent``: ``crc32(key) % partitions`` (zlib's CRC-32).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

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


def _murmur2_rows(rows: np.ndarray) -> np.ndarray:
    """murmur2 of each row of an (n, L) uint8 array, as uint32 (numpy's uint32 arithmetic wraps
    exactly as Java's int arithmetic does)."""
    n, length = rows.shape
    m = np.uint32(_M)
    h = np.full(n, (0x9747B28C ^ length) & _MASK, dtype=np.uint32)
    nwords = length // 4
    if nwords:
        words = np.ascontiguousarray(rows[:, : nwords * 4]).view("<u4")
        for j in range(nwords):
            k = words[:, j] * m
            k ^= k >> np.uint32(24)
            k *= m
            h *= m
            h ^= k
    tail = length % 4
    end = nwords * 4
    if tail == 3:
        h ^= rows[:, end + 2].astype(np.uint32) << np.uint32(16)
    if tail >= 2:
        h ^= rows[:, end + 1].astype(np.uint32) << np.uint32(8)
    if tail >= 1:
        h ^= rows[:, end].astype(np.uint32)
        h *= m
    h ^= h >> np.uint32(13)
    h *= m
    h ^= h >> np.uint32(15)
    return h


def murmur2_partitions(
    keys: Sequence[bytes | None],
    partitions: int,
    *,
    hash_null: bool = False,
    rng: np.random.Generator | None = None,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """``murmur2_partition`` of every key at once (numpy, grouped by key length), as int64.

    Null keys are hashed as empty when ``hash_null``; otherwise they are spread over the partitions
    in runs (the bulk path's equivalent of the sticky partitioner). ``lengths`` (int64, -1 for a
    null key) spares a caller that has the key lengths a pass over the keys.
    """
    n = len(keys)
    out = np.empty(n, dtype=np.int64)
    if lengths is not None:
        lens = lengths
    else:
        try:
            lens = np.fromiter(map(len, keys), np.int64, n)
        except TypeError:
            lens = np.fromiter((-1 if k is None else len(k) for k in keys), np.int64, n)
    if n and int(lens.min()) == int(lens.max()) > 0:
        # Keys of one length (the usual case): hash them all from one join, no grouping.
        length = int(lens[0])
        rows = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(n, length)  # type: ignore[arg-type]
        return (_murmur2_rows(rows) & np.uint32(0x7FFFFFFF)).astype(np.int64) % partitions
    for length in np.unique(lens).tolist():
        idx = np.flatnonzero(lens == length)
        if length < 0 and not hash_null:
            rng = rng or np.random.default_rng()
            start = int(rng.integers(partitions))
            out[idx] = (np.arange(len(idx)) // 128 + start) % partitions
            continue
        if length <= 0:
            out[idx] = murmur2_partition(b"", partitions)
            continue
        il = idx.tolist()
        blob = b"".join([keys[i] for i in il])  # type: ignore[misc]
        rows = np.frombuffer(blob, dtype=np.uint8).reshape(len(il), length)
        out[idx] = (_murmur2_rows(rows) & np.uint32(0x7FFFFFFF)).astype(np.int64) % partitions
    return out
