"""The demo offer: the plans of conf/prices.yml, as the accelerator's purchase messages carry them.

Each meter also carries how customers tend to use it, which is what the usage model draws from. The
plan definitions are kept as the literal JSON the purchase message holds (numbers vs strings for
`included` matter: the pipeline must read both).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metering_analytics.billing.reference import SimpleDimension, WaterfallDimension


@dataclass(frozen=True)
class MeterSpec:
    name: str  # the application's meter name (the key of billingDimensions)
    billing: dict[str, Any]  # the billingDimensions entry, verbatim
    integral: bool  # counted things (calls, tickets, jobs) are reported as whole numbers
    event_weight: float  # share of a customer's usage messages that go to this meter
    typical_monthly: float  # usage of a mid-size customer per month, for meters without a finite allowance
    adoption: float  # share of customers that use the meter at all
    features: tuple[str, ...]  # values of the "feature" application property


@dataclass(frozen=True)
class PlanSpec:
    plan_id: str
    offer_type: str  # saas | managed_application
    share: float  # share of purchases
    renewal_intervals: tuple[tuple[str, float], ...]  # (interval, share of this plan's purchases)
    meters: tuple[MeterSpec, ...]

    def billing_dimensions(self) -> dict[str, Any]:
        return {m.name: m.billing for m in self.meters}

    def meter(self, name: str) -> MeterSpec:
        return next(m for m in self.meters if m.name == name)


def _simple(dimension: str, included: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "simple", "dimension": dimension}
    if included is not None:
        entry["included"] = included
    return entry


def _waterfall(*tiers: tuple[str, float]) -> dict[str, Any]:
    return {"type": "waterfall", "tiers": [{"dimension": d, "threshold": t} for d, t in tiers]}


PLANS: tuple[PlanSpec, ...] = (
    PlanSpec(
        "starter", "saas", 0.35, (("Monthly", 0.7), ("Annually", 0.3)),
        (
            MeterSpec("api", _simple("api_calls", 10000), True, 0.8, 0.0, 1.0, ("rest-api", "webhooks")),
            MeterSpec("storage", _simple("storage_gb_hours", "2000"), False, 0.2, 0.0, 0.7, ("blob-store",)),
        ),
    ),
    PlanSpec(
        "professional", "saas", 0.30, (("Monthly", 0.6), ("Annually", 0.4)),
        (
            MeterSpec("api", _simple("api_calls", 100000), True, 0.6, 0.0, 1.0, ("rest-api", "graphql", "webhooks")),
            MeterSpec("compute", _simple("compute_hours", 0), False, 0.2, 40.0, 0.7, ("batch", "scheduler")),
            MeterSpec("support", _simple("priority_tickets"), True, 0.004, 3.0, 0.5, ("support-portal",)),
            MeterSpec("egress", _waterfall(("egress_tier_1", 1000), ("egress_tier_2", 10000),
                                           ("egress_overage", 50000)),
                      False, 0.2, 3000.0, 0.6, ("cdn", "export")),
        ),
    ),
    PlanSpec(
        "enterprise", "saas", 0.12, (("Annually", 0.6), ("2-years", 0.25), ("3-years", 0.15)),
        (
            MeterSpec("api", _simple("api_calls", "Infinite"), True, 0.55, 2_000_000.0, 1.0,
                      ("rest-api", "graphql", "streaming")),
            MeterSpec("inference", _simple("ml_inference_units", 50000), False, 0.25, 0.0, 0.8,
                      ("vision", "forecasting", "nlp")),
            MeterSpec("egress", _waterfall(("egress_tier_1", 10000), ("egress_tier_2", 100000),
                                           ("egress_overage", 500000)),
                      False, 0.2, 25000.0, 0.8, ("cdn", "export", "replication")),
        ),
    ),
    PlanSpec(
        "managed_basic", "managed_application", 0.23, (("Monthly", 0.65), ("Annually", 0.35)),
        (
            MeterSpec("nodes", _simple("node_hours", 720), False, 0.7, 0.0, 1.0, ("cluster",)),
            MeterSpec("jobs", _simple("batch_jobs", 100), True, 0.3, 0.0, 0.8, ("etl", "reports")),
        ),
    ),
)

PLANS_BY_ID = {p.plan_id: p for p in PLANS}


def included_quantity(billing: dict[str, Any]) -> float | None:
    """A simple dimension's allowance as a number: None = Infinite, missing = 0."""
    value = billing.get("included", 0)
    if value == "Infinite":
        return None
    return float(value)


def accounting_meters(plan: PlanSpec) -> dict[str, SimpleDimension | WaterfallDimension]:
    """The plan in the reference accountant's terms."""
    meters: dict[str, SimpleDimension | WaterfallDimension] = {}
    for m in plan.meters:
        if m.billing["type"] == "simple":
            meters[m.name] = SimpleDimension(m.billing["dimension"], included_quantity(m.billing))
        else:
            meters[m.name] = WaterfallDimension(
                tuple((t["dimension"], float(t["threshold"])) for t in m.billing["tiers"]))
    return meters


def marketplace_dimensions(plan: PlanSpec) -> tuple[str, ...]:
    dims: list[str] = []
    for m in plan.meters:
        if m.billing["type"] == "simple":
            dims.append(m.billing["dimension"])
        else:
            dims.extend(t["dimension"] for t in m.billing["tiers"])
    return tuple(dims)
