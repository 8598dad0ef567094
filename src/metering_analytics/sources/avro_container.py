"""Check the structure of an Avro object container file without decoding its records.

Spark's Avro reader, told to ignore corrupt files, keeps the records before the damage and skips the
rest without saying which file it was. This walk over the block headers says it: how many records the
intact blocks hold, and where and how the file is broken. It reads only the framing (header, then per
block: record count, byte size, sync marker), so it costs far less than decoding.

Container layout (Avro 1.x specification): magic `Obj\\x01`, a metadata map, a 16-byte sync marker;
then blocks of (record count: long, byte size: long, data, the same 16-byte sync marker). Longs are
zig-zag varints.
"""
from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"Obj\x01"
SYNC_SIZE = 16

OK, EMPTY, CORRUPT = "ok", "empty", "corrupt"


@dataclass(frozen=True)
class ContainerScan:
    status: str  # ok | empty (a header and no records, or no bytes at all) | corrupt
    blocks: int  # intact blocks
    records: int  # records in the intact blocks: what a reader can recover
    problem: str | None = None  # what is wrong and where, for a corrupt file


class _Truncated(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def long(self) -> int:
        shift = result = 0
        while True:
            if self.pos >= len(self.data):
                raise _Truncated
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise ValueError("varint longer than 64 bits")

    def take(self, n: int) -> bytes:
        if n < 0:
            raise ValueError(f"negative length {n}")
        if self.pos + n > len(self.data):
            raise _Truncated
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk


def _skip_metadata(reader: _Reader) -> None:
    while True:
        count = reader.long()
        if count == 0:
            return
        if count < 0:  # a block of -count entries, preceded by its size in bytes
            count = -count
            reader.long()
        for _ in range(count):
            reader.take(reader.long())  # key
            reader.take(reader.long())  # value


def scan_avro_container(data: bytes) -> ContainerScan:
    """The structure of one Avro container file, given its bytes."""
    if not data:
        return ContainerScan(EMPTY, 0, 0, None)
    if not data.startswith(MAGIC):
        return ContainerScan(CORRUPT, 0, 0, "not an Avro container file (no Obj\\x01 header)")
    reader = _Reader(data)
    reader.pos = len(MAGIC)
    try:
        _skip_metadata(reader)
        sync = reader.take(SYNC_SIZE)
    except (_Truncated, ValueError):
        return ContainerScan(CORRUPT, 0, 0, "the file header is cut short or damaged")

    blocks = records = 0
    while reader.pos < len(data):
        start = reader.pos
        try:
            count, size = reader.long(), reader.long()
            if count < 0 or size < 0:
                raise ValueError(f"negative record count or size ({count}, {size})")
            reader.take(size)
            marker = reader.take(SYNC_SIZE)
        except _Truncated:
            return ContainerScan(CORRUPT, blocks, records,
                                 f"truncated: block {blocks + 1} at byte {start} runs past the end "
                                 f"of the file ({len(data)} bytes)")
        except ValueError as exc:
            return ContainerScan(CORRUPT, blocks, records, f"block {blocks + 1} at byte {start}: {exc}")
        if marker != sync:
            return ContainerScan(CORRUPT, blocks, records,
                                 f"block {blocks + 1} at byte {start}: sync marker does not match the header's")
        blocks += 1
        records += count
    return ContainerScan(OK if records else EMPTY, blocks, records, None)
