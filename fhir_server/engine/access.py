"""Authorization below the API (domain.md §5), on the caller every RequestContext carries.

One place decides, for every path (single interactions, Bundle entries, operations):

- **scopes**: the interaction's letter (c r u d s) on the resource type, else 403;
- **visibility** (the access policy, ``security/policy.py``): a read of what the caller may
  not see is 404 as if it did not exist; searches, includes, ``_total``, history and
  ``$everything`` get the policy as part of their query (``restrict``), so they never
  contain or count the invisible; a write whose result the caller could not see is 403
  and rolls back;
- **protected identity** (``security/redaction.py``): what leaves the engine is redacted
  for callers who may not see a protected Patient's address and phone (``shown``), a
  search by those elements does not find such a Patient for them, and an update from a
  redacted view keeps the stored values (``keep_hidden``).

``ctx.caller`` None (auth off, the server's own work) is unrestricted; writes made by
server rules (``Work.cause``) are the server's, checked only by the rules themselves.
"""

from __future__ import annotations

import dataclasses

import orjson

from fhir_server.engine.work import Work
from fhir_server.errors import Forbidden, NotFound
from fhir_server.model import resource_types
from fhir_server.search.plan import AnyOf, Chain, Clause, Filter, HasClause, SearchPlan, parse_search
from fhir_server.security import Caller
from fhir_server.security.redaction import (
    HIDDEN_PARAMETERS,
    PROTECTED_LABELS,
    SECURITY_LABEL_SYSTEM,
    is_protected,
    may_see_identity,
    redact,
    restore_hidden,
)
from fhir_server.storage.base import ResourceVersion

__all__ = [
    "require_scope", "policy_filter", "restrict", "is_visible", "visible_refs", "shown", "shown_all",
    "shown_resource", "keep_hidden", "readable_refs", "check_write", "check_result_visible", "searchable_types",
]

_VERBS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
#: ids per visibility query (one OR-ed _id clause)
_CHUNK = 100


def _caller(work: Work) -> Caller | None:
    return work.ctx.caller


def require_scope(work: Work, resource_type: str, letter: str) -> None:
    caller = _caller(work)
    if caller is not None and not caller.scopes.allows(resource_type, letter):
        raise Forbidden(
            f"The token's scopes do not allow {_VERBS[letter]} of {resource_type} "
            f"(needs system/{resource_type}.{letter} or broader)"
        )


def policy_filter(work: Work, resource_type: str | None) -> Filter | None:
    """What the caller may see of a type (None for a system search), or None: everything."""
    caller = _caller(work)
    if caller is None:
        return None
    return work.runtime.policy.filter(caller, resource_type, work.registry, work.ctx.purpose)


def searchable_types(work: Work, types: tuple[str, ...]) -> tuple[str, ...]:
    """Of ``types`` (all, when empty), those a system search by this caller may cover."""
    caller = _caller(work)
    if caller is None:
        return types
    role = work.runtime.policy.role(caller.role, work.ctx.purpose)
    candidates = types or resource_types()
    return tuple(t for t in candidates if role.listed(t) and caller.scopes.allows(t, "s"))


def restrict(work: Work, plan: SearchPlan) -> SearchPlan:
    """A client's search as this caller may run it: scopes, the policy, protected identity."""
    caller = _caller(work)
    if caller is None:
        return plan
    if plan.resource_type is not None:
        require_scope(work, plan.resource_type, "s")
    else:
        plan = _system_types(work, plan)
    clauses = tuple(_guard_hidden(work, caller, f, plan.resource_type) for f in plan.clauses)
    if plan.resource_type == "Patient" and any(k.param.code in HIDDEN_PARAMETERS for k in plan.sort):
        clauses = (*clauses, _identity_visible(work, caller))
    visible = policy_filter(work, plan.resource_type)
    if visible is not None:
        clauses = (*clauses, visible)
    return dataclasses.replace(plan, clauses=clauses)


def _system_types(work: Work, plan: SearchPlan) -> SearchPlan:
    """A system search (``_type``, a compartment, ``$everything``) covers only the types the
    caller may search: the others are left out, as resources it may not see are."""
    allowed = searchable_types(work, plan.types)
    if not allowed:  # nothing it may search: a plan that matches nothing
        return dataclasses.replace(plan, clauses=(*plan.clauses, AnyOf(())))
    if not plan.types and len(allowed) == len(resource_types()):
        return plan
    return dataclasses.replace(plan, types=allowed)


