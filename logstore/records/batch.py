"""Magic-2 record batches, byte-compatible with Kafka's DefaultRecordBatch.

A batch is a 61-byte header followed by its records (compressed as one stream when a codec is set)::

    off  field                 type    notes
      0  baseOffset            int64   offset of the record with offsetDelta 0 (the log assigns it)
      8  batchLength           int32   bytes after this field; the batch is batchLength + 12 bytes
     12  partitionLeaderEpoch  int32   -1 = none; not covered by the CRC
     16  magic                 int8    2
     17  crc                   uint32  CRC-32C of bytes [21, end), over the compressed bytes
     21  attributes            int16   bits 0-2 codec, 3 LogAppendTime, 4 transactional, 5 control
     23  lastOffsetDelta       int32   last record's offsetDelta
     27  baseTimestamp         int64   first record's timestamp (ms)
     35  maxTimestamp          int64   largest record timestamp, or the append time (LogAppendTime)
     43  producerId            int64   -1 = none
     51  producerEpoch         int16   -1 = none
     53  baseSequence          int32   -1 = none
     57  recordsCount          int32   never compressed
     61  records

Each record is ``length varint | attributes int8 (0) | timestampDelta varlong | offsetDelta varint |
keyLength varint | key | valueLength varint | value | headersCount varint | headers``, where a length
of -1 means null and each header is ``keyLength varint | utf-8 key | valueLength varint | value``.
All integers in the header are big-endian.

Encoding and decoding work a column at a time: a batch's records are built by one ``bytes.join``
over pieces looked up in tables, and parsed by numpy over the record positions, so the per-record
Python work is a few C-level list operations.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import crc32c as _crc32c
import numpy as np

from ..errors import CorruptRecordError
from . import compression
from .varint import (
    MAX_VARINT_BYTES,
    MAX_VARLONG_BYTES,
    TABLE,
    TABLE_AFTER_ZERO,
    TABLE_SIZE,
    decode_at,
    decode_varint,
    encode_varint,
    varint_pieces,
    varint_sizes,
)

crc32c = _crc32c.crc32c

HEADER = struct.Struct(
    ">"
    "q"  # baseOffset
    "i"  # batchLength
    "i"  # partitionLeaderEpoch
    "b"  # magic
    "I"  # crc
    "h"  # attributes
    "i"  # lastOffsetDelta
    "q"  # baseTimestamp
    "q"  # maxTimestamp
    "q"  # producerId
    "h"  # producerEpoch
    "i"  # baseSequence
    "i"  # recordsCount
)
RECORD_BATCH_OVERHEAD = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes batchLength does not count
MIN_BATCH_LENGTH = RECORD_BATCH_OVERHEAD - LOG_OVERHEAD  # 49
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAGIC = 2

TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_MASK = 0x10
CONTROL_MASK = 0x20
DELETE_HORIZON_MASK = 0x40

CREATE_TIME = "create"
LOG_APPEND_TIME = "log_append"

_BASE_OFFSET = struct.Struct(">q")
_MIN_RECORD_BODY = 6  # attributes, tsDelta, offsetDelta, keyLength, valueLength, headersCount


class BatchHeader(NamedTuple):
    """The 61-byte header of one batch, field by field (see the module docstring)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch takes on disk."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        """The offset after this batch (compaction can leave fewer records than this suggests)."""
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & compression.CODEC_MASK

    @property
    def timestamp_type(self) -> str:
        return LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_MASK else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_MASK)


class RecordColumns:
    """Decoded records of one or more batches, a column each (all lists of equal length).

    ``offsets`` and ``timestamps`` hold ints (ms); ``keys`` and ``values`` bytes or None;
    ``headers`` a tuple of ``(str, bytes | None)`` pairs per record; ``timestamp_types`` the
    per-record timestamp type ("create" or "log_append").
    """

    __slots__ = ("headers", "keys", "offsets", "timestamp_types", "timestamps", "values")

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.timestamps: list[int] = []
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.headers: list[tuple[tuple[str, bytes | None], ...]] = []
        self.timestamp_types: list[str] = []

    def __len__(self) -> int:
        return len(self.offsets)

    def extend(self, other: RecordColumns) -> None:
        """Append ``other``'s records."""
        for name in self.__slots__:
            getattr(self, name).extend(getattr(other, name))

    def __repr__(self) -> str:
        first = self.offsets[0] if self.offsets else None
        return f"RecordColumns({len(self)} records from offset {first})"


_EMPTY_I64 = np.zeros(0, np.int64)
_EMPTY_I64.flags.writeable = False
_EMPTY_BOOL = np.zeros(0, bool)
_EMPTY_BOOL.flags.writeable = False


_ARRAY_SLOTS = frozenset(
    ("data", "offsets", "timestamps", "log_append", "key_starts", "key_lengths", "value_starts", "value_lengths")
)


