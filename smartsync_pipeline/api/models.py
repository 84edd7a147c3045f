"""The response bodies, as pydantic models: the OpenAPI document is generated from these, and every
response is built through them, so the document and the answers cannot drift apart."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from smartsync_pipeline.api.money import Money


class ProvenanceOut(BaseModel):
    """Where one read's data came from. ``source`` "api": this request refreshed it from QBO first."""

    entity: str
    source: Literal["mirror", "api"]
    as_of: datetime | None = Field(description="when the mirror last heard from QBO for this entity")
    age_seconds: float | None
    max_age_seconds: float = Field(description="the max-age this read allowed")
    stale: bool
    reason: str = ""
    snapshot_generation: int | None = None
    sync_id: str | None = None


class Answer(BaseModel):
    """What every business answer carries besides its data."""

    business_id: str
    as_of_date: date = Field(description="the business date 'today' in due-date arithmetic")
    stale: bool = Field(description="older than the request's max-age (only with stale_if_error)")
    stale_if_error: bool = Field(description="QBO failed and older data within the stale-if-error bound was served")
    provenance: list[ProvenanceOut]


class Page(BaseModel):
    next_cursor: str | None = Field(description="pass as `cursor` for the next page (also in the Link header)")


class Bill(BaseModel):
    id: str
    doc_number: str | None
    vendor_id: str | None
    vendor_name: str | None
    txn_date: date | None
    due_date: date | None
    total_amt: Money | None
    balance: Money | None
    currency_id: str | None
    days_until_due: int | None
    is_overdue: bool


class Invoice(BaseModel):
    id: str
    doc_number: str | None
    customer_id: str | None
    customer_name: str | None
    txn_date: date | None
    due_date: date | None
    total_amt: Money | None
    balance: Money | None
    currency_id: str | None
    days_until_due: int | None
    is_overdue: bool


class DocumentTotals(Answer, Page):
    count: int = Field(description="documents in the whole answer (all pages)")
    overdue_count: int
    total_balance: Money
    overdue_balance: Money


class Bills(DocumentTotals):
    items: list[Bill]


class Invoices(DocumentTotals):
    items: list[Invoice]


class Aging(Answer):
    """Open balance by days past due."""

    buckets: dict[str, Money] = Field(description="current, 1-30, 31-60, 61-90, 90+")
    total: Money
    count: int


class BankAccount(BaseModel):
    id: str
    name: str | None
    balance: Money


class Cash(Answer):
    total: Money
    accounts: list[BankAccount]


class Party(BaseModel):
    id: str
    display_name: str | None
    company_name: str | None
    email: str | None
    balance: Money | None
    active: bool | None


class Parties(Answer, Page):
    count: int
    items: list[Party]


class VendorOwed(BaseModel):
    vendor_id: str | None
    vendor_name: str | None
    owed: Money
    open_bills: int
    overdue_bills: int


class CustomerOverdue(BaseModel):
    customer_id: str | None
    customer_name: str | None
    overdue: Money
    overdue_invoices: int
    days_overdue_max: int


class ProjectionWeek(BaseModel):
    week: int = Field(description="0 is today (today's cash); week k ends k*7 days from today")
    week_ending: date
    inflow: Money
    outflow: Money
    cash: Money


class TrailingWeek(BaseModel):
    week_ending: date
    inflow: Money = Field(description="money into the bank accounts in the 7 days ending week_ending")
    outflow: Money = Field(description="money out of the bank accounts in those 7 days")
    net_burn: Money = Field(description="outflow - inflow (positive: the week burned cash)")
    cash: Money = Field(description="bank balance at the end of the week (today's less the movements since)")
    weekly_net_burn: Money = Field(description="average weekly net burn over the 13 weeks ending week_ending")
    runway_weeks: str | None = Field(pattern=r"^-?[0-9]+\.[0-9]$", description="runway then; null: not burning")


class BurnSource(BaseModel):
    entity: str
    inflow: Money
    outflow: Money
    transactions: int


class BurnWindow(BaseModel):
    after: date
    through: date
    weeks: int


class ProjectionLow(BaseModel):
    week_ending: date
    cash: Money


class Digest(Answer):
    company_name: str = Field(description="QBO CompanyInfo name, else the name given at connect, else the realm id")
    company_name_source: Literal["CompanyInfo", "connection", "realm id"]
    cash_on_hand: Money
    bank_accounts: list[BankAccount]
    ap_open: Money
    vendor_credits: Money
    ap_net: Money = Field(description="open bills less open vendor credits")
    ar_open: Money
    credit_memos: Money
    unapplied_payments: Money
    ar_net: Money = Field(description="open invoices less open credit memos and unapplied customer payments")
    credits_not_mirrored: list[str]
    ap_due_7d: Money
    ap_due_30d: Money
    ap_due_60d: Money
    ar_due_7d: Money
    ar_due_30d: Money
    ar_due_60d: Money
    overdue_ap: Money
    overdue_ar: Money
    overdue_bills: int
    overdue_invoices: int
    net_30d: Money
    inflows_91d: Money
    outflows_91d: Money
    weekly_net_burn: Money
    burn_window: BurnWindow
    burn_sources: list[BurnSource]
    burn_entities_not_mirrored: list[str]
    runway_weeks: str | None = Field(pattern=r"^-?[0-9]+\.[0-9]$", description="weeks, 1 decimal; null: not burning")
    runway_method: str = Field(description="how this runway was computed, with its figures")
    runway_note: str
    runway_history: list[TrailingWeek]
    top_vendors_owed: list[VendorOwed]
    customers_most_overdue: list[CustomerOverdue]
    cash_projection: list[ProjectionWeek]
    projection_method: str
    projection_low: ProjectionLow
    projected_cash_below_zero: date | None
    doubtful_ar: Money


class Change(BaseModel):
    change_id: int
    entity: str
    entity_id: str
    op: Literal["create", "update", "delete"]
    sync_token_before: str | None
    sync_token_after: str | None
    changed_fields: list[str] | None
    qbo_last_updated: datetime | None
    recorded_at: datetime
    trigger: str
    before: dict | None = Field(default=None, description="the object before (object history only)")
    after: dict | None = Field(default=None, description="the object after (object history only)")


class Changes(Page):
    business_id: str
    snapshot_generation: int | None
    items: list[Change]


class SyncWindow(BaseModel):
    warn_seconds: float
    fail_seconds: float


class LastError(BaseModel):
    at: datetime
    detail: str


class EntityStatus(BaseModel):
    entity: str
    state: Literal["fresh", "stale", "never_synced", "error"]
    last_successful_sync: datetime | None
    last_full_sync: datetime | None
    age_seconds: float | None
    window: SyncWindow
    last_mode: str | None
    last_trigger: str | None
    rows_active: int | None
    last_error: LastError | None


class SyncStatus(BaseModel):
    business_id: str
    snapshot_generation: int | None
    entities: list[EntityStatus]


class Business(BaseModel):
    business_id: str
    name: str


class Businesses(BaseModel):
    items: list[Business]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str]
