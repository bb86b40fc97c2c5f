"""Reporting and national extraction (domain.md §8): measures, SKR wait times,
pseudonyms, bulk export."""

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

__all__ = [
    "BulkExport",
    "ERROR_FILE",
    "ExportOptions",
    "ExportRequest",
    "ExportStatus",
    "ExportWorker",
    "MIN_KEY_BYTES",
    "OUTPUT_FORMATS",
    "PSEUDONYM_SYSTEM",
    "PseudonymKeyError",
    "Pseudonymization",
    "Pseudonymizer",
    "PseudonymsUnavailable",
    "RunState",
    "TypeFilter",
    "export_directory",
    "export_options",
    "export_to_directory",
    "is_file_name",
    "job_owner",
    "parameters_to_pairs",
    "parse_export_request",
]
