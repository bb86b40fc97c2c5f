"""Browser tests of the dashboard: Debian's headless Chromium driven by Selenium
(chromedriver from the ``chromium-driver`` package; nothing is downloaded at run time).
Without those packages the tests are skipped, saying so."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.evi import TEST_REGION, load_examples
from tests.support.live_server import LiveServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
NO_BROWSER = "the browser tests need Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)"


def new_browser(downloads: Path | None = None):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(NO_BROWSER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1000", "--lang=sv-SE", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = new_browser(tmp_path_factory.mktemp("downloads"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A server of its own (auth off, on loopback) holding the example units, children,
    referrals and the intake Tasks the workflow made for them."""
    db = tmp_path_factory.mktemp("ui-db") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION)) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            load_examples(client)
        yield live


def ui_url(live: LiveServer) -> str:
    return live.base_url.removesuffix("/fhir") + "/ui"
