"""Plans that would have cost a customer less, costed with the billing rules (see docs/metrics.md)."""
