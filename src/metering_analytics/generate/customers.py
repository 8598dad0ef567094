"""Who buys what, when, and how they use it.

`build_population` draws the subscriptions (plan, renewal interval, identity, purchase and deletion
times, behaviour). `UsageModel` turns that behaviour into usage events hour by hour: the expected
number of events per (subscription, meter) follows the customer's local business hours and
weekdays, their growth, a decline before churn and any move from one meter to another; counts are
Poisson draws and quantities gamma draws around the customer's typical event size.
"""
from __future__ import annotations

import random
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from metering_analytics.billing.reference import RENEWAL_MONTHS
from metering_analytics.generate.capture import utc
from metering_analytics.generate.plans import PLANS, MeterSpec, PlanSpec, included_quantity

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
HOURS_PER_MONTH = 730.0
YEAR_MS = 365 * DAY_MS

# Mean 1 over the day and over the week, so a customer's average rate is its configured rate.
_DIURNAL = np.array([0.25, 0.2, 0.18, 0.18, 0.2, 0.3, 0.5, 0.8, 1.2, 1.5, 1.6, 1.6,
                     1.45, 1.55, 1.6, 1.55, 1.4, 1.15, 0.9, 0.7, 0.55, 0.45, 0.35, 0.3])
_DIURNAL = _DIURNAL / _DIURNAL.mean()
_WEEKLY = np.array([1.1, 1.15, 1.15, 1.1, 1.0, 0.45, 0.35])  # Monday .. Sunday
_WEEKLY = _WEEKLY / _WEEKLY.mean()
# Resources billed by the hour (storage, nodes) accrue around the clock: barely seasonal.
_FLAT_METERS = ("storage", "nodes")

# (UTC offset in hours, Azure region, weight)
_LOCALES = ((-8, "westus2", 3), (-5, "eastus", 4), (-6, "centralus", 2), (-3, "brazilsouth", 1),
            (0, "uksouth", 2), (1, "westeurope", 4), (2, "northeurope", 1), (5, "centralindia", 1),
            (8, "southeastasia", 1), (9, "japaneast", 1), (10, "australiaeast", 1))
_COMPANIES = ("contoso", "fabrikam", "northwind", "adatum", "tailspin", "woodgrove", "litware", "proseware",
              "wingtip", "fourthcoffee", "alpineski", "relecloud", "lamna", "treyresearch", "wideworld",
              "margies", "coho", "blueyonder", "humongous", "lucerne", "datum", "southridge", "graphicdesign",
              "northwindtraders", "consolidated", "fineartschool", "cpandl", "tasmanian", "vanarsdel")
_ENVIRONMENTS = (("production", 0.85), ("staging", 0.1), ("test", 0.05))
_APP_VERSIONS = ("2.3.1", "2.4.0", "2.4.2", "3.0.0")
# Meter pairs a customer may move usage between (from, to), per plan.
_SHIFTS = {"starter": ("api", "storage"), "professional": ("api", "compute"),
           "enterprise": ("api", "inference"), "managed_basic": ("jobs", "nodes")}

CHURN_SHARE = 0.12
SHIFT_SHARE = 0.06


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def partition_of(partition_key: str, partitions: int) -> int:
    """Event Hubs sends everything with one partition key to one partition; crc32 stands in for its hash."""
    return zlib.crc32(partition_key.encode("utf-8")) % partitions