def readable_refs(work: Work, refs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Of ``refs`` (includes), those the caller may read: scope r and the policy; in order."""
    caller = _caller(work)
    if caller is None or not refs:
        return refs
    scoped = [r for r in refs if caller.scopes.allows(r[0], "r")]
    visible = visible_refs(work, scoped)
    return [r for r in scoped if r in visible]


def _identity_visible(work: Work, caller: Caller) -> Filter:
    """A Patient whose hidden elements the caller may see: not protected, or its own."""
    groups = [tuple(_parse(work, "Patient", [("_security:not", f"{SECURITY_LABEL_SYSTEM}|{label}")])[0]
                    for label in sorted(PROTECTED_LABELS))]
    if caller.role == "evi":
        return AnyOf(((),))
    if caller.organization:
        groups.append(_parse(work, "Patient", [("organization", caller.organization)]))
    return AnyOf(tuple(groups))


def _guard_hidden(work: Work, caller: Caller, f: Filter, rtype: str | None) -> Filter:
    """A clause on a protected Patient's hidden elements (directly, in a chain or in
    ``_has``) matches only Patients whose identity the caller may see."""
    if isinstance(f, HasClause):
        return dataclasses.replace(f, inner=_guard_hidden(work, caller, f.inner, f.source_type))
    if not isinstance(f, Clause):
        return f
    if f.chain is not None:
        by_type = tuple((t, _guard_hidden(work, caller, inner, t)) for t, inner in f.chain.by_type)
        return dataclasses.replace(f, chain=Chain(by_type))
    if rtype == "Patient" and f.param.code in HIDDEN_PARAMETERS and caller.role != "evi":
        return AnyOf(((f, _identity_visible(work, caller)),))
    return f


def _parse(work: Work, rtype: str, params: list[tuple[str, str]]) -> tuple[Filter, ...]:
    return parse_search(rtype, params, work.registry).clauses


def is_visible(work: Work, resource_type: str, rid: str) -> bool:
    return (resource_type, rid) in visible_refs(work, [(resource_type, rid)])


def visible_refs(work: Work, refs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``refs`` the caller may see (one query per type and hundred ids)."""
    if _caller(work) is None:
        return set(refs)
    found: set[tuple[str, str]] = set()
    by_type: dict[str, list[str]] = {}
    for t, i in refs:
        by_type.setdefault(t, []).append(i)
    for rtype, ids in by_type.items():
        visible = policy_filter(work, rtype)
        if visible is None:
            found.update((rtype, i) for i in ids)
            continue
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            plan = parse_search(rtype, [("_id", ",".join(chunk))], work.registry)
            plan = dataclasses.replace(plan, clauses=(*plan.clauses, visible), count=len(chunk))
            found.update(work.uow.search(plan, with_total=False, limit=len(chunk), offset=0).refs)
    return found


def shown(work: Work, version: ResourceVersion) -> ResourceVersion:
    """The version as this caller may see it (protected identity redacted)."""
    caller = _caller(work)
    if caller is None or version.deleted or version.resource_type != "Patient" or version.body is None:
        return version
    if b"SecurityLabel" not in version.body:  # cheap: no label, nothing to look at
        return version
    resource = orjson.loads(version.body)
    if not is_protected(resource) or may_see_identity(caller, resource, work.ctx.base_url):
        return version
    return dataclasses.replace(version, body=orjson.dumps(redact(resource)))


def shown_all(work: Work, versions: list[ResourceVersion]) -> list[ResourceVersion]:
    if _caller(work) is None:
        return versions
    return [shown(work, v) for v in versions]


def shown_resource(work: Work, resource: dict | None) -> dict | None:
    caller = _caller(work)
    if caller is None or resource is None or not is_protected(resource):
        return resource
    return resource if may_see_identity(caller, resource, work.ctx.base_url) else redact(resource)


def keep_hidden(work: Work, resource: dict, previous: ResourceVersion | None) -> dict:
    """An update by a caller who saw ``previous`` redacted keeps what it could not see."""
    caller = _caller(work)
    if caller is None or previous is None or previous.deleted or resource.get("resourceType") != "Patient":
        return resource
    stored = orjson.loads(previous.body)
    if not is_protected(stored) or may_see_identity(caller, stored, work.ctx.base_url):
        return resource
    return restore_hidden(resource, stored)


def check_write(work: Work, resource_type: str, previous: ResourceVersion | None, letter: str) -> None:
    """Before a client's write: its scope, and that it may see what it changes."""
    if _caller(work) is None or work.cause is not None:
        return
    require_scope(work, resource_type, letter)
    if previous is not None and not previous.deleted and not is_visible(work, resource_type, previous.id):
        raise NotFound(f"{resource_type}/{previous.id} is not known")


def check_result_visible(work: Work, resource_type: str, rid: str) -> None:
    """After a client's write, in its unit of work: the caller must be able to see the result."""
    if _caller(work) is None or work.cause is not None:
        return
    if not is_visible(work, resource_type, rid):
        raise Forbidden(
            f"{resource_type}/{rid} as written would not be visible to this caller "
            f"({work.ctx.caller.role}); nothing was stored"
        )
