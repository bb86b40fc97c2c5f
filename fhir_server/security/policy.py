"""The access policy as data (domain.md §5): per role, the FHIR search criteria that make
a resource of a type visible, with ``%organization`` for the caller's organisation
(``policies/access.toml``, replaceable with ``EVI_ACCESS_POLICY``).

The policy compiles into search filters (``search.plan.AnyOf``) that the stores run inside
the query itself: a search, its ``_total``, its includes and a history page never fetch
what the caller may not see and then drop it (which would break paging and counts).

    visible(T) =  OR over the role's criteria c of T:  AND of c's clauses
                  (with %organization replaced by the caller's Organization/{id},
                   %client by its client id)

A role with ``all = true`` sees every type but those in ``except``; a type it also lists
under ``types`` is restricted to those criteria instead (every role sees only its own
Subscriptions, the ``evi`` role included).

A role may have a second view for the Bulk Data export (``[role.<name>.export]``, same
keys): what its ``$export`` jobs see (``purpose="export"``) instead of what its searches
see. The ``reporting`` role sees nothing directly and everything it reports on through
this view (always pseudonymised: docs/export.md).
"""

from __future__ import annotations

import threading
import tomllib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

from fhir_server.errors import FhirError
from fhir_server.model import is_resource_type
from fhir_server.search.plan import AnyOf, Filter, TypeIn, parse_search
from fhir_server.search.registry import SearchRegistry
from fhir_server.security.caller import ROLES, Caller
from fhir_server.security.scopes import Scopes

__all__ = [
    "AccessPolicy", "PolicyError", "RolePolicy", "load_policy", "default_policy_path", "ORGANIZATION", "EXPORT", "CLIENT",
]

ORGANIZATION = "%organization"
#: the caller's client id (the Subscriptions it owns carry it as a tag: notify/ownership.py)
CLIENT = "%client"
_ALL = "*"
_ROLE_KEYS = frozenset({"all", "except", "groups", "types", "export"})
#: the purpose of use that selects a role's export view (``RequestContext.purpose``)
EXPORT = "export"
#: what matches nothing (an AnyOf without groups)
NOTHING = AnyOf(())


class PolicyError(FhirError):
    """The policy file is wrong: the server does not start (the message names the place)."""


@dataclass(frozen=True)
class RolePolicy:
    #: every type is visible (but ``excluded``)
    everything: bool = False
    excluded: frozenset[str] = frozenset()
    #: type -> criteria (query strings); ("*",) for every resource of the type
    criteria: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: what the role's ``$export`` jobs see, when it differs from the above
    export: "RolePolicy | None" = None

    def unrestricted(self, resource_type: str) -> bool:
        if self.everything and resource_type not in self.criteria:
            return resource_type not in self.excluded
        return _ALL in self.criteria.get(resource_type, ())

    def listed(self, resource_type: str) -> bool:
        return self.unrestricted(resource_type) or resource_type in self.criteria


class AccessPolicy:
    def __init__(self, roles: dict[str, RolePolicy]):
        self.roles = roles
        self._cache: OrderedDict[tuple, Filter | None] = OrderedDict()
        self._lock = threading.Lock()

    def role(self, name: str, purpose: str | None = None) -> RolePolicy:
        """The role's view; with ``purpose`` ``export``, its export view where it has one."""
        role = self.roles.get(name, RolePolicy())
        if purpose == EXPORT and role.export is not None:
            return role.export
        return role

    def check(self, registry: SearchRegistry) -> None:
        """Every criterion must parse against the server's search parameters (at start-up)."""
        for name, role in self.roles.items():
            views = [(name, role)] + ([(f"{name}.export", role.export)] if role.export is not None else [])
            for where, view in views:
                for rtype, criteria in view.criteria.items():
                    for criterion in criteria:
                        if criterion != _ALL:
                            self._compile(registry, rtype, criterion, _CHECK_CALLER, f"role {where}, {rtype}")

    def filter(
        self, caller: Caller, resource_type: str | None, registry: SearchRegistry, purpose: str | None = None
    ) -> Filter | None:
        """What the caller may see of ``resource_type`` (None: a system-wide search) as a
        filter to AND with the search, or None when nothing is hidden from it; ``purpose``
        ``export``: through the role's export view."""
        key = (caller.role, caller.organization, caller.client_id, resource_type, registry, purpose == EXPORT)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        found = self._filter(caller, self.role(caller.role, purpose), resource_type, registry)
        with self._lock:
            self._cache[key] = found
            if len(self._cache) > 4096:
                self._cache.popitem(last=False)
        return found

    def _filter(self, caller: Caller, role: RolePolicy, resource_type: str | None, registry: SearchRegistry) -> Filter | None:
        if resource_type is not None:
            if role.unrestricted(resource_type):
                return None
            return AnyOf(self._groups(caller, role, resource_type, registry))
        if role.everything and not role.criteria:
            return TypeIn(tuple(sorted(role.excluded)), exclude=True) if role.excluded else None
        groups: list[tuple[Filter, ...]] = []
        if role.everything:  # every type but the excluded and those restricted to criteria
            groups.append((TypeIn(tuple(sorted(role.excluded | set(role.criteria))), exclude=True),))
        open_types = tuple(sorted(t for t in role.criteria if role.unrestricted(t)))
        if open_types:
            groups.append((TypeIn(open_types),))
        for rtype in sorted(role.criteria):
            if not role.unrestricted(rtype):
                groups.extend((TypeIn((rtype,)), *g) for g in self._groups(caller, role, rtype, registry))
        return AnyOf(tuple(groups))

    def _groups(self, caller: Caller, role: RolePolicy, rtype: str, registry) -> tuple[tuple[Filter, ...], ...]:
        groups = []
        for criterion in role.criteria.get(rtype, ()):
            if (ORGANIZATION in criterion and caller.organization is None) or (CLIENT in criterion and not caller.client_id):
                continue  # nothing of "its own" for a caller without an organisation (a client)
            groups.append(self._compile(registry, rtype, criterion, caller, caller.role))
        return tuple(groups)

    @staticmethod
    def _compile(registry, rtype: str, criterion: str, caller: Caller, where: str) -> tuple[Filter, ...]:
        def substituted(value: str) -> str:
            client = _escaped(caller.client_id or "")  # a client id may hold , | $ or \\
            return value.replace(ORGANIZATION, caller.organization or "").replace(CLIENT, client)

        params = [(k, substituted(v)) for k, v in parse_qsl(criterion, keep_blank_values=True)]
        try:
            plan = parse_search(rtype, params, registry)
        except FhirError as exc:
            raise PolicyError(f"Access policy, {where}: criterion {criterion!r} is not a valid search: {exc.message}") from None
        if plan.unknown or not plan.clauses:
            why = "; ".join(f"{n}: {w}" for n, w in plan.unknown) or "no criteria"
            raise PolicyError(f"Access policy, {where}: criterion {criterion!r} cannot be used ({why})")
        return plan.clauses


