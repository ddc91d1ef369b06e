"""Kafka's ``kafka-dump-log`` (DumpLogSegments) for segment, index and time-index files.

:func:`dump_file` yields the lines Kafka's tool prints, field for field, so that scripts written
against Kafka's output work on logstore's files (and logstore's dump works on Kafka's files):

* a ``.log``: ``Dumping <file>``, ``Log starting offset: <base>``, then one line per batch
  (``baseOffset: … lastOffset: … count: … position: … CreateTime: … size: … magic: 2
  compresscodec: … crc: … isvalid: …``) and, with ``deep``, one ``| offset: …`` line per record
  (``print_data`` adds ``key:`` and ``payload:``). Bytes after the last whole batch are reported as
  ``Found N invalid bytes at the end of <name>``;
* a ``.index``: ``offset: N position: P`` per entry (stopping at the zeroed, preallocated tail);
* a ``.timeindex``: ``timestamp: T offset: N`` per entry.

Lines are ``(to_stderr, text)`` pairs: findings Kafka prints on stderr (non-consecutive offsets,
index entries that do not match the log, unknown files) come with ``to_stderr`` true. Nothing
here writes to a file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

from .records.batch import (
    ATTRIBUTES_OFFSET,
    MIN_BATCH_LENGTH,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    crc32c,
    decode_batch,
    read_header,
)

__all__ = ["Line", "dump_file"]

_CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_INT32_MAX = 0x7FFFFFFF


class Line(NamedTuple):
    """One line of output: stderr or stdout, its text as Kafka prints it, and for data lines the
    same fields as a dict (``type``: batch, record, index, timeindex or trailing) for JSON."""

    to_stderr: bool
    text: str
    fields: dict[str, Any] | None = None


def _sequence(base: int, delta: int) -> int:
    """Kafka's DefaultRecordBatch.incrementSequence: -1 stays -1, else wrap past Int.MaxValue."""
    if base == -1:
        return -1
    if base > _INT32_MAX - delta:
        return delta - (_INT32_MAX - base) - 1
    return base + delta


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")  # Kafka's default StringDecoder


def dump_file(
    path: str, *, deep: bool = False, print_data: bool = False, skip_record_metadata: bool = False
) -> Iterator[Line]:
    """The lines ``kafka-dump-log --files path`` prints (see the module docstring).
    ``print_data`` implies ``deep``, as in Kafka. Raises OSError when the file cannot be read."""
    yield Line(False, f"Dumping {path}")
    name = os.path.basename(path)
    if name.endswith(".log"):
        yield from _dump_log(path, deep or print_data, print_data, skip_record_metadata)
    elif name.endswith(".index"):
        yield from _dump_index(path)
    elif name.endswith(".timeindex"):
        yield from _dump_time_index(path)
    else:
        yield Line(True, f"Ignoring unknown file {path}")


def _base(path: str) -> int | None:
    try:
        return int(os.path.basename(path).split(".")[0])
    except ValueError:
        return None


_CHUNK = 1 << 20  # bytes read at a time when walking a segment


def _batches(fd: int) -> Iterator[tuple[int, BatchHeader, memoryview]]:
    """``(position, header, the batch's bytes)`` for each whole batch of the ``.log`` open as
    ``fd``, from byte 0, read in chunks with ``pread`` (never mapped: a live partition's writer may
    cut the file meanwhile, e.g. a torn tail or a truncation, and reading a map past the new end
    kills the process with SIGBUS; a read just comes back short). Stops where
    :func:`~logstore.records.batch.iter_batches` stops: at a tail too short for a header, or a
    batch whose declared size runs past the bytes there are."""
    pos = 0
    buf = memoryview(b"")
    at = 0  # file position of buf[0]
    while True:
        off = pos - at
        if off + RECORD_BATCH_OVERHEAD > len(buf):
            buf, at, off = memoryview(os.pread(fd, _CHUNK, pos)), pos, 0
            if len(buf) < RECORD_BATCH_OVERHEAD:
                return
        h = read_header(buf, off)
        if h.batch_length < MIN_BATCH_LENGTH:
            return
        if off + h.size > len(buf):
            if pos + h.size > os.fstat(fd).st_size:
                return  # a length running past the file (damage, or a batch being written): never allocate it
            buf, at, off = memoryview(os.pread(fd, max(_CHUNK, h.size), pos)), pos, 0
            if h.size > len(buf):
                return
        yield pos, h, buf[off : off + h.size]
        pos += h.size


