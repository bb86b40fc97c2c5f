"""The triage queue and a referral page in a real browser (domain.md §9): the queue shows
the open intake Tasks in the documented order (the same as Task/$triage-queue) with the
overdue ones marked; a referral page shows its Task's history and what triage created."""

from __future__ import annotations

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.integration.ui.conftest import ui_url
from tests.support.evi import FHIR_JSON, new_slot, triage_parameters

PRIORITY_RANK = {"Omedelbart": 0, "Snarast": 1, "Brådskande": 2, "Rutin": 3}


def _queue_rows(browser):
    rows = browser.find_elements(By.CSS_SELECTOR, "table.queue tbody tr[data-task]")
    return [(r.get_attribute("data-task"), "overdue" in (r.get_attribute("class") or ""),
             r.find_elements(By.TAG_NAME, "td")) for r in rows]


def _fhir_queue(live, owner: str | None = None) -> list[tuple[str, bool]]:
    params = {"_count": "25", **({"owner": owner} if owner else {})}
    bundle = httpx.get(live.base_url + "/Task/$triage-queue", params=params, timeout=30).json()
    return [(e["resource"]["id"], e["search"]["extension"][0]["valueBoolean"]) for e in bundle.get("entry", [])]


def test_the_queue_shows_the_open_intake_tasks_in_order_with_overdue_ones_marked(dashboard, browser):
    browser.get(ui_url(dashboard) + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Triagekö"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "sv"
    rows = _queue_rows(browser)
    expected = _fhir_queue(dashboard)
    assert len(expected) >= 3
    assert [(task, overdue) for task, overdue, _ in rows] == expected
    assert any(overdue for _, overdue in expected) and not all(overdue for _, overdue in expected)
    # priority first, then receipt time, oldest first
    keys = [(PRIORITY_RANK[cells[1].text], cells[2].text) for _, _, cells in rows]
    assert keys == sorted(keys)
    for _, overdue, cells in rows:
        assert ("Försenad" in cells[3].text) == overdue
        assert cells[4].text not in ("", "–")  # the channel of each contact


def test_the_queue_filters_by_unit_with_the_keyboard_only(dashboard, browser):
    browser.get(ui_url(dashboard) + "/")
    select = browser.find_element(By.ID, "enhet")
    names = [o.text for o in Select(select).options]
    assert names[0] == "Alla enheter" and len(names) >= 3  # the examples hold two EVI units
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the first stop is the skip link
    assert browser.switch_to.active_element.text == "Hoppa till innehållet"
    select.send_keys(Keys.DOWN)  # the first unit, then submit with Enter on the button
    Select(select).select_by_value("evi-kalmar")
    browser.find_element(By.CSS_SELECTOR, "form.filter button").send_keys(Keys.ENTER)
    # the form's GET is a navigation: wait for it (at once it may still show the old page)
    WebDriverWait(browser, 20).until(lambda b: "enhet=evi-kalmar" in b.current_url
                                     and b.execute_script("return document.readyState") == "complete")
    shown = [task for task, _, _ in _queue_rows(browser)]
    assert shown == [task for task, _ in _fhir_queue(dashboard, "Organization/evi-kalmar")]


def test_a_referral_page_shows_its_history_and_what_triage_created(dashboard, browser):
    client = httpx.Client(base_url=dashboard.base_url, timeout=30)
    task = client.get("/Task", params={"focus": "ServiceRequest/referral-general-ella"}).json()["entry"][0]["resource"]
    slot = new_slot(client)
    done = client.post(f"/Task/{task['id']}/$triage", headers=FHIR_JSON, json=triage_parameters(
        "book-first-visit", slot={"valueReference": {"reference": f"Slot/{slot}"}}))
    assert done.status_code == 200, done.text
    appointment = next(p["resource"]["id"] for p in done.json()["parameter"] if p["name"] == "created")

    browser.get(ui_url(dashboard) + "/remiss/referral-general-ella")
    assert browser.find_element(By.ID, "task-status").text == "Klar"
    assert browser.find_element(By.ID, "outcome").text == "Tidsbokning första besök"
    history = browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    versions = [r.find_elements(By.TAG_NAME, "td")[0].text for r in history]
    statuses = [r.find_elements(By.TAG_NAME, "td")[2].text for r in history]
    assert versions[0] == str(len(versions)) and len(versions) >= 2 and statuses[0] == "Klar"
    assert statuses[-1] == "Begärd"
    created = browser.find_element(By.CSS_SELECTOR, "ul.created").text
    assert "Appointment" in created and "Besök" in created
    # and the queue no longer holds it
    browser.get(ui_url(dashboard) + "/")
    assert task["id"] not in [t for t, _, _ in _queue_rows(browser)]
    assert appointment


def test_an_unknown_referral_is_a_swedish_404_page(dashboard, browser):
    answer = httpx.get(ui_url(dashboard) + "/remiss/finns-inte", timeout=30)
    assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
    browser.get(ui_url(dashboard) + "/remiss/finns-inte")
    assert "finns inte" in browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
