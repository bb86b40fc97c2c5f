"""Conformance: the CapabilityStatement (later: profiles, validator, terminology)."""

from fhir_server.conformance.capability_statement import build_capability_statement
from fhir_server.conformance.ig import ig_directory, ig_resources, ig_search_parameters

__all__ = ["build_capability_statement", "ig_directory", "ig_resources", "ig_search_parameters"]
