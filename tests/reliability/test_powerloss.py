"""S10, S11, S12: simulated power loss.

A workload runs with every file operation recorded (iofaults.PowerLossRecorder). At random moments
the recorder builds several disk images a power cut at that moment could leave: writes since each
file's last fsync kept, lost, zero-filled or torn; directory entries since the directory's last
fsync undone; index files (written through mmap) as last fsynced or as now. Each image is reopened
(recovery runs) and checked against what had been acknowledged by that moment.

* ``fsync=always`` (S10): every acknowledged record survives with its bytes; no record of a
  failed send, no partial batch; offsets contiguous. The record in flight may or may not be there.
* ``flush.messages=N`` / ``fsync=interval`` / ``never`` (S11): only acknowledged records not yet
  covered by an fsync may be lost: per partition a suffix of what was acknowledged, at most the
  window the policy promises; everything else as S10.
* S12: the recovery point checkpoint never runs ahead of fsynced data: images taken between a
  checkpoint write and the segment fsync are among the random moments, and a lost record below the
  checkpointed recovery point would show up as a lost write or a refusal to open.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from logstore import LogStore

from .checker import History, Report, check
from .conftest import iterations
from .iofaults import PowerLossRecorder, installed
from .runner import tree_hashes

LONG_MAX = (1 << 63) - 1


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Image:
    path: str
    history: History
    ack_ms: dict  # (topic, partition, offset) -> clock (ms) at the ack
    now_ms: int
    op: int


def run_workload(
    tmp: str, *, topic_config: dict, fsync: str, batches: int, moments: int, per_moment: int, seed: str
) -> tuple[list[Image], int]:
    """Run the workload under the recorder; return the images (with what was acked at their
    moment) and the number of recorded operations."""
    rnd = random.Random(seed)
    root = os.path.join(tmp, "store")
    clock = FakeClock()
    with LogStore(root, clock=clock, fsync=fsync) as s:  # the policy saved: recovery reads it
        s.create_topic(
            "t", 3, {"segment.bytes": 6000, "index.interval.bytes": 300, "segment.index.bytes": 8192, **topic_config}
        )
    # A dry run counts the operations so that the moments spread over the whole workload.
    history = History()
    ack_ms: dict = {}
    images: list[Image] = []
    chosen: set[int] = set()

    def on_op(n: int) -> None:
        if n not in chosen:
            return
        for k in range(per_moment):
            dest = os.path.join(tmp, f"img-{n}-{k}")
            rec.image(dest, rnd)
            snap = History(
                acked=dict(history.acked),
                failed=set(history.failed),
                info=set(history.info),
                sent=set(history.sent),
                batches=list(history.batches),
            )
            images.append(Image(dest, snap, dict(ack_ms), int(clock.t * 1000), n))

    rec = PowerLossRecorder(root, on_op)
    chosen.update(rnd.sample(range(1, batches * 3), moments))
    n = 0
    with installed(rec), LogStore(root, fsync=fsync, clock=clock) as s:
        for _ in range(batches):
            p = rnd.randrange(3)
            k = rnd.randint(1, 16)
            values = []
            for _ in range(k):
                values.append(f"{seed}:{n}:".encode() + rnd.randbytes(rnd.randint(10, 120)))
                n += 1
            from .checker import digest

            ds = [digest(v) for v in values]
            history.batches.append(ds)
            history.sent.update(ds)
            r = s.partition("t", p).append_records(values)
            for o, d in zip(range(r.first_offset, r.last_offset + 1), ds, strict=True):
                history.ack("t", p, o, d)
                ack_ms[("t", p, o)] = int(clock.t * 1000)
            clock.t += rnd.uniform(0.001, 0.05)
            if rnd.random() < 0.05:
                s.apply_retention()
    return images, rec.ops


def check_image(img: Image, *, window_ms: int | None, window_records: int | None) -> Report:
    """Check one image. With no window (fsync=always) every acked record must survive; with one,
    lost acked records must form a suffix of their partition acked within the window."""
    report = check(img.history, img.path)
    lost = report.anomalies.pop("lost-write", [])
    if window_ms is None and window_records is None:
        if lost:
            report.anomalies["lost-write"] = lost
        return report
    by_part: dict = {}
    for t, p, o in lost:
        by_part.setdefault((t, p), []).append(o)
    for (t, p), offs in by_part.items():
        acked_offs = sorted(o for (tt, pp, o) in img.history.acked if (tt, pp) == (t, p))
        suffix = acked_offs[len(acked_offs) - len(offs) :]
        if sorted(offs) != suffix:
            report.add("lost-write", ("not a suffix", t, p, sorted(offs)[:5]))
            continue
        if window_records is not None and len(offs) > window_records:
            report.add("lost-write", ("more than the window", t, p, len(offs)))
        if window_ms is not None:
            too_old = [o for o in offs if img.ack_ms[(t, p, o)] < img.now_ms - window_ms]
            if too_old:
                report.add("lost-write", ("acked before the window", t, p, too_old[:5]))
    return report


CASES = {
    # name: (store fsync preset, topic config, time window ms, record window)
    "always": ("always", {}, None, None),
    "flush.messages=8": ("always", {"flush.messages": 8}, None, 7),
    "interval": ("interval", {}, 1000 + 50, None),  # +50: one workload step past the interval
    "never": ("never", {}, LONG_MAX, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_s10_s11_power_loss_images_keep_what_the_fsync_policy_promises(tmp_path, campaign, case):
    """S10 (always) / S11 (the others): see the module docstring."""
    fsync, config, window_ms, window_records = CASES[case]
    images, ops = run_workload(
        str(tmp_path),
        topic_config=config,
        fsync=fsync,
        batches=iterations(300),
        moments=iterations(12),
        per_moment=4,
        seed=f"S10-{case}",
    )
    assert len(images) >= 24 and ops > 300
    scenario = "S10" if window_ms is None and window_records is None else "S11"
    bad = []
    for img in images:
        try:
            report = check_image(img, window_ms=window_ms, window_records=window_records)
        except Exception as e:  # a refusal to open is an anomaly too: count it, then fail
            report = Report()
            report.add("refused-to-open", repr(e)[:300])
        campaign(scenario).add(iterations=1, faults=1, anomalies=report.count)
        if not report.ok:
            bad.append(f"op {img.op} {img.path}: {report}")
    assert not bad, "\n".join(bad[:5])


@pytest.mark.parametrize("policy", ["always", "interval"])
def test_regression_a_lost_earlier_write_under_interval_made_the_partition_unopenable(tmp_path, policy):
    """S11: under ``interval`` a power cut may keep a later write and lose an earlier one (a zeroed
    batch followed by valid ones). That used to be taken for damage and the partition refused to
    open. Above the recovery point it is now cut like a torn tail; under ``always`` (every append
    fsynced before the next) it still cannot be a crash, so it is still refused."""
    from logstore import CorruptLogError

    root = str(tmp_path / "s")
    with LogStore(root, fsync=policy) as s:
        s.create_topic("t", 1)
        for i in range(6):
            s.append("t", 0, [b"r%d" % i])
        seg = s.partition("t", 0).active_segment.log_path
    data = bytearray(Path(seg).read_bytes())
    # zero the 4th batch (offset 3): find it by walking the batch lengths
    pos = 0
    for _ in range(3):
        pos += 12 + int.from_bytes(data[pos + 8 : pos + 12], "big")
    size = 12 + int.from_bytes(data[pos + 8 : pos + 12], "big")
    data[pos : pos + size] = bytes(size)
    with open(seg, "wb") as f:
        f.write(data)
    os.unlink(os.path.join(root, "t-0", ".logstore.clean"))
    os.unlink(os.path.join(root, "recovery-point-offset-checkpoint"))
    if policy == "always":
        with pytest.raises(CorruptLogError, match="followed by a valid batch"), LogStore(root) as s:
            s.partition("t", 0)
        assert Path(seg).read_bytes() == bytes(data)  # nothing cut
    else:
        with LogStore(root) as s:
            log = s.partition("t", 0)
            assert log.next_offset == 3
            assert log.read_records(0).values == [b"r0", b"r1", b"r2"]
            assert log.load_report.truncations and log.load_report.truncations[0].valid_size == pos


def test_regression_a_second_writer_could_write_past_an_unsynced_append(tmp_path):
    """S10 with two writers (found in review): under ``always`` the fsync runs after the lock is
    released, so writer B could append after writer A's batch before A's fsync ran. A power cut
    then could keep B's batch and lose A's: a hole recovery must refuse under this policy, so the
    partition would not open. B now fsyncs A's bytes first, under the lock."""
    root = str(tmp_path / "s")
    with LogStore(root) as s:
        s.create_topic("t", 1)
    seq: list[str] = []
    with LogStore(root) as s1, LogStore(root) as s2:
        a, b = s1.partition("t", 0), s2.partition("t", 0)
        a.append_records([b"a0"])
        b.append_records([b"b0"])
        fired = False

        class Shim:
            @staticmethod
            def pwritev(fd: int, buffers: list, pos: int) -> int:
                seq.append("write")
                return os.pwritev(fd, buffers, pos)

            @staticmethod
            def fsync(fd: int) -> None:
                nonlocal fired
                if not fired:  # A's fsync, after A released the lock: B appends now
                    fired = True
                    seq.append("B appends")
                    b.append_records([b"b1"])
                    seq.append("B acked")
                seq.append("fsync")
                os.fsync(fd)

        with installed(Shim()):
            a.append_records([b"a1"])
    # A's write, then B: an fsync (covering A's bytes) before B's own write.
    assert seq[:5] == ["write", "B appends", "fsync", "write", "fsync"], seq
    with LogStore(root) as s:
        assert s.partition("t", 0).read_records(0).values == [b"a0", b"b0", b"a1", b"b1"]


