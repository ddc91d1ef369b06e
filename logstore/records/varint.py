"""Kafka's zigzag varints, one value at a time and a whole column at a time.

A varint is the zigzag of a signed value, ``(n << 1) ^ (n >> 63)``, written in base-128 groups, low
group first, the high bit of each byte meaning "more bytes follow". Kafka's ``varint`` holds an int32
and takes at most 5 bytes; ``varlong`` holds an int64 and takes at most 10. Every length inside a
record is such a *signed* varint (-1 = null).

The column functions serve the batch codec: :func:`varint_pieces` turns an array of values into a
list of encoded ``bytes`` through a lookup table (no per-value arithmetic in Python), and
:func:`decode_at` decodes one varint at each of many positions of a buffer with numpy.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

MAX_VARINT_BYTES = 5
MAX_VARLONG_BYTES = 10


def zigzag(value: int) -> int:
    """Map a signed int64 onto an unsigned one: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ..."""
    return ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF


def encode_unsigned(u: int) -> bytes:
    """Encode a non-negative integer as base-128 groups (no zigzag)."""
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def encode_varint(value: int) -> bytes:
    """Encode a signed int32 as a zigzag varint (1-5 bytes). Raises ValueError outside int32."""
    if not -0x80000000 <= value <= 0x7FFFFFFF:
        raise ValueError(f"varint value {value} does not fit in an int32")
    return encode_unsigned(zigzag(value))


def encode_varlong(value: int) -> bytes:
    """Encode a signed int64 as a zigzag varlong (1-10 bytes). Raises ValueError outside int64."""
    if not -0x8000000000000000 <= value <= 0x7FFFFFFFFFFFFFFF:
        raise ValueError(f"varlong value {value} does not fit in an int64")
    return encode_unsigned(zigzag(value))


def decode_varint(buf: bytes | memoryview, pos: int, max_bytes: int = MAX_VARINT_BYTES) -> tuple[int, int]:
    """Decode one zigzag varint at ``buf[pos]``; return ``(value, position after it)``.

    Raises ValueError when the varint is longer than ``max_bytes`` (5 for varint, 10 for varlong) or
    runs past the end of ``buf``.
    """
    result = 0
    shift = 0
    end = len(buf)
    for i in range(max_bytes):
        if pos + i >= end:
            raise ValueError(f"varint at byte {pos} runs past the end of its buffer")
        b = buf[pos + i]
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos + i + 1
        shift += 7
    raise ValueError(f"varint at byte {pos} is longer than {max_bytes} bytes")


def decode_varlong(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """Decode one zigzag varlong (at most 10 bytes); see :func:`decode_varint`."""
    return decode_varint(buf, pos, MAX_VARLONG_BYTES)


# --- columns --------------------------------------------------------------------------------------

#: Encoded bytes of every zigzag value below TABLE_SIZE, i.e. of signed values -8192..8191... wider:
#: index z holds the encoding of the unsigned zigzag value z, so signed n lives at index zigzag(n).
TABLE_SIZE = 1 << 16
TABLE: list[bytes] = [encode_unsigned(z) for z in range(TABLE_SIZE)]
#: The same with a zero byte in front: "headers count 0 of the previous record, then this length".
TABLE_AFTER_ZERO: list[bytes] = [b"\x00" + piece for piece in TABLE]


def zigzag_array(values: np.ndarray) -> np.ndarray:
    """Zigzag an int64 array into uint64."""
    v = values.astype(np.int64, copy=False)
    return ((v << 1) ^ (v >> 63)).view(np.uint64)


_SIZE_LIMITS = np.array([1 << bits for bits in range(7, 64, 7)], dtype=np.uint64)


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Encoded size in bytes of each signed value of an int64 array, as int64."""
    return np.searchsorted(_SIZE_LIMITS, zigzag_array(values), side="right").astype(np.int64) + 1


def varint_pieces(values: np.ndarray, table: list[bytes] = TABLE) -> list[bytes]:
    """Encode each signed value of an int64 array; return the list of ``bytes`` pieces.

    Values whose zigzag fits the lookup table cost one C-level table lookup; others fall back to
    :func:`encode_unsigned`, so any int64 is accepted.
    """
    n = len(values)
    if n == 0:
        return []
    z = zigzag_array(values)
    zl = z.tolist()
    if int(z.max()) < TABLE_SIZE:
        if n == 1:
            return [table[zl[0]]]
        return list(itemgetter(*zl)(table))
    prefix = table[0][:-1]  # b"\x00" for TABLE_AFTER_ZERO, b"" for TABLE
    return [table[u] if u < TABLE_SIZE else prefix + encode_unsigned(u) for u in zl]


_ONES = np.ones(0, dtype=np.int64)


def _ones(n: int) -> np.ndarray:
    global _ONES
    if len(_ONES) < n:
        _ONES = np.ones(max(n, 2 * len(_ONES), 1024), dtype=np.int64)
        _ONES.flags.writeable = False
    return _ONES[:n]


def decode_at(buf: np.ndarray, positions: np.ndarray, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode one zigzag varint at each of ``positions`` in the uint8 array ``buf``.

    Returns ``(values int64, sizes int64)``. Bytes are gathered one column at a time and only for the
    varints still going, so the usual 1-2 byte fields cost a few numpy calls per column. A varint
    running past the end of ``buf`` decodes from the bytes that are there (callers check that every
    field ends inside its record). Raises ValueError, naming the first bad position, when a varint
    is longer than ``max_bytes``.
    """
    n = len(positions)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    last = len(buf) - 1
    if int(positions[-1]) <= last and int(positions.max()) <= last:
        b = buf[positions]
    else:
        b = buf[np.minimum(positions, last)]
    if int(b.max()) < 0x80:
        # Every varint is one byte (the usual case for deltas and short lengths).
        v = b.astype(np.int64)
        return (v >> 1) ^ -(v & 1), _ones(n)
    if max_bytes >= 2:
        # At most two bytes (values below 8192): one more gather, no loop.
        nxt = positions + 1
        b1 = buf[np.minimum(nxt, last)] if int(nxt.max()) > last else buf[nxt]
        more = b >= 0x80
        if not (b1[more] >= 0x80).any():
            v = (b & 0x7F).astype(np.int64) | np.where(more, b1.astype(np.int64) << 7, 0)
            return (v >> 1) ^ -(v & 1), more.astype(np.int64) + 1
    z = (b & 0x7F).astype(np.uint64)
    sizes = np.ones(n, dtype=np.int64)
    going = np.flatnonzero(b >= 0x80)
    k = 1
    while len(going):
        if k == max_bytes:
            raise ValueError(f"varint at byte {int(positions[going[0]])} is longer than {max_bytes} bytes")
        b = buf[np.minimum(positions[going] + k, last)]
        z[going] |= (b & 0x7F).astype(np.uint64) << np.uint64(7 * k)
        sizes[going] += 1
        going = going[b >= 0x80]
        k += 1
    values = ((z >> np.uint64(1)) ^ (np.uint64(0) - (z & np.uint64(1)))).view(np.int64)
    return values, sizes
