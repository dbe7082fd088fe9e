"""/map in a real headless Chromium (Debian's package, driven by playwright) against the real app
under uvicorn with the sample network: markers, their colours, the legend, a filter, a click
through to the station page, and a refresh without reload.  The screenshot is kept under
test-output/ (git-ignored).

Without chromium or playwright the test skips with the reason; under CI=true it fails instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.schedule.network import EXPECTED, build, serve
from tests.support import TIMEOUT

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
OUT = Path(__file__).resolve().parents[2] / "test-output" / "schedule"
COLOURS = {"on_time": "#2e9e44", "late": "#e08e0b", "missing": "#d62728", "silent": "#7b3fa0", "never": "#9aa0a6",
           "unscheduled": "#1f77b4"}


def _need_browser() -> None:
    missing = None
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
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


@pytest.mark.browser
def test_map_markers_colours_filter_and_station_page(tmp_path: Path):
    _need_browser()
    from playwright.sync_api import sync_playwright

    service = build(tmp_path)
    ms = int(TIMEOUT * 1000)
    try:
        with serve(service) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
                                         args=ARGS, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                failed: list[str] = []
                page.on("requestfailed", lambda r: failed.append(r.url))
                page.goto(f"{base}/map")
                page.wait_for_selector("body[data-ready='1']", timeout=ms)
                page.wait_for_function(f"document.querySelectorAll('path.station-marker').length == {len(EXPECTED)}",
                                       timeout=ms)
                markers = page.eval_on_selector_all(
                    "path.station-marker",
                    "els => els.map(e => [e.dataset.station, e.dataset.status, e.getAttribute('fill')])")
                assert {m[0]: m[1] for m in markers} == EXPECTED
                for station, status, fill in markers:
                    assert fill == COLOURS[status], (station, status, fill)
                # the basemap drew from the packaged GeoJSON: countries and states are paths too
                assert page.eval_on_selector_all("path:not(.station-marker)", "els => els.length") > 150
                legend = page.inner_text("#legend")
                assert "on time" in legend and "silent (D)" in legend and "never heard (U)" in legend
                OUT.mkdir(parents=True, exist_ok=True)
                shot = OUT / "map.png"
                page.screenshot(path=str(shot))
                print(f"map screenshot: {shot}")
                # filter by status and by source
                page.uncheck("#status-filters input[value='silent']")
                page.wait_for_function("document.querySelectorAll('path.station-marker').length == 5", timeout=ms)
                page.check("#status-filters input[value='silent']")
                page.select_option("#feed", "GOES")
                page.wait_for_function("document.querySelectorAll('path.station-marker').length == 1", timeout=ms)
                page.select_option("#feed", "")
                page.wait_for_function(f"document.querySelectorAll('path.station-marker').length == {len(EXPECTED)}",
                                       timeout=ms)
                # a refresh without reload: MISS1's data arrives, its marker turns green in place
                page.evaluate("window.__same_page = true")
                _fill_miss1(service, tmp_path)
                page.evaluate("refresh()")
                page.wait_for_function(
                    "document.querySelector(\"path.station-marker[data-station='MISS1']\").dataset.status == 'on_time'",
                    timeout=ms)
                assert page.evaluate("window.__same_page") is True
                # a click opens the station's page
                page.click("path.station-marker[data-station='LATE1']", force=True)
                page.wait_for_url(f"{base}/station/LATE1", timeout=ms)
                page.wait_for_selector("body[data-ready='1']", timeout=ms)
                assert page.inner_text("#st-status") == "late"
                assert "24/24 received · 1 late · 0 missing" in page.inner_text("#c-24h-detail")
                assert page.inner_text("#st-next").startswith("2024-05-01 13:00:00")
                assert "2024-05-01 12:10:00" in page.inner_text("#entries")
                page.screenshot(path=str(OUT / "station.png"), full_page=True)
                print(f"station screenshot: {OUT / 'station.png'}")
                assert not [u for u in failed if not u.startswith(base)], failed  # nothing from outside
            finally:
                browser.close()
    finally:
        service.close()


def _fill_miss1(service, tmp: Path) -> None:
    from tests.schedule.network import TOP, _edl

    p = tmp / "inbox" / "MISS1-late.edl"
    p.write_bytes(_edl("MISS1", [TOP - 2 * 3600, TOP - 3600, TOP]))
    assert service.ingestor.ingest([(p, "rsync")])[0].status == "ok"
