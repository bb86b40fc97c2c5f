"""Conformance: the implementation guide as data, its terminology, the validator and the
CapabilityStatement."""

from fhir_server.conformance import concept_map
from fhir_server.conformance.capability_statement import build_capability_statement
from fhir_server.conformance.ig_terminology import GuideTerminology, guide_terminology
from fhir_server.conformance.ig import ig_directory, ig_resources, ig_search_parameters

__all__ = [
    "build_capability_statement", "GuideTerminology", "guide_terminology", "ig_directory", "ig_resources",
    "ig_search_parameters", "concept_map",
]
