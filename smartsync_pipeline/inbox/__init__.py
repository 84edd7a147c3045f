"""The durable webhook inbox: the receiver appends verified events, the Dagster sensor reads by cursor."""

from smartsync_pipeline.inbox.store import AddResult, InboxRecord, WebhookInbox

__all__ = ["AddResult", "InboxRecord", "WebhookInbox"]
