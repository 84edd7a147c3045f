"""smartsync: a fresh-when-it-matters, audited DuckDB mirror of QuickBooks Online, run by Dagster."""

__version__ = "0.1.0"
