"""Turn expected failures into one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from smartsync_pipeline.entities import UnknownEntityError
from smartsync_pipeline.locking import LockTimeout
from smartsync_pipeline.qbo.errors import QBOError
from smartsync_pipeline.smart.errors import SmartReadError
from smartsync_pipeline.sync.errors import SyncError

F = TypeVar("F", bound=Callable[..., Any])

# Errors a user can act on. Anything else is a bug and keeps its traceback (with SMARTSYNC_DEBUG=1)
# but still ends in one line by default.
EXPECTED = (
    QBOError,
    SmartReadError,
    SyncError,
    UnknownEntityError,
    LockTimeout,
    FileNotFoundError,
    ValueError,
    OSError,
)


def configure_logging() -> None:
    """Log level from SMARTSYNC_LOG_LEVEL (default WARNING); secrets are never logged by our code."""
    level = os.environ.get("SMARTSYNC_LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def friendly_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            raise click.ClickException("interrupted") from None
        except Exception as exc:
            if os.environ.get("SMARTSYNC_DEBUG"):
                raise
            expected = isinstance(exc, EXPECTED) or type(exc).__module__.startswith(("duckdb", "_duckdb"))
            kind = "" if expected else type(exc).__name__
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise click.ClickException(f"{kind + ': ' if kind else ''}{message}") from None

    return wrapper  # type: ignore[return-value]
