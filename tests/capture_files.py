"""Write hand-made Event Hubs Capture Avro files for tests (the real Capture record schema)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

import fastavro

from metering_analytics.schemas import CAPTURE_AVRO_SCHEMA_JSON

_SCHEMA = fastavro.parse_schema(CAPTURE_AVRO_SCHEMA_JSON)


def capture_time(ts: datetime) -> str:
    """Capture's EnqueuedTimeUtc format: M/d/yyyy h:mm:ss tt."""
    hour = ts.hour % 12 or 12
    return f"{ts.month}/{ts.day}/{ts.year} {hour}:{ts.minute:02d}:{ts.second:02d} {'AM' if ts.hour < 12 else 'PM'}"


def flat_path(root: Path, partition: int, window: datetime, hub: str = "ns/hub") -> Path:
    return root / hub / f"p{partition}--{window:%Y-%m-%d--%H-%M-%S}.avro"


def hive_path(root: Path, partition: int, window: datetime, hub: str = "ns/hub") -> Path:
    return root / hub / f"p={partition}/y={window:%Y}/m={window:%m}/d={window:%d}/h={window:%H}/mm={window:%M}/{window:%S}.avro"


def body(message: dict | str | bytes | None) -> bytes | None:
    if message is None or isinstance(message, bytes):
        return message
    if isinstance(message, str):
        return message.encode("utf-8")
    return json.dumps(message).encode("utf-8")


def record(sequence_number: int, enqueued: datetime, message: dict | str | bytes | None,
           properties: dict | None = None) -> dict:
    return {
        "SequenceNumber": sequence_number,
        "Offset": str(sequence_number * 1000),
        "EnqueuedTimeUtc": capture_time(enqueued),
        "SystemProperties": {},
        "Properties": dict(properties or {}),
        "Body": body(message),
    }


def write_capture(path: Path, records: Iterable[dict], codec: str = "null", block_bytes: int = 16000) -> Path:
    """One Capture file; `block_bytes` ends an Avro block once that many bytes are buffered (1: a block per record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        fastavro.writer(out, _SCHEMA, list(records), codec=codec, sync_interval=block_bytes)
    return path


def sequence(start: datetime, messages: list, step: timedelta = timedelta(seconds=1), first_seq: int = 0) -> list[dict]:
    """Records for messages enqueued one `step` apart (an entry may be (datetime, message))."""
    out = []
    for i, m in enumerate(messages):
        when, msg = m if isinstance(m, tuple) else (start + i * step, m)
        out.append(record(first_seq + i, when, msg))
    return out
