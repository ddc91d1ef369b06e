"""Reliability campaigns: iteration counts (CI or soak) and the counts each campaign reports.

``make test`` runs every campaign at its CI size. ``make soak`` sets ``LOGSTORE_SOAK=N`` (default
5000): the main kill loop (S01) then runs N iterations and every other loop N/200 times its CI
count. With ``LOGSTORE_RELIABILITY_REPORT=<file>`` the counts (iterations run, faults injected,
anomalies found) are written there as JSON at the end of the run; docs/reliability.md quotes them.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

import pytest

SOAK = int(os.environ.get("LOGSTORE_SOAK", "0") or 0)
CI_BASE = 200  # the S01 loop's CI count: LOGSTORE_SOAK is measured against it


def iterations(ci: int) -> int:
    """How many times to run a loop whose CI size is ``ci`` (scaled up in soak mode)."""
    if not SOAK:
        return ci
    return max(ci, round(ci * SOAK / CI_BASE))


_COUNTS: dict[str, dict[str, int]] = defaultdict(lambda: {"iterations": 0, "faults": 0, "anomalies": 0})


class Campaign:
    """Counts for one scenario (``S01`` ...): ``add(iterations=, faults=, anomalies=)``."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario

    def add(self, iterations: int = 0, faults: int = 0, anomalies: int = 0) -> None:
        c = _COUNTS[self.scenario]
        c["iterations"] += iterations
        c["faults"] += faults
        c["anomalies"] += anomalies


@pytest.fixture
def campaign():
    """``campaign("S01")`` -> a Campaign that adds to the run's counts for that scenario."""
    return Campaign


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("LOGSTORE_RELIABILITY_REPORT")
    if out and _COUNTS:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            json.dump({"soak": SOAK, "scenarios": dict(sorted(_COUNTS.items()))}, f, indent=2)
            f.write("\n")


def pytest_terminal_summary(terminalreporter):
    if not _COUNTS or not (SOAK or os.environ.get("LOGSTORE_RELIABILITY_REPORT")):
        return
    tr = terminalreporter
    tr.section("reliability campaigns")
    tr.write_line(f"{'scenario':<10}{'iterations':>12}{'faults':>10}{'anomalies':>11}")
    for name, c in sorted(_COUNTS.items()):
        tr.write_line(f"{name:<10}{c['iterations']:>12}{c['faults']:>10}{c['anomalies']:>11}")
