"""Topic configuration under Kafka's names, with human units.

Keys are Kafka's topic config names (``segment.bytes``, ``retention.ms``, ...). Values may be ints or
strings with units: durations ``500ms``, ``30s``, ``15m``, ``12h``, ``7d``, ``1w`` or ISO-8601
(``PT1H``, ``P7D``), sizes ``4096``, ``64KiB``, ``512MiB``, ``1GiB`` (powers of 1024) or ``1GB``
(powers of 1000). ``-1`` keeps its Kafka meaning ("no limit") where Kafka allows it. Unknown keys
are refused with the closest known one suggested.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidConfigError, did_you_mean

LONG_MAX = 9223372036854775807

_DURATION_UNITS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_SIZE_UNITS = {
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_NUMBER_UNIT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration_ms(value: int | str, key: str = "duration") -> int:
    """Milliseconds from an int (ms), ``"7d"``-style text or ISO-8601 ``"PT1H"``.

    Raises InvalidConfigError naming ``key`` when the text does not parse.
    """
    if isinstance(value, bool):
        raise InvalidConfigError(f"{key}={value!r} is not a duration.", "Use ms, or e.g. 500ms, 30s, 12h, 7d, PT1H.")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    iso = _ISO_DURATION.match(text)
    if iso and text.upper() not in ("P", "PT"):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        return int(
            parts.get("w", 0) * 604_800_000
            + parts.get("d", 0) * 86_400_000
            + parts.get("h", 0) * 3_600_000
            + parts.get("m", 0) * 60_000
            + parts.get("s", 0) * 1000
        )
    m = _NUMBER_UNIT.match(text)
    if m:
        number, unit = m.groups()
        unit = unit.lower() or "ms"
        if unit in _DURATION_UNITS:
            return int(float(number) * _DURATION_UNITS[unit])
    raise InvalidConfigError(
        f"{key}={value!r} is not a duration.", "Use ms, or e.g. 500ms, 30s, 12h, 7d, PT1H (-1 for none)."
    )


def parse_size_bytes(value: int | str, key: str = "size") -> int:
    """Bytes from an int or text like ``"512MiB"`` / ``"1GB"``; raises InvalidConfigError."""
    if isinstance(value, bool):
        raise InvalidConfigError(f"{key}={value!r} is not a size.", "Use bytes, or e.g. 64KiB, 512MiB, 1GiB.")
    if isinstance(value, int):
        return value
    m = _NUMBER_UNIT.match(str(value))
    if m:
        number, unit = m.groups()
        unit = unit.lower() or "b"
        if unit in _SIZE_UNITS:
            return int(float(number) * _SIZE_UNITS[unit])
    raise InvalidConfigError(f"{key}={value!r} is not a size.", "Use bytes, or e.g. 64KiB, 512MiB, 1GiB (-1 for none).")


def parse_int(value: int | str, key: str = "value") -> int:
    if isinstance(value, bool):
        raise InvalidConfigError(f"{key}={value!r} is not an integer.", "Give a whole number.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidConfigError(f"{key}={value!r} is not an integer.", "Give a whole number.") from None


def format_duration_ms(ms: int) -> str:
    """``604800000`` -> ``7d``; -1 and Long.MAX -> ``forever``."""
    if ms < 0 or ms >= LONG_MAX:
        return "forever"
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def format_size(n: int) -> str:
    """``1073741824`` -> ``1GiB``; -1 -> ``unlimited``."""
    if n < 0 or n >= LONG_MAX:
        return "unlimited"
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            v = n / size
            return f"{v:.0f}{unit}" if n % size == 0 else f"{v:.1f}{unit}"
    return f"{n}B"


@dataclass(frozen=True)
class _Key:
    name: str
    default: Any
    parse: Callable[[Any, str], Any]
    minimum: int | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""


def _choice(value: Any, key: str) -> str:
    return str(value)


TOPIC_KEYS: dict[str, _Key] = {
    k.name: k
    for k in (
        _Key("segment.bytes", 1073741824, parse_size_bytes, 14, doc="roll a segment at this size"),
        _Key("segment.ms", 604800000, parse_duration_ms, 1, doc="roll a segment whose records span this long"),
        _Key(
            "segment.index.bytes",
            10485760,
            parse_size_bytes,
            4096,
            doc="preallocated size of each index file",
        ),
        _Key("index.interval.bytes", 4096, parse_size_bytes, 0, doc="bytes between offset index entries"),
        _Key(
            "retention.ms",
            604800000,
            parse_duration_ms,
            -1,
            doc="delete segments whose newest record is older than this (-1 never)",
        ),
        _Key("retention.bytes", -1, parse_size_bytes, -1, doc="per-partition size limit (-1 none)"),
        _Key("max.message.bytes", 1048588, parse_size_bytes, 0, doc="largest batch accepted"),
        _Key("flush.messages", 1, parse_int, 1, doc="fsync after this many records (1 = every append)"),
        _Key("flush.ms", LONG_MAX, parse_duration_ms, 0, doc="fsync at least this often"),
        _Key(
            "compression.type",
            "producer",
            _choice,
            choices=("producer", "uncompressed", "none", "gzip", "snappy", "lz4", "zstd"),
            doc="codec of the batches written (producer = keep the producer's)",
        ),
        _Key(
            "message.timestamp.type",
            "CreateTime",
            _choice,
            choices=("CreateTime", "LogAppendTime"),
            doc="record time from the producer, or stamped at append",
        ),
        _Key("cleanup.policy", "delete", _choice, choices=("delete",), doc="what retention does"),
        _Key(
            "file.delete.delay.ms",
            60000,
            parse_duration_ms,
            0,
            doc="Kafka's delay before unlinking .deleted files; accepted, not waited for (readers keep open files)",
        ),
    )
}


def reference_table() -> str:
    """The README's table of topic configs, made from :data:`TOPIC_KEYS` (a test keeps the README
    equal to it)."""
    rows = ["| config | default | what it does |", "|---|---|---|"]
    for k in TOPIC_KEYS.values():
        default = k.default
        if k.parse is parse_duration_ms and isinstance(default, int):
            shown = f"`{default}` ({format_duration_ms(default)})"
        elif k.parse is parse_size_bytes and isinstance(default, int) and k.name != "index.interval.bytes":
            shown = f"`{default}` ({format_size(default)})"
        else:
            shown = f"`{default}`"
        doc = k.doc + (f"; one of {', '.join(k.choices)}" if k.choices else "")
        rows.append(f"| `{k.name}` | {shown} | {doc} |")
    return "\n".join(rows)


def validate_topic_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parse and check a ``{kafka.name: value}`` mapping; return it with values normalised.

    Raises InvalidConfigError for an unknown key (with a suggestion), a value that does not parse,
    one below its minimum, or one outside its choices.
    """
    out: dict[str, Any] = {}
    for key, raw in (config or {}).items():
        spec = TOPIC_KEYS.get(key)
        if spec is None:
            # kafka-python style spelling (segment_bytes) is accepted for convenience.
            spec = TOPIC_KEYS.get(str(key).replace("_", "."))
        if spec is None:
            raise InvalidConfigError(
                f"unknown topic config '{key}'.",
                did_you_mean(str(key), TOPIC_KEYS) or f"Known keys: {', '.join(sorted(TOPIC_KEYS))}.",
            )
        value = spec.parse(raw, spec.name)
        if spec.minimum is not None and value < spec.minimum:
            raise InvalidConfigError(
                f"{spec.name}={raw!r} is below its minimum {spec.minimum}.",
                f"Give a value >= {spec.minimum}.",
            )
        if spec.choices:
            matches = [c for c in spec.choices if c.lower() == str(value).lower()]
            if not matches:
                raise InvalidConfigError(
                    f"{spec.name}={raw!r} is not one of {', '.join(spec.choices)}.",
                    did_you_mean(str(value), spec.choices),
                )
            value = matches[0]
        out[spec.name] = value
    return out


