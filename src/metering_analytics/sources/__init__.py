"""Readers for the raw inputs: Event Hubs Capture Avro files and the accelerator's state snapshots."""
