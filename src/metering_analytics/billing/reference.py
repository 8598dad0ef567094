"""Reference implementation of the accounting rules (design brief section 3), in plain Python.

This module is the oracle the Spark accounting is tested against and what the sample-data generator
uses to know what should be billed. It favours being obviously correct over being fast:

* every quantity is taken as the decimal number it prints as (``repr`` of the float, which is what
  the message carried, e.g. ``0.1`` and not the binary double nearest to it) and all arithmetic is
  done with :class:`decimal.Decimal` at 60 significant digits, so running totals never drift;
  results are converted back to ``float`` only on the way out;
* events are applied one by one, in the order the caller gives (enqueued time, then sequence number).

Usage enqueued before the subscription's start is never billed: the caller (silver) filters it and
:meth:`SubscriptionAccountant.consume` refuses it, like it refuses events out of time order.

Datetimes are naive and mean UTC.
"""
from __future__ import annotations

import calendar
import decimal
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Iterable, Mapping

RENEWAL_MONTHS = {"Monthly": 1, "Annually": 12, "2-years": 24, "3-years": 36}

# Enough digits that sums of doubles written in decimal are exact (a double prints with at most 17
# significant digits; 60 leaves room for totals spanning ~40 orders of magnitude).
_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
_ZERO = Decimal(0)


@dataclass(frozen=True)
class SimpleDimension:
    """A meter billed to one Marketplace dimension after an included quantity (None = Infinite)."""

    dimension: str
    included: float | None = 0.0


@dataclass(frozen=True)
class WaterfallDimension:
    """A meter billed through tiers: ((dimension, threshold), ...) in the plan's order."""

    tiers: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a waterfall dimension needs at least one tier")


def _dec(value: float | int | str | Decimal) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same double: the number as written.
        return Decimal(repr(value))
    return Decimal(value)


def _add_months(day: datetime, months: int) -> datetime:
    """Midnight of `day` moved by `months` calendar months, the day cut back to the month's end."""
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = calendar.monthrange(year, month)[1]
    return datetime(year, month, min(day.day, last_day))


def cycle_start(start: datetime, renewal_months: int, k: int) -> datetime:
    """Start of cycle k: midnight UTC of (start date + k x renewal_months months).

    Always computed from the start date, never from the previous cycle, so a start on Jan 31 gives
    Feb 28/29, then Mar 31 again.
    """
    if renewal_months <= 0:
        raise ValueError(f"renewal_months must be positive, got {renewal_months}")
    return _add_months(datetime(start.year, start.month, start.day), k * renewal_months)


def cycle_index(start: datetime, renewal_months: int, at: datetime) -> int:
    """The k with cycle_start(k) <= at < cycle_start(k + 1) (negative before the start date)."""
    months = (at.year - start.year) * 12 + (at.month - start.month)
    k = months // renewal_months
    # The month arithmetic can be off by one either way (day of month, cut-back days): step to fit.
    while cycle_start(start, renewal_months, k) > at:
        k -= 1
    while cycle_start(start, renewal_months, k + 1) <= at:
        k += 1
    return k


@dataclass(frozen=True)
class CycleBalance:
    """What one meter did in one cycle. included is None when Infinite; for a waterfall it is C_0."""

    included: float | None
    total_usage: float
    consumed_included: float
    overage: float

    @property
    def remaining_included(self) -> float | None:
        return None if self.included is None else self.included - self.consumed_included


def _bands(meter: SimpleDimension | WaterfallDimension) -> list[tuple[Decimal, Decimal | None, str | None]]:
    """The meter as bands of cumulative usage per cycle: [(lower, upper or None, dimension or None=free)]."""
    if isinstance(meter, SimpleDimension):
        if meter.included is None:
            return [(_ZERO, None, None)]
        included = _dec(meter.included or 0)
        return [(_ZERO, included, None), (included, None, meter.dimension)]
    bounds = []
    total = _ZERO
    for _, threshold in meter.tiers:
        total = _CONTEXT.add(total, _dec(threshold))
        bounds.append(total)  # C_i
    bands: list[tuple[Decimal, Decimal | None, str | None]] = [(_ZERO, bounds[0], None)]
    for i, (dimension, _) in enumerate(meter.tiers):
        upper = bounds[i + 1] if i + 1 < len(bounds) else None
        bands.append((bounds[i], upper, dimension))
    return bands


def _free_quantity(meter: SimpleDimension | WaterfallDimension) -> Decimal | None:
    lower, upper, dimension = _bands(meter)[0]
    assert dimension is None
    return upper


