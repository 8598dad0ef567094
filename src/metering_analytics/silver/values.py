"""Column functions for the accelerator's value formats: quantities, timestamps, renewal intervals."""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

RENEWAL_MONTHS = {"Monthly": 1, "Annually": 12, "2-years": 24, "3-years": 36}
INFINITE = "Infinite"


def parse_quantity(text: Column) -> Column:
    """A non-negative, finite double from a JSON number or numeric string; null when invalid."""
    value = F.trim(text).try_cast("double")
    valid = value.isNotNull() & ~F.isnan(value) & (value >= 0) & (value < F.lit(float("inf")))
    return F.when(valid, value)


def is_infinite(text: Column) -> Column:
    return F.coalesce(F.trim(text) == F.lit(INFINITE), F.lit(False))


def parse_body_timestamp(text: Column) -> Column:
    """`yyyy-MM-ddTHH:mm:ss[.fffffff]` with or without `Z` (UTC; an explicit offset is honoured)."""
    return F.trim(text).try_cast("timestamp")


def renewal_months(interval: Column) -> Column:
    mapping = F.create_map(*[x for k, v in RENEWAL_MONTHS.items() for x in (F.lit(k), F.lit(v))])
    return mapping[interval]


def offer_type(resource_uri: Column) -> Column:
    """SaaS or managed application, from the ARM provider in the resource URI."""
    uri = F.lower(resource_uri)
    return (
        F.when(uri.contains("/providers/microsoft.saas/"), F.lit("saas"))
        .when(uri.contains("/providers/microsoft.solutions/"), F.lit("managed_application"))
        .otherwise(F.lit("unknown"))
    )


def identity_matches(a_id: Column, a_uri: Column, b_id: Column, b_uri: Column) -> Column:
    """The accelerator's identity rule: resource URIs decide when both sides have one, else ids."""
    both_uris = a_uri.isNotNull() & b_uri.isNotNull()
    both_ids = a_id.isNotNull() & b_id.isNotNull()
    return F.when(both_uris, a_uri == b_uri).otherwise(F.coalesce(both_ids & (a_id == b_id), F.lit(False)))