class RecordArrays:
    """Decoded records of one or more batches as numpy columns over one shared buffer: the bulk
    read form, with no object per record until one is asked for.

    ``offsets`` and ``timestamps`` (ms) are int64 arrays, ``log_append`` a bool array (True where
    the timestamp is the broker's append time). Record ``i``'s key is
    ``data[key_starts[i]:key_starts[i] + key_lengths[i]]``, None where the length is -1; values
    likewise. ``next_offset`` is where reading goes on after these records (past any control
    batches and compacted-away offsets they were read with); -1 when not known.
    """

    __slots__ = (
        "_headers",
        "_lists",
        "data",
        "key_lengths",
        "key_starts",
        "log_append",
        "next_offset",
        "offsets",
        "timestamps",
        "value_lengths",
        "value_starts",
    )

    def __init__(self, data: bytes = b"", next_offset: int = -1) -> None:
        self.data = data
        self.next_offset = next_offset
        self.offsets = self.timestamps = _EMPTY_I64
        self.key_starts = self.key_lengths = self.value_starts = self.value_lengths = _EMPTY_I64
        self.log_append = _EMPTY_BOOL
        self._headers: list[tuple[tuple[str, bytes | None], ...]] | None = None  # None: no record has any
        self._lists: RecordColumns | None = None  # the same records as lists, when made from them

    def __len__(self) -> int:
        return len(self._lists) if self._lists is not None else len(self.offsets)

    def __getitem__(self, sel: slice) -> RecordArrays:
        """The records in ``sel`` (a slice), sharing this object's buffer."""
        if not isinstance(sel, slice):
            raise TypeError("RecordArrays takes a slice; use key(i) / value(i) for one record")
        out = RecordArrays(self.data, self.next_offset)
        for name in (
            "offsets",
            "timestamps",
            "log_append",
            "key_starts",
            "key_lengths",
            "value_starts",
            "value_lengths",
        ):
            setattr(out, name, getattr(self, name)[sel])
        if self._headers is not None:
            out._headers = self._headers[sel]
        if self._lists is not None:
            lists = out._lists = RecordColumns()
            for name in RecordColumns.__slots__:
                setattr(lists, name, getattr(self._lists, name)[sel])
        stop = sel.indices(len(self))[1]
        if stop < len(self) and len(out):
            out.next_offset = int(out.offsets[-1]) + 1
        return out

    @classmethod
    def from_columns(cls, cols: RecordColumns) -> RecordArrays:
        """The records of ``cols`` as arrays; meant for a few records, as from a lookup. The numpy
        columns (and the shared buffer) are made on first use: a consumer that only hands the
        records out never pays for them. ``next_offset`` is one past the last record."""
        out = cls.__new__(cls)
        out._lists = cols
        out._headers = list(cols.headers) if any(cols.headers) else None
        out.next_offset = cols.offsets[-1] + 1 if len(cols) else -1
        return out

    def __getattr__(self, name: str) -> Any:
        # Only reached for a slot never set: the columns of a from_columns() result.
        lists = object.__getattribute__(self, "_lists")
        if lists is None or name not in _ARRAY_SLOTS:
            raise AttributeError(name)
        self._arrays_from(lists)
        return object.__getattribute__(self, name)

    def _arrays_from(self, cols: RecordColumns) -> None:
        n = len(cols)
        starts: list[list[int]] = [[], []]
        lengths: list[list[int]] = [[], []]
        pos = 0
        for side, items in enumerate((cols.keys, cols.values)):
            st, ln = starts[side], lengths[side]
            for item in items:
                st.append(pos)
                if item is None:
                    ln.append(-1)
                else:
                    ln.append(len(item))
                    pos += len(item)
        self.data = b"".join([k for k in cols.keys if k] + [v for v in cols.values if v])
        appended = [t == LOG_APPEND_TIME for t in cols.timestamp_types]
        flat = [*cols.offsets, *cols.timestamps, *starts[0], *lengths[0], *starts[1], *lengths[1], *appended]
        table = np.array(flat, np.int64).reshape(7, n)
        self.offsets, self.timestamps, self.key_starts, self.key_lengths = table[:4]
        self.value_starts, self.value_lengths = table[4:6]
        self.log_append = table[6] != 0

    def offsets_list(self) -> list[int]:
        """Every offset, as a list."""
        return list(self._lists.offsets) if self._lists is not None else self.offsets.tolist()

    def timestamps_list(self) -> list[int]:
        """Every timestamp (ms), as a list."""
        return list(self._lists.timestamps) if self._lists is not None else self.timestamps.tolist()

    def key(self, i: int) -> bytes | None:
        """Record ``i``'s key (None when null)."""
        n = int(self.key_lengths[i])
        return None if n < 0 else self.data[int(self.key_starts[i]) : int(self.key_starts[i]) + n]

    def value(self, i: int) -> bytes | None:
        """Record ``i``'s value (None when null)."""
        n = int(self.value_lengths[i])
        return None if n < 0 else self.data[int(self.value_starts[i]) : int(self.value_starts[i]) + n]

    def keys(self) -> list[bytes | None]:
        """Every key, as bytes or None."""
        if self._lists is not None:
            return list(self._lists.keys)
        return _slices(self.data, self.key_starts, self.key_lengths)

    def values(self) -> list[bytes | None]:
        """Every value, as bytes or None."""
        if self._lists is not None:
            return list(self._lists.values)
        return _slices(self.data, self.value_starts, self.value_lengths)

    def headers(self) -> list[tuple[tuple[str, bytes | None], ...]]:
        """Every record's headers: a tuple of ``(str, bytes | None)`` pairs each."""
        return list(self._headers) if self._headers is not None else [()] * len(self)

    @property
    def has_headers(self) -> bool:
        """Whether any record carries headers."""
        return self._headers is not None

    def timestamp_types(self) -> list[str]:
        """Every record's timestamp type, "create" or "log_append"."""
        n = len(self)
        if n == 0:
            return []
        if self._lists is not None:
            return list(self._lists.timestamp_types)
        if not self.log_append.any():
            return [CREATE_TIME] * n
        if self.log_append.all():
            return [LOG_APPEND_TIME] * n
        return np.where(self.log_append, LOG_APPEND_TIME, CREATE_TIME).tolist()

    def to_columns(self) -> RecordColumns:
        """The same records as Python lists (:class:`RecordColumns`)."""
        out = RecordColumns()
        out.offsets = self.offsets.tolist()
        out.timestamps = self.timestamps.tolist()
        out.timestamp_types = self.timestamp_types()
        out.keys = self.keys()
        out.values = self.values()
        out.headers = self.headers()
        return out

    def __repr__(self) -> str:
        first = int(self.offsets[0]) if len(self) else None
        return f"RecordArrays({len(self)} records from offset {first}, next offset {self.next_offset})"


# --- building -------------------------------------------------------------------------------------


def lengths_of(items: Sequence[bytes | None], what: str) -> np.ndarray:
    """Byte length of each item of a column of keys or values as int64, -1 for None. Raises
    TypeError naming the first item that is neither bytes-like nor None."""
    n = len(items)
    try:
        return np.fromiter(map(len, items), np.int64, n)
    except TypeError:
        pass
    lens = np.empty(n, np.int64)
    for i, item in enumerate(items):
        if item is None:
            lens[i] = -1
        elif isinstance(item, (bytes, bytearray, memoryview)):
            lens[i] = len(item)
        else:
            raise TypeError(f"record {what} {i} is {type(item).__name__}; expected bytes or None") from None
    return lens


def _lengths(
    items: Sequence[bytes | None], what: str, lens: np.ndarray | None = None
) -> tuple[int | None, np.ndarray | None, Sequence[bytes]]:
    """Lengths of a column of bytes (-1 for None; ``lens`` when the caller has them) and the
    column with None replaced by b"".

    Returns ``(constant, lengths, items)``: ``constant`` is the common length when every item has
    the same one (then ``lengths`` is None and no numpy work is needed), else None.
    """
    if lens is None:
        lens = lengths_of(items, what)
    elif len(lens) != len(items):
        raise ValueError(f"{len(lens)} {what} lengths for {len(items)} {what}s")
    lo, hi = int(lens.min()), int(lens.max())
    if lo < 0:
        items = [b"" if item is None else item for item in items]
    if lo == hi:
        return lo, None, items
    return None, lens, items


def _encode_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> bytes:
    if not headers:
        return b"\x00"
    parts = [encode_varint(len(headers))]
    for key, value in headers:
        kb = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        parts.append(encode_varint(len(kb)))
        parts.append(kb)
        if value is None:
            parts.append(b"\x01")
        else:
            if isinstance(value, str):
                value = value.encode("utf-8")
            parts.append(encode_varint(len(value)))
            parts.append(value)
    return b"".join(parts)


_OD_TABLES: dict[tuple[bytes, bytes], list[bytes]] = {}
_OD_SIZES = np.zeros(0, dtype=np.int64)


def _od_table(prefix: bytes, suffix: bytes, n: int) -> list[bytes]:
    """``prefix + varint(i) + suffix`` for offset deltas i < n, from a small cache of tables.

    Constant fields around the offset delta (attributes and a zero timestamp delta before it, a
    fixed key length, or a null key and a fixed value length after it) fuse into one piece per
    record this way, so ``bytes.join`` has fewer pieces to copy.
    """
    table = _OD_TABLES.get((prefix, suffix))
    if table is None or len(table) < n:
        size = max(1024, 1 << (n - 1).bit_length())
        table = [prefix + (TABLE[2 * i] if 2 * i < TABLE_SIZE else encode_varint(i)) + suffix for i in range(size)]
        if len(_OD_TABLES) >= 16:
            _OD_TABLES.pop(next(iter(_OD_TABLES)))
        _OD_TABLES[(prefix, suffix)] = table
    return table[:n] if len(table) > n else table


def _od_sizes(n: int) -> np.ndarray:
    """Encoded sizes of the offset deltas 0..n-1 (cached)."""
    global _OD_SIZES
    if len(_OD_SIZES) < n:
        _OD_SIZES = varint_sizes(np.arange(max(1024, 1 << (n - 1).bit_length()), dtype=np.int64))
    return _OD_SIZES[:n]


