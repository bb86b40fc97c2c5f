"""Reporting and national extraction (domain.md §8): measures, SKR wait times,
pseudonyms, bulk export.

Entry points (plain functions over a Runtime and a RequestContext; they check the
caller's role and the pseudonym key, and raise FhirErrors for clients):

  evaluate_measure(runtime, ctx, measure_id, period_start=, period_end=, report_type=, key=)
      -> MeasureReport (dict)
  skr_wait_times(runtime, ctx, "YYYY-MM", key=, detail=) -> SkrReport
      skr_measure_report(report) -> MeasureReport (dict);  skr_csv(report) -> str
"""

from fhir_server.reporting.access import REPORTING_ROLES, check_reporting, reporting_pseudonymizer
from fhir_server.reporting.evaluate import evaluate_measure, measure_report
from fhir_server.reporting.measures import MEASURES
from fhir_server.reporting.pseudonyms import MIN_KEY_BYTES, PseudonymKeyError, Pseudonymizer
from fhir_server.reporting.skr import SkrReport, skr_wait_times
from fhir_server.reporting.skr_output import skr_csv, skr_measure_report

__all__ = [
    "MEASURES",
    "MIN_KEY_BYTES",
    "PseudonymKeyError",
    "Pseudonymizer",
    "REPORTING_ROLES",
    "SkrReport",
    "check_reporting",
    "evaluate_measure",
    "measure_report",
    "reporting_pseudonymizer",
    "skr_csv",
    "skr_measure_report",
    "skr_wait_times",
]
