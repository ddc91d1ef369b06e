"""Compression codecs of magic-2 record batches, written so Java Kafka and librdkafka read them.

Only the records section of a batch (bytes 61 to the end) is compressed, as one stream per batch.

==========  ==  =================================================================================
codec       id  what we write
==========  ==  =================================================================================
none        0   the records as they are
gzip        1   an RFC 1952 gzip member, zlib level 6 (Java's default), mtime 0
snappy      2   xerial framing ("\\x82SNAPPY\\0", version 1, compatible 1, then chunks of at most
                32 KiB of input as [int32 length][raw snappy block]); reading also accepts a single
                raw snappy block, as librdkafka writes. Needs ``cramjam`` (extra ``snappy``).
lz4         3   an LZ4 frame with *independent* blocks, 64 KiB block size, no checksums and no
                content size: byte-identical to Kafka's Lz4BlockOutputStream. python-lz4's default
                (linked blocks) is rejected by Java readers for batches over 64 KiB.
zstd        4   a standard zstd frame, level 3 (Java's default), with content size. Needs
                ``zstandard`` (extra ``zstd``).
==========  ==  =================================================================================
"""

from __future__ import annotations

import struct
import zlib

import lz4.frame

from ..errors import UnsupportedCodecError

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
CODEC_MASK = 0x07
NAMES = {"none": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
BY_ID = {v: k for k, v in NAMES.items()}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024

try:  # optional codecs: probe once
    import cramjam as _cramjam
except ImportError:  # pragma: no cover - depends on the environment
    _cramjam = None
try:
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None


def codec_id(codec: str | int) -> int:
    """Return the attribute id (0-4) of a codec given by name (``"lz4"``) or id.

    Raises UnsupportedCodecError for an unknown name or id.
    """
    if isinstance(codec, int) and not isinstance(codec, bool):
        if codec in BY_ID:
            return codec
    elif isinstance(codec, str) and codec.lower() in NAMES:
        return NAMES[codec.lower()]
    raise UnsupportedCodecError(f"unknown compression codec {codec!r}.", f"Use one of: {', '.join(NAMES)}.")


def available(codec: str | int) -> bool:
    """True when this Python can both compress and decompress ``codec``."""
    cid = codec_id(codec)
    if cid == SNAPPY:
        return _cramjam is not None
    if cid == ZSTD:
        return _zstd is not None or _cramjam is not None
    return True


def _missing(cid: int) -> UnsupportedCodecError:
    extra = BY_ID[cid]
    return UnsupportedCodecError(
        f"compression codec '{extra}' needs a package that is not installed.",
        f"Install it with: pip install 'logstore[{extra}]'.",
    )


def compress(codec: int, data: bytes) -> bytes:
    """Compress the records section ``data`` with codec id ``codec`` (see the module table)."""
    if codec == LZ4:
        return lz4.frame.compress(
            data,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
    if codec == NONE:
        return data
    if codec == GZIP:
        c = zlib.compressobj(6, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if codec == SNAPPY:
        if _cramjam is None:
            raise _missing(SNAPPY)
        raw = _cramjam.snappy.compress_raw
        parts = [_XERIAL_HEADER]
        view = memoryview(data)
        for start in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(raw(view[start : start + _XERIAL_BLOCK]))
            parts.append(struct.pack(">i", len(block)))
            parts.append(block)
        return b"".join(parts)
    if codec == ZSTD:
        if _zstd is not None:
            return _zstd.ZstdCompressor(level=3).compress(data)
        if _cramjam is not None:
            return bytes(_cramjam.zstd.compress(data, level=3))
        raise _missing(ZSTD)
    codec_id(codec)  # raises for an unknown id
    raise _missing(codec)


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """Decompress a records section; raises ValueError on malformed input, UnsupportedCodecError
    when the codec's package is missing."""
    if codec == LZ4:
        try:
            return lz4.frame.decompress(data)
        except RuntimeError as e:
            raise ValueError(f"bad lz4 frame: {e}") from None
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        try:
            # wbits 47 = auto-detect gzip or zlib header; concatenated members are accepted.
            d = zlib.decompressobj(47)
            out = d.decompress(data)
            while d.unused_data:
                rest = d.unused_data
                d = zlib.decompressobj(47)
                out += d.decompress(rest)
            if not d.eof:
                raise ValueError("bad gzip stream: truncated (no end of stream)")
            return out
        except zlib.error as e:
            raise ValueError(f"bad gzip stream: {e}") from None
    if codec == SNAPPY:
        if _cramjam is None:
            raise _missing(SNAPPY)
        try:
            view = memoryview(data)
            if bytes(view[:8]) != XERIAL_MAGIC:
                return bytes(_cramjam.snappy.decompress_raw(view))
            parts = []
            pos, end = 16, len(view)
            while pos < end:
                if pos + 4 > end:
                    raise ValueError("truncated xerial snappy chunk header")
                (n,) = struct.unpack_from(">i", view, pos)
                if n < 0 or pos + 4 + n > end:
                    raise ValueError("xerial snappy chunk runs past the end")
                parts.append(bytes(_cramjam.snappy.decompress_raw(view[pos + 4 : pos + 4 + n])))
                pos += 4 + n
            return b"".join(parts)
        except _cramjam.DecompressionError as e:
            raise ValueError(f"bad snappy data: {e}") from None
    if codec == ZSTD:
        if _zstd is not None:
            try:
                # A frame may omit its content size (Java writes none) and a stream may hold
                # several frames: decompress frame by frame, and insist each one is complete.
                parts, rest = [], bytes(data)
                while True:
                    d = _zstd.ZstdDecompressor().decompressobj()
                    parts.append(d.decompress(rest))
                    if not d.eof:
                        raise ValueError("bad zstd data: truncated frame")
                    rest = d.unused_data
                    if not rest:
                        return b"".join(parts)
            except _zstd.ZstdError as e:
                raise ValueError(f"bad zstd data: {e}") from None
        if _cramjam is not None:
            try:
                return bytes(_cramjam.zstd.decompress(bytes(data)))
            except _cramjam.DecompressionError as e:
                raise ValueError(f"bad zstd data: {e}") from None
        raise _missing(ZSTD)
    raise UnsupportedCodecError(
        f"unknown compression codec id {codec} in a record batch.",
        "The batch is damaged or written by a newer Kafka; run 'logstore verify'.",
    )
