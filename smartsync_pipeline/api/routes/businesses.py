"""Business resources: the digest, bills, invoices, aging, cash, vendors and customers.

Every read goes through the public read path (``for_business`` services on the shared SmartReader,
``assemble`` of the digest orchestrator), in the blocking pool; the request's ``Cache-Control``
max-age is the reader's ``max_age``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from smartsync_pipeline.api import answers, models
from smartsync_pipeline.api.auth import business_of, scoped
from smartsync_pipeline.api.context import ApiContext
from smartsync_pipeline.api.keys import ApiKey
from smartsync_pipeline.api.paging import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, keyset_page
from smartsync_pipeline.api.representation import Computed, respond, wants_html
from smartsync_pipeline.api.routes.documented import AUTH_ERRORS, cache_control_header, ok, problem
from smartsync_pipeline.orchestrators.digest import DigestDataOrchestrator, assemble
from smartsync_pipeline.orchestrators.digest_report import to_html
from smartsync_pipeline.qbo.credentials import CompanyStore
from smartsync_pipeline.services import Documents, DomainServices

router = APIRouter(tags=["businesses"], dependencies=[Depends(cache_control_header)])

BusinessId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the QuickBooks company's realm id")]
Days = Annotated[int, Query(ge=0, le=3650, description="due within this many days from today (overdue included)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[str | None, Query(max_length=512, description="from `next_cursor` of the previous page")]
Reader = Depends(scoped("read"))


def _ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


def _services(ctx: ApiContext, business_id: str) -> tuple[DomainServices, date]:
    today = date.today()
    orchestrator = DigestDataOrchestrator(ctx.reader, today=today)
    return orchestrator.services(business_id), today


def _documents(
    business_id: str,
    today: date,
    docs: Documents,
    party: str,
    model: type,
    limit: int,
    cursor: str | None,
    **extra: Any,
) -> Computed:
    after = decode_cursor(cursor, 2)
    page, next_cursor = keyset_page(docs.rows, answers.document_keys(docs.rows), after, limit)
    provenances = [docs.provenance]

    def build() -> models.BaseModel:
        return model(
            **answers.answer_fields(business_id, today, provenances),
            count=docs.count, overdue_count=docs.overdue_count,
            total_balance=answers.money_text(docs.total_balance),
            overdue_balance=answers.money_text(docs.overdue_balance),
            items=answers.document_items(page, party), next_cursor=next_cursor, **extra,
        )  # fmt: skip

    return Computed(provenances, build, today, next_cursor)


@router.get(
    "/businesses", response_model=models.Businesses, summary="The businesses this key may read",
    responses={**AUTH_ERRORS, 400: problem("a bad header")},
)  # fmt: skip
async def list_businesses(request: Request, key: ApiKey = Reader) -> Response:
    ctx = _ctx(request)

    def names() -> bytes:
        store = CompanyStore(ctx.settings.home)
        items = [
            models.Business(business_id=r, name=store.load(r).name or r)
            for r in sorted(ctx.connected())
            if key.may_see(r)
        ]
        return models.Businesses(items=items).model_dump_json().encode()

    return Response(await ctx.run(None, names), media_type="application/json")


@router.get(
    "/businesses/{business_id}/digest", response_model=models.Digest, responses=ok("the runway digest", html=True),
    summary="The runway digest (JSON, or the HTML page with its chart for Accept: text/html)",
)  # fmt: skip
async def digest(request: Request, business_id: BusinessId, key: ApiKey = Reader) -> Response:
    business_of(business_id, key)
    ctx = _ctx(request)

    def compute(max_age: float | None) -> Computed:
        today = date.today()
        s, reads = DigestDataOrchestrator(ctx.reader, today=today).read(business_id, max_age=max_age)
        data = assemble(s, reads)
        provenances = reads.provenances()
        return Computed(
            provenances,
            lambda: models.Digest(
                **answers.answer_fields(business_id, today, provenances), **answers.digest_fields(data)
            ),
            today,
            html=lambda: to_html(data),
        )

    return await respond(request, business_id, compute, html=wants_html(request))


@router.get("/businesses/{business_id}/bills/due", response_model=models.Bills, responses=ok("unpaid bills due"))
async def bills_due(
    request: Request, business_id: BusinessId, days: Days = 30, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    key: ApiKey = Reader,
) -> Response:  # fmt: skip
    """Unpaid bills due within `days` (overdue ones included and marked), earliest due first."""
    business_of(business_id, key)
    ctx = _ctx(request)

    def compute(max_age: float | None) -> Computed:
        s, today = _services(ctx, business_id)
        docs = s.bills.get_bills_due_in_days(days, max_age=max_age)
        return _documents(business_id, today, docs, "vendor", models.Bills, limit, cursor)

    return await respond(request, business_id, compute)


@router.get("/businesses/{business_id}/bills/overdue", response_model=models.Bills, responses=ok("overdue bills"))
async def bills_overdue(
    request: Request, business_id: BusinessId, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, key: ApiKey = Reader
) -> Response:
    business_of(business_id, key)
    ctx = _ctx(request)

    def compute(max_age: float | None) -> Computed:
        s, today = _services(ctx, business_id)
        return _documents(
            business_id, today, s.bills.get_overdue_bills(max_age=max_age), "vendor", models.Bills, limit, cursor
        )

    return await respond(request, business_id, compute)


@router.get(
    "/businesses/{business_id}/bills/by-vendor", response_model=models.Bills, responses=ok("open bills of one vendor")
)
async def bills_by_vendor(
    request: Request, business_id: BusinessId,
    vendor: Annotated[str, Query(min_length=1, max_length=200, description="vendor id or exact display name")],
    limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, key: ApiKey = Reader,
) -> Response:  # fmt: skip
    business_of(business_id, key)
    ctx = _ctx(request)

    def compute(max_age: float | None) -> Computed:
        s, today = _services(ctx, business_id)
        docs = s.bills.get_bills_by_vendor(vendor, max_age=max_age)
        return _documents(business_id, today, docs, "vendor", models.Bills, limit, cursor)

    return await respond(request, business_id, compute)


@router.get("/businesses/{business_id}/invoices/due", response_model=models.Invoices, responses=ok("open invoices due"))
async def invoices_due(
    request: Request, business_id: BusinessId, days: Days = 30, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    key: ApiKey = Reader,
) -> Response:  # fmt: skip
    business_of(business_id, key)
    ctx = _ctx(request)

    def compute(max_age: float | None) -> Computed:
        s, today = _services(ctx, business_id)
        docs = s.invoices.get_ar_due_in_days(days, max_age=max_age)
        return _documents(business_id, today, docs, "customer", models.Invoices, limit, cursor)

    return await respond(request, business_id, compute)


@router.get(
    "/businesses/{business_id}/invoices/overdue", response_model=models.Invoices, responses=ok("overdue invoices")
)
async def invoices_overdue(
    request: Request, business_id: BusinessId, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, key: ApiKey = Reader
) -> Response:
    business_of(business_id, key)
    ctx = _ctx(request)

    def compute(max_age: float | None) -> Computed:
        s, today = _services(ctx, business_id)
        docs = s.invoices.get_overdue_invoices(max_age=max_age)
        return _documents(business_id, today, docs, "customer", models.Invoices, limit, cursor)

    return await respond(request, business_id, compute)


def _aging_route(side: str):
    async def aging(request: Request, business_id: BusinessId, key: ApiKey = Reader) -> Response:
        business_of(business_id, key)
        ctx = _ctx(request)

        def compute(max_age: float | None) -> Computed:
            s, today = _services(ctx, business_id)
            service = s.bills if side == "ap" else s.invoices
            buckets, docs = service.aging_buckets(max_age=max_age)
            provenances = [docs.provenance]
            return Computed(
                provenances,
                lambda: models.Aging(
                    **answers.answer_fields(business_id, today, provenances),
                    buckets={k: answers.money_text(v) for k, v in buckets.items()},
                    total=answers.money_text(docs.total_balance),
                    count=docs.count,
                ),
                today,
            )

        return await respond(request, business_id, compute)

    return aging


for _side, _what in (("ap", "payable (bills)"), ("ar", "receivable (invoices)")):
    router.add_api_route(
        f"/businesses/{{business_id}}/{_side}-aging", _aging_route(_side), methods=["GET"],
        response_model=models.Aging, responses=ok(f"accounts {_what} aging"),
        summary=f"Accounts {_what} by days past due", name=f"{_side}_aging",
    )  # fmt: skip


@router.get("/businesses/{business_id}/cash", response_model=models.Cash, responses=ok("cash position"))
async def cash(request: Request, business_id: BusinessId, key: ApiKey = Reader) -> Response:
    """Cash on hand: current balances of the active bank accounts."""
    business_of(business_id, key)
    ctx = _ctx(request)

    def compute(max_age: float | None) -> Computed:
        s, today = _services(ctx, business_id)
        position = s.accounts.get_cash_position(max_age=max_age)
        provenances = [position.provenance]
        return Computed(
            provenances,
            lambda: models.Cash(
                **answers.answer_fields(business_id, today, provenances),
                total=answers.money_text(position.total),
                accounts=[
                    {
                        "id": str(a["id"]),
                        "name": answers.text(a.get("name")),
                        "balance": answers.money_text(a["balance"]),
                    }
                    for a in position.accounts
                ],
            ),
            today,
        )

    return await respond(request, business_id, compute)


def _parties_route(kind: str):
    async def parties(
        request: Request, business_id: BusinessId,
        active_only: Annotated[bool, Query(description="only active ones")] = True,
        limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None, key: ApiKey = Reader,
    ) -> Response:  # fmt: skip
        business_of(business_id, key)
        ctx = _ctx(request)

        def compute(max_age: float | None) -> Computed:
            s, today = _services(ctx, business_id)
            qbo = s.bills.qbo_sync
            read = qbo.get_vendors if kind == "vendors" else qbo.get_customers
            result = read(active_only=active_only, max_age=max_age)
            page, next_cursor = keyset_page(
                result.rows, answers.party_keys(result.rows), decode_cursor(cursor, 2), limit
            )
            provenances = [result.provenance]
            return Computed(
                provenances,
                lambda: models.Parties(
                    **answers.answer_fields(business_id, today, provenances),
                    count=len(result.rows),
                    items=answers.party_items(page),
                    next_cursor=next_cursor,
                ),
                today,
                next_cursor,
            )

        return await respond(request, business_id, compute)

    return parties


for _kind in ("vendors", "customers"):
    router.add_api_route(
        f"/businesses/{{business_id}}/{_kind}", _parties_route(_kind), methods=["GET"],
        response_model=models.Parties, responses=ok(_kind), summary=f"The business's {_kind}, by name", name=_kind,
    )  # fmt: skip
