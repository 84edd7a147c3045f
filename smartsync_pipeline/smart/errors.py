"""Errors a reader of business data can get, each saying what to do about it."""

from __future__ import annotations


class SmartReadError(Exception):
    """Base class: a read could not be answered as asked."""


class UnknownCompanyError(SmartReadError, LookupError):
    """The realm (business) is not connected to this smartsync home."""


class DataUnavailableError(SmartReadError):
    """The mirror is too old for the request and QBO could not be asked (or the stale data is past the
    stale-if-error bound). The message names the company, the entity, the age and the cause."""


class RefreshStillRunning(SmartReadError):
    """The on-demand refresh was not done within ``stale_answer_after_seconds``; it goes on in the
    background. The reader answers stale (flagged) instead when stale-if-error allows."""
