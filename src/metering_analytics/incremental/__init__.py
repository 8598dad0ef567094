"""Incremental refresh of the gold layer: what changed since a stage's last run, and replacing only the
rows that those changes can alter (see docs/incremental.md)."""
