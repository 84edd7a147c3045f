"""``WebhookReceiver``: the webhook-only app served from a background thread (the chaos soak, tests,
embedding). ``smartsync webhooks serve`` runs the same app in the foreground."""

from __future__ import annotations

from smartsync_pipeline.api.app import create_app
from smartsync_pipeline.api.routes.webhooks import WEBHOOK_PATH, ReceiverCounters
from smartsync_pipeline.api.server import ServedApp
from smartsync_pipeline.api.settings import ApiSettings
from smartsync_pipeline.home import Home
from smartsync_pipeline.inbox.store import WebhookInbox


def webhook_settings(home: Home, verifier: str, **limits: float) -> ApiSettings:
    if not verifier:
        raise ValueError("a webhook verifier is required")
    return ApiSettings(home=home, with_api=False, webhook_verifier=verifier, **limits)  # type: ignore[arg-type]


class WebhookReceiver:
    """POST /webhooks/qbo on ``host:port`` (0: a free port, known from ``url`` before ``start``).
    ``limits``: ``webhook_max_body_bytes``, ``webhook_max_concurrency``, ``read_timeout_seconds``,
    ``inbox_retention_seconds``, ``inbox_prune_interval_seconds``."""

    def __init__(self, inbox: WebhookInbox, verifier: str, host: str = "127.0.0.1", port: int = 0, **limits: float):
        self.inbox = inbox
        settings = webhook_settings(Home(inbox.path.parent), verifier, **limits)
        self.app = create_app(settings, inbox=inbox)
        self._served = ServedApp(self.app, host, port, read_timeout=settings.read_timeout_seconds)

    @property
    def url(self) -> str:
        return self._served.url

    @property
    def webhook_url(self) -> str:
        return self.url + WEBHOOK_PATH

    @property
    def counters(self) -> ReceiverCounters:
        return self.app.state.webhooks.counters

    def start(self) -> WebhookReceiver:
        self._served.start()
        return self

    def stop(self) -> None:
        self._served.stop()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"WebhookReceiver(url={self.url!r}, inbox={self.inbox!r})"