def _dump_log(path: str, deep: bool, print_data: bool, skip_meta: bool) -> Iterator[Line]:
    base = _base(path)
    if base is not None:
        yield Line(False, f"Log starting offset: {base}")
    non_consecutive: list[tuple[int, int]] = []
    fd = os.open(path, os.O_RDONLY)
    try:
        valid = 0
        last = -1
        for pos, h, batch in _batches(fd):
            if h.magic != 2:
                # Magic 0/1 message sets have another layout; printing them as magic 2 would be garbage.
                yield Line(
                    True,
                    (
                        f"The batch at position {pos} of {path} has magic {h.magic}: logstore prints magic-2 "
                        "record batches only (Kafka 0.11 and later); use Kafka's kafka-dump-log for older segments."
                    ),
                )
                break
            end = pos + h.size
            ok = crc32c(batch[ATTRIBUTES_OFFSET:]) == h.crc
            ts_type = "LogAppendTime" if h.attributes & 0x08 else "CreateTime"
            if h.magic >= 2:
                horizon = f"OptionalLong[{h.base_timestamp}]" if h.attributes & 0x40 else "OptionalLong.empty"
                head = (
                    f"baseOffset: {h.base_offset} lastOffset: {h.base_offset + h.last_offset_delta} "
                    f"count: {h.records_count} baseSequence: {h.base_sequence} "
                    f"lastSequence: {_sequence(h.base_sequence, h.last_offset_delta)} producerId: {h.producer_id} "
                    f"producerEpoch: {h.producer_epoch} partitionLeaderEpoch: {h.partition_leader_epoch} "
                    f"isTransactional: {'true' if h.attributes & 0x10 else 'false'} "
                    f"isControl: {'true' if h.attributes & 0x20 else 'false'} deleteHorizonMs: {horizon}"
                )
            else:
                head = f"offset: {h.base_offset + h.last_offset_delta}"
            codec = _CODECS.get(h.attributes & 0x07, "unknown")
            fields = {
                "type": "batch",
                "file": path,
                "baseOffset": h.base_offset,
                "lastOffset": h.base_offset + h.last_offset_delta,
                "count": h.records_count,
                "baseSequence": h.base_sequence,
                "lastSequence": _sequence(h.base_sequence, h.last_offset_delta),
                "producerId": h.producer_id,
                "producerEpoch": h.producer_epoch,
                "partitionLeaderEpoch": h.partition_leader_epoch,
                "isTransactional": bool(h.attributes & 0x10),
                "isControl": bool(h.attributes & 0x20),
                "deleteHorizonMs": h.base_timestamp if h.attributes & 0x40 else None,
                "position": pos,
                "timestampType": ts_type,
                "maxTimestamp": h.max_timestamp,
                "size": h.size,
                "magic": h.magic,
                "compresscodec": codec,
                "crc": h.crc,
                "isvalid": ok,
            }
            yield Line(
                False,
                f"{head} position: {pos} {ts_type}: {h.max_timestamp} size: {h.size} magic: {h.magic} "
                f"compresscodec: {codec} crc: {h.crc} isvalid: {'true' if ok else 'false'}",
                fields,
            )
            if deep:
                if not ok:
                    yield Line(
                        True,
                        f"Skipping the records of the batch at position {pos} of {path}: its CRC does not match.",
                    )
                else:
                    state = [last]
                    yield from _records(batch, h, ts_type, print_data, skip_meta, path, non_consecutive, state)
                    last = state[0]
            valid = end
        trailing = os.fstat(fd).st_size - valid
        if trailing > 0:
            yield Line(
                False,
                f"Found {trailing} invalid bytes at the end of {os.path.basename(path)}",
                {"type": "trailing", "file": path, "bytes": trailing},
            )
    finally:
        os.close(fd)
    if non_consecutive:
        yield Line(True, f"Non-consecutive offsets in {os.path.abspath(path)}")
        for a, b in reversed(non_consecutive):
            yield Line(True, f"  {a} is followed by {b}")


