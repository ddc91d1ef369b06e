"""Make ``data/events.jsonl``: deterministic sample events for the demo and the benchmarks.

Run from the repository root::

    python data/generate.py            # writes data/events.jsonl
    python data/generate.py --check    # exits 1 if the file on disk differs from what would be made

Each of the 1,850 lines is one compact JSON object, in this exact byte form (dots elided)::

    {"key":"user-00297","value":"{seq:0,ev:view,user:00297,sid:c1b99613,page:/p/6818,dev:web,cc:BR,pad:....}",...

* ``key``: ``user-NNNNN``, exactly 10 ASCII bytes (about 400 distinct users, a few of them busy).
* ``value``: a JSON-ish event (unquoted names, so the line needs no escaping), padded with ``.``
  inside a ``pad:`` field (or, should an event ever be longer, truncated) to exactly 100 ASCII
  bytes. It never ends in a NUL byte.
* ``timestamp``: ms since the epoch, starting at 1700000000000 and growing by 1-20 ms per line
  (strictly increasing).

Every line is 158 bytes, so the file is 292,300 bytes (2,000 lines would be 316 KB; the file is
kept under 300 KB). The output is byte-identical on every run and every Python version: it uses its
own seeded SplitMix64 generator, never ``random`` or the wall clock.
"""

from __future__ import annotations

import os
import sys

SEED = 20231114  # 1700000000000 ms is 2023-11-14T22:13:20Z
LINES = 1850
KEY_BYTES = 10
VALUE_BYTES = 100
FIRST_TIMESTAMP_MS = 1_700_000_000_000
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.jsonl")

EVENTS = ("view", "view", "view", "click", "click", "search", "cart", "purchase", "login", "logout")
DEVICES = ("ios", "android", "web", "web")
COUNTRIES = ("DE", "US", "FR", "GB", "JP", "BR", "IN", "NL", "SE", "ES")
QUERIES = ("shoes", "red+dress", "usb-c+cable", "coffee", "lamp", "desk", "tent", "kettle")


class SplitMix64:
    """A tiny, fully specified PRNG (Steele, Lea, Flood 2014), so the output never depends on how a
    Python version implements ``random``."""

    MASK = (1 << 64) - 1

    def __init__(self, seed: int) -> None:
        self.state = seed & self.MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & self.MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & self.MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & self.MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        """An int in [0, n) (the modulo bias is irrelevant here)."""
        return self.next() % n

    def pick(self, items: tuple[str, ...]) -> str:
        return items[self.below(len(items))]


def fit(text: str, size: int) -> str:
    """``text`` (a ``{...}`` event) padded with a ``pad:...`` field, or truncated, to ``size`` chars."""
    if len(text) >= size:
        return text[: size - 1] + "}"
    body = text[:-1] + ",pad:" if len(text) + len(",pad:.") <= size else text[:-1]
    return body + "." * (size - len(body) - 1) + "}"


def event(rng: SplitMix64, seq: int, user: int, sessions: dict[int, int]) -> str:
    ev = rng.pick(EVENTS)
    fields = [f"seq:{seq}", f"ev:{ev}", f"user:{user:05d}", f"sid:{sessions[user]:08x}"]
    if ev in ("view", "click", "cart"):
        fields.append(f"page:/p/{rng.below(10000)}")
    if ev == "search":
        fields.append(f"q:{rng.pick(QUERIES)}")
    if ev in ("cart", "purchase"):
        fields.append(f"qty:{1 + rng.below(5)}")
        fields.append(f"eur:{rng.below(20000) / 100:.2f}")
    fields.append(f"dev:{rng.pick(DEVICES)}")
    fields.append(f"cc:{rng.pick(COUNTRIES)}")
    return "{" + ",".join(fields) + "}"


def lines() -> list[str]:
    rng = SplitMix64(SEED)
    out = []
    ts = FIRST_TIMESTAMP_MS
    sessions: dict[int, int] = {}  # user -> current session id (a new one at login)
    for seq in range(LINES):
        # A fifth of the traffic comes from 20 busy users, the rest from about 400.
        user = rng.below(20) if rng.below(5) == 0 else rng.below(400)
        key = f"user-{user:05d}"
        if user not in sessions or rng.below(10) == 0:
            sessions[user] = rng.next() >> 32
        value = fit(event(rng, seq, user, sessions), VALUE_BYTES)
        assert len(key) == KEY_BYTES and len(value) == VALUE_BYTES and value.isascii(), (key, value)
        # Written by hand (not json.dumps) to pin the exact bytes; keys and values need no escaping.
        out.append(f'{{"key":"{key}","value":"{value}","timestamp":{ts}}}\n')
        ts += 1 + rng.below(20)
    return out


def main(argv: list[str]) -> int:
    data = "".join(lines()).encode("ascii")
    if "--check" in argv:
        try:
            with open(OUT, "rb") as f:
                same = f.read() == data
        except FileNotFoundError:
            same = False
        print(f"{OUT}: {'up to date' if same else 'differs from the generator output'}")
        return 0 if same else 1
    tmp = OUT + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {LINES} events, {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
