"""From what the domain services return (DataFrames, Decimals, provenance) to response models:
money through ``money_text``, dates as ISO dates, missing values as null."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd

from smartsync_pipeline.api import models
from smartsync_pipeline.api.money import money_or_none, money_text


def text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def day(value: Any) -> date | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def whole(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return int(value)


def flag(value: Any) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return bool(value)


def provenance(p: Any) -> models.ProvenanceOut:
    return models.ProvenanceOut(
        entity=p.entity, source=p.source, as_of=p.as_of, age_seconds=p.age_seconds, max_age_seconds=p.max_age_seconds,
        stale=p.stale, reason=p.reason, snapshot_generation=p.snapshot_generation, sync_id=p.sync_id,
    )  # fmt: skip


def answer_fields(business_id: str, today: date, provenances: list[Any]) -> dict[str, Any]:
    return {
        "business_id": business_id,
        "as_of_date": today,
        "stale": any(p.stale for p in provenances),
        "stale_if_error": any(p.stale and "stale-if-error" in p.reason for p in provenances),
        "provenance": [provenance(p) for p in provenances],
    }


def document_items(rows: pd.DataFrame, party: str) -> list[dict[str, Any]]:
    """Bill (party "vendor") or invoice (party "customer") rows as response items."""
    items = []
    for r in rows.to_dict("records"):
        items.append(
            {
                "id": str(r["id"]),
                "doc_number": text(r.get("doc_number")),
                f"{party}_id": text(r.get(f"{party}_id")),
                f"{party}_name": text(r.get(f"{party}_name")),
                "txn_date": day(r.get("txn_date")),
                "due_date": day(r.get("due_date")),
                "total_amt": money_or_none(r.get("total_amt")),
                "balance": money_or_none(r.get("balance")),
                "currency_id": text(r.get("currency_id")),
                "days_until_due": whole(r.get("days_until_due")),
                "is_overdue": bool(r.get("is_overdue")),
            }
        )
    return items


def document_keys(rows: pd.DataFrame) -> list[pd.Series]:
    """Sort keys of documents: due date (none last), then id."""
    due = rows["due_date"].map(lambda v: d.isoformat() if (d := day(v)) else "9999-99-99")
    return [due, rows["id"].astype(str)]


def party_items(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "id": str(r["id"]),
            "display_name": text(r.get("display_name")),
            "company_name": text(r.get("company_name")),
            "email": text(r.get("email")),
            "balance": money_or_none(r.get("balance")),
            "active": flag(r.get("active")),
        }
        for r in rows.to_dict("records")
    ]


def party_keys(rows: pd.DataFrame) -> list[pd.Series]:
    return [rows["display_name"].map(lambda v: text(v) or ""), rows["id"].astype(str)]


MONEY_KEYS = (
    "cash_on_hand", "ap_due_7d", "ap_due_30d", "ap_due_60d", "ar_due_7d", "ar_due_30d", "ar_due_60d",
    "overdue_ap", "overdue_ar", "net_30d", "inflows_91d", "outflows_91d", "weekly_net_burn",
    "ap_open", "vendor_credits", "ap_net", "ar_open", "credit_memos", "unapplied_payments", "ar_net", "doubtful_ar",
)  # fmt: skip
MONEY_OF_WEEK = ("inflow", "outflow", "cash")
# Digest parts that pass through as they are (text, lists of names, dates).
PLAIN_KEYS = (
    "company_name", "company_name_source", "credits_not_mirrored", "burn_window", "burn_entities_not_mirrored",
    "runway_method", "runway_note", "projection_method", "projected_cash_below_zero",
)  # fmt: skip


def digest_fields(digest: dict[str, Any]) -> dict[str, Any]:
    """The orchestrator's digest dict with every amount as an exact string."""
    out = {k: money_text(digest[k]) for k in MONEY_KEYS}
    out["overdue_bills"] = int(digest["overdue_bills"])
    out["overdue_invoices"] = int(digest["overdue_invoices"])
    runway = digest.get("runway_weeks")
    out["runway_weeks"] = None if runway is None else str(runway)
    out.update({k: digest[k] for k in PLAIN_KEYS})
    out["bank_accounts"] = [
        {"id": str(a["id"]), "name": text(a.get("name")), "balance": money_text(a["balance"])}
        for a in digest["bank_accounts"]
    ]
    out["top_vendors_owed"] = [{**v, "owed": money_text(v["owed"])} for v in digest["top_vendors_owed"]]
    out["customers_most_overdue"] = [
        {**c, "overdue": money_text(c["overdue"])} for c in digest["customers_most_overdue"]
    ]
    out["cash_projection"] = [
        {"week": p["week"], "week_ending": p["week_ending"], **{k: money_text(p[k]) for k in MONEY_OF_WEEK}}
        for p in digest["cash_projection"]
    ]
    out["projection_low"] = {**digest["projection_low"], "cash": money_text(digest["projection_low"]["cash"])}
    out["runway_history"] = [
        {**w, **{k: money_text(w[k]) for k in ("inflow", "outflow", "net_burn", "cash", "weekly_net_burn")},
         "runway_weeks": None if w["runway_weeks"] is None else str(w["runway_weeks"])}
        for w in digest["runway_history"]
    ]  # fmt: skip
    out["burn_sources"] = [
        {**b, "inflow": money_text(b["inflow"]), "outflow": money_text(b["outflow"])} for b in digest["burn_sources"]
    ]
    return out
