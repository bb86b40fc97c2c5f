"""SKR intervals, views, deviations and bands on referrals built by hand (reporting/skr.py)."""

from datetime import date
from zoneinfo import ZoneInfo

from fhir_server.reporting.period import month_period
from fhir_server.reporting.pseudonyms import Pseudonymizer
from fhir_server.reporting.skr import Deviation, SkrReport, _Referral, wait_cases

MONTH = month_period("2026-05", ZoneInfo("Europe/Stockholm"))
P = Pseudonymizer("p" * 32)


def _cases(**referrals):
    return {(c.referral, c.interval): c for c in wait_cases(referrals, MONTH, P)}


def test_first_assessment_completed_and_waiting_with_bands():
    cases = _cases(
        a=_Referral(date(2026, 4, 1), {"first-assessment": date(2026, 5, 1)}, "U1", "p1"),   # 30 days
        b=_Referral(date(2026, 4, 1), {"first-assessment": date(2026, 5, 2)}, "U1", "p2"),   # 31 days
        c=_Referral(date(2026, 3, 1), {"first-assessment": date(2026, 4, 30)}, "U1", "p3"),  # ended before May
        d=_Referral(date(2026, 5, 20), {}, "U1", "p4"),                                      # waiting 11 days
        e=_Referral(date(2026, 6, 1), {}, "U1", "p5"),                                       # arrives after May
    )
    assert {k: (c.view, c.days) for k, c in cases.items()} == {
        ("a", "first-assessment"): ("completed", 30), ("b", "first-assessment"): ("completed", 31),
        ("d", "first-assessment"): ("waiting", 11)}
    report = SkrReport("2026-05", MONTH, list(cases.values()))
    assert report.counts() == {
        ("U1", "first-assessment", "completed"): {"total": 2, "excluding-pvv": 2, "within-30-days": 1, "days-31-or-more": 1},
        ("U1", "first-assessment", "waiting"): {"total": 1, "excluding-pvv": 1, "within-30-days": 1, "days-31-or-more": 0}}
    assert cases[("a", "first-assessment")].pseudonym == P.pseudonym("p1")


def test_investigation_and_treatment_starts():
    m = {"first-assessment": date(2026, 4, 10), "investigation-decision": date(2026, 4, 10),
         "investigation-start": date(2026, 5, 5), "treatment-decision": date(2026, 5, 20)}
    cases = _cases(r=_Referral(date(2026, 4, 1), m, "U1", "p"))
    assert (cases[("r", "investigation")].start, cases[("r", "investigation")].days) == (date(2026, 4, 10), 25)
    assert cases[("r", "investigation")].view == "completed"
    treatment = cases[("r", "treatment")]
    assert (treatment.view, treatment.start, treatment.end, treatment.days) == ("waiting", date(2026, 5, 5), None, 26)
    # without an investigation, treatment waits from the first assessment
    only = _cases(r=_Referral(date(2026, 4, 1), {"first-assessment": date(2026, 4, 10),
                                                 "treatment-start": date(2026, 5, 12)}, "U1", "p"))
    assert (only[("r", "treatment")].start, only[("r", "treatment")].days) == (date(2026, 4, 10), 32)


def test_deviations_shorten_their_interval_only_where_they_overlap():
    devs = [Deviation("MoV", "first-assessment", date(2026, 3, 25), date(2026, 4, 5)),   # 4 days inside
            Deviation("SoV", "first-assessment", date(2026, 5, 10), None),               # open: to the end
            Deviation("MoV", "treatment", date(2026, 4, 1), date(2026, 4, 30))]          # another interval
    cases = _cases(r=_Referral(date(2026, 4, 1), {"first-assessment": date(2026, 5, 20)}, "U1", "p", devs))
    case = cases[("r", "first-assessment")]
    assert (case.days, case.deviation_days, case.deviations) == (49 - 4 - 10, 14, ("MoV", "SoV"))


def test_pvv_counts_in_the_total_only():
    devs = [Deviation("PvV", "first-assessment", date(2026, 4, 2), date(2026, 4, 3))]
    cases = _cases(r=_Referral(date(2026, 4, 1), {"first-assessment": date(2026, 5, 3)}, "U1", "p", devs))
    report = SkrReport("2026-05", MONTH, list(cases.values()))
    assert report.counts() == {("U1", "first-assessment", "completed"): {
        "total": 1, "excluding-pvv": 0, "within-30-days": 0, "days-31-or-more": 0}}
    assert cases[("r", "first-assessment")].days == 31


def test_overlapping_deviations_take_each_day_once():
    devs = [Deviation("MoV", "first-assessment", date(2026, 4, 5), date(2026, 4, 15)),
            Deviation("SoV", "first-assessment", date(2026, 4, 10), date(2026, 4, 20)),
            Deviation("MoV", "first-assessment", date(2026, 4, 12), date(2026, 4, 14))]
    cases = _cases(r=_Referral(date(2026, 4, 1), {"first-assessment": date(2026, 5, 11)}, "U1", "p", devs))
    assert (cases[("r", "first-assessment")].deviation_days, cases[("r", "first-assessment")].days) == (15, 25)