@dataclass
class Subscription:
    index: int
    plan: PlanSpec
    renewal_interval: str
    resource_id: str | None
    resource_uri: str | None
    purchase_ms: int
    start: datetime  # subscriptionStart, whole seconds
    deletion_ms: int | None
    partition: int
    partition_key: str
    meters: tuple[MeterSpec, ...]  # the plan's meters this customer uses
    tz_hours: int
    size: float
    fill: float  # usage relative to the included quantities (per month)
    growth_per_year: float
    seasonality: float  # 0 = flat around the clock, 1 = the full office-hours profile
    decline_from_ms: int | None = None
    decline_floor: float = 1.0
    shift: tuple[str, str, int, int] | None = None  # (from meter, to meter, start ms, length ms)
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)  # per meter
    bom: bool = False
    fractional_timestamps: bool = False
    string_quantity_share: float = 0.0

    @property
    def start_text(self) -> str:
        return self.start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def identity(self) -> dict[str, str]:
        """The subscription's reference exactly as purchased (resourceId and/or resourceUri)."""
        ident = {}
        if self.resource_id is not None:
            ident["resourceId"] = self.resource_id
        if self.resource_uri is not None:
            ident["resourceUri"] = self.resource_uri
        return ident


def _weighted(rng: random.Random, options: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _resource_uri(rng: random.Random, plan: PlanSpec, company: str, n: int) -> str:
    rg = f"rg-{company}-{rng.choice(('prod', 'platform', 'apps', 'shared'))}"
    if plan.offer_type == "managed_application":
        return (f"/subscriptions/{guid(rng)}/resourceGroups/{rg}/providers/Microsoft.Solutions/"
                f"applications/{company}-{plan.plan_id.replace('_', '-')}-{n}")
    return (f"/subscriptions/{guid(rng)}/resourceGroups/{rg}/providers/Microsoft.SaaS/"
            f"resources/{company}-{plan.plan_id}-{n}")


def _identity(rng: random.Random, plan: PlanSpec, company: str, n: int) -> tuple[str | None, str | None]:
    styles = ((("uri", 0.6), ("both", 0.4)) if plan.offer_type == "managed_application"
              else (("id", 0.3), ("uri", 0.25), ("both", 0.45)))
    style = _weighted(rng, styles)
    resource_id = guid(rng) if style in ("id", "both") else None
    resource_uri = _resource_uri(rng, plan, company, n) if style in ("uri", "both") else None
    return resource_id, resource_uri


def _purchase_times(rng: random.Random, n: int, start_ms: int, end_ms: int) -> list[int]:
    """A few subscriptions on the first day, the rest spread over the period, denser later (growth)."""
    span = end_ms - start_ms
    first_day = min(DAY_MS, span // 4)
    early = max(2, round(0.15 * n)) if n > 2 else n
    times = [start_ms + rng.randrange(max(1, first_day)) for _ in range(min(early, n))]
    later_from, later_to = start_ms + first_day, end_ms - min(12 * HOUR_MS, span // 8)
    for _ in range(n - len(times)):
        times.append(later_from + int((later_to - later_from) * rng.random() ** (2 / 3)))
    return sorted(times)


def build_population(n: int, start_ms: int, end_ms: int, partitions: int, seed: int) -> list[Subscription]:
    rng = random.Random(f"{seed}:population")
    subscriptions = []
    for index, purchase_ms in enumerate(_purchase_times(rng, n, start_ms, end_ms)):
        plan = _weighted(rng, tuple((p, p.share) for p in PLANS))
        company = rng.choice(_COMPANIES)
        resource_id, resource_uri = _identity(rng, plan, company, index + 1)
        key = resource_uri if resource_uri is not None else resource_id
        assert key is not None
        meters = tuple(m for m in plan.meters if m.adoption >= 1.0 or rng.random() < m.adoption)
        tz, region = _weighted(rng, tuple(((tz, region), w) for tz, region, w in _LOCALES))
        fill_kind = rng.random()
        fill = (rng.uniform(0.05, 0.4) if fill_kind < 0.25 else
                rng.uniform(0.5, 1.1) if fill_kind < 0.75 else rng.uniform(1.3, 3.5))
        sub = Subscription(
            index=index, plan=plan, renewal_interval=_weighted(rng, plan.renewal_intervals),
            resource_id=resource_id, resource_uri=resource_uri, purchase_ms=purchase_ms,
            start=utc(purchase_ms - purchase_ms % 1000 - rng.randrange(6) * 1000),
            deletion_ms=None, partition=partition_of(key, partitions), partition_key=key, meters=meters,
            tz_hours=tz, size=min(5.0, max(0.2, rng.lognormvariate(0.0, 0.6))), fill=fill,
            growth_per_year=rng.gauss(0.35, 0.35), seasonality=rng.uniform(0.4, 1.0),
            bom=rng.random() < 0.04, fractional_timestamps=rng.random() < 0.3,
            string_quantity_share=0.4 if rng.random() < 0.12 else 0.0,
        )
        _maybe_churn(rng, sub, end_ms)
        _maybe_shift(rng, sub, end_ms)
        has_properties = rng.random() < 0.9
        env = _weighted(rng, _ENVIRONMENTS)
        version = rng.choice(_APP_VERSIONS)
        for m in meters:
            sub.properties[m.name] = ({"region": region, "environment": env, "feature": rng.choice(m.features),
                                       "appVersion": version} if has_properties else {})
        subscriptions.append(sub)
    return subscriptions


def _maybe_churn(rng: random.Random, sub: Subscription, end_ms: int) -> None:
    """About one in eight customers leaves, after their usage fades over their last weeks."""
    earliest = sub.purchase_ms + 3 * DAY_MS
    if rng.random() >= CHURN_SHARE or earliest >= end_ms - 2 * HOUR_MS:
        return
    deletion = rng.randrange(earliest, end_ms - 2 * HOUR_MS)
    fade = min(int(rng.uniform(14, 42) * DAY_MS), (deletion - sub.purchase_ms) // 2)
    sub.deletion_ms = deletion
    sub.decline_from_ms = deletion - fade
    sub.decline_floor = rng.uniform(0.05, 0.3)


def _maybe_shift(rng: random.Random, sub: Subscription, end_ms: int) -> None:
    """A few customers move work from one meter to another (e.g. API calls to batch compute)."""
    source, target = _SHIFTS[sub.plan.plan_id]
    used = {m.name for m in sub.meters}
    life_end = sub.deletion_ms or end_ms
    if rng.random() >= SHIFT_SHARE or source not in used or target not in used:
        return
    if life_end - sub.purchase_ms < 4 * DAY_MS:
        return
    begin = rng.randrange(sub.purchase_ms + DAY_MS, life_end - 2 * DAY_MS)
    length = int(min(rng.uniform(7, 28) * DAY_MS, life_end - begin))
    sub.shift = (source, target, begin, length)


def monthly_usage(sub: Subscription, meter: MeterSpec, rng: random.Random) -> float:
    """Typical usage per month: relative to the allowance when there is a finite one, else absolute."""
    included = included_quantity(meter.billing) if meter.billing["type"] == "simple" else 0.0
    jitter = rng.lognormvariate(0.0, 0.25)
    if included:
        return sub.fill * jitter * included / RENEWAL_MONTHS[sub.renewal_interval]
    return meter.typical_monthly * sub.size ** 0.8 * jitter


@dataclass
class HourUsage:
    """The usage events of one hour: parallel arrays, ordered by time within the hour."""

    subscription: np.ndarray
    meter: np.ndarray  # index into the subscription's plan meters
    offset_ms: np.ndarray
    quantity: np.ndarray


class UsageModel:
    """Expected event rates per (subscription, meter) and hourly draws from them."""

    def __init__(self, subscriptions: list[Subscription], start_ms: int, events_per_subscription_hour: float,
                 seed: int) -> None:
        self.subs = subscriptions
        self.start_ms = start_ms
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x05A6E]))
        draw = random.Random(f"{seed}:usage")
        n = len(subscriptions)
        width = max(len(p.meters) for p in PLANS)
        self.rate = np.zeros((n, width))
        self.event_size = np.zeros((n, width))
        self.seasonality = np.zeros((n, width))
        self.integral = np.zeros((n, width), dtype=bool)
        self.from_hour = np.zeros(n, dtype=np.int64)
        self.to_hour = np.zeros(n, dtype=np.int64)
        self.tz = np.array([s.tz_hours for s in subscriptions], dtype=np.int64)
        self.purchase_ms = np.array([s.purchase_ms for s in subscriptions], dtype=np.float64)
        self.growth = np.array([s.growth_per_year for s in subscriptions])
        self.decline_from = np.array([s.decline_from_ms or 0 for s in subscriptions], dtype=np.float64)
        self.decline_to = np.array([s.deletion_ms or 1 for s in subscriptions], dtype=np.float64)
        self.decline_floor = np.array([s.decline_floor for s in subscriptions])
        self.churning = np.array([s.deletion_ms is not None for s in subscriptions])
        self.shifts = [(s.index, s.plan.meters.index(s.plan.meter(s.shift[0])),
                        s.plan.meters.index(s.plan.meter(s.shift[1])), s.shift[2], s.shift[3])
                       for s in subscriptions if s.shift is not None]
        never = np.iinfo(np.int64).max
        for s in subscriptions:
            used = {m.name for m in s.meters}
            weights = {m.name: m.event_weight for m in s.meters}
            total_weight = sum(weights.values())
            for j, m in enumerate(s.plan.meters):
                self.integral[s.index, j] = m.integral
                if m.name not in used:
                    continue
                rate = events_per_subscription_hour * s.size * weights[m.name] / total_weight
                self.rate[s.index, j] = rate
                self.event_size[s.index, j] = monthly_usage(s, m, draw) / (HOURS_PER_MONTH * rate)
                self.seasonality[s.index, j] = s.seasonality * (0.15 if m.name in _FLAT_METERS else 1.0)
            self.from_hour[s.index] = (s.purchase_ms - start_ms) // HOUR_MS + 1
            self.to_hour[s.index] = never if s.deletion_ms is None else (s.deletion_ms - start_ms) // HOUR_MS
        self._day = -1
        self._daily = np.ones(n)

    def expected(self, hour: int) -> np.ndarray:
        """Expected number of usage events per (subscription, meter) in the hour `hour` of the period."""
        at = self.start_ms + hour * HOUR_MS
        day = hour // 24
        if day != self._day:
            self._day = day
            self._daily = self.rng.lognormal(0.0, 0.25, len(self.subs))
        active = (hour >= self.from_hour) & (hour < self.to_hour)
        local = at // HOUR_MS + self.tz
        profile = _DIURNAL[local % 24] * _WEEKLY[(local // 24 + 3) % 7]  # 1970-01-01 was a Thursday
        season = 1.0 + self.seasonality * (profile[:, None] - 1.0)
        years = np.maximum(at - self.purchase_ms, 0.0) / YEAR_MS
        level = np.exp(self.growth * years) * self._daily * active
        fade = np.clip((at - self.decline_from) / (self.decline_to - self.decline_from), 0.0, 1.0)
        level *= np.where(self.churning, 1.0 - (1.0 - self.decline_floor) * fade, 1.0)
        lam = self.rate * season * level[:, None]
        for sub, source, target, begin, length in self.shifts:
            progress = min(max((at - begin) / length, 0.0), 1.0)
            lam[sub, source] *= 1.0 - 0.85 * progress
            lam[sub, target] *= 1.0 + 1.5 * progress
        return lam

    def draw(self, hour: int) -> HourUsage:
        """Poisson counts per (subscription, meter); quantities around the customer's usual event size."""
        lam = self.expected(hour)
        counts = self.rng.poisson(lam).ravel()
        cells = np.repeat(np.arange(counts.size), counts)
        total = cells.size
        offsets = self.rng.integers(0, HOUR_MS, total)
        size = self.event_size.ravel()[cells] * self.rng.gamma(2.0, 0.5, total)
        integral = self.integral.ravel()[cells]
        quantity = np.where(integral, np.maximum(1.0, np.rint(size)), np.maximum(0.001, np.round(size, 3)))
        order = np.argsort(offsets, kind="stable")
        width = self.rate.shape[1]
        return HourUsage(cells[order] // width, cells[order] % width, offsets[order], quantity[order])

