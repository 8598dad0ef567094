"""The event stream, one hour at a time, in Event Hubs order, with the accelerator's own messages.

Each hour gathers what is enqueued in it: purchases, deletions, usage, the aggregator's pings, the
Marketplace results for the previous hour (~1h15m after that hour began, like the accelerator),
maintenance commands and a little junk. The hour is then put in enqueued-time order, sequence
numbers and offsets are assigned per partition, the records go to the Capture sink, and the hour's
usage goes through the reference accountant of each subscription, so that submissions carry exactly
the overage the rules give. Nothing outlives the hour except small per-subscription and
per-partition state, so memory does not grow with the number of events.

A few maintenance windows pause the whole metering pipeline: nothing is enqueued for an hour or two
(Capture writes empty files), then the aggregator restarts and the applications flush what they
buffered, with their original timestamps, in the first minutes after the restart.
"""
from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Callable

import numpy as np

from metering_analytics.billing.reference import RENEWAL_MONTHS, SubscriptionAccountant
from metering_analytics.generate import messages
from metering_analytics.generate.capture import (CaptureSink, encode_map, encode_record, format_enqueued_time,
                                                  system_properties)
from metering_analytics.generate.customers import HOUR_MS, Subscription, UsageModel, guid
from metering_analytics.generate.junk import NOT_UNPROCESSABLE, JunkFactory
from metering_analytics.generate.plans import accounting_meters

_EPOCH = datetime(1970, 1, 1)
SUBMISSION_DELAY_MS = 75 * 60_000  # from the start of the hour to its Marketplace result
MARKETPLACE_BATCH = 25
UNPROCESSABLE_KEPT = 1000  # the accelerator keeps them until told to drop them; we keep the newest

# A message waiting to be enqueued. `origin` is when its sender produced it (differs from `at` only
# for messages held back by a maintenance window); `order` breaks ties deterministically; `payload`
# is (meter, quantity) for usage and (mode, value) for RemoveUnprocessedMessages.
# (at, origin, order, partition, kind, subscription index or -1, body, partition key,
#  Avro-encoded application properties, payload)
Message = tuple[int, int, int, int, str, int, "bytes | None", "str | None", bytes, Any]
# Capture's application Properties map. The accelerator's SDK sends an event's properties inside the
# UsageReported body (`value.properties`, see messages.UsageTemplate), so every record leaves this empty.
_NO_PROPERTIES = encode_map({})


@dataclass
class SubscriptionState:
    sub: Subscription
    accountant: SubscriptionAccountant
    meters: list[tuple[messages.UsageTemplate, str, bool, bytes] | None]  # by plan meter index
    accepted: messages.AcceptedTemplate
    deleted: bool = False
    last_position: tuple[int, int] | None = None  # (sequence number, enqueued ms) of its last message
    meter_last_ms: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[int, str, float]] = field(default_factory=list)  # (hour ms, dimension, quantity)


@dataclass
class PartitionState:
    partition: int
    next_sequence: int = 0
    next_offset: int = 0
    last_position: tuple[int, int] | None = None
    unprocessable: list[tuple[int, int, bytes | None]] = field(default_factory=list)  # (seq, ms, body), oldest first

    def remove_unprocessable(self, mode: str, value: Any) -> None:
        if mode == "all":
            self.unprocessable.clear()
        elif mode == "beforeIncluding":
            self.unprocessable = [u for u in self.unprocessable if u[0] > value]
        elif mode == "exactly":
            self.unprocessable = [u for u in self.unprocessable if u[0] != value]


@dataclass(frozen=True)
class StreamConfig:
    start_ms: int
    hours: int
    partitions: int
    junk_rate: float
    pending_hours: int = 3  # the last hours' overage is not submitted yet when the data ends
    outages: tuple[tuple[int, int], ...] = ()  # (first hour, hour after) of maintenance windows


@dataclass
class StreamCounts:
    by_type: Counter = field(default_factory=Counter)
    junk_by_kind: Counter = field(default_factory=Counter)
    first_ms: int | None = None
    last_ms: int | None = None