@dataclass(frozen=True)
class TopicConfig:
    """The effective configuration of a topic: Kafka's defaults, then the store's, then the topic's."""

    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    segment_index_bytes: int = 10485760
    index_interval_bytes: int = 4096
    retention_ms: int = 604800000
    retention_bytes: int = -1
    max_message_bytes: int = 1048588
    flush_messages: int = 1
    flush_ms: int = LONG_MAX
    compression_type: str = "producer"
    message_timestamp_type: str = "CreateTime"
    cleanup_policy: str = "delete"
    file_delete_delay_ms: int = 60000

    @classmethod
    def from_layers(cls, *layers: Mapping[str, Any] | None) -> TopicConfig:
        """Merge validated ``{kafka.name: value}`` layers, later ones winning."""
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update(validate_topic_config(layer))
        return cls(**{k.replace(".", "_"): v for k, v in merged.items()})

    def to_dict(self) -> dict[str, Any]:
        """``{kafka.name: value}`` for every key."""
        return {name: getattr(self, name.replace(".", "_")) for name in TOPIC_KEYS}


#: Store-level durability presets (``LogStore(path, fsync=...)``), as topic config defaults.
FSYNC_PRESETS: dict[str, dict[str, int]] = {
    # fsync before an append returns: survives process crash and power loss.
    "always": {"flush.messages": 1, "flush.ms": LONG_MAX},
    # fsync at least once a second: survives a process crash; a power loss loses up to 1 s.
    "interval": {"flush.messages": LONG_MAX, "flush.ms": 1000},
    # leave it to the OS: survives a process crash; a power loss loses what the kernel had not written.
    "never": {"flush.messages": LONG_MAX, "flush.ms": LONG_MAX},
}


def client_settings(
    what: str,
    defaults: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    kwargs: Mapping[str, Any],
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A client's settings: ``defaults`` overlaid with ``config`` (Kafka's dotted names, or the
    underscore spelling) and then ``kwargs`` (kafka-python's spelling); ``aliases`` maps further
    accepted names to settings. Raises InvalidConfigError naming the unknown key, with a
    suggestion. ``what`` names the client ("producer")."""
    dotted = {k.replace("_", "."): k for k in defaults} | dict(aliases or {})
    out = dict(defaults)
    for source in (config or {}, kwargs):
        for key, value in source.items():
            name = dotted.get(key, key)
            if name not in defaults:
                raise InvalidConfigError(
                    f"unknown {what} setting '{key}'.",
                    did_you_mean(key, list(defaults) + list(dotted)) or f"Known: {', '.join(defaults)}.",
                )
            out[name] = value
    return out
