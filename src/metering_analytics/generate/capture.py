"""Event Hubs Capture output: the Avro container, its two path layouts, and Capture's time format.

Files are byte-for-byte what Capture writes as far as the format goes: the header carries the
schema JSON exactly as the real Capture file does (compact, `EventData` in namespace
`Microsoft.ServiceBus.Messaging`), and each file gets its own sync marker, derived from the seed and
the path so that reruns are byte-identical.

Records are encoded here rather than by fastavro's writer: the map values of the Capture schema are
unions, and fastavro resolves a union per value, which made it the slowest step of generation. The
encoding is the Avro binary encoding of this one schema; tests check it against fastavro's writer
byte for byte, and fastavro and Spark read the files back.
"""
from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Callable

from metering_analytics.schemas import CAPTURE_AVRO_SCHEMA_JSON

CODECS = ("null", "deflate")
CLASSIC, HIVE = "classic", "hive"
BLOCK_BYTES = 64 * 1024  # uncompressed bytes per data block, like Capture's and fastavro's few-KB..MB blocks
_SCHEMA_TEXT = json.dumps(CAPTURE_AVRO_SCHEMA_JSON, separators=(",", ":")).encode("utf-8")
_MAGIC = b"Obj\x01"
_SYNC_SIZE = 16


def utc(epoch_ms: int) -> datetime:
    """Naive UTC datetime of an epoch timestamp in milliseconds."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).replace(tzinfo=None)


def epoch_ms(at: datetime) -> int:
    return int(at.replace(tzinfo=timezone.utc).timestamp() * 1000)


@lru_cache(maxsize=4096)
def _hour_parts(hour_ms: int) -> tuple[str, str]:
    t = utc(hour_ms)
    h12 = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {h12}:", " PM" if t.hour >= 12 else " AM"


def format_enqueued_time(at_ms: int) -> str:
    """Capture's EnqueuedTimeUtc: .NET's `M/d/yyyy h:mm:ss tt` in UTC, e.g. `12/9/2022 4:51:25 PM`."""
    hour_ms, rest = divmod(at_ms, 3_600_000)
    head, tail = _hour_parts(hour_ms * 3_600_000)
    minute, second = divmod(rest // 1000, 60)
    return f"{head}{minute:02d}:{second:02d}{tail}"


def capture_path(namespace: str, event_hub: str, partition: int, window_start: datetime, layout: str) -> str:
    """Path of a Capture file relative to the capture root, in either of Capture's naming layouts."""
    t = window_start
    if layout == CLASSIC:
        name = (f"p{partition}--{t.year:04d}-{t.month:02d}-{t.day:02d}--"
                f"{t.hour:02d}-{t.minute:02d}-{t.second:02d}.avro")
        return f"{namespace}/{event_hub}/{name}"
    if layout == HIVE:
        return (f"{namespace}/{event_hub}/p={partition}/y={t.year:04d}/m={t.month:02d}/d={t.day:02d}/"
                f"h={t.hour:02d}/mm={t.minute:02d}/{t.second:02d}.avro")
    raise ValueError(f"unknown Capture path layout {layout!r}")


def _encode_long(n: int) -> bytes:
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_SMALL_LONGS = tuple(_encode_long(i) for i in range(4096))


def _zigzag_long(n: int) -> bytes:
    return _SMALL_LONGS[n] if 0 <= n < 4096 else _encode_long(n)


def _avro_bytes(b: bytes) -> bytes:
    return _zigzag_long(len(b)) + b


def _avro_string(s: str) -> bytes:
    return _avro_bytes(s.encode("utf-8"))


# Branch indexes of the map-value unions: ["long", "double", "string", "bytes", "null"]
def _union_value(value: Any) -> bytes:
    if isinstance(value, str):
        return b"\x04" + _avro_string(value)
    if value is None:
        return b"\x08"
    if isinstance(value, int) and not isinstance(value, bool):
        return b"\x00" + _zigzag_long(value)
    if isinstance(value, float):
        return b"\x02" + struct.pack("<d", value)
    if isinstance(value, bytes):
        return b"\x06" + _avro_bytes(value)
    raise TypeError(f"{type(value).__name__} is not in the Capture map-value union")


def encode_map(values: dict[str, Any]) -> bytes:
    """An Avro map of the Capture union values (one block), e.g. the Properties of an event."""
    if not values:
        return b"\x00"
    return (_zigzag_long(len(values)) + b"".join(_avro_string(k) + _union_value(v) for k, v in values.items())
            + b"\x00")


_PARTITION_KEY = _avro_string("x-opt-partition-key") + b"\x04"
_ENQUEUED_TIME = _avro_string("x-opt-enqueued-time") + b"\x00"