def plan_outages(hours: int, seed: int) -> tuple[tuple[int, int], ...]:
    """About one maintenance window per two months (at least one), 1-2 hours, away from the period's ends."""
    rng = random.Random(f"{seed}:outages")
    count = max(1, round(hours / (24 * 60)))
    lo, hi = max(1, hours // 10), max(2, hours - hours // 10 - 3)
    chosen: list[tuple[int, int]] = []
    for _ in range(count * 5):
        if len(chosen) == count or hi - lo < 3:
            break
        first = rng.randrange(lo, hi - 2)
        window = (first, first + rng.choice((1, 2)))
        if all(window[1] + 24 <= a or b + 24 <= window[0] for a, b in chosen):
            chosen.append(window)
    return tuple(sorted(chosen))


class HourlyStream:
    def __init__(self, subscriptions: list[Subscription], model: UsageModel, config: StreamConfig,
                 sink: CaptureSink, seed: int) -> None:
        self.subs = subscriptions
        self.model = model
        self.config = config
        self.sink = sink
        self.rng = random.Random(f"{seed}:stream")
        self.np_rng = np.random.default_rng(np.random.SeedSequence([seed, 0x57EA]))
        self.junk = JunkFactory(random.Random(f"{seed}:junk"))
        self.states: dict[int, SubscriptionState] = {}
        self.partitions = [PartitionState(p) for p in range(config.partitions)]
        self.counts = StreamCounts()
        self._order = itertools.count()
        self._junk_credit = 0.0
        self._to_submit: list[tuple[int, dict[tuple[int, str], Decimal]]] = []  # (hour ms, overage)
        self._purchases = self._by_hour(s.purchase_ms for s in subscriptions)
        self._deletions = self._by_hour(s.deletion_ms for s in subscriptions)
        self._outage_of = {h: (a, b) for a, b in config.outages for h in range(a, b)}
        self._resumes = {b for _, b in config.outages}

    def _by_hour(self, times) -> dict[int, list[int]]:
        grouped: dict[int, list[int]] = {}
        for index, at in enumerate(times):
            if at is not None:
                grouped.setdefault((at - self.config.start_ms) // HOUR_MS, []).append(index)
        return grouped

    def run(self, progress: Callable[[str], None] | None = None) -> None:
        carry: list[Message] = []
        for hour in range(self.config.hours):
            t0 = self.config.start_ms + hour * HOUR_MS
            batch: list[Message] = []
            self._add_purchases(hour, batch)
            self._add_deletions(hour, batch)
            self._add_usage(hour, t0, batch)
            if hour not in self._outage_of:  # the aggregator is down during maintenance
                self._add_pings(hour, t0, batch)
                self._add_submissions(t0, batch)
                self._add_maintenance(t0, batch)
            self._add_junk(t0, batch)
            if hour in self._outage_of:
                first, after = self._outage_of[hour]
                carry.extend(self._hold_back(batch, first, after))
                self._emit(hour, t0, [])
            else:
                batch.extend(carry)
                carry = []
                self._emit(hour, t0, batch)
            if progress is not None and (hour + 1) % 24 == 0:
                progress(f"day {(hour + 1) // 24}/{self.config.hours // 24}: "
                         f"{sum(self.counts.by_type.values()) + sum(self.counts.junk_by_kind.values())} events")

    # -- what is enqueued in an hour ---------------------------------------------------------------

    def _add(self, batch: list[Message], at: int, partition: int, kind: str, sub: int, body: bytes | None,
             key: str | None, payload: Any = None) -> None:
        batch.append((at, at, next(self._order), partition, kind, sub, body, key, _NO_PROPERTIES, payload))

    def _add_purchases(self, hour: int, batch: list[Message]) -> None:
        for index in self._purchases.get(hour, ()):
            sub = self.subs[index]
            meters = accounting_meters(sub.plan)
            used = {m.name for m in sub.meters}
            self.states[index] = SubscriptionState(
                sub, SubscriptionAccountant(meters, RENEWAL_MONTHS[sub.renewal_interval], sub.start),
                [(messages.UsageTemplate(sub, m), m.name, m.integral, _NO_PROPERTIES)
                 if m.name in used
                 else None for m in sub.plan.meters],
                messages.AcceptedTemplate(sub))
            self._add(batch, sub.purchase_ms, sub.partition, "SubscriptionPurchased", index,
                      messages.purchase_body(sub), sub.partition_key)

    def _add_deletions(self, hour: int, batch: list[Message]) -> None:
        for index in self._deletions.get(hour, ()):
            sub = self.subs[index]
            assert sub.deletion_ms is not None
            self._add(batch, sub.deletion_ms, sub.partition, "SubscriptionDeleted", index,
                      messages.deletion_body(sub), sub.partition_key)

    def _add_usage(self, hour: int, t0: int, batch: list[Message]) -> None:
        usage = self.model.draw(hour)
        n = len(usage.offset_ms)
        if n == 0:
            return
        lags = self.np_rng.integers(300, 4000, n).tolist()
        as_text = self.np_rng.random(n).tolist()
        extra = self.np_rng.integers(0, 10_000, n).tolist()
        states, iso_z, order = self.states, messages.iso_z, self._order
        for si, mi, offset, quantity, lag, text_draw, digits in zip(
                usage.subscription.tolist(), usage.meter.tolist(), usage.offset_ms.tolist(),
                usage.quantity.tolist(), lags, as_text, extra):
            state = states[si]
            sub = state.sub
            template, meter, integral, properties = state.meters[mi]
            at = t0 + offset
            value = int(quantity) if integral else quantity
            text = repr(value)  # quantities have at most 3 decimals: milli-units are exact
            if text_draw < sub.string_quantity_share:
                text = f'"{text}"'
            stamp = iso_z(at - lag, 7, digits) if sub.fractional_timestamps else iso_z(at - lag)
            batch.append((at, at, next(order), sub.partition, "UsageReported", si, template.render(stamp, text),
                          sub.partition_key, properties, (meter, round(value * 1000))))

    def _add_pings(self, hour: int, t0: int, batch: list[Message]) -> None:
        rng = self.rng
        for p in range(self.config.partitions):
            sender = f"aggregator on 10.1.0.{4 + p % 3}"
            if hour in self._resumes or (hour > 0 and rng.random() < 1 / 240):
                at = t0 + (rng.randrange(500, 3000) if hour in self._resumes else rng.randrange(HOUR_MS))
                self._add(batch, at, p, "Ping", -1, messages.ping_body(p, messages.iso_z(at - 400), "starting", sender),
                          None)
            at = t0 + rng.randrange(200, 3000)
            local = messages.iso_z(at - rng.randrange(0, 900))
            self._add(batch, at, p, "Ping", -1, messages.ping_body(p, local, "newhour", sender), None)

    def _add_submissions(self, t0: int, batch: list[Message]) -> None:
        """Marketplace's answers for the overage of past hours, in batches of 25 per partition.

        Normally that is the previous hour, ~1h15m after it began; after a maintenance window the
        aggregator catches up a few minutes after its restart.
        """
        to_submit, self._to_submit = self._to_submit, []
        for hour_ms, overage in to_submit:
            self._submit_hour(hour_ms, max(hour_ms + SUBMISSION_DELAY_MS, t0 + 360_000), overage, batch)

    def _submit_hour(self, hour_ms: int, due: int, overage: dict[tuple[int, str], Decimal],
                     batch: list[Message]) -> None:
        by_partition: dict[int, list[tuple[int, str, Decimal]]] = {}
        for (si, dimension), total in sorted(overage.items()):
            by_partition.setdefault(self.states[si].sub.partition, []).append((si, dimension, total))
        rng = self.rng
        for p, items in sorted(by_partition.items()):
            at = due + rng.randrange(-180_000, 180_000)
            for i, (si, dimension, total) in enumerate(items):
                if i % MARKETPLACE_BATCH == 0:
                    request_id, correlation_id = guid(rng), guid(rng)
                    at += rng.randrange(300, 2500)
                at += rng.randrange(5, 60)
                state = self.states[si]
                self._add(batch, at, p, "UsageSubmittedToAPI", si,
                          self._marketplace_result(state, hour_ms, dimension, float(total), at, request_id,
                                                   correlation_id), state.sub.partition_key)

    def _marketplace_result(self, state: SubscriptionState, hour_ms: int, dimension: str, quantity: float,
                            at: int, request_id: str, correlation_id: str) -> bytes:
        rng = self.rng
        sub = state.sub
        message_time = messages.iso_z(at - rng.randrange(200, 1500), 7, rng.randrange(10_000))
        draw = rng.random()
        if draw >= 0.017 and (sub.deletion_ms is None or sub.deletion_ms > at):
            return state.accepted.render(request_id, correlation_id, hour_ms, sub.plan.plan_id, dimension, quantity,
                                         guid(rng), message_time)
        request = messages.request_fields(sub, hour_ms, dimension, quantity)
        result = self._rejected_or_duplicate(sub, request, hour_ms, dimension, quantity, at, message_time, draw)
        return messages.submission_body(result, request_id, correlation_id)

    def _rejected_or_duplicate(self, sub: Subscription, request: dict[str, Any], hour_ms: int, dimension: str,
                               quantity: float, at: int, message_time: str, draw: float) -> dict[str, Any]:
        rng = self.rng
        if sub.deletion_ms is not None and sub.deletion_ms <= at and draw < 0.6:
            return messages.resource_not_found(request, message_time)
        if draw < 0.012:
            # resent after a restart: Marketplace answers with what it accepted the first time,
            # usually the same quantity, sometimes a partial hour sent before the crash
            first_quantity = quantity if rng.random() < 0.8 else max(0.001, round(quantity * rng.uniform(0.3, 0.95), 3))
            first = messages.request_fields(sub, hour_ms, dimension, first_quantity)
            first_time = messages.iso_z(at - rng.randrange(60_000, 900_000), 7, rng.randrange(10_000))
            return messages.duplicate(request, message_time, first, guid(rng), first_time)
        if draw < 0.015:
            return messages.expired(request, message_time)
        if draw < 0.017:
            return messages.resource_not_found(request, message_time)
        return messages.accepted(request, guid(rng), message_time)

    def _add_maintenance(self, t0: int, batch: list[Message]) -> None:
        """Now and then an operator clears a partition's unprocessable messages."""
        rng = self.rng
        for state in self.partitions:
            if rng.random() >= 1 / (24 * 14):
                continue
            draw = rng.random()
            if draw < 0.2 and state.unprocessable:
                mode, value = "exactly", rng.choice(state.unprocessable)[0]
            elif draw < 0.5 and state.next_sequence > 0:
                mode, value = "beforeIncluding", state.next_sequence - 1
            else:
                mode, value = "all", "all"
            at = t0 + rng.randrange(HOUR_MS)
            self._add(batch, at, state.partition, "RemoveUnprocessedMessages", -1,
                      messages.remove_unprocessed_body(state.partition, mode, value), None, (mode, value))

    def _add_junk(self, t0: int, batch: list[Message]) -> None:
        self._junk_credit += self.config.junk_rate * len(batch)
        count = int(self._junk_credit)
        if count == 0:
            return
        self._junk_credit -= count
        # only subscriptions whose purchase (or deletion) is already enqueued, whatever minute the junk gets
        active = [s.sub for s in self.states.values() if s.sub.purchase_ms < t0
                  and (s.sub.deletion_ms is None or s.sub.deletion_ms > t0 + HOUR_MS)]
        deleted = [s.sub for s in self.states.values() if s.sub.deletion_ms is not None and s.sub.deletion_ms < t0]
        for _ in range(count):
            at = t0 + self.rng.randrange(HOUR_MS)
            junk = self.junk.make(self.junk.next_kind(), at, active, deleted)
            named = junk.subscription
            partition = named.partition if named is not None else self.rng.randrange(self.config.partitions)
            self._add(batch, at, partition, "junk:" + junk.kind, -1, junk.body,
                      named.partition_key if named is not None else None)

    def _hold_back(self, batch: list[Message], first: int, after: int) -> list[Message]:
        """Messages produced during a maintenance window are enqueued in the 5 minutes after it, in order."""
        start = self.config.start_ms + first * HOUR_MS
        resume = self.config.start_ms + after * HOUR_MS
        span = resume - start
        return [(resume + 5_000 + (m[1] - start) * 300_000 // span,) + m[1:] for m in batch]

    # -- enqueueing --------------------------------------------------------------------------------

    def _emit(self, hour: int, t0: int, batch: list[Message]) -> None:
        batch.sort()
        partitions, states, counts = self.partitions, self.states, self.counts
        records: list[list[bytes]] = [[] for _ in partitions]
        times: list[list[int]] = [[] for _ in partitions]
        usage: dict[tuple[int, str], list[int]] = {}  # (subscription, meter) -> [last enqueued ms, milli-units]
        by_type: dict[str, int] = {}
        for at, _, _, p, kind, si, body, key, properties, payload in batch:
            part = partitions[p]
            sequence = part.next_sequence
            part.next_sequence += 1
            offset = part.next_offset
            part.next_offset += (len(body) if body is not None else 0) + 96
            part.last_position = (sequence, at)
            if kind == "UsageReported":
                cell = usage.get((si, payload[0]))
                if cell is None:
                    usage[(si, payload[0])] = [at, payload[1]]
                else:
                    cell[0] = at
                    cell[1] += payload[1]
            elif kind == "SubscriptionDeleted":
                states[si].deleted = True
            elif kind == "RemoveUnprocessedMessages":
                part.remove_unprocessable(*payload)
            by_type[kind] = by_type.get(kind, 0) + 1
            if kind.startswith("junk:"):
                if kind[5:] not in NOT_UNPROCESSABLE:
                    part.unprocessable.append((sequence, at, body))
                    del part.unprocessable[:-UNPROCESSABLE_KEPT]
            elif si >= 0:
                states[si].last_position = (sequence, at)
            records[p].append(encode_record(sequence, str(offset), format_enqueued_time(at),
                                            system_properties(key, at), properties, body))
            times[p].append(at)
        for kind, n in by_type.items():
            if kind.startswith("junk:"):
                counts.junk_by_kind[kind[5:]] += n
            else:
                counts.by_type[kind] += n
        if batch:
            first, last = batch[0][0], batch[-1][0]
            counts.first_ms = first if counts.first_ms is None else min(counts.first_ms, first)
            counts.last_ms = last if counts.last_ms is None else max(counts.last_ms, last)
        self._write(t0, records, times)
        self._close_hour(hour, t0, self._account(usage))

    def _account(self, usage: dict[tuple[int, str], list[int]]) -> dict[tuple[int, str], Decimal]:
        """The hour's overage per (subscription, dimension), from the reference accountant.

        Each meter's usage of the hour is applied as one quantity at the time of its last event:
        billing cycles begin at midnight, so an hour never spans two, and the overage of a sum of
        consecutive events in one cycle is the sum of their overages. That halves the calls into the
        (deliberately simple, hence slow) reference without changing any hourly total.
        """
        overage: dict[tuple[int, str], Decimal] = {}
        for (si, meter), (last_ms, milli) in sorted(usage.items(), key=lambda item: item[1][0]):
            state = self.states[si]
            quantity = float(Decimal(milli).scaleb(-3))  # prints as the exact sum of the 3-decimal quantities
            for dimension, amount in state.accountant.consume(_EPOCH + timedelta(milliseconds=last_ms), meter,
                                                              quantity).items():
                overage[(si, dimension)] = overage.get((si, dimension), Decimal(0)) + Decimal(repr(amount))
            state.meter_last_ms[meter] = last_ms
        return overage

    def _write(self, t0: int, records: list[list[bytes]], times: list[list[int]]) -> None:
        window = self.sink.window_ms
        for p, recs in enumerate(records):
            if window >= HOUR_MS:
                self.sink.write(p, t0, recs)
                continue
            at = times[p]
            i = 0
            for start in range(t0, t0 + HOUR_MS, window):
                j = i
                while j < len(at) and at[j] < start + window:
                    j += 1
                self.sink.write(p, start, recs[i:j])
                i = j

    def _close_hour(self, hour: int, t0: int, overage: dict[tuple[int, str], Decimal]) -> None:
        """Keep the hour's overage for the next submissions, or as pending at the end of the data."""
        if not overage:
            return
        if hour >= self.config.hours - self.config.pending_hours:
            for (si, dimension), total in overage.items():
                self.states[si].pending.append((t0, dimension, float(total)))
        else:
            self._to_submit.append((t0, overage))