def encode_records(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None = None,
    timestamp_deltas: np.ndarray | None = None,
    headers: Sequence[Sequence[tuple[str, bytes | None]] | None] | None = None,
    *,
    value_lengths: np.ndarray | None = None,
    key_lengths: np.ndarray | None = None,
) -> bytes:
    """Encode the records section of a batch (uncompressed): record i gets offsetDelta i.

    ``timestamp_deltas`` is an int64 array (ms after the batch's base timestamp), None for all 0.
    ``value_lengths`` / ``key_lengths`` (int64, -1 for None, as :func:`lengths_of` gives) spare a
    caller that has them a second pass over the columns. Raises TypeError when a key or value is
    not bytes-like or None.

    Each record is assembled from a few pieces looked up in tables (lengths, deltas) and the
    caller's own key and value objects; one ``bytes.join`` builds the whole section.
    """
    n = len(values)
    if n == 0:
        return b""
    vconst, vlens, values = _lengths(values, "value", value_lengths)
    if keys is not None and len(keys) != n:
        raise ValueError(f"{len(keys)} keys for {n} values; pass one key (or None) per value")
    if headers is not None and not any(headers):
        headers = None
    if headers is not None and len(headers) != n:
        raise ValueError(f"{len(headers)} header lists for {n} values; pass one (or None) per value")

    body = _od_sizes(n) + 1  # offset delta and the attributes byte
    const = 0  # bytes every record has besides those counted in `body`
    cols: list[Sequence[bytes]] = []
    # timestamp delta, after the attributes byte (0)
    if timestamp_deltas is None:
        od_prefix = b"\x00\x00"
        const += 1
        ts_col = None
    else:
        od_prefix = b""
        ts_col = varint_pieces(timestamp_deltas, TABLE_AFTER_ZERO)
        body = body + varint_sizes(timestamp_deltas)
    # key length and key
    key_col: Sequence[bytes] | None = None
    klen_col: Sequence[bytes] | None = None
    if keys is None:
        od_suffix = b"\x01"
        const += 1
    else:
        kconst, klens, key_col = _lengths(keys, "key", key_lengths)
        if kconst is not None:
            od_suffix = encode_varint(kconst)
            const += len(od_suffix) + max(kconst, 0)
        else:
            od_suffix = b""
            assert klens is not None
            klen_col = varint_pieces(klens)
            body += np.maximum(klens, 0) + varint_sizes(klens)
    # value length: fused into the offset-delta piece when nothing varies in between
    vlen_col: Sequence[bytes] | None = None
    if vconst is not None:
        vpiece = encode_varint(vconst)
        const += len(vpiece) + max(vconst, 0)
        if keys is None:
            od_suffix += vpiece
        else:
            vlen_col = [vpiece] * n
    else:
        assert vlens is not None
        vlen_col = varint_pieces(vlens)
        body += np.maximum(vlens, 0) + varint_sizes(vlens)
    # headers: without any, the final 0 (no headers) of record i rides in front of record i+1's length
    hdr_col = None
    if headers is None:
        const += 1
    else:
        hdr_col = [_encode_headers(h) for h in headers]
        body += np.array(list(map(len, hdr_col)), dtype=np.int64)
    body += const
    if hdr_col is None:
        len_col = varint_pieces(body, TABLE_AFTER_ZERO)
        len_col[0] = len_col[0][1:]
    else:
        len_col = varint_pieces(body)

    cols.append(len_col)
    if ts_col is not None:
        cols.append(ts_col)
    cols.append(_od_table(od_prefix, od_suffix, n))
    if klen_col is not None:
        cols.append(klen_col)
    if key_col is not None:
        cols.append(key_col)
    if vlen_col is not None:
        cols.append(vlen_col)
    cols.append(values)
    if hdr_col is not None:
        cols.append(hdr_col)
    k = len(cols)
    parts: list[bytes | None] = [None] * (k * n)
    for j, col in enumerate(cols):
        parts[j::k] = col
    if hdr_col is None:
        parts.append(b"\x00")
    try:
        return b"".join(parts)  # type: ignore[arg-type]
    except TypeError as e:
        raise TypeError(f"record keys and values must be bytes or None: {e}") from None


def _timestamps(
    n: int, timestamps: int | Sequence[int] | np.ndarray | None, now_ms: int | None
) -> tuple[int, int, np.ndarray | None]:
    """``(base timestamp, max timestamp, deltas or None when all equal)`` of a batch."""
    if timestamps is None or isinstance(timestamps, (int, np.integer)):
        ts = now_ms if timestamps is None else int(timestamps)
        if ts is None:
            import time

            ts = time.time_ns() // 1_000_000
        return ts, ts, None
    arr = np.asarray(timestamps, dtype=np.int64)
    if arr.shape != (n,):
        raise ValueError(f"{arr.size} timestamps for {n} values; pass one per value or one for all")
    base = int(arr[0])
    deltas = arr - base
    return base, int(arr.max()), (deltas if deltas.any() else None)


def build_batch(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None = None,
    *,
    timestamps: int | Sequence[int] | np.ndarray | None = None,
    headers: Sequence[Sequence[tuple[str, bytes | None]] | None] | None = None,
    base_offset: int = 0,
    compression_type: str | int = "none",
    timestamp_type: str = CREATE_TIME,
    now_ms: int | None = None,
    partition_leader_epoch: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
) -> bytes:
    """Build one magic-2 record batch holding ``values`` (with ``keys`` and ``headers``, if given).

    Timestamps are ms since the epoch: one int for every record, a sequence (one per record), or None
    for ``now_ms`` (default: the wall clock). With ``timestamp_type="log_append"`` the batch is marked
    LogAppendTime and its maxTimestamp is ``now_ms``. The batch starts at ``base_offset``; a log
    overwrites that on append. Raises ValueError for an empty batch or mismatched column lengths,
    TypeError for a key or value that is not bytes or None, UnsupportedCodecError for a codec whose
    package is missing.
    """
    n = len(values)
    if n == 0:
        raise ValueError("a record batch needs at least one record")
    codec = compression.codec_id(compression_type)
    base_ts, max_ts, deltas = _timestamps(n, timestamps, now_ms)
    if base_ts < 0 and base_ts != -1:
        raise ValueError(f"timestamp {base_ts} is negative; use ms since the epoch, or -1 for none")
    records = encode_records(values, keys, deltas, headers)
    return frame_batch(
        records,
        n,
        base_ts,
        max_ts,
        compression_type=codec,
        timestamp_type=timestamp_type,
        now_ms=now_ms,
        base_offset=base_offset,
        partition_leader_epoch=partition_leader_epoch,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        is_transactional=is_transactional,
    )


def frame_batch(
    records: bytes,
    count: int,
    base_timestamp: int,
    max_timestamp: int,
    *,
    compression_type: str | int = "none",
    timestamp_type: str = CREATE_TIME,
    now_ms: int | None = None,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    is_transactional: bool = False,
) -> bytes:
    """Compress an encoded records section (:func:`encode_records`) and put the 61-byte header
    and CRC-32C on it. Split from :func:`build_batch` so that encoding (Python) and compressing
    (lz4 releases the GIL) can run in different threads."""
    codec = compression.codec_id(compression_type)
    payload = compression.compress(codec, records) if codec else records
    attributes = codec
    max_ts = max_timestamp
    n = count
    base_ts = base_timestamp
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
        if now_ms is None:
            import time

            now_ms = time.time_ns() // 1_000_000
        max_ts = now_ms
    elif timestamp_type != CREATE_TIME:
        raise ValueError(f"timestamp_type {timestamp_type!r}: use 'create' or 'log_append'")
    if is_transactional:
        attributes |= TRANSACTIONAL_MASK
    header = HEADER.pack(
        base_offset,
        RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + len(payload),
        partition_leader_epoch,
        MAGIC,
        0,
        attributes,
        n - 1,
        base_ts,
        max_ts,
        producer_id,
        producer_epoch,
        base_sequence,
        n,
    )
    crc = crc32c(payload, crc32c(memoryview(header)[ATTRIBUTES_OFFSET:]))
    return b"".join((header[:CRC_OFFSET], crc.to_bytes(4, "big"), header[ATTRIBUTES_OFFSET:], payload))


