"""Everything one running sandbox holds: realms, clock, tokens, limits, faults, stats, webhooks and
the state journal — assembled from a ``SandboxConfig`` (and replayed from ``--state-file``)."""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from smartsync_pipeline.sandbox.clock import SandboxClock
from smartsync_pipeline.sandbox.company import DEFAULT_PROFILE, build_company, realm_id_for
from smartsync_pipeline.sandbox.config import SandboxConfig
from smartsync_pipeline.sandbox.faults import FaultInjector
from smartsync_pipeline.sandbox.oauth import TokenAuthority
from smartsync_pipeline.sandbox.qbo_time import iso, parse_time
from smartsync_pipeline.sandbox.state_journal import StateFileMismatch, StateJournal
from smartsync_pipeline.sandbox.stats import SandboxStats
from smartsync_pipeline.sandbox.store import Change, Company
from smartsync_pipeline.sandbox.throttle import Limits, RealmThrottle
from smartsync_pipeline.sandbox.webhook_delivery import WebhookDelivery

log = logging.getLogger("smartsync.sandbox")


class SandboxRuntime:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.journal = StateJournal(config.state_file) if config.state_file else None
        header, records = self.journal.read() if self.journal else (None, [])
        if header is not None:
            expected = {"seed": config.seed, "scale": config.scale, "realms": config.realms, "profile": config.profile}
            found = {k: header.get(k, DEFAULT_PROFILE if k == "profile" else None) for k in expected}
            if found != expected:
                raise StateFileMismatch(
                    f"state file {config.state_file} was written by a sandbox with {found}, not {expected}"
                )
            start = float(header["start_time"])
            client_id, client_secret = header["client_id"], header["client_secret"]
            verifier = header["webhook_verifier"]
        else:
            start = parse_time(config.start_time) if config.start_time else time.time()
            client_id = client_secret = None
            verifier = secrets.token_urlsafe(24)
        self.start_time = start
        self.clock = SandboxClock(start=start, frozen=config.freeze)
        self.realm_ids = [realm_id_for(config.seed, k) for k in range(config.realms)]
        self.companies: dict[str, Company] = {
            realm: Company(
                build_company(config.seed, config.scale, k, anchor=start, profile=config.profile), self.clock
            )
            for k, realm in enumerate(self.realm_ids)
        }
        self.authority = TokenAuthority(
            self.clock,
            self.realm_ids,
            client_id,
            client_secret,
            config.rotation_grace_seconds,
            config.rotation_interval_seconds,
        )
        self.webhook_verifier = verifier
        self.limits = Limits(config.per_window, config.window_seconds, config.max_concurrent)
        self.throttles = {realm: RealmThrottle(self.limits) for realm in self.realm_ids}
        self.faults = FaultInjector(seed=config.seed)
        self.stats = SandboxStats()
        self.webhooks = WebhookDelivery(verifier, seed=config.seed)

        tokens_restored = False
        newest_write = 0.0
        for record in records:
            kind = record.get("t")
            if kind in ("put", "delete"):
                self.companies[record["realm"]].replay(record)
                newest_write = max(newest_write, float(record.get("lut", 0.0)))
            elif kind == "tokens":
                self.authority.restore(record["state"])
                tokens_restored = True
            elif kind == "clock":
                self.clock.restore(record["state"])
        if records:
            log.info("replayed %d journal records from the state file", len(records))
        # Time never runs backwards across a restart. The simulator moves the clock ahead with every
        # operation without journaling the clock, so after a crash the last journaled clock can lie
        # behind the newest write; a clock that went back would stamp new writes with times before
        # what clients already saw, and their CDC watermarks would skip those writes.
        if self.clock.now() < newest_write:
            self.clock.set(newest_write)

        if self.journal:
            new_header = None
            if header is None:
                new_header = {
                    "t": "header",
                    "seed": config.seed,
                    "scale": config.scale,
                    "realms": config.realms,
                    "profile": config.profile,
                    "start_time": start,
                    "client_id": self.authority.client_id,
                    "client_secret": self.authority.client_secret,
                    "webhook_verifier": verifier,
                }
            self.journal.open(new_header)
            self.authority.on_change = self._journal_tokens
            self.journal_clock()
        for realm in self.realm_ids:
            if not tokens_restored or self.authority.newest_access_token(realm) is None:
                self.authority.issue(realm)
            if self.authority.code_for(realm) is None:
                self.authority.new_authorization_code(realm)
        for company in self.companies.values():
            company.listeners.append(self._on_changes)

    def __repr__(self) -> str:
        return f"SandboxRuntime(realms={self.realm_ids!r}, scale={self.config.scale!r})"

    # -- journal and webhooks ---------------------------------------------------------------------------
    def _on_changes(self, company: Company, changes: list[Change], records: list[dict[str, Any]]) -> None:
        if self.journal:
            for record in records:
                self.journal.append({**record, "realm": company.realm_id})
        self.webhooks.publish(changes)

    def _journal_tokens(self) -> None:
        if self.journal:
            self.journal.append({"t": "tokens", "state": self.authority.snapshot()})

    def journal_clock(self) -> None:
        if self.journal:
            self.journal.append({"t": "clock", "state": self.clock.state()})

    # -- start-up info ----------------------------------------------------------------------------------
    def info(self, base_url: str) -> dict[str, Any]:
        """The JSON line printed at start-up: how to connect (this is the only place tokens appear)."""
        realms = [
            {
                "realm_id": realm,
                "refresh_token": self.authority.newest_refresh_token(realm),
                "access_token": self.authority.newest_access_token(realm),
                "auth_code": self.authority.code_for(realm),
            }
            for realm in self.realm_ids
        ]
        first = realms[0]
        return {
            "api_base": f"{base_url}/v3",
            "token_url": f"{base_url}/oauth2/v1/tokens/bearer",
            "authorize_url": f"{base_url}/connect/oauth2",
            "realm_id": first["realm_id"],
            "client_id": self.authority.client_id,
            "client_secret": self.authority.client_secret,
            "refresh_token": first["refresh_token"],
            "access_token": first["access_token"],
            "webhook_verifier": self.webhook_verifier,
            "auth_code": first["auth_code"],
            "redirect_uri": f"{base_url}/callback",
            "control_url": f"{base_url}/_sandbox",
            "realms": realms,
            "scale": self.config.scale,
            "seed": self.config.seed,
            "start_time": iso(self.start_time),
        }

    def close(self) -> None:
        self.webhooks.stop()
        if self.journal:
            self.journal_clock()  # a clean stop keeps the exact clock (a crash falls back to the newest write)
            self.journal.close()
