"""Persona dashboards: one spec (dashboards/spec/*.yml), two renderers (Lakeview JSON, local HTML)."""
