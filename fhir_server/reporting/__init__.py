"""Reporting and national extraction (domain.md §8): measures, SKR wait times,
pseudonyms, bulk export.

Entry points (plain functions over a Runtime and a RequestContext; they check the
caller's role and the pseudonym key, and raise FhirErrors for clients):

  evaluate_measure(runtime, ctx, measure_id, period_start=, period_end=, report_type=, key=)
      -> MeasureReport (dict)
  measure_series(runtime, ctx, measure_id, [(start, end), ...], key=)
      -> a summary MeasureReport per period, one pass over their range (the dashboard's charts)
  skr_wait_times(runtime, ctx, "YYYY-MM", key=, detail=) -> SkrReport
      skr_measure_report(report) -> MeasureReport (dict);  skr_csv(report) -> str
"""

from fhir_server.reporting.access import REPORTING_ROLES, check_reporting, reporting_pseudonymizer
from fhir_server.reporting.evaluate import evaluate_measure, measure_report
from fhir_server.reporting.measures import MEASURES
from fhir_server.reporting.bulk_export import BulkExport, ExportOptions, ExportStatus, PseudonymsUnavailable, job_owner
from fhir_server.reporting.export_files import ERROR_FILE, is_file_name
from fhir_server.reporting.export_request import (
    OUTPUT_FORMATS,
    ExportRequest,
    TypeFilter,
    parameters_to_pairs,
    parse_export_request,
)
from fhir_server.reporting.export_run import RunState
from fhir_server.reporting.export_setup import export_directory, export_options, export_to_directory
from fhir_server.reporting.export_worker import ExportWorker
from fhir_server.reporting.pseudonymize import PSEUDONYM_SYSTEM, Pseudonymization
from fhir_server.reporting.pseudonyms import MIN_KEY_BYTES, PseudonymKeyError, Pseudonymizer
from fhir_server.reporting.series import measure_series
from fhir_server.reporting.skr import SkrReport, skr_wait_times
from fhir_server.reporting.skr_output import skr_csv, skr_measure_report

__all__ = [
    "BulkExport",
    "ERROR_FILE",
    "ExportOptions",
    "ExportRequest",
    "ExportStatus",
    "ExportWorker",
    "MEASURES",
    "MIN_KEY_BYTES",
    "OUTPUT_FORMATS",
    "PSEUDONYM_SYSTEM",
    "PseudonymKeyError",
    "Pseudonymization",
    "Pseudonymizer",
    "PseudonymsUnavailable",
    "REPORTING_ROLES",
    "RunState",
    "SkrReport",
    "TypeFilter",
    "check_reporting",
    "evaluate_measure",
    "export_directory",
    "export_options",
    "export_to_directory",
    "is_file_name",
    "job_owner",
    "measure_report",
    "measure_series",
    "parameters_to_pairs",
    "parse_export_request",
    "reporting_pseudonymizer",
    "skr_csv",
    "skr_measure_report",
    "skr_wait_times",
]
