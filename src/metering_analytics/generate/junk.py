"""Messages the pipeline must not bill and must not lose: the unprocessable share of a real stream.

Each kind stands for something seen in practice: log lines and binary blobs sent to the wrong hub, a
null body, a newer SDK's message type, broken quantities, typos in meter names, usage for a resource
that was never purchased here or was already deleted, and a purchase resent by a retrying client.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from metering_analytics.generate import messages
from metering_analytics.generate.customers import Subscription, guid

# (kind, weight). The first occurrences of junk go through the kinds in this order, so that every
# dataset with at least this many junk messages holds each kind once.
KINDS: tuple[tuple[str, float], ...] = (
    ("text", 0.14), ("binary", 0.1), ("null_body", 0.08), ("unknown_type", 0.12), ("invalid_quantity", 0.14),
    ("missing_field", 0.08), ("unknown_meter", 0.12), ("unknown_subscription", 0.12), ("after_deletion", 0.05),
    ("duplicate_purchase", 0.05),
)
# A resent purchase is valid JSON for a tracked subscription: the accelerator ignores it rather
# than parking it as unprocessable.
NOT_UNPROCESSABLE = frozenset({"duplicate_purchase"})

_TEXTS = (
    "totally not JSON, doesn't belong here.",
    "2025-03-04 12:00:01,123 INFO [worker-3] heartbeat ok",
    "resourceId,meterName,quantity\nfdc778a6,api,12",
    "<usage><meter>api</meter><quantity>3</quantity></usage>",
    '{"type": "UsageReported", "value": {"meterName": "api", "quantity": 1',  # truncated JSON
)
_UNKNOWN_TYPES = ("UsageReportedV2", "Heartbeat", "SubscriptionUpdated", "usagereported")
_BAD_QUANTITIES: tuple[Any, ...] = (-5, -0.5, "abc", "", "1,5", "-3")
_TYPO_METERS = ("API", "api_call", "gpu_hours", "egres", "storage_gb", "tickets")


@dataclass(frozen=True)
class Junk:
    kind: str
    body: bytes | None
    subscription: Subscription | None  # the subscription it names, when it names a purchased one


class JunkFactory:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.emitted = 0

    def next_kind(self) -> str:
        kind = (KINDS[self.emitted][0] if self.emitted < len(KINDS)
                else self.rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0])
        self.emitted += 1
        return kind

    def make(self, kind: str, at_ms: int, active: list[Subscription], deleted: list[Subscription]) -> Junk:
        rng = self.rng
        stamp = messages.iso_z(at_ms - rng.randrange(300, 4000))
        if kind == "after_deletion" and not deleted:
            kind = "unknown_subscription"
        if kind in ("invalid_quantity", "missing_field", "unknown_meter", "duplicate_purchase") and not active:
            kind = "unknown_subscription"
        if kind == "text":
            return Junk(kind, rng.choice(_TEXTS).encode("utf-8"), None)
        if kind == "binary":
            # gzip magic and random bytes: a compressed payload sent without its envelope
            return Junk(kind, b"\x1f\x8b\x08\x00" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(12, 80))),
                        None)
        if kind == "null_body":
            return Junk(kind, None, None)
        if kind == "unknown_type":
            value = {"resourceId": guid(rng), "timestamp": stamp, "meterName": "api", "quantity": 1}
            return Junk(kind, messages.body(rng.choice(_UNKNOWN_TYPES), value), None)
        if kind == "unknown_subscription":
            value = {"resourceId": guid(rng), "timestamp": stamp, "meterName": "api", "quantity": rng.randrange(1, 50)}
            return Junk(kind, messages.body("UsageReported", value), None)
        if kind == "after_deletion":
            sub = rng.choice(deleted)
            value = messages.usage_value(sub.identity(), stamp, sub.meters[0].name, rng.randrange(1, 20))
            return Junk(kind, messages.body("UsageReported", value), sub)
        sub = rng.choice(active)
        if kind == "duplicate_purchase":
            return Junk(kind, messages.purchase_body(sub), sub)
        meter = sub.meters[0].name
        if kind == "invalid_quantity":
            value = messages.usage_value(sub.identity(), stamp, meter, rng.choice(_BAD_QUANTITIES))
        elif kind == "missing_field":
            value = messages.usage_value(sub.identity(), stamp, meter, 1)
            del value[rng.choice(("quantity", "meterName"))]
        else:  # unknown_meter
            names = {m.name for m in sub.plan.meters}
            value = messages.usage_value(sub.identity(), stamp,
                                         rng.choice([t for t in _TYPO_METERS if t not in names]), 1)
        return Junk(kind, messages.body("UsageReported", value), sub)
