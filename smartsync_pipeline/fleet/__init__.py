"""Scheduling a fleet of companies within QBO's limits and a metered call budget.

Pure code (no Dagster, no DuckDB): ``rules`` turns the entity registry into what the scheduler needs,
``budget`` derives sweep intervals from a monthly call budget, ``policy`` decides at each tick which
companies to sync and how to batch them into runs, ``model`` and ``simulator`` run that same policy
against a modelled fleet on a simulated clock. ``defs/`` and ``smartsync fleet simulate`` call it.
See ARCHITECTURE.md, "Scheduling a fleet".
"""
