"""The dashboard in a real headless Chromium (Debian's package, driven by playwright) against the
real app under uvicorn on a free localhost port: every page loads, its charts draw (canvases with
pixels), span buttons and drag-to-zoom change the chart, the overview updates without a reload,
a fresh install shows its empty state, and no page asks any host but the telmon server.
Screenshots go to test-output/dashboard/ (git-ignored).

Without chromium or playwright the tests skip with the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from telmon.service import Service
from tests.dashboard.sample import NOW, build, serve
from tests.support import TIMEOUT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
OUT = Path(__file__).resolve().parents[2] / "test-output" / "dashboard"
MS = int(TIMEOUT * 1000)

# JS: how many pixels each chart canvas has drawn
PIXELS = """sel => [...document.querySelectorAll(sel)].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })"""


def _need_browser() -> str:
    missing = None
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        missing = "Debian's chromium is not installed (apt-get install chromium; .ci/browser.sh does it)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright Python package is not installed"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser test cannot run under CI: {missing}")
        pytest.skip(missing)
    return str(path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Service]]:
    service = build(tmp_path_factory.mktemp("browser"))
    try:
        with serve(service) as base:
            yield base, service
    finally:
        service.close()


class Watch:
    """Every URL a page asked for, and every script error it raised."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.urls.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def check(self, base: str) -> None:
        outside = [u for u in self.urls if not (u.startswith(base + "/") or u.startswith("data:"))]
        assert not outside, f"requests to other hosts: {outside}"
        assert not self.errors, self.errors


def _open(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=MS)


def _shot(page: Any, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


def _charts_drawn(page: Any, expect_panels: int) -> None:
    page.wait_for_selector("#chart[data-ready='1'] canvas", timeout=MS)
    counts = page.evaluate(PIXELS, "#chart canvas")
    assert len(counts) >= expect_panels, counts
    assert all(n > 2000 for n in counts), counts  # every panel drew axes, grid and data


@pytest.mark.browser
def test_every_page_draws(browser: Any, site: tuple[str, Service]):
    base, _ = site
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    watch = Watch(page)
    _open(page, f"{base}/")
    assert page.inner_text("#c-files") not in ("–", "0") and page.inner_text("#c-on_time") == "2"
    assert page.get_attribute("header nav a[href='/map']", "href") == "/map"
    assert page.eval_on_selector("#empty", "e => e.hidden")
    _shot(page, "overview")
    page.click("a.card[href='/stations?status=on_time']")  # every number links to its detail
    page.wait_for_url(f"{base}/stations?status=on_time", timeout=MS)
    page.wait_for_function("document.querySelectorAll('#stations tbody tr').length === 2", timeout=MS)
    _shot(page, "stations")
    for path, panels, name in (("/stations/GAUGE2", 3, "station"), ("/clients/tx/amis", 6, "client"),
                               ("/hosts/web1", 6, "host")):
        _open(page, base + path)
        _charts_drawn(page, panels)
        _shot(page, name)
    for path, table in (("/clients", "#clients"), ("/hosts", "#hosts")):
        _open(page, base + path)
        assert page.eval_on_selector_all(f"{table} tbody tr", "rows => rows.length") >= 2
        _shot(page, path.strip("/"))
    _open(page, f"{base}/graphs/day")
    page.wait_for_function("[...document.querySelectorAll('.period-grid img')].length === 7 && "
                           "[...document.querySelectorAll('.period-grid img')].slice(0, 2).every(i => i.complete && i.naturalWidth > 0)",
                           timeout=MS * 3)
    _shot(page, "graphs-day")
    watch.check(base)


@pytest.mark.browser
def test_span_buttons_and_zoom_change_the_chart(browser: Any, site: tuple[str, Service]):
    base, _ = site
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    watch = Watch(page)
    _open(page, f"{base}/clients/tx/amis")
    _charts_drawn(page, 6)
    chart = page.locator("#chart")
    assert chart.get_attribute("data-step") == "60" and chart.get_attribute("data-start") == "2024-04-30T12:30:00Z"
    page.click("#spans button[data-span='month']")
    page.wait_for_function("document.getElementById('chart').dataset.step === '3600'", timeout=MS)
    assert chart.get_attribute("data-start") == "2024-04-01T12:30:00Z"
    assert "from 1 h buckets" in page.inner_text("#range")
    assert "span=month" in page.url and "span=month" in page.get_attribute("#png", "href")
    _charts_drawn(page, 6)
    # drag across the first chart: finer data for the range chosen
    box = page.locator("#chart .panel canvas").first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.93, y)  # the last two days
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=8)
    page.mouse.up()
    page.wait_for_function("document.getElementById('chart').dataset.step !== '3600'", timeout=MS)
    assert page.is_visible("#reset-zoom")
    assert chart.get_attribute("data-start") > "2024-04-28"
    _shot(page, "client-zoomed")
    page.click("#reset-zoom")
    page.wait_for_function("document.getElementById('chart').dataset.step === '3600'", timeout=MS)
    # the station page: week span, and a reload keeps it
    _open(page, f"{base}/stations/GAUGE1?span=week")
    _charts_drawn(page, 3)
    assert chart.get_attribute("data-start") == "2024-04-24T12:30:00Z"
    page.click("#spans button[data-span='day']")
    page.wait_for_function("document.getElementById('chart').dataset.start === '2024-04-30T12:30:00Z'", timeout=MS)
    watch.check(base)


@pytest.mark.browser
def test_overview_updates_without_reload(browser: Any, site: tuple[str, Service]):
    base, service = site
    page = browser.new_page(viewport={"width": 1360, "height": 900})
    watch = Watch(page)
    _open(page, f"{base}/")
    before = page.inner_text("#c-errors")
    page.evaluate("window.__same_page = true")
    errors = [NOW - 600 + k for k in range(50)]
    service.series.write([("transfers/tx/amis/pds5/SA/errors", errors, [1.0] * 50)], now=NOW)
    page.wait_for_function(f"document.getElementById('c-errors').textContent !== {before!r}", timeout=MS)
    assert page.evaluate("window.__same_page") is True
    assert int(page.inner_text("#c-errors").replace(",", "")) >= int(before.replace(",", "")) + 50
    watch.check(base)


@pytest.mark.browser
def test_fresh_install_empty_states(browser: Any, empty_service: Service):
    with serve(empty_service) as base:
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        watch = Watch(page)
        _open(page, f"{base}/")
        assert page.is_visible("#empty") and "Nothing has arrived yet" in page.inner_text("#empty")
        assert not page.is_visible("#sec-transfers") and not page.is_visible("#sec-hosts")
        _shot(page, "empty-overview")
        for path, table, words in (("/stations", "#stations", "No stations yet"), ("/clients", "#clients", "No transfer"),
                                   ("/hosts", "#hosts", "No host")):
            _open(page, base + path)
            assert words in page.inner_text(f"{table} tbody")
        _shot(page, "empty-hosts")
        _open(page, f"{base}/graphs/day")
        assert "No clients yet" in page.inner_text("#subjects")
        page.goto(f"{base}/stations/NOPE")
        page.wait_for_selector("#error:not([hidden])", timeout=MS)
        assert "NOPE" in page.inner_text("#error")
        watch.check(base)
