"""Report documents in QBO's wire format, built from the documented shape (Header / Columns / Rows with
Data rows and Sections), for tests that must not depend on our own sandbox's renderer."""

from __future__ import annotations

from typing import Any


def col(title: str, col_type: str, key: str | None = None, **meta: str) -> dict[str, Any]:
    metadata = [{"Name": "ColKey", "Value": key}] if key else []
    metadata += [{"Name": name, "Value": value} for name, value in meta.items()]
    out: dict[str, Any] = {"ColTitle": title, "ColType": col_type}
    if metadata:
        out["MetaData"] = metadata
    return out


def cells(*values: Any) -> list[dict[str, str]]:
    """ColData: a value, or (value, id)."""
    out = []
    for v in values:
        if isinstance(v, tuple):
            out.append({"value": v[0], "id": v[1]})
        else:
            out.append({"value": v})
    return out


def data(*values: Any, typed: bool = True) -> dict[str, Any]:
    row: dict[str, Any] = {"ColData": cells(*values)}
    if typed:
        row["type"] = "Data"
    return row


def section(
    title: str | None, rows: list[dict[str, Any]] | None, summary: tuple[Any, ...] | None, group: str | None = None,
    width: int = 2,
) -> dict[str, Any]:  # fmt: skip
    row: dict[str, Any] = {"type": "Section"}
    if title is not None:
        row["Header"] = {"ColData": cells(title, *([""] * (width - 1)))}
    if rows is not None:
        row["Rows"] = {"Row": rows}
    if summary is not None:
        row["Summary"] = {"ColData": cells(*summary)}
    if group:
        row["group"] = group
    return row


def report(
    name: str, columns: list[dict[str, Any]], rows: list[dict[str, Any]] | None, *, no_data: bool = False,
    options: list[dict[str, str]] | None = None, **header: str,
) -> dict[str, Any]:  # fmt: skip
    head: dict[str, Any] = {
        "Time": "2026-03-08T16:11:49-08:00",
        "ReportName": name,
        "Currency": "USD",
        "Option": [*(options or []), {"Name": "NoReportData", "Value": "true" if no_data else "false"}],
        **header,
    }
    doc: dict[str, Any] = {"Header": head, "Columns": {"Column": columns}}
    doc["Rows"] = {"Row": rows} if rows is not None else {}
    return doc


def balance_sheet() -> dict[str, Any]:
    """Nested sections four deep, a parent account with a sub-account section, two top groups."""
    bank = section(
        "Bank Accounts",
        [data(("Checking", "35"), "1201.00"), data(("Savings", "36"), "800.00")],
        ("Total Bank Accounts", "2001.00"),
        "BankAccounts",
    )
    ar = section("Accounts Receivable", [data(("Accounts Receivable (A/R)", "84"), "5281.52")],
                 ("Total Accounts Receivable", "5281.52"), "AR")  # fmt: skip
    current = section("Current Assets", [bank, ar], ("Total Current Assets", "7282.52"), "CurrentAssets")
    truck = section("Truck", [data(("Original Cost", "38"), "13495.00")], ("Total Truck", "13495.00"))
    fixed = section("Fixed Assets", [truck], ("Total Fixed Assets", "13495.00"), "FixedAssets")
    assets = section("ASSETS", [current, fixed], ("TOTAL ASSETS", "20777.52"), "TotalAssets")
    ap = section("Accounts Payable", [data(("Accounts Payable (A/P)", "33"), "1602.67")],
                 ("Total Accounts Payable", "1602.67"), "AP")  # fmt: skip
    liabilities = section("Liabilities", [ap], ("Total Liabilities", "1602.67"), "Liabilities")
    equity = section(
        "Equity",
        [data(("Opening Balance Equity", "34"), "19000.00"), data("Net Income", "174.85")],
        ("Total Equity", "19174.85"),
        "Equity",
    )
    total = section("LIABILITIES AND EQUITY", [liabilities, equity], ("TOTAL LIABILITIES AND EQUITY", "20777.52"),
                    "TotalLiabilitiesAndEquity")  # fmt: skip
    return report(
        "BalanceSheet",
        [col("", "Account", "account"), col("Total", "Money", "total")],
        [assets, total],
        StartPeriod="2026-01-01",
        EndPeriod="2026-02-28",
        ReportBasis="Accrual",
        SummarizeColumnsBy="Total",
    )


MONTHS = (("Jan 2026", "2026-01-01", "2026-01-31"), ("Feb 2026", "2026-02-01", "2026-02-28"),
          ("Mar 2026", "2026-03-01", "2026-03-31"))  # fmt: skip