@lru_cache(maxsize=65536)
def _keyed_prefix(partition_key: str) -> bytes:
    return _zigzag_long(2) + _PARTITION_KEY + _avro_string(partition_key) + _ENQUEUED_TIME


def system_properties(partition_key: str | None, enqueued_ms: int) -> bytes:
    """Capture's SystemProperties: the partition key when the sender gave one, and the enqueued time."""
    head = _keyed_prefix(partition_key) if partition_key is not None else _zigzag_long(1) + _ENQUEUED_TIME
    return head + _encode_long(enqueued_ms) + b"\x00"


def encode_record(sequence_number: int, offset: str, enqueued_time_utc: str, system: bytes, properties: bytes,
                  body: bytes | None) -> bytes:
    """One EventData record; `system` and `properties` already encoded with encode_map/system_properties."""
    return b"".join((_encode_long(sequence_number), _avro_string(offset), _avro_string(enqueued_time_utc),
                     system, properties, b"\x00" if body is None else b"\x02" + _avro_bytes(body)))


def container_header(codec: str, sync_marker: bytes) -> bytes:
    """The Avro object container header as Capture writes it (codec first, compact schema)."""
    return (_MAGIC + _zigzag_long(2)
            + _avro_bytes(b"avro.codec") + _avro_bytes(codec.encode("ascii"))
            + _avro_bytes(b"avro.schema") + _avro_bytes(_SCHEMA_TEXT)
            + _zigzag_long(0) + sync_marker)


def _block(records: list[bytes], codec: str, sync_marker: bytes) -> bytes:
    data = b"".join(records)
    if codec == "deflate":
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)  # raw deflate, per the spec
        data = compressor.compress(data) + compressor.flush()
    return _zigzag_long(len(records)) + _zigzag_long(len(data)) + data + sync_marker


def encode_blocks(records: list[bytes], codec: str, sync_marker: bytes) -> bytes:
    """Data blocks of encoded records, each followed by the sync marker (a file's body, without header)."""
    blocks, pending, size = [], [], 0
    for record in records:
        pending.append(record)
        size += len(record)
        if size >= BLOCK_BYTES:
            blocks.append(_block(pending, codec, sync_marker))
            pending, size = [], 0
    if pending:
        blocks.append(_block(pending, codec, sync_marker))
    return b"".join(blocks)


@dataclass
class _OpenFile:
    window_start_ms: int
    path: Path
    handle: BinaryIO
    sync_marker: bytes
    records: int = 0


class CaptureSink:
    """Writes one Capture file per partition and time window, appending as the stream advances.

    Every window of every partition gets a file, an empty one (header only) when nothing was
    enqueued in it: Capture does the same when "do not emit empty files" is off.
    """

    def __init__(self, root: Path, namespace: str, event_hub: str, *, window_ms: int, codec: str, seed: int,
                 layout_at: Callable[[int, int], str]) -> None:
        if codec not in CODECS:
            raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
        self.root = Path(root)
        self.namespace, self.event_hub = namespace, event_hub
        self.window_ms, self.codec, self.seed = window_ms, codec, seed
        self.layout_at = layout_at
        self._open: dict[int, _OpenFile] = {}
        self._last_dir: dict[int, Path] = {}
        self.files_written = 0
        self.empty_files = 0

    def write(self, partition: int, at_ms: int, records: list[bytes]) -> None:
        """Append encoded records enqueued in the window containing `at_ms` (opening that window's file)."""
        window_start = at_ms - at_ms % self.window_ms
        current = self._open.get(partition)
        if current is None or current.window_start_ms != window_start:
            if current is not None:
                self._close(partition)
            current = self._start(partition, window_start)
        if records:
            current.handle.write(encode_blocks(records, self.codec, current.sync_marker))
            current.records += len(records)

    def close(self) -> None:
        for partition in sorted(self._open):
            self._close(partition)

    def _start(self, partition: int, window_start_ms: int) -> _OpenFile:
        relative = capture_path(self.namespace, self.event_hub, partition, utc(window_start_ms),
                                self.layout_at(partition, window_start_ms))
        path = self.root / relative
        if self._last_dir.get(partition) != path.parent:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._last_dir[partition] = path.parent
        sync = hashlib.blake2b(f"{self.seed}:{relative}".encode(), digest_size=_SYNC_SIZE).digest()
        handle = path.open("wb")
        handle.write(container_header(self.codec, sync))
        opened = _OpenFile(window_start_ms, path, handle, sync)
        self._open[partition] = opened
        return opened

    def _close(self, partition: int) -> None:
        done = self._open.pop(partition)
        done.handle.close()
        self.files_written += 1
        if done.records == 0:
            self.empty_files += 1
