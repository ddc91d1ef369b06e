"""Children for the I/O-fault campaigns (run as ``python fault_child.py MODE DIR``).

enospc DIR   DIR is a small tmpfs. Fill it with appends until the disk is full, then free room and
             go on; retention must run on the full disk. Prints a JSON summary on the last line.
efbig DIR    RLIMIT_FSIZE caps file size (SIGXFSZ ignored): a short write, then EFBIG. Prints JSON.
sigbus DIR   DIR is a small tmpfs. Fill it while index entries keep coming (one per batch): the next
             entry lands in an index page with no block behind it. Prints JSON (a SIGBUS kills it).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from logstore import LogStore  # noqa: E402
from logstore.errors import StorageError  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import values_of  # noqa: E402


def fill(s: LogStore, start: int, value_bytes: int) -> tuple[list[int], StorageError | None]:
    """Append one-record batches ``v<i>`` until an append fails; returns acked offsets and the error."""
    acked = []
    i = start
    while True:
        try:
            r = s.append("t", 0, [b"v%08d" % i + b"x" * value_bytes])
        except StorageError as e:
            return acked, e
        acked.append(r.first_offset)
        i += 1
        if i - start > 200_000:
            return acked, None


def enospc(d: str) -> dict:
    store = os.path.join(d, "s")
    filler = os.path.join(d, "filler")
    out: dict = {}
    with LogStore(store) as s:
        # retention.bytes=1: a retention pass deletes every segment but the active one.
        s.create_topic("t", 1, {"segment.bytes": 64 * 1024, "segment.index.bytes": 4096, "retention.bytes": 1})
        with open(filler, "wb") as f:
            f.write(b"\0" * 256 * 1024)
        acked, err = fill(s, 0, 900)
        out["acked"] = len(acked)
        out["errno"] = err.errno if err else None
        out["error"] = str(err)
        out["records_written"] = bool(err and err.records_written)
        vals = values_of(s.partition("t", 0))
        out["visible_after_failure"] = len(vals)
        out["contiguous"] = vals == [b"v%08d" % i + b"x" * 900 for i in range(len(vals))]
        os.unlink(filler)  # room again
        more, err2 = fill(s, len(acked), 900)
        out["acked_after_room"] = len(more)
        out["offsets_continue"] = bool(more) and more[0] == len(acked)
        out["errno_again"] = err2.errno if err2 else None
        # The disk is full again: retention (delete everything but the active segment) still runs.
        res = s.apply_retention()
        out["retention_deleted"] = sum(r.segments_deleted for r in res)
    with LogStore(store) as s:
        out["verify"] = [str(p) for p in s.verify()]
        out["reopened_end"] = s.partition("t", 0).next_offset
        r = s.append("t", 0, [b"after"])
        out["append_after_reopen"] = r.first_offset
    return out


def efbig(d: str) -> dict:
    store = os.path.join(d, "s")
    out: dict = {}
    with LogStore(store) as s:
        s.create_topic("t", 1, {"segment.bytes": 1 << 30, "segment.index.bytes": 4096})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    with LogStore(store) as s:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, hard))
        acked, err = fill(s, 0, 997)
        out["acked"] = len(acked)
        out["errno"] = err.errno if err else None
        vals = values_of(s.partition("t", 0))
        out["visible_after_failure"] = len(vals)
        out["size"] = s.partition("t", 0).active_segment.file_size()
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        r = s.append("t", 0, [b"v%08d" % len(acked) + b"x" * 997])
        out["next_offset_after_limit_lifted"] = r.first_offset
        vals = values_of(s.partition("t", 0))
        out["contiguous"] = vals == [b"v%08d" % i + b"x" * 997 for i in range(len(vals))]
    with LogStore(store) as s:
        out["verify"] = [str(p) for p in s.verify()]
    return out


def sigbus(d: str) -> dict:
    store = os.path.join(d, "s")
    out: dict = {}
    with LogStore(store, fsync="never") as s:
        # One index entry per batch (interval 1 byte) in a large sparse preallocated index.
        s.create_topic("t", 1, {"segment.index.bytes": 1 << 20, "index.interval.bytes": 1})
        # 512 batches: 511 entries, the next one starts the index's second page.
        for i in range(512):
            s.append("t", 0, [b"%d" % i])
        # Fill the disk to the last byte.
        fd = os.open(os.path.join(d, "filler"), os.O_WRONLY | os.O_CREAT, 0o644)
        for chunk in (1 << 16, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError:
                pass
        os.close(fd)
        acked = 0
        err = None
        for i in range(512, 40_000):
            try:
                s.append("t", 0, [b"%d" % i])
                acked += 1
            except StorageError as e:
                err = e
                break
        out["errno"] = err.errno if err else None
        out["error"] = str(err)
        out["visible"] = len(values_of(s.partition("t", 0)))
        out["acked"] = 512 + acked
        os.unlink(os.path.join(d, "filler"))
    return out


if __name__ == "__main__":
    mode, d = sys.argv[1], sys.argv[2]
    result = {"enospc": enospc, "efbig": efbig, "sigbus": sigbus}[mode](d)
    print(json.dumps(result))
    sys.exit(0)
