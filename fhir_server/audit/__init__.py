"""The PDL access log (domain.md §6): what a request did to patient data (``AuditTrail``),
BALP AuditEvents (built from compact records), their SHA-256 chain, the writer, the patient's extract,
verifying the chain and purging past the retention period. docs/audit.md."""

from fhir_server.audit.balp import PROFILE, QUERY_INTERACTIONS, RequestFacts, ServerIdentity, audit_event
from fhir_server.audit.chain import CHAIN_URL, canonical, chain_value, check, seal
from fhir_server.audit.commands import purge_command, verify_command
from fhir_server.audit.extract import CSV_HEADER, extract_bundle, extract_csv, extract_line
from fhir_server.audit.patients import (
    by_patient,
    compartment_params,
    is_patient_data,
    patient_data_types,
    patients_in_index,
    patients_of,
)
from fhir_server.audit.retention import RetentionRefused, purge, retention_cutoff
from fhir_server.audit.search import AuditSearch, next_cursor, parse_audit_search, parse_extract_period
from fhir_server.audit.trail import ACTIONS, Access, AuditTrail, action_of, outcome_of
from fhir_server.audit.verify import ChainReport, verify_chain
from fhir_server.audit.record import RECORD_FORMAT, entries_of, event_body, seal_record
from fhir_server.audit.writer import AuditUnavailable, AuditWriter

__all__ = [
    "ACTIONS",
    "Access",
    "AuditSearch",
    "AuditTrail",
    "AuditUnavailable",
    "AuditWriter",
    "CHAIN_URL",
    "CSV_HEADER",
    "ChainReport",
    "PROFILE",
    "QUERY_INTERACTIONS",
    "RECORD_FORMAT",
    "RequestFacts",
    "RetentionRefused",
    "ServerIdentity",
    "action_of",
    "audit_event",
    "by_patient",
    "canonical",
    "chain_value",
    "check",
    "compartment_params",
    "entries_of",
    "event_body",
    "extract_bundle",
    "extract_csv",
    "extract_line",
    "is_patient_data",
    "next_cursor",
    "outcome_of",
    "parse_audit_search",
    "parse_extract_period",
    "patient_data_types",
    "patients_in_index",
    "patients_of",
    "purge",
    "purge_command",
    "retention_cutoff",
    "seal",
    "seal_record",
    "verify_chain",
    "verify_command",
]
