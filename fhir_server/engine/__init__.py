"""Every interaction as a plain function over a Work (runtime + RequestContext + unit of work)."""

from fhir_server.engine.access_log import AuditEventPage, access_log, read_event, refuse_audit_write, search_events
from fhir_server.engine.audit import record_listed
from fhir_server.engine.bundles import (
    etag,
    full_url,
    history_bundle,
    http_date,
    outcome_resource,
    searchset_bundle,
    status_text,
    version_response,
    write_outcome,
)
from fhir_server.engine.changes import SideEffect
from fhir_server.engine.conditional import Target, find_matches, parse_query, resolve_target
from fhir_server.engine.deferred import DeferredRule
from fhir_server.engine.disclosures import DisclosureRecorder, ExportAccessRecorder
from fhir_server.engine.exemptions import Exemption
from fhir_server.engine.context import Budget, RequestContext
from fhir_server.engine.history import HistoryRequest, history, parse_history_params
from fhir_server.engine.hooks import HookPoint, Hooks, WriteEvent
from fhir_server.engine.instance import delete, patch, read, update, vread
from fhir_server.engine.reindex import install_search_parameter_hook, load_stored_search_parameters, reindex
from fhir_server.engine.search import (
    PAGING_PARAMS,
    SearchOrigin,
    SearchPage,
    compartment_clause,
    page,
    plan_everything,
    plan_origin,
    plan_search,
    search,
)
from fhir_server.engine.transaction import process_bundle
from fhir_server.engine.type_level import conditional_delete, conditional_patch, conditional_update, create
from fhir_server.engine.work import Runtime, Work, run_follow_ups
from fhir_server.engine.write import WriteOutcome
from fhir_server.storage.base import ResourceVersion, WouldBlock

__all__ = [
    "AuditEventPage",
    "Budget",
    "DisclosureRecorder",
    "ExportAccessRecorder",
    "HistoryRequest",
    "PAGING_PARAMS",
    "HookPoint",
    "Hooks",
    "RequestContext",
    "DeferredRule",
    "Exemption",
    "ResourceVersion",
    "Runtime",
    "SearchOrigin",
    "SearchPage",
    "SideEffect",
    "Target",
    "Work",
    "WriteEvent",
    "WouldBlock",
    "WriteOutcome",
    "access_log",
    "compartment_clause",
    "conditional_delete",
    "conditional_patch",
    "conditional_update",
    "create",
    "delete",
    "etag",
    "find_matches",
    "full_url",
    "history",
    "history_bundle",
    "install_search_parameter_hook",
    "load_stored_search_parameters",
    "http_date",
    "outcome_resource",
    "parse_history_params",
    "parse_query",
    "page",
    "patch",
    "plan_everything",
    "plan_origin",
    "plan_search",
    "process_bundle",
    "read",
    "read_event",
    "record_listed",
    "refuse_audit_write",
    "reindex",
    "resolve_target",
    "run_follow_ups",
    "search",
    "search_events",
    "searchset_bundle",
    "status_text",
    "update",
    "version_response",
    "vread",
    "write_outcome",
]
