"""The Memory tab and the live chart page, in a real headless Chromium against the real engine."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from memsoak_procs import locust_cmd, wait_for

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.slow
@pytest.mark.browser
def test_memory_tab_shows_live_values(engine, procs, tmp_path: Path, port: int) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    demo = engine()
    ui = f"http://127.0.0.1:{port}"
    procs.start(locust_cmd(demo, tmp_path, "--web-port", str(port), "--web-host", "127.0.0.1",
                           headless=False, run_time=None), "locust")
    wait_for(lambda: _answers(ui + "/"), 60, "the Locust web UI")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(ui + "/")
            page.get_by_role("button", name=re.compile("start", re.I)).first.click()
            page.get_by_role("tab", name="Memory").click()
            # live values: an RSS in MB from the engine and a non-zero user count
            rss_cell = page.get_by_role("row", name=re.compile(r"Engine RSS")).get_by_text(re.compile(r"\d+\.\d MB"))
            rss_cell.wait_for(timeout=60_000)
            first = rss_cell.inner_text()
            page.get_by_role("row", name=re.compile(r"^Users\s+[1-9]")).wait_for(timeout=60_000)
            samples = page.get_by_role("row", name=re.compile(r"^Samples"))
            count = lambda: int(re.search(r"(\d+)", samples.inner_text().replace("Samples", "")).group(1))
            before = count()
            wait_for(lambda: count() > before, 30, "the Samples count to grow in the tab")
            assert page.get_by_role("row", name=re.compile(r"RSS limit\s+512 MB")).count() == 1
            assert "MB" in first
            page.screenshot(path=str(ARTIFACTS / "webui-memory-tab.png"), full_page=True)

            chart = browser.new_page()
            chart.goto(ui + "/memsoak/memory")
            chart.locator("table#values tr").first.wait_for(timeout=30_000)
            image = chart.locator("img#chart")
            wait_for(lambda: image.evaluate("i => i.complete && i.naturalWidth") > 100, 30, "the chart PNG")
            chart.screenshot(path=str(ARTIFACTS / "webui-memory-chart.png"), full_page=True)
        finally:
            browser.close()
    png = requests.get(ui + "/memsoak/memory.png", timeout=30)
    assert png.headers["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