def profit_and_loss_by_month() -> dict[str, Any]:
    """summarize_column_by=Month: one Money column per month (StartDate/EndDate metadata) plus Total;
    summary-only sections (GrossProfit, NetIncome) and an empty Expenses section."""
    columns = [col("", "Account", "account")]
    columns += [col(title, "Money", title, StartDate=s, EndDate=e) for title, s, e in MONTHS]
    columns.append(col("Total", "Money", "total"))
    landscaping = section(
        "Landscaping Services",
        [data(("Gardening", "52"), "100.00", "", "300.00", "400.00"),
         data(("Trimming", "53"), "", "25.50", "", "25.50")],
        ("Total Landscaping Services", "100.00", "25.50", "300.00", "425.50"),
        width=5,
    )  # fmt: skip
    income = section(
        "Income",
        [landscaping, data(("Pest Control Services", "54"), "-10.00", "", "", "-10.00")],
        ("Total Income", "90.00", "25.50", "300.00", "415.50"),
        "Income",
        width=5,
    )
    cogs = section("Cost of Goods Sold", [data(("Cost of Goods Sold", "80"), "40.00", "0.25", "", "40.25")],
                   ("Total Cost of Goods Sold", "40.00", "0.25", "", "40.25"), "COGS", width=5)  # fmt: skip
    gross = section(None, None, ("Gross Profit", "50.00", "25.25", "300.00", "375.25"), "GrossProfit")
    expenses = section("Expenses", None, ("Total Expenses", "", "", "", ""), "Expenses", width=5)
    net_op = section(None, None, ("Net Operating Income", "50.00", "25.25", "300.00", "375.25"), "NetOperatingIncome")
    net = section(None, None, ("Net Income", "50.00", "25.25", "300.00", "375.25"), "NetIncome")
    return report(
        "ProfitAndLoss",
        columns,
        [income, cogs, gross, expenses, net_op, net],
        StartPeriod="2026-01-01",
        EndPeriod="2026-03-31",
        ReportBasis="Accrual",
        SummarizeColumnsBy="Month",
    )


def aged_payables() -> dict[str, Any]:
    """The documented AP aging summary: vendor rows without a ``type``, a GrandTotal section."""
    titles = ("Current", "1 - 30", "31 - 60", "61 - 90", "91 and over", "Total")
    columns = [col("", "Vendor")] + [col(t, "Money") for t in titles]
    rows = [
        data(("Bob's Burger Joint", "56"), "", "", "-46.00", "", "", "-46.00", typed=False),
        data(("Brosnahan Insurance Agency", "31"), "", "", "", "", "241.23", "241.23", typed=False),
        data(("Diego's Road Warrior Bodyshop", "36"), "", "", "", "", "755.00", "755.00", typed=False),
        data(("Norton Lumber and Building Materials", "46"), "", "", "", "", "205.00", "205.00", typed=False),
        data(("PG&E", "48"), "", "", "", "", "86.44", "86.44", typed=False),
        section(None, None, ("TOTAL", "0.00", "0.00", "-46.00", "0.00", "1287.67", "1241.67"), "GrandTotal"),
    ]
    return report(
        "AgedPayables",
        columns,
        rows,
        options=[{"Name": "report_date", "Value": "2026-03-08"}],
        DateMacro="today",
        StartPeriod="2026-03-08",
        EndPeriod="2026-03-08",
    )


def general_ledger(*, truncated: bool = False) -> dict[str, Any]:
    """A detail report: one section per account (header with the account id), a beginning balance,
    postings whose txn_type carries the transaction id, a 'Total for' summary."""
    columns = [
        col("Date", "Date", "tx_date"),
        col("Transaction Type", "String", "txn_type"),
        col("Num", "String", "doc_num"),
        col("Name", "String", "name"),
        col("Amount", "Money", "subt_nat_amount"),
        col("Balance", "Money", "rbal_nat_amount"),
    ]
    checking = section(
        "Checking",
        [
            data("Beginning Balance", "", "", "", "", "1000.00"),
            data("2026-01-05", ("Bill Payment (Check)", "151"), "2001", ("Norton Lumber", "46"), "-205.00", "795.00"),
            data("2026-01-09", ("Payment", "152"), "", ("Amy's Bird Sanctuary", "1"), "47.60", "842.60"),
        ],
        ("Total for Checking", "", "", "", "-157.40", ""),
        width=6,
    )
    checking["Header"]["ColData"][0]["id"] = "35"
    rows = [checking]
    if truncated:
        rows.append(data("Unable to display more data. Please reduce the date range.", "", "", "", "", ""))
    return report("GeneralLedger", columns, rows, StartPeriod="2026-01-01", EndPeriod="2026-01-31",
                  ReportBasis="Accrual")  # fmt: skip
