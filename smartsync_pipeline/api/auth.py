"""Who is asking: the API key in ``Authorization: Bearer``, its scopes, its businesses, its rate.

A key that may not see a business gets exactly the 404 an unknown business gets, so keys cannot
probe which businesses exist."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from smartsync_pipeline.api.keys import ApiKey
from smartsync_pipeline.api.problems import ProblemError, business_not_found

bearer = HTTPBearer(auto_error=False, description="an API key from `smartsync keys create`")


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "unauthorized", "API key required", detail, headers={"WWW-Authenticate": 'Bearer realm="smartsync"'}
    )


def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiKey:
    """The caller's active key, rate-limited; 401 without one, 429 over its quota."""
    ctx = request.app.state.ctx
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("send an API key as `Authorization: Bearer ssk_...` (`smartsync keys create`)")
    key = ctx.keys.authenticate(credentials.credentials)
    if key is None:
        raise _unauthorized("the API key is unknown or revoked")
    request.state.key_id = key.key_id
    decision = ctx.limiter.take(key.key_id, key.rate_per_minute)
    headers = decision.headers()
    request.state.response_headers = headers
    if not decision.allowed:
        raise ProblemError(
            429, "rate-limited", "Too many requests",
            f"this key may make {decision.quota} requests per minute; retry in {decision.reset_seconds} s",
            headers={**headers, "Retry-After": str(decision.reset_seconds)},
        )  # fmt: skip
    return key


def scoped(scope: str):
    def dependency(key: ApiKey = Depends(authenticated)) -> ApiKey:
        if scope not in key.scopes:
            raise ProblemError(403, "insufficient-scope", "The API key lacks a scope", f"this needs scope {scope!r}")
        return key

    return dependency


def business_of(business_id: str, key: ApiKey) -> str:
    if not key.may_see(business_id):
        raise business_not_found(business_id)
    return business_id