def test_regression_a_sealed_segment_running_past_its_successor_made_recovery_drop_it(tmp_path):
    """Found in review: a sealed segment whose offsets run past the next segment's base (a renamed
    or stray segment file) and that has a bad tail was cut and every later segment deleted on open,
    with no recovery point to protect them. It is now refused, naming the overlap, and no file
    changes."""
    from logstore import CorruptLogError

    root = str(tmp_path / "s")
    with LogStore(root) as s:
        s.create_topic("t", 1, {"segment.bytes": 600})
        for i in range(60):
            s.append("t", 0, [b"r%03d" % i + b"x" * 40])
        segs = [seg.log_path for seg in s.partition("t", 0).segments]
    assert len(segs) >= 4
    third = segs[2]
    base = int(os.path.basename(third).split(".")[0])
    renamed = os.path.join(os.path.dirname(third), f"{base - 3:020d}.log")
    os.rename(third, renamed)  # segment 1 now runs 3 offsets past its successor's base
    for ext in (".index", ".timeindex"):
        os.unlink(third[:-4] + ext)
    with open(segs[1], "ab") as f:
        f.write(b"\xff" * 30)  # and has a bad tail
    os.unlink(os.path.join(root, "t-0", ".logstore.clean"))
    os.unlink(os.path.join(root, "recovery-point-offset-checkpoint"))
    before = tree_hashes(root)
    with pytest.raises(CorruptLogError, match="in two segments"), LogStore(root) as s:
        s.partition("t", 0)
    after = tree_hashes(root)
    assert {k: v for k, v in after.items() if k.endswith(".log")} == {
        k: v for k, v in before.items() if k.endswith(".log")
    }
