"""`generate()`: a deterministic Capture dataset (plus the accelerator's snapshots) for a seed."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from metering_analytics.generate.capture import CLASSIC, HIVE, CaptureSink, epoch_ms, utc
from metering_analytics.generate.customers import HOUR_MS, UsageModel, build_population
from metering_analytics.generate.snapshots import write_snapshots
from metering_analytics.generate.stream import HourlyStream, StreamConfig, plan_outages

# Usage messages per active subscription and hour, before size, seasonality and growth. With the
# demo population (300 subscriptions over 365 days) this gives about 3 million events.
DEFAULT_EVENTS_PER_SUBSCRIPTION_HOUR = 1.6
NAMESPACE = "contoso-metering"
EVENT_HUB = "metering"


@dataclass(frozen=True)
class GenerationSummary:
    messages_by_type: dict[str, int]  # valid messages per body type
    junk: int  # messages the pipeline must quarantine (or, for a resent purchase, ignore)
    junk_by_kind: dict[str, int]
    events_total: int
    files_written: int
    empty_files: int
    first_enqueued: datetime | None
    last_enqueued: datetime | None
    subscriptions: int
    deleted_subscriptions: int
    out_dir: Path
    capture_dir: Path
    snapshot_dir: Path
    snapshot_files: tuple[Path, ...]


def _check_window(window_minutes: int) -> None:
    if window_minutes <= 0 or (60 % window_minutes and (window_minutes % 60 or 1440 % window_minutes)):
        raise ValueError("window_minutes must divide an hour or be whole hours dividing a day, "
                         f"got {window_minutes}")


def generate(out_dir: str | Path, *, subscriptions: int, days: int, seed: int,
             start: datetime = datetime(2025, 1, 1), partitions: int = 4, junk_rate: float = 0.002,
             events_per_subscription_hour: float = DEFAULT_EVENTS_PER_SUBSCRIPTION_HOUR,
             progress: Callable[[str], None] | None = None, window_minutes: int = 60, codec: str = "null",
             namespace: str = NAMESPACE, event_hub: str = EVENT_HUB) -> GenerationSummary:
    """Write `<out_dir>/capture/` (Event Hubs Capture Avro files) and `<out_dir>/snapshots/`.

    Same arguments, same bytes. `<out_dir>/capture` and `<out_dir>/snapshots` are replaced. The first
    half of the period uses Capture's `p{N}--{date}--{time}.avro` names, the second half the
    Hive-style `p={N}/y=/m=/d=/h=/mm=/{ss}.avro` names (as if the naming format had been changed
    midway), both under `{namespace}/{event_hub}/`.
    """
    if subscriptions < 1 or days < 1 or partitions < 1:
        raise ValueError("subscriptions, days and partitions must be at least 1")
    if not 0 <= junk_rate < 1:
        raise ValueError(f"junk_rate must be in [0, 1), got {junk_rate}")
    _check_window(window_minutes)
    if start.tzinfo is not None:
        start = start.astimezone(timezone.utc).replace(tzinfo=None)
    out = Path(out_dir)
    capture_dir, snapshot_dir = out / "capture", out / "snapshots"
    for generated in (capture_dir, snapshot_dir):
        if generated.exists():
            shutil.rmtree(generated)

    start_ms = epoch_ms(start)
    hours = days * 24
    end_ms = start_ms + hours * HOUR_MS
    window_ms = window_minutes * 60_000
    windows = hours * HOUR_MS // window_ms
    switch_ms = start_ms + (windows // 2) * window_ms

    def layout_at(partition: int, window_start_ms: int) -> str:
        if windows == 1:  # a single window: both layouts only by partition
            return CLASSIC if partition % 2 == 0 else HIVE
        return CLASSIC if window_start_ms < switch_ms else HIVE

    population = build_population(subscriptions, start_ms, end_ms, partitions, seed)
    model = UsageModel(population, start_ms, events_per_subscription_hour, seed)
    sink = CaptureSink(capture_dir, namespace, event_hub, window_ms=window_ms, codec=codec, seed=seed,
                       layout_at=layout_at)
    config = StreamConfig(start_ms=start_ms, hours=hours, partitions=partitions, junk_rate=junk_rate,
                          outages=plan_outages(hours, seed))
    stream = HourlyStream(population, model, config, sink, seed)
    try:
        stream.run(progress)
    finally:
        sink.close()
    states = [stream.states[i] for i in sorted(stream.states)]
    snapshot_files = write_snapshots(snapshot_dir, stream.partitions, states, end_ms)

    counts = stream.counts
    junk = sum(counts.junk_by_kind.values())
    return GenerationSummary(
        messages_by_type=dict(sorted(counts.by_type.items())),
        junk=junk,
        junk_by_kind=dict(sorted(counts.junk_by_kind.items())),
        events_total=sum(counts.by_type.values()) + junk,
        files_written=sink.files_written,
        empty_files=sink.empty_files,
        first_enqueued=utc(counts.first_ms) if counts.first_ms is not None else None,
        last_enqueued=utc(counts.last_ms) if counts.last_ms is not None else None,
        subscriptions=len(population),
        deleted_subscriptions=sum(1 for s in population if s.deletion_ms is not None),
        out_dir=out,
        capture_dir=capture_dir,
        snapshot_dir=snapshot_dir,
        snapshot_files=tuple(snapshot_files),
    )
