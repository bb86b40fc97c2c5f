"""$skr-wait-times over HTTP on the hand-built data set (conftest.py)."""

from __future__ import annotations

import csv
import io

from fhir_server.reporting import Pseudonymizer
from tests.integration.reporting.conftest import BUP_HSA, KEY
from tests.support.evi import PNR, example

#: examples/valid/Patient-child-hugo.json
HUGO = next(i["value"] for i in example("Patient-child-hugo")["identifier"] if i["system"] == PNR)
COUNTS = ("total", "excluding-pvv", "within-30-days", "days-31-or-more")


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _summary(text: str) -> dict[tuple[str, str, str], tuple[int, ...]]:
    return {(r["unit"], r["interval"], r["view"]): tuple(int(r[c]) for c in COUNTS)
            for r in _rows(text) if r["record"] == "summary"}


def test_october_per_interval_and_view(client):
    r = client.get("/$skr-wait-times", params={"month": "2026-10", "_format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    # first assessment, completed: sH 2026-10-02 -> 10-12 (10 days), sI 2026-08-01 -> 10-15 (75 days);
    # waiting: sB since 2026-09-10, 51 days to 10-31 less 15 of PvV (09-15..09-30): counted in total only;
    # Hugo of the examples (received 2026-01-19, a first visit booked at BUP, no milestone): 285 days;
    # investigation, completed: sA 09-25 -> 10-30 = 35 days less 9 of MoV (10-01..10-10) = 26;
    # treatment, waiting: sA since its investigation started 10-30: 1 day
    assert _summary(r.text) == {
        (BUP_HSA, "first-assessment", "completed"): (2, 2, 1, 1),
        (BUP_HSA, "first-assessment", "waiting"): (2, 1, 0, 1),
        (BUP_HSA, "investigation", "completed"): (1, 1, 1, 0),
        (BUP_HSA, "treatment", "waiting"): (1, 1, 1, 0),
    }


def test_september_sees_only_what_had_happened_by_its_end(client):
    r = client.get("/$skr-wait-times", params={"month": "2026-09"}, headers={"Accept": "text/csv"})
    assert r.status_code == 200, r.text
    # sA assessed 09-25 after 20 days, then waits for its investigation (5 days by 09-30, the
    # MoV lies after); sB (PvV), sI (arrived 08-01: 60 days) and Hugo wait for a first assessment;
    # sH arrived in October; sA's treatment decision (10-30) had not been taken
    assert _summary(r.text) == {
        (BUP_HSA, "first-assessment", "completed"): (1, 1, 1, 0),
        (BUP_HSA, "first-assessment", "waiting"): (3, 2, 0, 2),
        (BUP_HSA, "investigation", "waiting"): (1, 1, 1, 0),
    }


def test_detail_lines_carry_pseudonyms_not_personnummer(client, world):
    r = client.get("/$skr-wait-times", params={"month": "2026-10", "detail": "true", "_format": "csv"})
    assert r.status_code == 200, r.text
    details = [row for row in _rows(r.text) if row["record"] == "detail"]
    pseudonym = Pseudonymizer(KEY).pseudonym
    found = {(row["pseudonym"], row["interval"], row["view"]): (row["arrival"], row["start"], row["end"],
                                                                int(row["days"]), int(row["deviation_days"]),
                                                                row["deviations"]) for row in details}
    assert found == {
        (pseudonym(world["pnr"]["E"]), "first-assessment", "completed"): ("2026-10-02", "2026-10-02", "2026-10-12", 10, 0, ""),
        (pseudonym(world["pnr"]["F"]), "first-assessment", "completed"): ("2026-08-01", "2026-08-01", "2026-10-15", 75, 0, ""),
        (pseudonym(world["pnr"]["B"]), "first-assessment", "waiting"): ("2026-09-10", "2026-09-10", "", 36, 15, "PvV"),
        (pseudonym(world["pnr"]["A"]), "investigation", "completed"): ("2026-09-05", "2026-09-25", "2026-10-30", 26, 9, "MoV"),
        (pseudonym(world["pnr"]["A"]), "treatment", "waiting"): ("2026-09-05", "2026-10-30", "", 1, 0, ""),
        (pseudonym(HUGO), "first-assessment", "waiting"): ("2026-01-19", "2026-01-19", "", 285, 0, ""),
    }
    for pnr in [*world["pnr"].values(), HUGO]:
        assert pnr not in r.text
    # stable: the same pseudonyms again, and in the FHIR form
    again = client.get("/$skr-wait-times", params={"month": "2026-10", "detail": "true"})
    assert again.status_code == 200, again.text
    (listed,) = again.json()["contained"]
    assert {e["item"]["identifier"]["value"] for e in listed["entry"]} == {p for p, _, _ in found}
    for pnr in [*world["pnr"].values(), HUGO]:
        assert pnr not in again.text


def test_measure_report_form(client):
    r = client.get("/$skr-wait-times", params={"month": "2026-10"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["resourceType"] == "MeasureReport"
    assert report["measure"] == "https://evi-fhir.org/fhir/Measure/evi-skr-wait-times"
    assert report["period"] == {"start": "2026-10-01", "end": "2026-10-31"}
    groups = {g["code"]["coding"][0]["code"]: g for g in report["group"]}
    assert list(groups) == ["first-assessment", "investigation", "treatment"]
    totals = {p["code"]["text"]: p["count"] for p in groups["first-assessment"]["population"]}
    assert totals == {"total": 4, "excluding-pvv": 3, "within-30-days": 1, "days-31-or-more": 2}
    (unit_view,) = [s for s in groups["first-assessment"]["stratifier"] if s["code"][0]["text"] == "unit-view"]
    keys = {tuple(c["value"]["text"] for c in s["component"]) for s in unit_view["stratum"]}
    assert keys == {(BUP_HSA, "completed"), (BUP_HSA, "waiting")}
    assert "contained" not in report


def test_client_errors(client):
    for params, status in [({}, 400), ({"month": "2026-13"}, 400), ({"month": "2026-1"}, 400),
                           ({"month": "2026-10", "detail": "yes"}, 400), ({"month": "2026-10", "unit": "x"}, 400),
                           ({"month": "2026-10", "_format": "xml"}, 406)]:
        r = client.get("/$skr-wait-times", params=params)
        assert r.status_code == status, (params, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
