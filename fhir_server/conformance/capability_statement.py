"""The CapabilityStatement, generated from what is registered: routes, resource types,
search parameters. Nothing here is written by hand per type, so it cannot drift."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Mapping

from fhir_server.model import resource_types
from fhir_server.search.registry import SearchRegistry

__all__ = ["build_capability_statement"]


_OPERATION_DEFINITIONS = {"everything": "Patient-everything", "reindex": "Resource-reindex", "validate": "Resource-validate"}
#: operations only some types have (the rest apply to every type); R4 names their
#: OperationDefinitions [type]-[name]. $everything: the types with a compartment of their own
_TYPE_SPECIFIC = {
    "everything": frozenset({"Patient"}),
    "export": frozenset({"Patient", "Group"}),
    "expand": frozenset({"ValueSet"}),
    "lookup": frozenset({"CodeSystem"}),
    "validate-code": frozenset({"ValueSet", "CodeSystem"}),
    "translate": frozenset({"ConceptMap"}),
    "evaluate-measure": frozenset({"Measure"}),
}
#: the product's own operations (profiles/OperationDefinition-*.json): name -> (canonical, types)
#: rest.security with auth on (SMART App Launch 2.x, conformance.html#using-cs)
_SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"
_OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
_BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport/"
_PRODUCT_OPERATIONS = {
    "triage": ("https://evi-fhir.org/fhir/OperationDefinition/triage", frozenset({"Task"})),
    "triage-queue": ("https://evi-fhir.org/fhir/OperationDefinition/triage-queue", frozenset({"Task"})),
    "access-log": ("https://evi-fhir.org/fhir/OperationDefinition/access-log", frozenset({"Patient"})),
    "skr-wait-times": ("https://evi-fhir.org/fhir/OperationDefinition/skr-wait-times", frozenset()),
    # the Subscriptions R5 Backport IG 1.1.0's operations (domain.md §7)
    "status": (_BACKPORT + "OperationDefinition/backport-subscription-status", frozenset({"Subscription"})),
    "events": (_BACKPORT + "OperationDefinition/backport-subscription-events", frozenset({"Subscription"})),
}
#: the topics a server lists on its Subscription resource (backport IG, CapabilityStatement)
_TOPIC_CANONICAL = _BACKPORT + "StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
_BACKPORT_SUBSCRIPTION = _BACKPORT + "StructureDefinition/backport-subscription"


#: the Bulk Data Access IG's OperationDefinitions, per level (system, Patient, Group)
_BULK_DATA = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
_BULK_DATA_DEFINITIONS = {"system": "export", "Patient": "patient-export", "Group": "group-export"}


def _applies(name: str, rtype: str) -> bool:
    if name in _PRODUCT_OPERATIONS:
        return rtype in _PRODUCT_OPERATIONS[name][1]
    return name not in _TYPE_SPECIFIC or rtype in _TYPE_SPECIFIC[name]


def _definition(name: str, rtype: str) -> str:
    if name == "export":
        return _BULK_DATA + _BULK_DATA_DEFINITIONS.get(rtype, "export")
    if name in _PRODUCT_OPERATIONS:
        return _PRODUCT_OPERATIONS[name][0]
    core = f"{rtype}-{name}" if name in _TYPE_SPECIFIC else _OPERATION_DEFINITIONS.get(name, name)
    return f"http://hl7.org/fhir/OperationDefinition/{core}"


def _rev_includes(registry: SearchRegistry) -> dict[str, set[str]]:
    """Per target type, ``Source:param`` for every reference parameter that can point at it."""
    out: dict[str, set[str]] = {t: set() for t in resource_types()}
    for source in resource_types():
        for d in registry.supported_for(source):
            if d.type != "reference":
                continue
            for target in d.target or resource_types():
                out.setdefault(target, set()).add(f"{source}:{d.code}")
    return out


def _software_version() -> str:
    try:
        return version("evi-fhir")
    except PackageNotFoundError:
        return "0.0.0"


def build_capability_statement(
    base_url: str,
    registry: SearchRegistry,
    type_interactions: list[str],
    system_interactions: list[str],
    operations: list[tuple[str, str]],
    *,
    date: str,
    supported_profiles: Mapping[str, list[str]] | None = None,
    token_path: str | None = None,
    subscription_topics: tuple[str, ...] = (),
) -> dict:
    """``supported_profiles``: resource type -> the implementation guide's profile urls for it;
    ``token_path``: with authentication on, where the token endpoint is under the base
    (``rest.security`` then names SMART-on-FHIR and the token endpoint);
    ``subscription_topics``: the canonical URLs of the notification topics (domain.md §7)."""
    resources = []
    rev_includes = _rev_includes(registry)
    type_operations = list(dict.fromkeys(name for name, level in operations if level in ("type", "instance")))
    for rtype in resource_types():
        supported = registry.supported_for(rtype)
        params = [{"name": d.code, "definition": d.url, "type": d.type} for d in supported]
        references = sorted(d.code for d in supported if d.type == "reference")
        entry = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": [{"code": code} for code in type_interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "not-match",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical"],
        }
        if references:
            entry["searchInclude"] = ["*", *(f"{rtype}:{code}" for code in references)]
        entry["searchRevInclude"] = sorted(rev_includes.get(rtype, ()))
        if params:
            entry["searchParam"] = params
        if (supported_profiles or {}).get(rtype):
            entry["supportedProfile"] = list(supported_profiles[rtype])
        if rtype == "Subscription" and subscription_topics:
            entry["extension"] = [{"url": _TOPIC_CANONICAL, "valueCanonical": url} for url in subscription_topics]
            entry["supportedProfile"] = [*entry.get("supportedProfile", ()), _BACKPORT_SUBSCRIPTION]
        ops = [
            {"name": name, "definition": _definition(name, rtype)}
            for name in type_operations if _applies(name, rtype)
        ]
        if ops:
            entry["operation"] = ops
        resources.append(_access_log(entry) if rtype == "AuditEvent" else entry)
    rest = {"mode": "server"}
    if token_path:
        rest["security"] = _security(base_url, token_path)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "evi-fhir",
        "kind": "instance",
        #: the Bulk Data Access IG's server CapabilityStatement ($export at three levels)
        "instantiates": [_BULK_DATA.replace("OperationDefinition/", "CapabilityStatement/bulk-data")],
        "software": {"name": "evi-fhir", "version": _software_version()},
        "implementation": {"description": "evi-fhir: FHIR R4 server for En väg in", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                **rest,
                "resource": resources,
                "interaction": [{"code": code} for code in dict.fromkeys(system_interactions)],
                "searchParam": [
                    {"name": d.code, "definition": d.url, "type": d.type}
                    for d in registry.supported_for("Resource")
                ],
                "operation": [
                    {"name": name, "definition": _PRODUCT_OPERATIONS[name][0] if name in _PRODUCT_OPERATIONS
                     else _definition(name, "system") if name == "export"
                     else f"http://hl7.org/fhir/OperationDefinition/{_OPERATION_DEFINITIONS.get(name, name)}"}
                    for name, level in operations if level == "system"
                ],
            }
        ],
    }


def _security(base_url: str, token_path: str) -> dict:
    return {
        "extension": [{"url": _OAUTH_URIS, "extension": [{"url": "token", "valueUri": base_url + token_path}]}],
        "service": [{"coding": [{"system": _SECURITY_SERVICE, "code": "SMART-on-FHIR"}], "text": "SMART-on-FHIR"}],
        "description": "Bearer tokens: SMART Backend Services (client credentials with a signed JWT assertion; "
                       f"{base_url}/.well-known/smart-configuration), or the region's identity provider's",
    }


#: the access log's AuditEvents (domain.md §6, docs/audit.md): written by the server only
_AUDIT_INTERACTIONS = ("read", "vread", "search-type")
_AUDIT_PARAMS = ("patient", "date")


def _access_log(entry: dict) -> dict:
    """AuditEvent as the server offers it: read and searched (patient, date) from the audit
    store, never written by a client (405)."""
    found = {k: v for k, v in entry.items() if not k.startswith(("conditional", "search", "updateCreate"))}
    found["interaction"] = [{"code": code} for code in _AUDIT_INTERACTIONS]
    found["versioning"] = "no-version"
    found["readHistory"] = False
    found["searchParam"] = [p for p in entry.get("searchParam", ()) if p["name"] in _AUDIT_PARAMS]
    found["documentation"] = ("The PDL access log: written by the server only (create, update, patch and delete "
                              "are refused with 405); read and searched by the admin role")
    return found
