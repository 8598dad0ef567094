"""Message bodies, written the way the accelerator and its SDK serialize them.

Bodies are UTF-8 JSON `{"type": ..., "value": {...}}` indented by two spaces, as in the real Capture
file: exactly `json.dumps(message, indent=2)`. That function runs in pure Python when indenting,
which made it a bottleneck, so `pretty_json` produces the same text faster, and usage messages (the
bulk of the stream) are assembled from per-(subscription, meter) templates. Tests hold both to
json.dumps.
"""
from __future__ import annotations

import json
from functools import lru_cache
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any

from metering_analytics.generate.capture import utc
from metering_analytics.generate.customers import Subscription
from metering_analytics.generate.plans import MeterSpec

BOM = "\ufeff"


def pretty_json(value: Any, newline: str = "\n") -> str:
    """`json.dumps(value, indent=2)` for dicts, lists, strings, numbers, booleans and null."""
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = newline + "  "
        return ("{" + ",".join(f"{inner}{_json_string(k)}: {pretty_json(v, inner)}" for k, v in value.items())
                + newline + "}")
    if isinstance(value, list):
        if not value:
            return "[]"
        inner = newline + "  "
        return "[" + ",".join(inner + pretty_json(v, inner) for v in value) + newline + "]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def body(message_type: str, value: dict[str, Any]) -> bytes:
    return pretty_json({"type": message_type, "value": value}).encode("utf-8")


@lru_cache(maxsize=4096)
def _hour_prefix(hour_ms: int) -> str:
    return utc(hour_ms).strftime("%Y-%m-%dT%H:")


def iso_z(at_ms: int, digits: int = 0, extra: int = 0) -> str:
    """`yyyy-MM-ddTHH:mm:ssZ`, or with `digits` fractional digits (ms, then `extra` padding digits)."""
    hour_ms, rest = divmod(at_ms, 3_600_000)
    minute, ms = divmod(rest, 60_000)
    text = f"{_hour_prefix(hour_ms * 3_600_000)}{minute:02d}:{ms // 1000:02d}"
    if digits:
        text += f".{ms % 1000:03d}{extra:0{digits - 3}d}"[: digits + 1]
    return text + "Z"


def effective_start_time(hour_ms: int) -> str:
    """Marketplace's effectiveStartTime as the accelerator logs it: `2021-12-14T01:00:00`."""
    return _hour_prefix(hour_ms - hour_ms % 3_600_000) + "00:00"


def purchase_body(sub: Subscription) -> bytes:
    subscription = {**sub.identity(), "subscriptionStart": sub.start_text, "renewalInterval": sub.renewal_interval,
                    "plan": {"planId": sub.plan.plan_id, "billingDimensions": sub.plan.billing_dimensions()}}
    return body("SubscriptionPurchased", {"subscription": subscription})


def deletion_body(sub: Subscription) -> bytes:
    return body("SubscriptionDeleted", sub.identity())


def usage_value(identity: dict[str, str], timestamp: str, meter_name: str, quantity: Any,
                properties: dict[str, str] | None = None) -> dict[str, Any]:
    """A UsageReported value as the accelerator's SDK writes it: `properties` after the quantity, left
    out when the application set none (as in the accelerator's own samples)."""
    value = {**identity, "timestamp": timestamp, "meterName": meter_name, "quantity": quantity}
    if properties:
        value["properties"] = dict(properties)
    return value


def usage_body_reference(sub: Subscription, meter: MeterSpec, timestamp: str, quantity: Any) -> bytes:
    value = usage_value(sub.identity(), timestamp, meter.name, quantity, sub.properties.get(meter.name))
    text = json.dumps({"type": "UsageReported", "value": value}, indent=2)
    return ((BOM if sub.bom else "") + text).encode("utf-8")


class UsageTemplate:
    """A subscription's UsageReported body for one meter, filled with timestamp and quantity text."""

    __slots__ = ("head", "middle", "tail")

    def __init__(self, sub: Subscription, meter: MeterSpec) -> None:
        ident = "".join(f"    {_json_string(k)}: {_json_string(v)},\n" for k, v in sub.identity().items())
        self.head = ((BOM if sub.bom else "") + '{\n  "type": "UsageReported",\n  "value": {\n' + ident
                     + '    "timestamp": "')
        self.middle = f'",\n    "meterName": {_json_string(meter.name)},\n    "quantity": '
        properties = sub.properties.get(meter.name)
        self.tail = ((',\n    "properties": ' + pretty_json(dict(properties), "\n    ") if properties else "")
                     + "\n  }\n}")

    def render(self, timestamp: str, quantity_json: str) -> bytes:
        return (self.head + timestamp + self.middle + quantity_json + self.tail).encode("utf-8")


