"""Check the structure of an Avro object container file without decoding its records.

Spark's Avro reader, told to ignore corrupt files, keeps the records before the damage and skips the
rest without saying which file it was. This walk over the block headers says it: how many records the
intact blocks hold, and where and how the file is broken. It reads only the framing (header, then per
block: record count, byte size, sync marker), so it costs far less than decoding; from a file, block data is skipped unread.

Container layout (Avro 1.x specification): magic `Obj\\x01`, a metadata map, a 16-byte sync marker;
then blocks of (record count: long, byte size: long, data, the same 16-byte sync marker). Longs are
zig-zag varints.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import BinaryIO

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
    """Reads the framing of a seekable binary stream of known size; skips block data unread."""

    def __init__(self, stream: BinaryIO, size: int):
        self.stream, self.size = stream, size

    @property
    def pos(self) -> int:
        return self.stream.tell()

    def long(self) -> int:
        shift = result = 0
        while True:
            byte = self.stream.read(1)
            if not byte:
                raise _Truncated
            result |= (byte[0] & 0x7F) << shift
            if not byte[0] & 0x80:
                return (result >> 1) ^ -(result & 1)
            shift += 7
            if shift > 63:
                raise ValueError("varint longer than 64 bits")

    def _check(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"negative length {n}")
        if self.pos + n > self.size:
            raise _Truncated

    def take(self, n: int) -> bytes:
        self._check(n)
        return self.stream.read(n)

    def skip(self, n: int) -> None:
        self._check(n)
        self.stream.seek(n, io.SEEK_CUR)


def _skip_metadata(reader: _Reader) -> None:
    while True:
        count = reader.long()
        if count == 0:
            return
        if count < 0:  # a block of -count entries, preceded by its size in bytes
            count = -count
            reader.long()
        for _ in range(count):
            reader.skip(reader.long())  # key
            reader.skip(reader.long())  # value


def scan_avro_container(data: bytes) -> ContainerScan:
    """The structure of one Avro container file, given its bytes."""
    return scan_avro_stream(io.BytesIO(data), len(data))


def scan_avro_file(path: str) -> ContainerScan:
    """The structure of one Avro container file on a local (or FUSE-mounted) file system, reading only
    its framing: block data is skipped with a seek, so a file costs its block count, not its size."""
    with open(path, "rb") as stream:
        return scan_avro_stream(stream, os.fstat(stream.fileno()).st_size)


def scan_avro_stream(stream: BinaryIO, size: int) -> ContainerScan:
    if size == 0:
        return ContainerScan(EMPTY, 0, 0, None)
    if stream.read(len(MAGIC)) != MAGIC:
        return ContainerScan(CORRUPT, 0, 0, "not an Avro container file (no Obj\\x01 header)")
    reader = _Reader(stream, size)
    try:
        _skip_metadata(reader)
        sync = reader.take(SYNC_SIZE)
    except (_Truncated, ValueError):
        return ContainerScan(CORRUPT, 0, 0, "the file header is cut short or damaged")

    blocks = records = 0
    while reader.pos < size:
        start = reader.pos
        try:
            count, block_size = reader.long(), reader.long()
            if count < 0 or block_size < 0:
                raise ValueError(f"negative record count or size ({count}, {block_size})")
            reader.skip(block_size)
            marker = reader.take(SYNC_SIZE)
        except _Truncated:
            return ContainerScan(CORRUPT, blocks, records,
                                 f"truncated: block {blocks + 1} at byte {start} runs past the end "
                                 f"of the file ({size} bytes)")
        except ValueError as exc:
            return ContainerScan(CORRUPT, blocks, records, f"block {blocks + 1} at byte {start}: {exc}")
        if marker != sync:
            return ContainerScan(CORRUPT, blocks, records,
                                 f"block {blocks + 1} at byte {start}: sync marker does not match the header's")
        blocks += 1
        records += count
    return ContainerScan(OK if records else EMPTY, blocks, records, None)
