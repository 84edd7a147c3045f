"""The digest's HTML page in headless Chromium (Debian's, driven by Playwright): what a reader sees
equals the JSON digest of the same run — headline cards, the method beside the runway, the projection
table, and the marks of all three charts — and the charts read like finance charts (title with the
company, round whole-dollar ticks, a zero line, the projection starting at today's cash, weeks on x).
The screenshot stays in ``smartsync_pipeline_tests/output/digest.png``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from smartsync_pipeline.orchestrators.digest_report import FIGURES, figure_text, fmt_money
from smartsync_pipeline_tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from smartsync_pipeline_tests.defs.test_ui_browser import OUTPUT

pytestmark = pytest.mark.browser

ROUND_DOLLARS = re.compile(r"^-?\$\d{1,3}(,\d{3})*$")


def test_the_digest_page_shows_the_json_figures_and_reads_like_a_finance_chart(company, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    require_chromium()
    html = tmp_path / "digest.html"
    env = {**os.environ, "SMARTSYNC_HOME": str(company.home.root)}
    out = subprocess.run(
        [sys.executable, "-m", "smartsync_pipeline.cli.main", "digest", "--json", "--html", str(html)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            page.goto(html.as_uri(), wait_until="load")
            expect(page.locator("h1")).to_have_text(f"Runway digest — {d['company_name']}")
            cards = page.locator(".card")
            shown = {
                cards.nth(i).locator(".label").inner_text(): cards.nth(i).locator(".value").inner_text()
                for i in range(cards.count())
            }
            assert shown == {label: figure_text(key, d[key]) for key, label in FIGURES}
            # The method sits beside the number: in the runway card and right under the cards.
            runway_card = page.locator(".card[data-key='runway_weeks']")
            expect(runway_card.locator(".how")).to_contain_text("average weekly net burn")
            expect(page.locator("#runway-method")).to_contain_text(d["runway_method"])
            expect(page.locator("#projection-method")).to_contain_text(d["projection_method"])

            chart = page.locator("svg[aria-label='Projected cash by week']")
            expect(chart).to_be_visible()
            expect(chart.locator(".chart-title")).to_contain_text(d["company_name"])
            points = chart.locator("circle.point.cash")
            values = [points.nth(i).get_attribute("data-value") for i in range(points.count())]
            assert values == [w["cash"] for w in d["cash_projection"]]
            assert values[0] == d["cash_on_hand"]  # the line starts at today's cash
            ticks = chart.locator("text.y-tick").all_text_contents()
            assert ticks and all(ROUND_DOLLARS.match(t) for t in ticks) and "$0" in ticks
            zero_tick = chart.locator("text.y-tick[data-value='0']")
            zero_line = chart.locator("line.zero-line")
            assert zero_line.count() == 1
            assert float(zero_line.get_attribute("y1")) == pytest.approx(
                float(zero_tick.get_attribute("y")) - 4, abs=0.2
            )
            labels = chart.locator("text.x-label").all_text_contents()
            assert labels == ["today", *(f"wk {w}" for w in range(1, len(d["cash_projection"])))]
            # The first point sits on the height of today's cash, the zero line on $0: same scale.
            first_y = float(points.nth(0).get_attribute("cy"))
            tick_ys = {int(t.get_attribute("data-value")): float(t.get_attribute("y")) - 4
                       for t in chart.locator("text.y-tick").all()}  # fmt: skip
            lo, hi = min(tick_ys), max(tick_ys)
            scale = (tick_ys[lo] - tick_ys[hi]) / (hi - lo)
            assert first_y == pytest.approx(tick_ys[0] - float(d["cash_on_hand"]) * scale, abs=0.2)

            rows = page.locator("#projection tr")
            assert rows.count() == 1 + len(d["cash_projection"])
            for i, week in enumerate(d["cash_projection"], start=1):
                cells = rows.nth(i).locator("td").all_text_contents()
                assert cells[1:] == [fmt_money(week["inflow"]), fmt_money(week["outflow"]), fmt_money(week["cash"])]

            trailing = page.locator("svg[aria-label='Trailing burn by week']")
            bars = trailing.locator("rect.bar.net")
            assert [Decimal(bars.nth(i).get_attribute("data-value")) for i in range(bars.count())] == [
                -Decimal(w["net_burn"]) for w in d["runway_history"]
            ]
            balance = trailing.locator("circle.point.cash")
            assert [balance.nth(i).get_attribute("data-value") for i in range(balance.count())] == [
                w["cash"] for w in d["runway_history"]
            ]
            runway = page.locator("svg[aria-label='Runway by week'] circle.point.runway")
            assert [runway.nth(i).get_attribute("data-value") for i in range(runway.count())] == [
                w["runway_weeks"] for w in d["runway_history"] if w["runway_weeks"] is not None
            ]
            page.screenshot(path=str(OUTPUT / "digest.png"), full_page=True)
        finally:
            browser.close()
    assert (OUTPUT / "digest.png").stat().st_size > 20_000