def ping_body(partition: int, local_time: str, reason: str, sender: str) -> bytes:
    return body("Ping", {"partitionId": str(partition), "localTime": local_time, "reason": reason, "sender": sender})


def remove_unprocessed_body(partition: int, mode: str, value: Any) -> bytes:
    return body("RemoveUnprocessedMessages", {"partitionId": str(partition), mode: value})


def request_fields(sub: Subscription, hour_ms: int, dimension: str, quantity: float) -> dict[str, Any]:
    """The Marketplace usage event the accelerator sends for one (subscription, dimension, hour)."""
    return {**sub.identity(), "effectiveStartTime": effective_start_time(hour_ms), "planId": sub.plan.plan_id,
            "dimension": dimension, "quantity": quantity}


class AcceptedTemplate:
    """A subscription's UsageSubmittedToAPI body for an Accepted result (most of the submissions)."""

    __slots__ = ("identity",)

    def __init__(self, sub: Subscription) -> None:
        self.identity = "".join(f"      {_json_string(k)}: {_json_string(v)},\n" for k, v in sub.identity().items())

    def render(self, request_id: str, correlation_id: str, hour_ms: int, plan_id: str, dimension: str,
               quantity: float, usage_event_id: str, message_time: str) -> bytes:
        return (
            '{\n  "type": "UsageSubmittedToAPI",\n  "value": {\n    "httpHeaders": {\n'
            f'      "xMsRequestId": {_json_string(request_id)},\n'
            f'      "xMsCorrelationId": {_json_string(correlation_id)}\n    }},\n    "result": {{\n{self.identity}'
            f'      "effectiveStartTime": "{effective_start_time(hour_ms)}",\n'
            f'      "planId": {_json_string(plan_id)},\n      "dimension": {_json_string(dimension)},\n'
            f'      "quantity": {float.__repr__(quantity)},\n      "status": "Accepted",\n'
            f'      "usageEventId": {_json_string(usage_event_id)},\n'
            f'      "messageTime": {_json_string(message_time)}\n    }}\n  }}\n}}'
        ).encode("utf-8")


def submission_body(result: dict[str, Any], request_id: str, correlation_id: str) -> bytes:
    return body("UsageSubmittedToAPI", {"httpHeaders": {"xMsRequestId": request_id, "xMsCorrelationId": correlation_id},
                                        "result": result})


def accepted(request: dict[str, Any], usage_event_id: str, message_time: str) -> dict[str, Any]:
    return {**request, "status": "Accepted", "usageEventId": usage_event_id, "messageTime": message_time}


def duplicate(request: dict[str, Any], message_time: str, accepted_request: dict[str, Any],
              accepted_event_id: str, accepted_time: str) -> dict[str, Any]:
    """Marketplace had accepted this (resource, dimension, hour) before: the accepted message is what is billed."""
    first = {k: v for k, v in accepted_request.items() if k != "resourceUri"}
    first.update(status="Duplicate", messageTime=accepted_time, usageEventId=accepted_event_id)
    if "resourceUri" in accepted_request:
        first["resourceUri"] = accepted_request["resourceUri"]
    return {**request, "status": "Duplicate", "messageTime": message_time,
            "error": {"message": "This usage event already exist.", "code": "Conflict",
                      "additionalInfo": {"acceptedMessage": first}}}


def _bad_argument(target: str, message: str) -> dict[str, Any]:
    return {"code": "BadArgument", "target": "usageEventRequest", "message": "One or more errors have occurred.",
            "details": [{"code": "BadArgument", "target": target, "message": message}]}


def expired(request: dict[str, Any], message_time: str) -> dict[str, Any]:
    return {"status": "Expired", "messageTime": message_time,
            "error": _bad_argument("effectiveStartTime", "The effective time provided is has expired or is in future."),
            **request}


def resource_not_found(request: dict[str, Any], message_time: str) -> dict[str, Any]:
    return {"status": "ResourceNotFound", "messageTime": message_time,
            "error": _bad_argument("resourceId",
                                   "The resourceId value provided cannot be found or this resource is not active."),
            **request}
