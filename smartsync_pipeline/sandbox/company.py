"""Build the seeded base company of one realm, deterministically from (seed, scale, realm index).

Everything is generated as numpy columns in a few vectorised passes, so ``large`` (over a million
objects) builds in seconds and costs tens of bytes per object. The books are consistent by
construction: bill balance = total - linked bill payments, vendor/customer balance = Σ open
balances less open credits (vendor credits; credit memos and unapplied payments), bank balances =
opening + deposits - payments, A/P and A/R = Σ vendor / customer balances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from smartsync_pipeline.sandbox import chart
from smartsync_pipeline.sandbox.base_tables import (
    AccountTable,
    BaseTable,
    BillPaymentTable,
    BillTable,
    CompanyContext,
    CustomerTable,
    InvoiceTable,
    ItemTable,
    PaymentTable,
    PurchaseTable,
    TermTable,
    VendorTable,
    expense_totals,
    sales_totals,
    table_key,
)
from smartsync_pipeline.sandbox.book_seed import build_books, company_name_for, unapplied_payments
from smartsync_pipeline.sandbox.qbo_time import COMPANY_UTC_OFFSET
from smartsync_pipeline.sandbox.row_hash import mix

DAY = 86_400
HISTORY_DAYS = 400
_SCATTER = 7919  # a prime: i * 7919 mod N visits every name combination once


@dataclass(frozen=True)
class ScaleSize:
    """Row counts of the generated entities (payments follow from how many bills are paid)."""

    items: int
    vendors: int
    customers: int
    bills: int
    invoices: int
    purchases: int


SCALES: dict[str, ScaleSize] = {
    "small": ScaleSize(items=20, vendors=40, customers=60, bills=250, invoices=250, purchases=50),
    # ~10k objects: the small end of the incremental-sync scaling benchmark (bench/bench_sync.py).
    "10k": ScaleSize(items=60, vendors=300, customers=600, bills=2_500, invoices=2_500, purchases=400),
    # 100k bills and little else: the read-path benchmark's mirror (bench/bench_reads.py).
    "bills-100k": ScaleSize(items=60, vendors=2_000, customers=200, bills=100_000, invoices=500, purchases=200),
    "medium": ScaleSize(items=200, vendors=2_000, customers=5_000, bills=25_000, invoices=25_000, purchases=3_000),
    "large": ScaleSize(
        items=2_000, vendors=20_000, customers=50_000, bills=250_000, invoices=250_000, purchases=40_000
    ),
}


@dataclass(frozen=True)
class Profile:
    """How a seeded company runs its books (ARCHITECTURE.md, "Seeded companies").

    ``paid_odds`` gives, per age band of a document (days since its last change, upper bounds), the
    chance it is paid by now; ``cash_cover`` is how many times its overdue payables the company keeps
    in the bank at least (0: whatever the flows leave); ``cushion`` the cents range added to each
    bank account's opening balance."""

    paid_odds: tuple[tuple[int, float], ...]
    partial_odds: tuple[tuple[int, float], ...]  # of a paid document: paid only in part (stays open)
    cash_cover: float
    cushion: tuple[int, int]


PROFILES: dict[str, Profile] = {
    # Most documents paid on time, a few overdue (mostly weeks, not months), cash well above what is overdue.
    "healthy": Profile(
        paid_odds=((15, 0.25), (45, 0.8), (90, 0.97), (HISTORY_DAYS + 60, 0.998)),
        partial_odds=((45, 0.12), (90, 0.03), (HISTORY_DAYS + 60, 0.002)),
        cash_cover=3.0,
        cushion=(2_000_000, 6_000_000),
    ),
    # Slow to pay and slow to collect: overdue payables above cash, customers many months late.
    "struggling": Profile(
        paid_odds=((15, 0.15), (60, 0.45), (HISTORY_DAYS + 60, 0.78)),
        partial_odds=((HISTORY_DAYS + 60, 0.12),),
        cash_cover=0.0,
        cushion=(100_000, 600_000),
    ),
}
DEFAULT_PROFILE = "healthy"


@dataclass
class SeededCompany:
    """The immutable base data of one realm."""

    realm_id: str
    seed: int
    scale: str
    anchor: int
    ctx: CompanyContext
    tables: dict[str, BaseTable]
    bank_ids: tuple[int, ...]
    card_ids: tuple[int, ...]
    undeposited_id: int

    @property
    def object_count(self) -> int:
        return sum(t.n for t in self.tables.values())


