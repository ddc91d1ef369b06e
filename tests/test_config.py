"""Config parsing: Kafka names, durations and sizes with units, did-you-mean."""

from __future__ import annotations

import pytest

from logstore import InvalidConfigError
from logstore.config import (
    TopicConfig,
    format_duration_ms,
    format_size,
    parse_duration_ms,
    parse_size_bytes,
    validate_topic_config,
)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        (500, 500),
        ("500", 500),
        ("500ms", 500),
        ("30s", 30_000),
        ("15m", 900_000),
        ("12h", 43_200_000),
        ("7d", 604_800_000),
        ("1w", 604_800_000),
        ("PT1H", 3_600_000),
        ("P7D", 604_800_000),
        ("PT1M30S", 90_000),
        ("-1", -1),
        (-1, -1),
    ],
)
def test_durations(text, ms):
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize(
    ("text", "n"),
    [(4096, 4096), ("64KiB", 65536), ("512MiB", 512 * 2**20), ("1GiB", 2**30), ("1GB", 10**9), ("10kb", 10_000)],
)
def test_sizes(text, n):
    assert parse_size_bytes(text) == n


@pytest.mark.parametrize("bad", ["soon", "7 days", "P", "1.5.2h", True])
def test_bad_durations_name_the_key(bad):
    with pytest.raises(InvalidConfigError, match=r"retention\.ms"):
        validate_topic_config({"retention.ms": bad})


def test_formatting_echoes_human_units():
    assert format_duration_ms(604_800_000) == "1w"
    assert format_duration_ms(86_400_000) == "1d"
    assert format_duration_ms(-1) == "forever"
    assert format_size(2**30) == "1GiB"
    assert format_size(1536) == "1.5KiB"


def test_layers_and_defaults_are_kafkas():
    cfg = TopicConfig.from_layers(None)
    assert cfg.segment_bytes == 1073741824 and cfg.segment_ms == 604800000
    assert cfg.index_interval_bytes == 4096 and cfg.segment_index_bytes == 10485760
    assert cfg.retention_bytes == -1 and cfg.max_message_bytes == 1048588
    layered = TopicConfig.from_layers({"segment.bytes": "1MiB"}, {"segment.bytes": 2048})
    assert layered.segment_bytes == 2048
    assert TopicConfig.from_layers({"segment_bytes": 4096}).segment_bytes == 4096  # kafka-python spelling


def test_choices_and_suggestions():
    assert validate_topic_config({"message.timestamp.type": "logappendtime"}) == {
        "message.timestamp.type": "LogAppendTime"
    }
    with pytest.raises(InvalidConfigError, match=r"Did you mean 'segment\.bytes'"):
        validate_topic_config({"segment.byte": 10})
    with pytest.raises(InvalidConfigError, match=r"compression\.type"):
        validate_topic_config({"compression.type": "brotli"})
