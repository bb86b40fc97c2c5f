"""Parse + validate resources (fhir.resources R4B), required bindings, ids and meta."""

from fhir_server.model.identifiers import ACCEPTED_SYSTEMS, emitted_system, identifier_problem, luhn_ok
from fhir_server.model.meta import format_instant, is_valid_id, new_id, now_instant, stamp_meta
from fhir_server.model.parse import (
    MAX_JSON_DEPTH,
    MAX_RESOURCE_DEPTH,
    check_json_depth,
    parse_json,
    parse_resource,
    validate_resource,
)
from fhir_server.model.patch import MergePatch, apply_json_patch
from fhir_server.model.primitives import InvariantSites, Site
from fhir_server.model.resource_types import is_resource_type, resource_types
from fhir_server.model.summary import SUBSETTED, select_elements, summarize, summarize_deep

__all__ = [
    "ACCEPTED_SYSTEMS",
    "emitted_system",
    "identifier_problem",
    "luhn_ok",
    "InvariantSites",
    "MAX_JSON_DEPTH",
    "MAX_RESOURCE_DEPTH",
    "MergePatch",
    "SUBSETTED",
    "Site",
    "apply_json_patch",
    "check_json_depth",
    "format_instant",
    "now_instant",
    "is_resource_type",
    "is_valid_id",
    "new_id",
    "parse_json",
    "parse_resource",
    "resource_types",
    "select_elements",
    "stamp_meta",
    "summarize",
    "summarize_deep",
    "validate_resource",
]