def _overlap(lo: Decimal, hi: Decimal, band_lo: Decimal, band_hi: Decimal | None) -> Decimal:
    top = hi if band_hi is None else min(hi, band_hi)
    bottom = max(lo, band_lo)
    return _CONTEXT.subtract(top, bottom) if top > bottom else _ZERO


class SubscriptionAccountant:
    """Applies one subscription's usage events, in order, by the rules; remembers every cycle's totals."""

    def __init__(self, meters: Mapping[str, SimpleDimension | WaterfallDimension], renewal_months: int,
                 start: datetime) -> None:
        self.meters = dict(meters)
        self.renewal_months = renewal_months
        self.start = start
        self._bands = {name: _bands(meter) for name, meter in self.meters.items()}
        # (meter, cycle) -> running total of usage, and the overage already billed in it
        self._totals: dict[tuple[str, int], Decimal] = {}
        self._overage: dict[tuple[str, int], Decimal] = {}
        self._last_time: datetime | None = None

    def consume(self, enqueued_time: datetime, meter_name: str, quantity: float) -> dict[str, float]:
        """Apply one usage event (events must be fed in enqueued-time/sequence order); returns the overage
        per Marketplace dimension caused by this event (empty dict when all included)."""
        return {d: float(q) for d, q in self._consume(enqueued_time, meter_name, quantity).items()}

    def _consume(self, enqueued_time: datetime, meter_name: str, quantity: float) -> dict[str, Decimal]:
        if enqueued_time < self.start:
            raise ValueError(f"usage at {enqueued_time} is before the subscription start {self.start}")
        if self._last_time is not None and enqueued_time < self._last_time:
            raise ValueError(f"usage at {enqueued_time} comes after usage at {self._last_time}: not in order")
        if meter_name not in self.meters:
            raise KeyError(f"unknown meter {meter_name!r}")
        q = _dec(quantity)
        if q < 0:
            raise ValueError(f"negative quantity {quantity}")
        self._last_time = enqueued_time
        key = (meter_name, cycle_index(self.start, self.renewal_months, enqueued_time))
        before = self._totals.get(key, _ZERO)
        after = _CONTEXT.add(before, q)
        self._totals[key] = after
        result: dict[str, Decimal] = {}
        for lower, upper, dimension in self._bands[meter_name]:
            if dimension is None:
                continue
            part = _overlap(before, after, lower, upper)
            if part > 0:
                result[dimension] = _CONTEXT.add(result.get(dimension, _ZERO), part)
        billed = sum(result.values(), _ZERO)
        self._overage[key] = _CONTEXT.add(self._overage.get(key, _ZERO), billed)
        return result

    def included_remaining(self, meter_name: str, at: datetime) -> float | None:
        """What is left of the meter's included (free) quantity in the cycle containing `at`; None = Infinite."""
        free = _free_quantity(self.meters[meter_name])
        if free is None:
            return None
        used = self._totals.get((meter_name, cycle_index(self.start, self.renewal_months, at)), _ZERO)
        return float(max(_CONTEXT.subtract(free, used), _ZERO))

    def cycle_balances(self) -> dict[tuple[str, int], CycleBalance]:
        """(meter, cycle index) -> balance, for every cycle in which the meter saw usage."""
        balances = {}
        for (meter_name, k), total in sorted(self._totals.items()):
            free = _free_quantity(self.meters[meter_name])
            overage = self._overage.get((meter_name, k), _ZERO)
            balances[(meter_name, k)] = CycleBalance(
                included=None if free is None else float(free),
                total_usage=float(total),
                consumed_included=float(_CONTEXT.subtract(total, overage)),
                overage=float(overage),
            )
        return balances


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def hourly_overage(meters: Mapping[str, SimpleDimension | WaterfallDimension], renewal_months: int,
                   start: datetime, events: Iterable[tuple[datetime, str, float]]) -> dict[tuple[str, datetime], float]:
    """(dimension, hour) -> quantity, for events sorted by enqueued time.

    The hour is the enqueued time's hour; only positive quantities appear.
    """
    accountant = SubscriptionAccountant(meters, renewal_months, start)
    sums: dict[tuple[str, datetime], Decimal] = {}
    for enqueued_time, meter_name, quantity in events:
        for dimension, part in accountant._consume(enqueued_time, meter_name, quantity).items():
            key = (dimension, hour_of(enqueued_time))
            sums[key] = _CONTEXT.add(sums.get(key, _ZERO), part)
    return {key: float(total) for key, total in sums.items() if total > 0}