def realm_id_for(seed: int, realm_index: int) -> str:
    """Sixteen digits like a real QBO realm id, stable for a seed."""
    return str(9130_3550_0000_0000 + (seed % 100_000) * 100 + realm_index)


def _names(count: int, parts: list[tuple[str, ...]], offset: int):
    sizes = [len(p) for p in parts]
    combos = math.prod(sizes)
    assert math.gcd(_SCATTER, combos) == 1

    def name(i: int) -> tuple[str, ...]:
        k = (i * _SCATTER + offset) % combos
        words = []
        for size, part in zip(reversed(sizes), reversed(parts), strict=True):
            words.append(part[k % size])
            k //= size
        words.reverse()
        if i >= combos:
            words[-1] = f"{words[-1]} {i // combos + 1}"
        return tuple(words)

    return name, combos


def _days(epochs: np.ndarray) -> np.ndarray:
    """Company-time day numbers of epoch seconds."""
    return (epochs + COMPANY_UTC_OFFSET) // DAY


class _Timeline:
    def __init__(self, rng: np.random.Generator, anchor: int) -> None:
        self.rng = rng
        self.anchor = anchor
        self.newest = anchor - 3600  # the newest base change is about an hour old

    def sorted_times(self, n: int, days: int = HISTORY_DAYS) -> np.ndarray:
        """``n`` non-decreasing change times over the last ``days`` days."""
        if n == 0:
            return np.zeros(0, np.int64)
        times = np.sort(self.rng.integers(self.anchor - days * DAY, self.newest, n, dtype=np.int64))
        times[-1] = max(int(times[-1]), self.newest - int(self.rng.integers(0, 300)))
        return times

    def list_times(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lut, created, sync) of a name list: created earlier, some edited since."""
        lut = self.sorted_times(n)
        edited = self.rng.random(n) < 0.4
        created = np.where(edited, lut - self.rng.integers(DAY, 60 * DAY, n), lut)
        created = np.maximum(created, self.anchor - (HISTORY_DAYS + 30) * DAY)
        created = np.minimum(created, lut)
        return lut, created, edited.astype(np.int32)


def _weights(rng: np.random.Generator, n: int) -> np.ndarray:
    """A skewed popularity (a few parties get most of the documents)."""
    w = 1.0 / (np.arange(n) + 5.0)
    w = w[rng.permutation(n)]
    return w / w.sum()


@dataclass
class _Documents:
    """Bills or invoices with their payments, before they become tables."""

    lut: np.ndarray
    created: np.ndarray
    sync: np.ndarray
    parties: np.ndarray
    terms: np.ndarray
    txn_days: np.ndarray
    due_days: np.ndarray
    totals: np.ndarray
    balances: np.ndarray
    pays: np.ndarray
    pay_docs: np.ndarray  # per payment: document id
    pay_amounts: np.ndarray
    pay_times: np.ndarray


def _by_age(age_days: np.ndarray, bands: tuple[tuple[int, float], ...]) -> np.ndarray:
    """Per document, the chance of its age band (bands are (upper bound in days, chance), ascending)."""
    odds = np.full(len(age_days), bands[-1][1])
    for limit, chance in reversed(bands):
        odds = np.where(age_days < limit, chance, odds)
    return odds


def _documents(
    rng: np.random.Generator,
    timeline: _Timeline,
    n: int,
    party_weights: np.ndarray,
    party_terms: np.ndarray,
    term_days: np.ndarray,
    totals: np.ndarray,
    shape: Profile,
) -> _Documents:
    """Documents owed by (or to) parties, some paid in full, some partly, recent ones mostly open."""
    anchor = timeline.anchor
    lut = timeline.sorted_times(n)
    age_days = (anchor - lut) / DAY
    paid = rng.random(n) < _by_age(age_days, shape.paid_odds)
    two = paid & (rng.random(n) < 0.1)
    partial = paid & ~two & (rng.random(n) < _by_age(age_days, shape.partial_odds))
    edited = ~paid & (rng.random(n) < 0.3)
    gap = rng.integers(3 * DAY, 45 * DAY, n)
    created = np.where(paid, lut - gap, np.where(edited, lut - rng.integers(3600, 5 * DAY, n), lut))
    txn_days = _days(created) - rng.integers(0, 4, n)
    parties = rng.choice(len(party_weights), size=n, p=party_weights)
    terms = party_terms[parties]
    due_days = txn_days + term_days[terms]

    partial_amount = np.clip(np.round(totals * rng.uniform(0.2, 0.8, n)), 1, None).astype(np.int64)
    first_of_two = np.clip(np.round(totals * rng.uniform(0.3, 0.7, n)), 1, None).astype(np.int64)
    first_amount = np.where(two, first_of_two, np.where(partial, partial_amount, totals))
    first_time = np.where(two, created + (lut - created) // 2, lut)
    paid_total = np.where(paid, np.where(partial, partial_amount, totals), 0)
    balances = totals - paid_total

    first_docs = np.flatnonzero(paid)
    second_docs = np.flatnonzero(two)
    docs = np.concatenate([first_docs, second_docs])
    amounts = np.concatenate([first_amount[first_docs], (totals - first_of_two)[second_docs]])
    times = np.concatenate([first_time[first_docs], lut[second_docs]])
    slots = np.concatenate([np.zeros(len(first_docs), np.int64), np.ones(len(second_docs), np.int64)])
    order = np.lexsort((slots, docs, times))
    pays = np.zeros((n, 2), dtype=np.int64)
    pays[docs[order], slots[order]] = np.arange(1, len(order) + 1)
    sync = paid.astype(np.int32) + two + edited
    return _Documents(
        lut=lut,
        created=created,
        sync=sync,
        parties=parties,
        terms=terms,
        txn_days=txn_days,
        due_days=due_days,
        totals=totals,
        balances=balances,
        pays=pays,
        pay_docs=docs[order] + 1,
        pay_amounts=amounts[order],
        pay_times=times[order],
    )


def _document_table(cls: type[BillTable | InvoiceTable], ctx: CompanyContext, docs: _Documents) -> BaseTable:
    return cls(
        ctx,
        docs.lut,
        docs.created,
        docs.sync,
        docs.parties,
        docs.terms,
        docs.txn_days,
        docs.due_days,
        docs.totals,
        docs.balances,
        docs.pays,
    )


def build_company(
    seed: int, scale: str, realm_index: int = 0, anchor: float = 0.0, profile: str = DEFAULT_PROFILE
) -> SeededCompany:
    """The base company of realm ``realm_index``; ``anchor`` is the sandbox start time (floored to
    the hour, so two sandboxes started within the same hour with the same seed are identical);
    ``profile`` how it runs its books (``PROFILES``)."""
    size = SCALES[scale]
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    shape = PROFILES[profile]
    anchor_hour = int(anchor) // 3600 * 3600
    key = mix(seed, realm_index, 99) & ((1 << 62) - 1)
    rng = np.random.default_rng([seed, realm_index, 20_261_126])
    timeline = _Timeline(rng, anchor_hour)
    realm_id = realm_id_for(seed, realm_index)

    accounts = chart.ACCOUNTS
    account_id = {a.name: i + 1 for i, a in enumerate(accounts)}
    bank_ids = tuple(i + 1 for i, a in enumerate(accounts) if a.account_type == "Bank")
    card_ids = tuple(i + 1 for i, a in enumerate(accounts) if a.account_type == "Credit Card")
    income_ids = np.array([i + 1 for i, a in enumerate(accounts) if a.account_type == "Income"], np.int64)
    expense_ids = np.array([i + 1 for i, a in enumerate(accounts) if a.account_type == "Expense"], np.int64)
    term_days = np.array([t.due_days for t in chart.TERMS], np.int64)

    vendor_words, _ = _names(size.vendors, [chart.VENDOR_FIRST, chart.VENDOR_SECOND, chart.VENDOR_SUFFIX], key)
    customer_words, _ = _names(size.customers, [chart.GIVEN_NAMES, chart.FAMILY_NAMES], key // 7)
    item_words, _ = _names(size.items, [chart.GRADES, chart.SERVICE_WORDS + chart.PRODUCT_WORDS], key // 13)
    specials = {2 + k: name for k, name in enumerate(chart.SPECIAL_VENDORS)}

    @cache
    def vendor_name(i: int) -> str:
        return specials.get(i) or " ".join(vendor_words(i))

    @cache
    def customer_name(i: int) -> tuple[str, str, str]:
        given, family = customer_words(i)
        return f"{given} {family}", given, family.split(" ")[0]

    @cache
    def item_name(i: int) -> str:
        return " ".join(item_words(i))

    is_service = np.array([item_words(i)[1].split(" ")[0] in chart.SERVICE_WORDS for i in range(size.items)])
    # Service words are one word; "Bolt Kit" etc. are products, so the first-word test is exact enough.
    item_prices = np.where(
        is_service,
        rng.integers(10, 60, size.items) * 500,
        rng.integers(300, 20_000, size.items),
    ).astype(np.int64)

    ctx = CompanyContext(
        key=key,
        realm_id=realm_id,
        account_names=[a.name for a in accounts],
        account_types=[a.account_type for a in accounts],
        term_names=[t.name for t in chart.TERMS],
        term_days=[t.due_days for t in chart.TERMS],
        vendor_names=vendor_name,
        customer_names=customer_name,
        item_names=item_name,
        expense_account_ids=expense_ids,
        item_prices=item_prices,
        ap_id=account_id["Accounts Payable (A/P)"],
        ar_id=account_id["Accounts Receivable (A/R)"],
    )

    # Name lists.
    vendor_lut, vendor_created, vendor_sync = timeline.list_times(size.vendors)
    vendor_active = rng.random(size.vendors) > 0.03
    for index in specials:
        vendor_active[index] = True
    vendor_terms = rng.choice(len(term_days), size=size.vendors, p=[0.1, 0.25, 0.5, 0.15])
    customer_lut, customer_created, customer_sync = timeline.list_times(size.customers)
    customer_active = rng.random(size.customers) > 0.03
    customer_terms = rng.choice(len(term_days), size=size.customers, p=[0.15, 0.3, 0.45, 0.1])
    item_lut, item_created, item_sync = timeline.list_times(size.items)
    item_active = rng.random(size.items) > 0.03
    item_income = income_ids[rng.integers(0, len(income_ids), size.items)]

    # Bills and bill payments.
    bill_key = table_key(key, "Bill")
    bills = _documents(
        rng,
        timeline,
        size.bills,
        _weights(rng, size.vendors),
        vendor_terms,
        term_days,
        expense_totals(bill_key, size.bills),
        shape,
    )
    n_bp = len(bills.pay_docs)
    bp_card = rng.random(n_bp) < 0.2
    bp_accounts = np.where(
        bp_card,
        np.asarray(card_ids)[rng.integers(0, len(card_ids), n_bp)],
        np.asarray(bank_ids[:3])[rng.choice(3, size=n_bp, p=[0.6, 0.1, 0.3])],
    )

    # Invoices and payments.
    invoices = _documents(
        rng,
        timeline,
        size.invoices,
        _weights(rng, size.customers),
        customer_terms,
        term_days,
        sales_totals(table_key(key, "Invoice"), size.invoices, item_prices),
        shape,
    )
    n_pay = len(invoices.pay_docs)
    pay_accounts = np.asarray(bank_ids[:3])[rng.choice(3, size=n_pay, p=[0.5, 0.2, 0.3])]

    # Purchases.
    purchase_lut = timeline.sorted_times(size.purchases)
    purchase_types = rng.choice(3, size=size.purchases, p=[0.2, 0.4, 0.4])
    purchase_accounts = np.where(
        purchase_types == 2,
        np.asarray(card_ids)[rng.integers(0, len(card_ids), size.purchases)],
        np.asarray(bank_ids[:3])[rng.integers(0, 3, size.purchases)],
    )
    purchase_totals = expense_totals(table_key(key, "Purchase"), size.purchases)
    purchase_vendors = rng.choice(size.vendors, size=size.purchases, p=_weights(rng, size.vendors))

    # The rest of the books, from a stream of its own (the base entities above stay as they were).
    books = build_books(
        np.random.default_rng([seed, realm_index, 20_261_130]),
        _Timeline(np.random.default_rng([seed, realm_index, 20_261_131]), anchor_hour),
        ctx,
        company_name=company_name_for(seed, realm_index),
        documents=max(8, size.bills // 25),
        employees=max(4, size.vendors // 40),
        vendors=size.vendors,
        customers=size.customers,
        items=size.items,
        bank_ids=bank_ids,
        bills=size.bills,
        days=_days,
    )

    # Some customer payments brought more than they apply (their own stream as well).
    pay_customers = invoices.parties[invoices.pay_docs - 1]
    unapplied = unapplied_payments(np.random.default_rng([seed, realm_index, 20_261_132]), invoices.pay_amounts)

    # Balances that must add up.
    def sums(index: np.ndarray, amounts: np.ndarray, length: int) -> np.ndarray:
        out = np.zeros(length, dtype=np.int64)
        np.add.at(out, index, amounts)
        return out

    vendor_balances = sums(bills.parties, bills.balances, size.vendors) - books.vendor_credits
    customer_credits = books.customer_credits + sums(pay_customers, unapplied, size.customers)
    customer_balances = sums(invoices.parties, invoices.balances, size.customers) - customer_credits
    n_accounts = len(accounts)
    flows = (
        sums(pay_accounts - 1, invoices.pay_amounts + unapplied, n_accounts)
        - sums(bp_accounts - 1, bills.pay_amounts, n_accounts)
        - sums(purchase_accounts - 1, purchase_totals, n_accounts)
        + books.account_flows
    )
    account_balances = np.zeros(n_accounts, dtype=np.int64)
    for i, seed_account in enumerate(accounts):
        kind = seed_account.account_type
        if kind == "Bank":
            opening = max(0, -int(flows[i])) + int(rng.integers(*shape.cushion))
            account_balances[i] = opening + flows[i]
        elif kind == "Credit Card":
            account_balances[i] = int(rng.integers(50_000, 900_000))
        elif kind in ("Fixed Asset", "Other Current Asset", "Other Current Liability", "Long Term Liability"):
            account_balances[i] = 0 if seed_account.sub_type == "UndepositedFunds" else int(rng.integers(0, 5_000_000))
        elif kind == "Equity":
            account_balances[i] = int(rng.integers(0, 10_000_000))
    if shape.cash_cover:
        # Keep the bank at least ``cash_cover`` times what is overdue to vendors (more opening cash).
        today = int(_days(np.asarray([anchor_hour]))[0])
        overdue = int(bills.balances[bills.due_days < today].sum())
        banks = np.asarray(bank_ids, np.int64) - 1
        short = int(shape.cash_cover * overdue) - int(account_balances[banks].sum())
        if short > 0:
            account_balances[banks] += -(-short // len(banks))
    account_balances[ctx.ap_id - 1] = int(bills.balances.sum() - books.vendor_credits.sum())
    account_balances[ctx.ar_id - 1] = int(invoices.balances.sum() - customer_credits.sum())
    account_lut, account_created, account_sync = timeline.list_times(n_accounts)
    term_lut, term_created, term_sync = timeline.list_times(len(term_days))

    tables: dict[str, BaseTable] = {
        "Account": AccountTable(ctx, account_lut, account_created, account_sync, account_balances),
        "Vendor": VendorTable(
            ctx, vendor_lut, vendor_created, vendor_sync, vendor_active, vendor_terms, vendor_balances
        ),
        "Customer": CustomerTable(
            ctx,
            customer_lut,
            customer_created,
            customer_sync,
            customer_active,
            customer_terms,
            customer_balances,
            rng.random(size.customers) < 0.4,
        ),
        "Item": ItemTable(
            ctx,
            item_lut,
            item_created,
            item_sync,
            item_prices,
            is_service,
            item_income,
            account_id["Cost of Goods Sold"],
            item_active,
        ),
        "Term": TermTable(ctx, term_lut, term_created, term_sync),
        "Bill": _document_table(BillTable, ctx, bills),
        "BillPayment": BillPaymentTable(
            ctx,
            bills.pay_times,
            bills.pay_times,
            np.zeros(n_bp, np.int32),
            bills.pay_docs,
            bills.parties[bills.pay_docs - 1],
            bills.pay_amounts,
            bp_card,
            bp_accounts,
            _days(bills.pay_times),
        ),
        "Invoice": _document_table(InvoiceTable, ctx, invoices),
        "Payment": PaymentTable(
            ctx,
            invoices.pay_times,
            invoices.pay_times,
            np.zeros(n_pay, np.int32),
            invoices.pay_docs,
            pay_customers,
            invoices.pay_amounts,
            pay_accounts,
            _days(invoices.pay_times),
            unapplied,
        ),
        "Purchase": PurchaseTable(
            ctx,
            purchase_lut,
            purchase_lut,
            np.zeros(size.purchases, np.int32),
            purchase_vendors,
            purchase_types,
            purchase_accounts,
            purchase_totals,
            _days(purchase_lut) - rng.integers(0, 3, size.purchases),
        ),
        **books.tables,
    }
    return SeededCompany(
        realm_id=realm_id,
        seed=seed,
        scale=scale,
        anchor=anchor_hour,
        ctx=ctx,
        tables=tables,
        bank_ids=bank_ids,
        card_ids=card_ids,
        undeposited_id=account_id["Undeposited Funds"],
    )
