"""Sensors: per-realm freshness enforcement and webhook-driven refreshes."""
