"""Shared fixtures: stores and partition logs in a temp dir, closed after each test."""

from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from logstore import LogStore  # noqa: E402
from logstore.config import TopicConfig  # noqa: E402
from logstore.storage.log import PartitionLog  # noqa: E402


@pytest.fixture
def store(tmp_path):
    s = LogStore(tmp_path / "store")
    yield s
    s.close()


class Clock:
    """A settable clock (seconds) for tests that depend on time."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def open_log(tmp_path):
    """open_log(**topic_config) -> PartitionLog in tmp_path/t-0; all closed at teardown."""
    opened: list[PartitionLog] = []

    def make(directory=None, clock=None, recovery_point=0, **config):
        cfg = TopicConfig.from_layers({k.replace("_", "."): v for k, v in config.items()})
        kwargs = {"clock": clock} if clock else {}
        log = PartitionLog(str(directory or tmp_path / "t-0"), "t", 0, cfg, recovery_point=recovery_point, **kwargs)
        opened.append(log)
        return log

    yield make
    for log in opened:
        log.close()


def crash(log: PartitionLog) -> None:
    """Drop a partition log's descriptors without its clean shutdown: what kill -9 leaves behind."""
    log._closed = True
    log._unmap_shared()
    for seg in log._segments:
        seg.release()
    os.close(log._open_fd)
    log._flock.close()
