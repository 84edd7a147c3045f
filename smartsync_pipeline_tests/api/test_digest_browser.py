"""The digest page of the Runway Service in headless Chromium (Debian's, driven by Playwright): a key
holder loads ``/businesses/{id}/digest``, the figures on the page equal the JSON API's, the chart is
drawn, and a screenshot is kept in ``smartsync_pipeline_tests/output/``."""

from __future__ import annotations

import pytest

from smartsync_pipeline.orchestrators.digest_report import FIGURES, figure_text
from smartsync_pipeline_tests.api.conftest import ServedHome
from smartsync_pipeline_tests.browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from smartsync_pipeline_tests.defs.test_ui_browser import OUTPUT

pytestmark = pytest.mark.browser


def test_the_digest_page_shows_the_json_figures_and_its_chart(served: ServedHome) -> None:
    from playwright.sync_api import expect, sync_playwright

    require_chromium()
    key, realm = served.keys["all"], served.realm
    figures = served.server.get(f"/businesses/{realm}/digest", key).json()
    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            anonymous = page.goto(f"{served.server.url}/businesses/{realm}/digest")
            assert anonymous is not None and anonymous.status == 401  # no key, no page
            page.set_extra_http_headers({"Authorization": f"Bearer {key}"})
            response = page.goto(f"{served.server.url}/businesses/{realm}/digest", wait_until="load")
            assert response is not None and response.status == 200
            assert response.headers["content-type"].startswith("text/html") and response.headers["etag"]
            expect(page.locator("h1")).to_have_text(f"Runway digest — {figures['company_name']}")
            cards = page.locator(".card")
            shown = {
                cards.nth(i).locator(".label").inner_text(): cards.nth(i).locator(".value").inner_text()
                for i in range(cards.count())
            }
            expected = {label: figure_text(name, figures[name]) for name, label in FIGURES}
            assert shown == expected
            chart = page.locator("svg[aria-label='Projected cash by week']")
            expect(chart).to_be_visible()
            points = chart.locator("circle.point.cash")
            assert [points.nth(i).get_attribute("data-value") for i in range(points.count())] == [
                w["cash"] for w in figures["cash_projection"]
            ]
            assert figures["cash_projection"][0]["cash"] == figures["cash_on_hand"]
            vendors = page.locator("table#vendors tr")
            assert vendors.count() == 1 + len(figures["top_vendors_owed"])
            page.screenshot(path=str(OUTPUT / "api_digest.png"), full_page=True)
        finally:
            browser.close()
    assert (OUTPUT / "api_digest.png").stat().st_size > 10_000
