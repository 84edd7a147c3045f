"""Errors as RFC 9457 ``application/problem+json``: a type, a title, the status, a detail that says
what to do, never a traceback or a secret. Every failure a route can meet is mapped here, once."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartsync_pipeline.locking import LockTimeout
from smartsync_pipeline.qbo.credentials import CompanyNotConnected
from smartsync_pipeline.qbo.errors import ReauthorizationRequired
from smartsync_pipeline.qbo.secrets import redact
from smartsync_pipeline.smart.errors import DataUnavailableError, UnknownCompanyError

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_UNAVAILABLE = 30  # seconds: QBO outages and lock waits are worth retrying soon

log = logging.getLogger("smartsync.api")


class InvalidParam(BaseModel):
    name: str = Field(description="the parameter, e.g. `days` or the `Cache-Control` header")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details (extension members allowed)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="a URI reference naming the kind of problem")
    title: str
    status: int
    detail: str = ""
    instance: str | None = None
    invalid_params: list[InvalidParam] | None = None


class ProblemError(Exception):
    """Raise anywhere in a request to answer with this problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def bad_parameter(name: str, reason: str) -> ProblemError:
    return ProblemError(
        400, "bad-parameter", "Bad request parameter", f"{name}: {reason}",
        invalid_params=[{"name": name, "reason": reason}],
    )  # fmt: skip


def business_not_found(business_id: str) -> ProblemError:
    """The same answer for a business that does not exist and one the key may not see (no leak)."""
    return ProblemError(
        404, "unknown-business", "Business not found",
        f"no business {business_id!r} is visible to this API key", business_id=business_id,
    )  # fmt: skip


def problem_response(request: Request | None, problem: ProblemError) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{problem.slug}" if problem.slug != "about:blank" else "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": redact(problem.detail),
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(problem.extensions)
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers)


def _one_line(exc: BaseException) -> str:
    return redact(" ".join(str(exc).split()) or type(exc).__name__)


def problem_for(exc: BaseException, business_id: str | None = None) -> ProblemError:
    """The problem a known failure of the read path becomes (None-safe for unknown ones: a 500)."""
    if isinstance(exc, ProblemError):
        return exc
    if isinstance(exc, UnknownCompanyError | CompanyNotConnected):
        return business_not_found(business_id or "")
    if isinstance(exc, ReauthorizationRequired):
        return ProblemError(
            409, "reconnect-required", "The company must be reconnected to QuickBooks",
            f"{_one_line(exc)}. Reconnect it: GET /connect/quickbooks (or `smartsync connect --oauth`), then retry.",
            business_id=business_id, reconnect="/connect/quickbooks",
        )  # fmt: skip
    if isinstance(exc, DataUnavailableError):
        return ProblemError(
            503, "qbo-unavailable", "QuickBooks is unavailable and the mirror is too old",
            f"{_one_line(exc)}. Retry later; data within the stale-if-error bound is served flagged.",
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}, business_id=business_id,
        )  # fmt: skip
    if isinstance(exc, LockTimeout):
        return ProblemError(
            503, "busy", "A refresh of this data is still running", _one_line(exc),
            headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
        )  # fmt: skip
    return ProblemError(500, "internal-error", "Internal error", "the service failed; the error was logged")


def install(app: FastAPI) -> None:
    """Route every error through ``problem_response``."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        params = []
        for error in exc.errors():
            loc = [str(p) for p in error.get("loc", ())]
            name = loc[-1] if len(loc) > 1 else (loc[0] if loc else "request")
            params.append({"name": name, "reason": str(error.get("msg", "invalid"))})
        names = ", ".join(dict.fromkeys(p["name"] for p in params))
        problem = ProblemError(
            400, "bad-parameter", "Bad request parameter",
            f"invalid {names}: " + "; ".join(p["reason"] for p in params), invalid_params=params,
        )  # fmt: skip
        return problem_response(request, problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 406: "Not acceptable"}
        problem = ProblemError(
            exc.status_code, "about:blank", titles.get(exc.status_code, "HTTP error"),
            str(exc.detail) if exc.status_code != 404 else f"no resource at {request.url.path}",
            headers=dict(exc.headers or {}),
        )  # fmt: skip
        return problem_response(request, problem)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        problem = problem_for(exc)
        if problem.status >= 500 and problem.slug == "internal-error":
            log.error(
                "unexpected %s on %s %s: %s", type(exc).__name__, request.method, request.url.path, _one_line(exc)
            )
        return problem_response(request, problem)
