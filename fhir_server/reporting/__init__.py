"""Reporting and national extraction (domain.md §8): measures, SKR wait times,
pseudonyms, bulk export."""

from fhir_server.reporting.pseudonyms import MIN_KEY_BYTES, PseudonymKeyError, Pseudonymizer

__all__ = ["MIN_KEY_BYTES", "PseudonymKeyError", "Pseudonymizer"]