def _escaped(value: str) -> str:
    """A search value's separators escaped (R4 search.html#escaping)."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


#: the caller every criterion is compiled for when the policy is checked at start-up
_CHECK_CALLER = Caller("admin", Scopes(), client_id="client", organization="Organization/x")


def default_policy_path() -> Path | None:
    """``policies/access.toml`` of a checkout, or the installed copy (``fhir_server.policies``)."""
    from importlib.util import find_spec

    checkout = Path(__file__).resolve().parents[2] / "policies" / "access.toml"
    if checkout.is_file():
        return checkout
    spec = find_spec("fhir_server.policies")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "access.toml"
            if candidate.is_file():
                return candidate
    return None


def load_policy(path: str | Path | None = None) -> AccessPolicy:
    """The policy of ``path`` (default: the shipped one); PolicyError names what is wrong."""
    where = Path(path) if path else default_policy_path()
    if where is None or not where.is_file():
        raise PolicyError(f"Access policy file not found: {where or 'policies/access.toml'}")
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"Access policy {where}: {exc}") from None
    return parse_policy(data, str(where))


def parse_policy(data: dict, where: str = "policy") -> AccessPolicy:
    unknown = set(data) - {"groups", "role"}
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (expected [groups] and [role.<name>])")
    groups = _groups_of(data.get("groups", {}), where)
    roles = {}
    for name, body in (data.get("role") or {}).items():
        if name not in ROLES:
            raise PolicyError(f"{where}: unknown role {name!r} (roles: {', '.join(ROLES)})")
        roles[name] = _role(name, body or {}, groups, where)
    return AccessPolicy(roles)


def _groups_of(raw: object, where: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: [groups] must be a table of type lists")
    out = {}
    for name, types in raw.items():
        out[name] = _types(types, f"{where}: groups.{name}")
    return out


def _types(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise PolicyError(f"{where} must be a list of resource types")
    bad = [t for t in value if not is_resource_type(t)]
    if bad:
        raise PolicyError(f"{where}: unknown resource type(s) {', '.join(bad)}")
    return tuple(value)


def _role(name: str, body: dict, groups: dict, where: str, *, view: bool = False) -> RolePolicy:
    here = f"{where}: role.{name}"
    unknown = set(body) - (_ROLE_KEYS - {"export"} if view else _ROLE_KEYS)
    if unknown:
        raise PolicyError(f"{here}: unknown key(s) {', '.join(sorted(unknown))} (allowed: {', '.join(sorted(_ROLE_KEYS))})")
    everything = body.get("all", False)
    if not isinstance(everything, bool):
        raise PolicyError(f"{here}.all must be true or false")
    criteria: dict[str, tuple[str, ...]] = {}
    for group in body.get("groups", []):
        if group not in groups:
            raise PolicyError(f"{here}.groups: unknown group {group!r}")
        for rtype in groups[group]:
            criteria[rtype] = (_ALL,)
    types = body.get("types", {})
    if not isinstance(types, dict):
        raise PolicyError(f"{here}.types must be a table: resource type = [criteria]")
    for rtype, items in types.items():
        if not is_resource_type(rtype):
            raise PolicyError(f"{here}.types: unknown resource type {rtype!r}")
        if not isinstance(items, list) or not items or not all(isinstance(c, str) and c for c in items):
            raise PolicyError(f"{here}.types.{rtype} must be a non-empty list of search criteria (or [\"*\"])")
        criteria[rtype] = (_ALL,) if _ALL in items else tuple(items)
    excluded = frozenset(_types(body.get("except", []), f"{here}.except"))
    if excluded and not everything:
        raise PolicyError(f"{here}.except only applies with all = true")
    if everything and (both := sorted(excluded & set(criteria))):
        raise PolicyError(f"{here}: {', '.join(both)} both excepted and given criteria")
    export = None
    if "export" in body:
        if not isinstance(body["export"], dict):
            raise PolicyError(f"{here}.export must be a table (the keys of a role)")
        export = _role(f"{name}.export", body["export"], groups, where, view=True)
    return RolePolicy(everything, excluded, criteria, export)

