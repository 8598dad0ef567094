"""How billing does arithmetic on quantities without drifting.

Quantities arrive as doubles (the Marketplace API takes a double) but every sum, difference and
clip in billing is done on DECIMAL(32, 12): a double is cast through its shortest decimal text
(0.1 becomes exactly 0.1), so running totals over millions of events stay exact. 12 decimal places
are far below anything a Marketplace dimension meaningfully measures; 20 integer digits bound one
meter's usage per cycle at 1e20 units (beyond that the cast fails loudly under ANSI mode instead of
wrapping). Results are rounded once, at the end, to `REPORTED_DECIMALS` places (half up) and handed
out as doubles.

Every arithmetic result is cast back to QUANTITY: Spark widens DECIMAL(32,12) +/- DECIMAL(32,12) to
(33,12) and window sums to (38,12); without the cast a further operation on (38,12) values would make
Spark drop scale (allowPrecisionLoss) and lose exactness.
"""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

QUANTITY = DecimalType(32, 12)
REPORTED_DECIMALS = 9


def exact(c: Column) -> Column:
    """A quantity (double or decimal expression) as an exact QUANTITY decimal."""
    return c.cast(QUANTITY)


def reported(c: Column) -> Column:
    """An exact quantity as the double billing hands out, rounded to REPORTED_DECIMALS places."""
    return F.round(c.cast(QUANTITY), REPORTED_DECIMALS).cast("double")
