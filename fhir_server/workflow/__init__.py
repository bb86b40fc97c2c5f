"""EVI's rules (domain.md §3) as hooks on the write pipeline, plus the operations they
offer. ``install_workflow`` registers everything for one runtime and region."""

from __future__ import annotations

from fhir_server.engine import Runtime
from fhir_server.workflow.care_transfer import install_care_transfer
from fhir_server.workflow.intake import install_intake, intake_task_for
from fhir_server.workflow.queue import triage_queue
from fhir_server.workflow.receipt import EXT_RECEIVED, install_receipt, receipt_time
from fhir_server.workflow.sip import install_sip
from fhir_server.workflow.triage import triage
from fhir_server.workflow.region import Region, RegionError, RelayRule, RequiredProfileRule, load_region, resolve_unit
from fhir_server.workflow.task_states import (
    TRANSITIONS,
    ServerTransition,
    allow_server_transition,
    install_task_state_machine,
    is_allowed,
)

__all__ = [
    "EXT_RECEIVED",
    "Region",
    "RegionError",
    "RelayRule",
    "RequiredProfileRule",
    "ServerTransition",
    "TRANSITIONS",
    "allow_server_transition",
    "install_workflow",
    "intake_task_for",
    "is_allowed",
    "load_region",
    "receipt_time",
    "resolve_unit",
    "triage",
    "triage_queue",
]


def install_workflow(runtime: Runtime, region: Region) -> None:
    runtime.services["region"] = region  # for the workflow's operations
    install_task_state_machine(runtime)
    install_receipt(runtime, region)
    install_intake(runtime, region)
    install_sip(runtime)
    install_care_transfer(runtime, region)
