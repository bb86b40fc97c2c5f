"""The dashboard's screenshots in docs/ (README, docs/ui.md), taken in Debian's headless
Chromium from a server holding the examples (auth off, on loopback):

    .venv/bin/python -m tests.support.screenshots            # writes docs/ui-queue.png, docs/ui-measures.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx

from tests.integration.ui.conftest import new_browser, ui_url
from tests.support.evi import TEST_REGION, load_examples
from tests.support.live_server import LiveServer

DOCS = Path(__file__).resolve().parents[2] / "docs"


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        settings = {"storage": f"sqlite://{folder}/evi.db", "region_file": str(TEST_REGION),
                    "pseudonym_key": "screenshots-only-" + "k" * 32}
        with LiveServer(**settings) as live:
            with httpx.Client(base_url=live.base_url, timeout=30) as client:
                load_examples(client)
            browser = new_browser()
            try:
                browser.set_window_size(1280, 900)
                browser.get(ui_url(live) + "/")
                browser.save_screenshot(str(DOCS / "ui-queue.png"))
                browser.set_window_size(1280, 2400)
                browser.get(ui_url(live) + "/matt?per=manad&till=2026-12-31")
                browser.save_screenshot(str(DOCS / "ui-measures.png"))
            finally:
                browser.quit()
    print("wrote docs/ui-queue.png and docs/ui-measures.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
