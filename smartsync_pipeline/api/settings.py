"""How one Runway Service process is configured (``smartsync serve`` options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smartsync_pipeline.home import Home


@dataclass(frozen=True)
class OAuthApp:
    """The Intuit app that companies authorize (or the sandbox's): where to send the user, where to
    exchange the code, which API the new company is reached at."""

    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str = "https://appcenter.intuit.com/connect/oauth2"
    token_url: str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL
    api_base: str = "https://quickbooks.api.intuit.com/v3"
    scope: str = "com.intuit.quickbooks.accounting"
    webhook_verifier: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ApiSettings:
    home: Home
    workers: int = 8  # threads for blocking reads and refreshes
    reader_options: dict[str, Any] = field(default_factory=dict)  # SmartReader keywords
    with_api: bool = True  # False: only the webhook routes and health (``smartsync webhooks serve``)
    webhook_verifier: str | None = field(default=None, repr=False)  # None: no webhook route
    webhook_max_body_bytes: int = 1_048_576
    webhook_max_concurrency: int = 32
    read_timeout_seconds: float = 10.0  # a request's headers and body must arrive within this
    inbox_retention_seconds: float = 7 * 86400
    inbox_prune_interval_seconds: float = 3600.0
    oauth_app: OAuthApp | None = None
    public_url: str | None = None  # base URL the browser reaches us at (redirect_uri); default: the request's
    first_sync: bool = True  # start a sync right after a company is connected

    @property
    def stale_if_error_seconds(self) -> float:
        return float(self.reader_options.get("stale_if_error_seconds", 6 * 3600.0))

    @property
    def state_dir(self) -> Path:
        return self.home.root / "api"
