"""The accelerator's state snapshot per partition at the end of the data: `{partitionId}/latest.json.gz`.

The shape follows the accelerator's MeterCollection (see BusinessLogic/*/NNN--state.json): the
partition's last position, one entry per tracked subscription with its plan, the current value of
each meter and the usage not yet reported to Marketplace, and the unprocessable messages kept.

Meter values are those of the billing cycle the end of the data falls in. A simple meter with
allowance left shows `included` {quantity left, consumed}; once the allowance is gone it shows
`consumed` {consumedQuantity not yet reported, total overage of the cycle}. A waterfall meter shows
the cycle's total usage and, per tier dimension, the quantity not yet reported.
"""
from __future__ import annotations

import gzip
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from metering_analytics.billing.reference import cycle_index
from metering_analytics.generate.capture import utc
from metering_analytics.generate.messages import iso_z
from metering_analytics.generate.plans import included_quantity
from metering_analytics.generate.stream import PartitionState, SubscriptionState


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def _position(partition: int, position: tuple[int, int] | None) -> dict[str, str] | None:
    if position is None:
        return None
    sequence, at = position
    return {"partitionId": str(partition), "sequenceNumber": str(sequence), "partitionTimestamp": iso_z(at)}


def _meter_value(state: SubscriptionState, meter_name: str, billing: dict[str, Any], at: datetime, cycle: int,
                 balances: dict, unreported: dict[str, float]) -> dict[str, Any]:
    balance = balances.get((meter_name, cycle))
    total_usage = balance.total_usage if balance else 0.0
    last = state.meter_last_ms.get(meter_name)
    last_update = iso_z(last) if last is not None else state.sub.start_text
    if billing["type"] == "waterfall":
        dims = [t["dimension"] for t in billing["tiers"]]
        return {"total": _number(total_usage),
                "consumption": {d: _number(unreported[d]) for d in dims if unreported.get(d)},
                "lastUpdate": last_update}
    included = included_quantity(billing)
    if included is None:
        return {"included": {"quantity": "Infinite", "consumed": _number(total_usage), "lastUpdate": last_update}}
    consumed_included = balance.consumed_included if balance else 0.0
    remaining = state.accountant.included_remaining(meter_name, at) or 0.0
    if remaining > 0:
        return {"included": {"quantity": _number(remaining), "consumed": _number(consumed_included),
                             "lastUpdate": last_update}}
    return {"consumed": {"consumedQuantity": _number(unreported.get(billing["dimension"], 0.0)),
                         "total": _number(balance.overage if balance else 0.0), "lastUpdate": last_update}}


def _subscription_entry(state: SubscriptionState, end_ms: int) -> dict[str, Any]:
    sub = state.sub
    accountant = state.accountant
    at = utc(end_ms - 1)
    cycle = cycle_index(accountant.start, accountant.renewal_months, at)
    balances = accountant.cycle_balances()
    sums: dict[str, Decimal] = {}
    for _, dimension, quantity in state.pending:
        sums[dimension] = sums.get(dimension, Decimal(0)) + Decimal(repr(quantity))
    unreported = {d: float(q) for d, q in sums.items()}
    dimensions = {}
    for meter in sub.plan.meters:
        billing = meter.billing
        value = _meter_value(state, meter.name, billing, at, cycle, balances, unreported)
        if billing["type"] == "waterfall":
            dimensions[meter.name] = {"type": "waterfall", "tiers": billing["tiers"], "meter": value}
        else:
            entry: dict[str, Any] = {"type": "simple", "meter": value}
            if "included" in billing:
                entry["included"] = billing["included"]
            entry["dimension"] = billing["dimension"]
            dimensions[meter.name] = entry
    return {
        "subscription": {**sub.identity(), "subscriptionStart": sub.start_text,
                         "renewalInterval": sub.renewal_interval,
                         "plan": {"planId": sub.plan.plan_id, "billingDimensions": dimensions}},
        "usageToBeReported": [
            {**sub.identity(), "effectiveStartTime": iso_z(hour_ms), "planId": sub.plan.plan_id,
             "dimension": dimension, "quantity": quantity}
            for hour_ms, dimension, quantity in state.pending],
        "lastProcessedMessage": _position(sub.partition, state.last_position),
    }


def snapshot(partition: PartitionState, states: list[SubscriptionState], end_ms: int) -> dict[str, Any]:
    p = partition.partition
    return {
        "lastProcessedMessage": _position(p, partition.last_position),
        "meters": [_subscription_entry(s, end_ms) for s in states if s.sub.partition == p and not s.deleted],
        "unprocessable": [
            {"position": _position(p, (sequence, at)),
             "event": {"type": "UnprocessableMessage",
                       "value": {"type": "string", "value": (body or b"").decode("utf-8", errors="replace")}}}
            for sequence, at, body in reversed(partition.unprocessable)],
    }


def write_snapshots(root: Path, partitions: list[PartitionState], states: list[SubscriptionState],
                    end_ms: int) -> list[Path]:
    """Write `{root}/{partitionId}/latest.json.gz` for every partition; byte-identical for equal input."""
    written = []
    for partition in partitions:
        path = Path(root) / str(partition.partition) / "latest.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(snapshot(partition, states, end_ms), indent=2).encode("utf-8")
        with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(text)
        written.append(path)
    return written
