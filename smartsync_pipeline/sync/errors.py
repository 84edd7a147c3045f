"""Errors of the sync layer that a user can act on."""

from __future__ import annotations


class SyncError(RuntimeError):
    """A sync could not run (bad arguments, no such company); nothing was written."""