def _records(
    batch: memoryview,
    h: BatchHeader,
    ts_type: str,
    print_data: bool,
    skip_meta: bool,
    path: str,
    non_consecutive: list[tuple[int, int]],
    state: list[int],
) -> Iterator[Line]:
    """The record lines of one batch; ``state[0]`` is the offset of the last record seen (kept
    across batches, as Kafka checks offsets for continuity record by record)."""
    last = state[0]
    cols = decode_batch(batch, 0, verify=False, path=path)
    control = bool(h.attributes & 0x20)
    base_seq = h.base_sequence
    base_off = h.base_offset
    log_append = bool(h.attributes & 0x08)
    max_ts = h.max_timestamp
    for off, ts, key, value, headers in zip(
        cols.offsets, cols.timestamps, cols.keys, cols.values, cols.headers, strict=True
    ):
        if last != -1 and off != last + 1:
            non_consecutive.append((last, off))
        last = state[0] = off
        if log_append:
            ts = max_ts  # a LogAppendTime batch's records all carry its timestamp
        fields: dict[str, Any] = {
            "type": "record",
            "offset": off,
            "timestampType": ts_type,
            "timestamp": ts,
            "keySize": -1 if key is None else len(key),
            "valueSize": -1 if value is None else len(value),
            "sequence": _sequence(base_seq, off - base_off),
            "headerKeys": [k for k, _ in headers],
        }
        out = ""
        prefix = "| "
        if not skip_meta:
            out += (
                f"{prefix}offset: {off} {ts_type}: {ts} keySize: {-1 if key is None else len(key)} "
                f"valueSize: {-1 if value is None else len(value)}"
                f" sequence: {_sequence(base_seq, off - base_off)} headerKeys: [{','.join(k for k, _ in headers)}]"
            )
            prefix = " "
            if control and key is not None and len(key) >= 4:
                ctype = struct.unpack(">h", key[2:4])[0]
                if ctype in (0, 1) and value is not None and len(value) >= 6:
                    epoch = struct.unpack(">i", value[2:6])[0]
                    out += f" endTxnMarker: {'COMMIT' if ctype else 'ABORT'} coordinatorEpoch: {epoch}"
                else:
                    out += f" controlType: UNKNOWN({ctype})"
        if print_data and not control:
            fields["key"] = None if key is None else _text(key)
            fields["payload"] = None if value is None else _text(value)
            if key is not None:
                out += f"{prefix}key: {_text(key)}"
                prefix = " "
            if value is not None:
                out += f" payload: {_text(value)}"
        yield Line(False, out, fields)


def _entries(path: str, width: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        data = f.read()
    for i in range(len(data) // width):
        yield data[i * width : (i + 1) * width]


def _dump_index(path: str) -> Iterator[Line]:
    base = _base(path) or 0
    log_path = os.path.join(os.path.dirname(path), f"{base:020d}.log")
    if os.path.getsize(path) < 8:
        yield Line(False, f"{path} is empty.")
        return
    mismatches = []
    # The entries are checked against the log beside the index, when there is one (read with
    # pread, never mapped: see _batches).
    log_fd = os.open(log_path, os.O_RDONLY) if os.path.isfile(log_path) else -1
    try:
        log_size = os.fstat(log_fd).st_size if log_fd >= 0 else 0
        for i, raw in enumerate(_entries(path, 8)):
            rel, position = struct.unpack(">ii", raw)
            offset = base + rel
            if offset == base and i > 0:
                break  # the zeroed, preallocated tail
            if position >= 0 and position + RECORD_BATCH_OVERHEAD <= log_size:
                head = os.pread(log_fd, RECORD_BATCH_OVERHEAD, position)
                if len(head) == RECORD_BATCH_OVERHEAD:
                    h = read_header(head)
                    whole = h.batch_length >= MIN_BATCH_LENGTH and position + h.size <= log_size
                    if whole and h.base_offset + h.last_offset_delta != offset:
                        mismatches.append((offset, h.base_offset + h.last_offset_delta))
            yield Line(
                False,
                f"offset: {offset} position: {position}",
                {"type": "index", "offset": offset, "position": position},
            )
    finally:
        if log_fd >= 0:
            os.close(log_fd)
    if mismatches:
        yield Line(True, f"Mismatches in :{os.path.abspath(path)}")
        for a, b in reversed(mismatches):
            yield Line(True, f"  Index offset: {a}, log offset: {b}")


def _dump_time_index(path: str) -> Iterator[Line]:
    base = _base(path) or 0
    for i, raw in enumerate(_entries(path, 12)):
        ts, rel = struct.unpack(">qi", raw)
        if base + rel == base and i > 0:
            break
        yield Line(
            False, f"timestamp: {ts} offset: {base + rel}", {"type": "timeindex", "timestamp": ts, "offset": base + rel}
        )
