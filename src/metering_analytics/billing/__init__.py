"""Billing: cycles, included quantities, overage, waterfall, reconciliation with Marketplace, revenue.

`reference` is a plain-Python statement of the accounting rules (design brief section 3), used as the
test oracle and by the sample-data generator; the other modules compute the same rules with Spark.
"""
