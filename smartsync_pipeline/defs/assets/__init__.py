"""Dagster assets: the QBO mirrors (one per registry entity) and the audited change log."""
