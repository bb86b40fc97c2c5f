"""The measures page and the SKR month table in a real browser: each chart shows, per
week or month, the numbers that Measure/{id}/$evaluate-measure answers for that period
(and the known counts of the contacts made here), with a table of the same numbers; the
SKR table's CSV downloads and equals $skr-wait-times' CSV."""

from __future__ import annotations

import time
from datetime import date

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.integration.ui.conftest import ui_url
from tests.support.evi import FHIR_JSON, SD, TEST_REGION, load_examples, patient, referral
from tests.support.live_server import LiveServer

#: contacts made here: (receipt time, channel)
CONTACTS = [("2026-03-03T09:00:00+01:00", "phone-advice"), ("2026-03-04T10:00:00+01:00", "referral-paper"),
            ("2026-03-05T11:00:00+01:00", "referral-paper"), ("2026-03-10T09:30:00+01:00", "phone-advice"),
            ("2026-03-11T14:00:00+01:00", "referral-electronic")]
MEASURES = {"kontakter": "evi-contacts", "inom-tidsgrans": "evi-assessed-within-deadline",
            "forsta-besok-30": "evi-first-visit-within-30-days", "dagar-forsta-besok": "evi-days-to-first-visit",
            "utan-tider": "evi-units-without-slots"}


@pytest.fixture(scope="module")
def reporting(tmp_path_factory):
    db = tmp_path_factory.mktemp("ui-measures") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION),
                    pseudonym_key="ui-measures-test-" + "k" * 32) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            load_examples(client)
            for n, (received, channel) in enumerate(CONTACTS):
                child = client.post("/Patient", json=patient(date(2014, 5, n + 1)), headers=FHIR_JSON)
                assert child.status_code == 201, child.text
                body = referral(f"Patient/{child.json()['id']}", channel=channel)
                body["extension"].append({"url": SD + "evi-received", "valueDateTime": received})
                made = client.post("/ServiceRequest", json=body, headers=FHIR_JSON)
                assert made.status_code == 201, made.text
        yield live


def _points(browser, chart_id: str) -> list[tuple[str, str]]:
    figure = browser.find_element(By.ID, chart_id)
    marks = figure.find_elements(By.CSS_SELECTOR, "svg [data-value]")
    return [(m.get_attribute("data-label"), m.get_attribute("data-value")) for m in marks]


def _table(browser, chart_id: str) -> list[tuple[str, str]]:
    rows = browser.find_elements(By.CSS_SELECTOR, f"#{chart_id} table tbody tr")
    return [(r.find_element(By.TAG_NAME, "th").text, r.find_element(By.TAG_NAME, "td").text) for r in rows]


def _fhir(live, measure: str, start: str, end: str) -> dict:
    answer = httpx.get(f"{live.base_url}/Measure/{measure}/$evaluate-measure",
                       params={"periodStart": start, "periodEnd": end}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_each_chart_shows_the_measures_of_each_week(reporting, browser):
    browser.get(ui_url(reporting) + "/matt?per=vecka&till=2026-03-15")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Mått"
    contacts = dict(_points(browser, "kontakter"))
    assert contacts["v10 2026"] == "3" and contacts["v11 2026"] == "2"
    assert len(_table(browser, "kontakter")) == 12  # twelve weeks, each in the table too
    assert dict(_table(browser, "kontakter"))["v10 2026"] == "3"
    # every chart equals what $evaluate-measure answers for its weeks
    from fhir_server.ui.charts import periods
    from fhir_server.ui.measures import population, score
    for week in periods("vecka", date(2026, 3, 15))[-3:]:
        for chart_id, measure in MEASURES.items():
            report = _fhir(reporting, measure, week.start.isoformat(), week.end.isoformat())
            if chart_id in ("kontakter", "utan-tider"):
                expected = population(report)
            else:
                value = score(report)
                expected = None if value is None else (round(value * 100, 1) if chart_id != "dagar-forsta-besok" else value)
            shown = dict(_points(browser, chart_id)).get(week.label)
            assert shown == (None if expected is None else f"{expected:g}"), (chart_id, week.label)


def test_contacts_by_channel_and_per_month(reporting, browser):
    browser.get(ui_url(reporting) + "/matt?per=manad&till=2026-03-31")
    assert dict(_points(browser, "kontakter"))["mar 2026"] == "5"
    channels = dict(_points(browser, "kanaler"))
    # the twelve months' contacts per channel: what $evaluate-measure stratifies (the examples'
    # intake Tasks count too), and at least the contacts made here
    from fhir_server.ui.labels import Labels
    from fhir_server.ui.measures import strata
    whole = strata(_fhir(reporting, "evi-contacts", "2025-04-01", "2026-03-31"), "channel")
    labels = Labels(None)
    assert channels == {labels.channel(code): str(n) for code, n in whole.items()}
    assert int(channels["Remiss – brev"]) >= 2 and int(channels["Telefon – rådgivning"]) >= 2
    assert int(channels["Remiss – elektronisk"]) >= 1
    assert browser.find_element(By.ID, "platser").find_elements(By.CSS_SELECTOR, "table tbody tr")


def test_the_skr_table_downloads_as_csv(reporting, browser, tmp_path_factory):
    browser.get(ui_url(reporting) + "/skr?manad=2026-03")
    header = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "table.skr thead th")]
    expected = httpx.get(reporting.base_url + "/$skr-wait-times", params={"month": "2026-03", "_format": "csv"},
                         timeout=60)
    assert expected.status_code == 200, expected.text
    from fhir_server.ui.measures import SKR_WORDS
    assert header == [SKR_WORDS.get(h, h) for h in expected.text.splitlines()[0].split(",")]
    assert "Första bedömning" in header or "Intervall" in header
    folder = tmp_path_factory.getbasetemp()  # the browser fixture's download directory is under it
    browser.find_element(By.ID, "csv").click()
    deadline = time.monotonic() + 20
    found = []
    while time.monotonic() < deadline and not found:
        found = [p for p in folder.rglob("skr-vantetider-2026-03.csv")]
        time.sleep(0.2)
    assert found, "the CSV was not downloaded"
    assert found[0].read_text().replace("\r\n", "\n") == expected.text.replace("\r\n", "\n")