def set_base_offset(batch: bytearray | memoryview, base_offset: int) -> None:
    """Overwrite a batch's baseOffset in place (the CRC does not cover it)."""
    _BASE_OFFSET.pack_into(batch, 0, base_offset)


# --- reading --------------------------------------------------------------------------------------


def read_header(buf: bytes | memoryview, pos: int = 0) -> BatchHeader:
    """Parse the 61-byte header at ``buf[pos]`` (no validation; see :func:`check_batch`)."""
    return BatchHeader._make(HEADER.unpack_from(buf, pos))


def check_batch(
    buf: bytes | memoryview,
    pos: int,
    header: BatchHeader,
    path: str | None = None,
    file_position: int | None = None,
) -> None:
    """Check a batch's magic, size and CRC-32C; raise CorruptRecordError naming ``path`` and the
    byte position (``file_position``, default ``pos``) otherwise."""
    where = pos if file_position is None else file_position
    if header.magic != MAGIC:
        raise CorruptRecordError(f"record batch with magic {header.magic} (only magic 2 is supported)", path, where)
    if header.batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(f"record batch length {header.batch_length} is below the minimum 49", path, where)
    end = pos + header.size
    if end > len(buf):
        raise CorruptRecordError(
            f"record batch of {header.size} bytes is cut off after {len(buf) - pos} bytes", path, where
        )
    actual = crc32c(memoryview(buf)[pos + ATTRIBUTES_OFFSET : end])
    if actual != header.crc:
        raise CorruptRecordError(
            f"record batch CRC-32C mismatch (stored {header.crc:#010x}, computed {actual:#010x})", path, where
        )


