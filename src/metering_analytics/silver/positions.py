"""Ordering of messages on the Event Hubs clock: enqueued time, then sequence number in a partition."""
from __future__ import annotations

from pyspark.sql import Column


def is_before(a_time: Column, a_partition: Column, a_sequence: Column,
              b_time: Column, b_partition: Column, b_sequence: Column) -> Column:
    """True when message a was enqueued strictly before message b.

    Capture times have millisecond (often only second) resolution: at equal times only the sequence
    number within one partition orders two messages; across partitions they count as simultaneous.
    """
    return (a_time < b_time) | ((a_time == b_time) & (a_partition == b_partition) & (a_sequence < b_sequence))