def iter_batches(buf: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
    """Yield ``(position, header)`` for each whole batch in ``buf[start:end]``, without checking CRCs.

    Stops quietly at a tail too short for a header or a batch whose declared size runs past ``end``
    (a torn write); the caller compares the last position reached with ``end``.
    """
    end = len(buf) if end is None else end
    pos = start
    unpack = HEADER.unpack_from
    make = BatchHeader._make
    while pos + RECORD_BATCH_OVERHEAD <= end:
        h = make(unpack(buf, pos))
        if h.batch_length < MIN_BATCH_LENGTH or pos + h.batch_length + LOG_OVERHEAD > end:
            return
        yield pos, h
        pos += h.batch_length + LOG_OVERHEAD


_RUN_MIN = 16  # a vectorised run shorter than this switches to the Python walk for a while
_LOOP_CHUNK = 256


def _run_length(u8: np.ndarray, start: int, stride: int, vbytes: int, limit: int) -> int:
    """How many records from ``start`` on have stride ``stride`` (length varint of ``vbytes`` bytes).

    Records at ``start + j * stride`` whose length varint bytes equal the first one's are proven, by
    induction, to be records of that stride. Returns at least 1 (the first record itself). Probes
    windows that double in size, so the cost follows the run found, not the records left.
    """
    j_max = min(limit, (len(u8) - start) // stride)
    if j_max <= 1:
        return 1
    first = u8[start : start + vbytes]
    done = 1
    window = 64
    while done < j_max:
        upto = min(j_max, done + window)
        pos = start + stride * np.arange(done, upto, dtype=np.int64)
        same = u8[pos] == first[0]
        for k in range(1, vbytes):
            same &= u8[pos + k] == first[k]
        if not same.all():
            return done + int(np.argmin(same))
        done = upto
        window *= 4
    return j_max


def _walk_lengths(data: bytes | memoryview, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Body start and body length of each record, following the length varints.

    Runs of records of equal length (fixed-size payloads) are found with numpy; elsewhere a short
    Python loop walks one record at a time.
    """
    size = len(data)
    if count == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    u8 = np.frombuffer(data, np.uint8)
    body_pieces: list[np.ndarray] = []
    len_pieces: list[np.ndarray] = []
    bodies: list[int] = []
    lengths: list[int] = []
    done = 0
    p = 0
    while done < count:
        if p >= size:
            raise ValueError(f"{count} records declared but the data ends after record {done - 1}")
        if p < 0:
            raise ValueError(f"record {done - 1} declares a negative body length")
        length, body = decode_varint(data, p)
        stride = body - p + length
        if length < _MIN_RECORD_BODY:
            raise ValueError(f"record {done} declares a body of {length} bytes")
        run = _run_length(u8, p, stride, body - p, count - done)
        if run >= _RUN_MIN or run == count - done:
            if bodies:
                body_pieces.append(np.array(bodies, np.int64))
                len_pieces.append(np.array(lengths, np.int64))
                bodies, lengths = [], []
            body_pieces.append(np.arange(body, body + stride * run, stride, dtype=np.int64))
            len_pieces.append(np.full(run, length, np.int64))
            p += stride * run
            done += run
            continue
        # Irregular lengths: walk a chunk in Python (1- and 2-byte length varints inline).
        try:
            for _ in range(min(_LOOP_CHUNK, count - done)):
                b = data[p]
                if b < 0x80:
                    n_bytes, z = 1, b
                else:
                    b2 = data[p + 1]
                    if b2 < 0x80:
                        n_bytes, z = 2, (b & 0x7F) | (b2 << 7)
                    else:
                        length, q = decode_varint(data, p)
                        n_bytes, z = q - p, -1
                if z >= 0:
                    length = (z >> 1) ^ -(z & 1)
                if length < _MIN_RECORD_BODY:
                    raise ValueError(f"record {done} declares a body of {length} bytes")
                bodies.append(p + n_bytes)
                lengths.append(length)
                p += n_bytes + length
                done += 1
        except IndexError:
            raise ValueError(f"{count} records declared but the data ends inside record {done}") from None
    if bodies:
        body_pieces.append(np.array(bodies, np.int64))
        len_pieces.append(np.array(lengths, np.int64))
    if p != size:
        raise ValueError(
            "records still remaining after the declared count"
            if p < size
            else f"the last record runs {p - size} bytes past the end of the batch"
        )
    if len(body_pieces) == 1:
        return body_pieces[0], len_pieces[0]
    return np.concatenate(body_pieces), np.concatenate(len_pieces)


def _walk_templated(
    data: bytes, starts: np.ndarray, counts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_walk_batches`' result, found by templates: batches with the same record count and
    section length usually have the same record layout (a producer's full batches of fixed-size
    records), so one of them is walked and the others are checked against it in one numpy step:
    where each record's length varint bytes match the template's, by induction every record starts
    where the template says. Batches that do not match are walked side by side."""
    u8 = np.frombuffer(data, np.uint8)
    first_out = np.concatenate(([0], np.cumsum(counts)[:-1]))
    body = np.empty(int(counts.sum()), np.int64)
    size = np.empty_like(body)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, key in enumerate(zip(counts.tolist(), (ends - starts).tolist(), strict=True)):
        groups.setdefault(key, []).append(i)
    misfits: list[int] = []
    for (count, _), members in groups.items():
        t = members[0]
        t0 = int(starts[t])
        tb, tl = _walk_lengths(data[t0 : int(ends[t])], count)
        rec_start = np.concatenate(([0], (tb + tl)[:-1]))
        vbytes = tb - rec_start
        rows = np.asarray(members, np.int64)
        if len(members) > 1:
            at = starts[rows][:, None] + rec_start[None, :]
            ok = np.ones(len(rows), bool)
            for k in range(int(vbytes.max())):
                cols = np.flatnonzero(vbytes > k)
                want = u8[t0 + rec_start[cols] + k]
                ok &= (u8[at[:, cols] + k] == want[None, :]).all(axis=1)
            if not ok.all():
                misfits.extend(rows[~ok].tolist())
                rows = rows[ok]
        where = first_out[rows][:, None] + np.arange(count)[None, :]
        body[where] = starts[rows][:, None] + tb[None, :]
        size[where] = tl[None, :]
    if misfits:
        bad = np.asarray(sorted(misfits), np.int64)
        mb, ms = _walk_batches(data, starts[bad], counts[bad], ends[bad])
        where = np.concatenate(
            [np.arange(f, f + c) for f, c in zip(first_out[bad].tolist(), counts[bad].tolist(), strict=True)]
        )
        body[where], size[where] = mb, ms
    return body, size


def _walk_batches(
    data: bytes, starts: np.ndarray, counts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Body start and body length of each record of several batches laid end to end in ``data``
    (batch ``i``'s records section is ``data[starts[i]:ends[i]]`` with ``counts[i]`` records), in
    batch order. Walks record ``k`` of every batch in one numpy step, so a fetch of many small
    batches costs about as many steps as one batch has records."""
    nb = len(counts)
    width = int(counts.max())
    body = np.zeros((nb, width), np.int64)
    size = np.zeros((nb, width), np.int64)
    u8 = np.frombuffer(data, np.uint8)
    last = len(u8) - 1
    step_of, nbytes_of = _step_arrays()
    cur = starts.astype(np.int64)
    live: np.ndarray | None = None  # None: every batch still has records
    shortest = int(counts.min())
    for k in range(width):
        if k >= shortest:
            live = np.flatnonzero(counts > k)
        at = cur if live is None else cur[live]
        step = None
        if int(at.max()) < last:
            # The two bytes at each record's start give its whole step (one- and two-byte lengths).
            two = u8[at].astype(np.intp)
            two |= u8[at + 1].astype(np.intp) << 8
            step = step_of[two]
            if int(step.min()) == 0:
                step = None
            else:
                nbytes = nbytes_of[two]
        if step is None:
            length, nbytes = decode_at(u8, at, MAX_VARINT_BYTES)
            if int(length.min()) < _MIN_RECORD_BODY:
                i = int(np.argmin(length))
                where = i if live is None else int(live[i])
                raise ValueError(f"record {k} of batch {where} declares a body of {int(length[i])} bytes")
            step = nbytes + length
        if live is None:
            body[:, k] = at + nbytes
            size[:, k] = step - nbytes
            cur = at + step
        else:
            body[live, k] = at + nbytes
            size[live, k] = step - nbytes
            cur[live] = at + step
    if (cur != ends).any():
        i = int(np.argmax(cur != ends))
        raise ValueError(f"the records of batch {i} do not end where its records section ends")
    if shortest == width:
        return body.ravel(), size.ravel()
    mask = np.arange(width) < counts[:, None]
    return body[mask], size[mask]


def _slices(data: bytes, starts: np.ndarray, lengths: np.ndarray) -> list[bytes | None]:
    """``data[start:start+length]`` for each record; None where length is -1."""
    n = len(starts)
    if n == 0:
        return []
    lo, hi = int(lengths.min()), int(lengths.max())
    if hi < 0:
        return [None] * n
    if lo == hi and lo > 0:
        # Equal lengths: one numpy gather, then numpy's fixed-width bytes hand out the pieces.
        # numpy strips trailing NULs from 'S' items, so this only serves pieces not ending in 0.
        u8 = np.frombuffer(data, np.uint8)
        mat = np.ndarray((len(u8) - lo + 1, lo), np.uint8, u8, 0, (1, 1))[starts]
        if mat[:, -1].all():
            return mat.view(f"S{lo}").ravel().tolist()
    s = starts.tolist()
    e = (starts + np.maximum(lengths, 0)).tolist()
    out: list[bytes | None] = [data[a:b] for a, b in zip(s, e, strict=True)]
    if lo < 0:
        for i in np.flatnonzero(lengths < 0).tolist():
            out[i] = None
    return out


def _decode_headers(data: bytes, pos: int, count: int) -> tuple[tuple[tuple[str, bytes | None], ...], int]:
    hdrs = []
    for _ in range(count):
        klen, pos = decode_varint(data, pos)
        if klen < 0:
            raise ValueError("header key length is negative (header keys cannot be null)")
        key = data[pos : pos + klen].decode("utf-8")
        pos += klen
        vlen, pos = decode_varint(data, pos)
        if vlen < 0:
            hdrs.append((key, None))
        else:
            hdrs.append((key, data[pos : pos + vlen]))
            pos += vlen
    return tuple(hdrs), pos


_FEW = 32  # up to this many records asked for, parse with scalar code (numpy calls cost more)
_STEPS: list[int] = []


def _step_table() -> list[int]:
    """For the two bytes at a record's start (little-endian index), the distance to the next record:
    1 + length for a one-byte length varint, 2 + length for a two-byte one, 0 when the bytes do not
    start a length of 6..8191 (the caller then decodes the long way). Built on first use."""
    global _STEPS
    if not _STEPS:
        table = [0] * 65536
        for b in range(0x80):
            length = (b >> 1) ^ -(b & 1)
            if length >= _MIN_RECORD_BODY:
                for hi in range(256):
                    table[b | (hi << 8)] = 1 + length
        for b in range(0x80, 0x100):
            for b2 in range(0x80):
                z = (b & 0x7F) | (b2 << 7)
                length = (z >> 1) ^ -(z & 1)
                if length >= _MIN_RECORD_BODY:
                    table[b | (b2 << 8)] = 2 + length
        _STEPS = table
    return _STEPS


_VARINT2: array | None = None


def _varint2_table() -> array:
    """For the two bytes at a zigzag varint (little-endian index), ``value << 2 | size`` when the
    varint is one or two bytes long (``size``), 0 when it is longer: one lookup decodes the short
    varints a record's fields almost always are. Built on first use (256 KiB)."""
    global _VARINT2
    if _VARINT2 is None:
        table = array("i", bytes(4 * 65536))
        for b0 in range(0x80):
            v = (b0 >> 1) ^ -(b0 & 1)
            for b1 in range(256):
                table[b0 | (b1 << 8)] = v << 2 | 1
        for b0 in range(0x80, 0x100):
            for b1 in range(0x80):
                z = (b0 & 0x7F) | (b1 << 7)
                table[b0 | (b1 << 8)] = ((z >> 1) ^ -(z & 1)) << 2 | 2
        _VARINT2 = table
    return _VARINT2


_STEP_ARRAYS: tuple[np.ndarray, np.ndarray] | None = None


def _step_arrays() -> tuple[np.ndarray, np.ndarray]:
    """:func:`_step_table` as an int64 array, and the length varint's size (1 or 2) per entry."""
    global _STEP_ARRAYS
    if _STEP_ARRAYS is None:
        steps = np.array(_step_table(), np.int64)
        nbytes = np.where(np.arange(65536) & 0x80, 2, 1).astype(np.int64)
        _STEP_ARRAYS = steps, nbytes
    return _STEP_ARRAYS


def _equal_run(data: bytes, p: int, step: int, most: int) -> int:
    """How many records from ``p`` on (at least 1, at most ``most``) start with the same length
    varint bytes as the one at ``p`` (one byte, or two when the first has its high bit set), spaced
    ``step`` apart. A strided slice takes the byte at each would-be record start and ``lstrip``
    measures the run of equal bytes in C, so a run costs a few calls whatever its length."""
    end = p + (most - 1) * step + 1
    starts = data[p:end:step]
    run = len(starts) - len(starts.lstrip(starts[:1]))
    if data[p] >= 0x80:
        seconds = data[p + 1 : end + 1 : step]
        run = min(run, len(seconds) - len(seconds.lstrip(seconds[:1])))
    return max(run, 1)


def _parse_few(data: bytes, header: BatchHeader, start_offset: int | None, max_records: int) -> RecordColumns | None:
    """Decode up to ``max_records`` records from ``start_offset`` with scalar code: walk the length
    varints to the first wanted record, then decode only the wanted ones. Returns None when the
    batch's offset deltas are not 0..count-1 (a compacted batch): the caller falls back."""
    count = header.records_count
    if header.last_offset_delta + 1 != count:
        return None
    first = 0 if start_offset is None else max(0, start_offset - header.base_offset)
    out = RecordColumns()
    if first >= count:
        return out
    size = len(data)
    p = 0
    steps = _step_table()
    limit = size - 1
    try:
        i = 0
        while i < first:
            # One table lookup per record: the two bytes at p give the whole step to the next one;
            # longer or invalid length varints take the general decoder.
            step = steps[data[p] | (data[p + 1] << 8)] if p < limit else 0
            if not step:
                length, q = decode_varint(data, p)
                if length < _MIN_RECORD_BODY:
                    raise ValueError(f"record {i} declares a body of {length} bytes")
                p = q + length
                i += 1
                continue
            left = first - i
            if left >= 8:
                # Records of equal length run together (fixed-size payloads): the records whose
                # length varint bytes equal this one's all have this step (by induction), and
                # strided slices compare them in C. Jump the longest such run, up to ``first``.
                run = _equal_run(data, p, step, left)
                p += run * step
                i += run
                continue
            p += step
            i += 1
    except IndexError:
        raise ValueError(f"{count} records declared but the data ends before record {first}") from None
    log_append = bool(header.attributes & TIMESTAMP_TYPE_MASK)
    # Each field's varint is decoded with one table lookup when it is one or two bytes long (a
    # record's fields almost always are), else with decode_varint; the table reads the byte after
    # the field, which a well-formed record always has (its headers count comes last).
    v2 = _varint2_table()
    base = header.base_offset
    try:
        for i in range(first, min(count, first + max_records)):
            e = v2[data[p] | data[p + 1] << 8]
            if e:
                length = e >> 2
                q = p + (e & 3)
            else:
                length, q = decode_varint(data, p)
            end = q + length
            if length < _MIN_RECORD_BODY or end > size:
                raise ValueError(f"record {i} declares a body of {length} bytes that does not fit the batch")
            q += 1  # attributes
            e = v2[data[q] | data[q + 1] << 8]
            if e:
                tsd = e >> 2
                q += e & 3
            else:
                tsd, q = decode_varint(data, q, MAX_VARLONG_BYTES)
            e = v2[data[q] | data[q + 1] << 8]
            if e:
                od = e >> 2
                q += e & 3
            else:
                od, q = decode_varint(data, q)
            if od != i:
                return None
            e = v2[data[q] | data[q + 1] << 8]
            if e:
                klen = e >> 2
                q += e & 3
            else:
                klen, q = decode_varint(data, q)
            if klen < 0:
                if klen < -1:
                    raise ValueError(f"record {i} has key length {klen}")
                out.keys.append(None)
            else:
                out.keys.append(data[q : q + klen])
                q += klen
            e = v2[data[q] | data[q + 1] << 8]
            if e:
                vlen = e >> 2
                q += e & 3
            else:
                vlen, q = decode_varint(data, q)
            if vlen < 0:
                if vlen < -1:
                    raise ValueError(f"record {i} has value length {vlen}")
                out.values.append(None)
            else:
                out.values.append(data[q : q + vlen])
                q += vlen
            if data[q] < 0x80:
                hcount = data[q] >> 1 ^ -(data[q] & 1)
                q += 1
            else:
                hcount, q = decode_varint(data, q)
            if hcount < 0:
                raise ValueError(f"record {i} has a negative headers count")
            hdrs: tuple[tuple[str, bytes | None], ...] = ()
            if hcount:
                hdrs, q = _decode_headers(data, q, hcount)
            if q != end:
                raise ValueError(f"record {i}'s fields do not end at its declared length")
            out.offsets.append(base + od)
            out.timestamps.append(header.max_timestamp if log_append else header.base_timestamp + tsd)
            out.timestamp_types.append(LOG_APPEND_TIME if log_append else CREATE_TIME)
            out.headers.append(hdrs)
            p = end
    except IndexError:
        raise ValueError(f"record {i}'s fields run past the end of the batch") from None
    return out


def _parse(
    data: bytes,
    headers: Sequence[BatchHeader],
    counts: Sequence[int],
    ends: Sequence[int],
    start_offset: int | None,
    max_records: int | None,
    starts: Sequence[int] | None = None,
) -> RecordArrays:
    """Decode the records of one or more batches whose (decompressed) records sections lie in
    ``data``; batch ``i`` holds ``counts[i]`` records and its section ends at ``ends[i]``. The
    sections are laid end to end unless ``starts`` gives where each begins (uncompressed batches
    read in place, their headers in between). Keeps the records from ``start_offset`` on, at most
    ``max_records``. Raises ValueError on the first structural problem (the caller names the
    batch)."""
    total = sum(counts)
    nb = len(headers)
    if nb >= 4 and max(counts) * nb <= 2 * total:
        # Many batches of similar size: walk them side by side.
        e = np.asarray(ends, np.int64)
        c = np.asarray(counts, np.int64)
        s0 = np.concatenate(([0], e[:-1])) if starts is None else np.asarray(starts, np.int64)
        bstart, blen = _walk_templated(data, s0, c, e)
    elif starts is None:
        bstart, blen = _walk_lengths(data, total)
    else:
        # A few sections apart from each other: walk each in place.
        view = memoryview(data)
        walked = [_walk_lengths(view[a:b], c) for a, b, c in zip(starts, ends, counts, strict=True)]
        bstart = np.concatenate([w[0] + a for w, a in zip(walked, starts, strict=True)])
        blen = np.concatenate([w[1] for w in walked])
    out = RecordArrays(data)
    if total == 0:
        return out
    bend = bstart + blen
    if nb > 1:
        last = np.cumsum(np.asarray(counts, np.int64)) - 1
        if (bend[last] != np.asarray(ends, np.int64)).any():
            raise ValueError("a batch's records do not end where its records section ends")
    u8 = np.frombuffer(data, np.uint8)
    p = bstart + 1  # skip the record attributes byte
    tsd, s = decode_at(u8, p, MAX_VARLONG_BYTES)
    p = p + s
    od, s = decode_at(u8, p, MAX_VARINT_BYTES)
    p += s
    if len(headers) == 1:
        h = headers[0]
        if int(od.min()) < 0 or int(od.max()) > h.last_offset_delta or (total > 1 and bool((np.diff(od) <= 0).any())):
            raise ValueError("record offset deltas are not increasing within 0..lastOffsetDelta")
        offsets = od + h.base_offset
        log_append = bool(h.attributes & TIMESTAMP_TYPE_MASK)
        timestamps = np.full(total, h.max_timestamp, np.int64) if log_append else tsd + h.base_timestamp
        appended = np.full(total, log_append)
    else:
        which = np.repeat(np.arange(len(headers)), counts)
        cols = np.array(
            [(h.base_offset, h.base_timestamp, h.max_timestamp, h.attributes & TIMESTAMP_TYPE_MASK) for h in headers],
            np.int64,
        )[which]
        offsets = od + cols[:, 0]
        lods = np.array([h.last_offset_delta for h in headers], np.int64)[which]
        if int(od.min()) < 0 or bool((od > lods).any()) or bool((np.diff(offsets) <= 0).any()):
            raise ValueError("record offset deltas are not increasing within 0..lastOffsetDelta")
        appended = cols[:, 3] != 0
        timestamps = np.where(appended, cols[:, 2], tsd + cols[:, 1])
    first = 0 if start_offset is None else int(np.searchsorted(offsets, start_offset))
    stop = total if max_records is None else min(total, first + max_records)
    if first or stop < total:
        sel = slice(first, stop)
        offsets, timestamps, appended, bend, p = offsets[sel], timestamps[sel], appended[sel], bend[sel], p[sel]
    klen, s = decode_at(u8, p, MAX_VARINT_BYTES)
    kstart = p + s
    p = kstart + np.maximum(klen, 0)
    vlen, s = decode_at(u8, p, MAX_VARINT_BYTES)
    vstart = p + s
    p = vstart + np.maximum(vlen, 0)
    hcount, s = decode_at(u8, p, MAX_VARINT_BYTES)
    p += s
    if len(p) and (int(klen.min()) < -1 or int(vlen.min()) < -1 or int(hcount.min()) < 0):
        raise ValueError("a record has a negative key, value or headers length other than -1")
    if (p > bend).any():
        i = int(np.argmax(p > bend))
        raise ValueError(f"record {i}'s fields run past its declared length")
    with_headers = np.flatnonzero(hcount)
    if len(with_headers):
        hdrs: list[tuple[tuple[str, bytes | None], ...]] = [()] * len(p)
        pl, bl, hl = p.tolist(), bend.tolist(), hcount.tolist()
        for i in with_headers.tolist():
            hdrs[i], end = _decode_headers(data, pl[i], hl[i])
            if end != bl[i]:
                raise ValueError(f"record {i}'s headers do not end at its declared length")
        out._headers = hdrs
        plain = hcount == 0
        if (p[plain] != bend[plain]).any():
            raise ValueError("a record's fields end before its declared length")
    elif (p != bend).any():
        raise ValueError("a record's fields end before its declared length")
    out.offsets, out.timestamps, out.log_append = offsets, timestamps, appended
    out.key_starts, out.key_lengths, out.value_starts, out.value_lengths = kstart, klen, vstart, vlen
    return out


def parse_records(
    data: bytes, header: BatchHeader, start_offset: int | None = None, max_records: int | None = None
) -> RecordColumns:
    """Decode the (decompressed) records section of a batch into columns.

    With ``start_offset`` / ``max_records`` only the records from that offset on (at most that
    many) are decoded past their offset delta: a lookup of one record does not pay for the batch.
    Raises ValueError describing the first structural problem (the caller adds file and position).
    """
    if max_records is not None and max_records <= _FEW:
        few = _parse_few(data, header, start_offset, max_records)
        if few is not None:
            return few
    return _parse(data, [header], [header.records_count], [len(data)], start_offset, max_records).to_columns()


def _open_batch(
    buf: bytes | memoryview,
    pos: int,
    header: BatchHeader | None,
    path: str | None,
    file_position: int | None,
    verify: bool,
) -> tuple[BatchHeader, bytes, int]:
    """The header, decompressed records section and byte position (for errors) of the batch at
    ``buf[pos]``, its size and CRC checked unless ``verify`` is False."""
    if header is None:
        if len(buf) - pos < RECORD_BATCH_OVERHEAD:
            raise CorruptRecordError(
                "record batch header is cut off", path, pos if file_position is None else file_position
            )
        header = read_header(buf, pos)
    if verify:
        check_batch(buf, pos, header, path, file_position)
    where = pos if file_position is None else file_position
    section = memoryview(buf)[pos + RECORD_BATCH_OVERHEAD : pos + header.size]
    try:
        codec = header.compression
        return header, (compression.decompress(codec, section) if codec else bytes(section)), where
    except ValueError as e:
        raise CorruptRecordError(
            f"record batch at offset {header.base_offset} does not decompress: {e}", path, where
        ) from None


def _unparsable(header: BatchHeader, why: object, path: str | None, where: int) -> CorruptRecordError:
    """The error for a batch whose records section does not parse (``why`` says how)."""
    return CorruptRecordError(f"record batch at offset {header.base_offset} does not parse: {why}", path, where)


def _parse_whole(data: bytes, header: BatchHeader, path: str | None, where: int) -> RecordArrays:
    """Every record of one batch's (decompressed) records section as numpy columns."""
    try:
        return _parse(data, [header], [header.records_count], [len(data)], None, None)
    except ValueError as e:
        raise _unparsable(header, e, path, where) from None


def decode_batch(
    buf: bytes | memoryview,
    pos: int = 0,
    *,
    header: BatchHeader | None = None,
    path: str | None = None,
    file_position: int | None = None,
    verify: bool = True,
    start_offset: int | None = None,
    max_records: int | None = None,
) -> RecordColumns:
    """Decode the records of the batch at ``buf[pos]``: checks size and CRC (unless ``verify`` is
    False), decompresses, parses. ``start_offset`` / ``max_records`` keep only the records from
    that offset on, at most that many. Raises CorruptRecordError naming ``path`` and the batch's
    byte position; UnsupportedCodecError when its codec's package is missing."""
    header, data, where = _open_batch(buf, pos, header, path, file_position, verify)
    try:
        return parse_records(data, header, start_offset, max_records)
    except ValueError as e:
        raise _unparsable(header, e, path, where) from None


def decode_batch_arrays(
    buf: bytes | memoryview,
    pos: int = 0,
    *,
    header: BatchHeader | None = None,
    path: str | None = None,
    file_position: int | None = None,
    verify: bool = True,
) -> RecordArrays:
    """:func:`decode_batch` as numpy columns (:class:`RecordArrays`): every record of the batch,
    a control batch's too, with no object per record until one is asked for. For callers that
    only look at offsets and timestamps (a lookup by time). Raises as :func:`decode_batch`."""
    header, data, where = _open_batch(buf, pos, header, path, file_position, verify)
    return _parse_whole(data, header, path, where)


_SCALAR_TIME_WALK = 800  # records: above this, find_timestamp parses the batch with numpy instead


def find_timestamp(
    buf: bytes | memoryview,
    pos: int = 0,
    *,
    timestamp: int,
    min_offset: int = 0,
    header: BatchHeader | None = None,
    path: str | None = None,
    file_position: int | None = None,
) -> tuple[int, int] | None:
    """``(offset, timestamp)`` of the first record of the batch at ``buf[pos]`` whose offset is
    >= ``min_offset`` and whose timestamp (ms) is >= ``timestamp``, or None: a lookup by time
    within a batch. Checks size and CRC; walks the records with scalar code and stops at the
    first match, decoding only each record's length, timestamp delta and offset delta. Raises
    CorruptRecordError naming ``path`` and the batch's byte position. Records after a match are
    not looked at, so damage there (in a batch whose CRC matches) goes unseen here, as in any
    lookup that stops early; a full read reports it."""
    header, data, where = _open_batch(buf, pos, header, path, file_position, True)
    if header.records_count > _SCALAR_TIME_WALK:
        # A long batch: numpy over all its records beats a Python walk to the middle of it.
        got = _parse_whole(data, header, path, where)
        hit = np.flatnonzero((got.timestamps >= timestamp) & (got.offsets >= min_offset))
        return (int(got.offsets[hit[0]]), int(got.timestamps[hit[0]])) if len(hit) else None
    log_append = bool(header.attributes & TIMESTAMP_TYPE_MASK)
    base_offset, base_ts = header.base_offset, header.base_timestamp
    size = len(data)
    p = 0
    last_od, top = -1, header.last_offset_delta
    try:
        for i in range(header.records_count):
            b = data[p]
            if b < 0x80:
                length, q = (b >> 1) ^ -(b & 1), p + 1
            elif data[p + 1] < 0x80:  # two bytes: lengths of 64..8191
                z = (b & 0x7F) | (data[p + 1] << 7)
                length, q = (z >> 1) ^ -(z & 1), p + 2
            else:
                length, q = decode_varint(data, p)
            end = q + length
            if length < _MIN_RECORD_BODY or end > size:
                raise ValueError(f"record {i} declares a body of {length} bytes that does not fit the batch")
            b = data[q + 1]  # after the attributes byte: the timestamp delta
            if b < 0x80:
                tsd, q = (b >> 1) ^ -(b & 1), q + 2
            elif data[q + 2] < 0x80:
                z = (b & 0x7F) | (data[q + 2] << 7)
                tsd, q = (z >> 1) ^ -(z & 1), q + 3
            else:
                tsd, q = decode_varint(data, q + 1, MAX_VARLONG_BYTES)
            b = data[q]
            if b < 0x80:
                od = (b >> 1) ^ -(b & 1)
            elif data[q + 1] < 0x80:
                z = (b & 0x7F) | (data[q + 1] << 7)
                od = (z >> 1) ^ -(z & 1)
            else:
                od = decode_varint(data, q)[0]
            if not last_od < od <= top:
                raise ValueError(f"record {i}'s offset delta {od} is not increasing within 0..{top}")
            last_od = od
            ts = header.max_timestamp if log_append else base_ts + tsd
            if ts >= timestamp and base_offset + od >= min_offset:
                return base_offset + od, ts
            p = end
        if p != size:
            raise ValueError("records still remaining after the declared count")
    except (ValueError, IndexError) as e:
        why = e if isinstance(e, ValueError) else "a record runs past the end of the batch"
        raise _unparsable(header, why, path, where) from None
    return None


def decode_batches(
    buf: bytes | memoryview,
    pos: int = 0,
    end: int | None = None,
    *,
    path: str | None = None,
    file_position: int | None = None,
    verify: bool = True,
    start_offset: int | None = None,
    max_records: int | None = None,
) -> RecordArrays:
    """Decode every whole batch in ``buf[pos:end]`` at once: each batch's size and CRC are checked
    (unless ``verify`` is False) and its records section decompressed, then all records are parsed
    together, so the per-batch cost is a header and a decompress call.

    Control batches (transaction markers) are skipped, as Kafka's consumers skip them. Only records
    from ``start_offset`` on are kept, at most ``max_records`` (batches past those are not
    decompressed). The result's ``next_offset`` is where the next read starts.

    ``file_position`` is the byte position of ``buf[pos]`` in ``path``; errors name both. Raises
    CorruptRecordError on a bad size, CRC, codec stream or record layout; UnsupportedCodecError
    when a codec's package is missing.
    """
    end = len(buf) if end is None else end
    shift = 0 if file_position is None else file_position - pos
    view = memoryview(buf)
    # Uncompressed sections of a ``bytes`` buffer are parsed where they lie (no copy) while every
    # kept batch is uncompressed; ``pieces`` holds the decompressed ones (None: still in place).
    in_place = type(buf) is bytes
    pieces: list[bytes | None] = []
    headers: list[BatchHeader] = []
    positions: list[int] = []
    counts: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    size = 0
    have = 0
    next_offset = -1
    unpack, make = HEADER.unpack_from, BatchHeader._make
    while pos < end:
        if end - pos < RECORD_BATCH_OVERHEAD:
            raise CorruptRecordError(f"record batch header is cut off after {end - pos} bytes", path, pos + shift)
        h = make(unpack(buf, pos))
        here = pos
        pos += h.batch_length + LOG_OVERHEAD
        if h.batch_length < MIN_BATCH_LENGTH or pos > end:
            raise CorruptRecordError(f"record batch of {h.size} bytes does not fit the buffer", path, here + shift)
        if verify and (h.magic != MAGIC or crc32c(view[here + ATTRIBUTES_OFFSET : pos]) != h.crc):
            check_batch(buf, here, h, path, here + shift)  # raises, naming what is wrong
        last = h.base_offset + h.last_offset_delta
        if h.base_offset < next_offset or h.last_offset_delta < 0:
            raise CorruptRecordError(
                f"record batch at offset {h.base_offset} goes back below the previous batch's end {next_offset}",
                path,
                here + shift,
            )
        if max_records is not None and have >= max_records:
            break
        next_offset = last + 1
        count = h.records_count
        if count <= 0 or h.attributes & CONTROL_MASK:
            continue
        if start_offset is not None and last < start_offset:
            continue
        codec = h.attributes & compression.CODEC_MASK
        if codec:
            try:
                data = compression.decompress(codec, view[here + RECORD_BATCH_OVERHEAD : pos])
            except ValueError as e:
                raise CorruptRecordError(
                    f"record batch at offset {h.base_offset} does not decompress: {e}", path, here + shift
                ) from None
            n = len(data)
            in_place = False
        else:
            data = None
            n = pos - here - RECORD_BATCH_OVERHEAD
        if count > n // (_MIN_RECORD_BODY + 1):
            raise CorruptRecordError(
                f"record batch at offset {h.base_offset} declares {count} records in {n} bytes",
                path,
                here + shift,
            )
        pieces.append(data)
        headers.append(h)
        positions.append(here)
        counts.append(count)
        size += n
        ends.append(size)
        have += count - (0 if start_offset is None else max(0, start_offset - h.base_offset))
    if not pieces:
        return RecordArrays(b"", next_offset)
    if in_place:
        data = buf  # type: ignore[assignment]
        starts = [p + RECORD_BATCH_OVERHEAD for p in positions]
        ends = [p + h.batch_length + LOG_OVERHEAD for p, h in zip(positions, headers, strict=True)]
    else:
        for i, piece in enumerate(pieces):
            if piece is None:
                pieces[i] = bytes(view[positions[i] + RECORD_BATCH_OVERHEAD : positions[i] + headers[i].size])
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)  # type: ignore[arg-type]
    try:
        out = _parse(data, headers, counts, ends, start_offset, max_records, starts if in_place else None)
    except ValueError as e:
        # Find the batch at fault, to name it.
        for h, where in zip(headers, positions, strict=True):
            section = view[where + RECORD_BATCH_OVERHEAD : where + h.size]
            codec = h.compression
            piece = compression.decompress(codec, section) if codec else bytes(section)
            try:
                _parse(piece, [h], [h.records_count], [len(piece)], None, None)
            except ValueError as e1:
                raise _unparsable(h, e1, path, where + shift) from None
        raise CorruptRecordError(
            f"record batches from offset {headers[0].base_offset} do not parse: {e}", path, positions[0] + shift
        ) from None
    out.next_offset = next_offset if max_records is None or len(out) < max_records else int(out.offsets[-1]) + 1
    return out
