"""Conditional interactions find their target by search (R4 http.html#cond-update).

Unlike a plain search, an unknown parameter is an error here: ignoring it would
widen the match, and a conditional delete would then delete too much.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from fhir_server.engine.access_log import refuse_audit_write
from fhir_server.engine.valueset import expand_value_sets
from fhir_server.engine.work import Work
from fhir_server.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from fhir_server.model import is_valid_id, new_id
from fhir_server.search.plan import parse_search

__all__ = ["Target", "find_matches", "parse_query", "resolve_target"]


def parse_query(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query.lstrip("?"), keep_blank_values=True)


def find_matches(work: Work, resource_type: str, params: list[tuple[str, str]], *, limit: int = 2) -> list[str]:
    """Ids of up to ``limit`` current resources matching the criteria."""
    runtime = work.runtime
    plan = parse_search(
        resource_type, params, work.registry, base_url=work.ctx.base_url, limits=runtime.search_limits
    )
    if plan.unknown:
        names = ", ".join(name for name, _ in plan.unknown)
        raise BadRequest(f"Conditional criteria use unknown or unsupported parameters: {names}")
    if not plan.clauses:
        raise BadRequest(f"A conditional {resource_type} interaction needs search criteria")
    plan = expand_value_sets(work, replace(plan, count=limit, offset=0, sort=()))  # :in / :not-in
    return work.uow.search(plan, with_total=False).ids


@dataclass(frozen=True)
class Target:
    """Where a write lands, decided before it runs.

    ``action``: ``create`` (a new resource under ``id``, assigned by the server),
    ``update`` (``id``: an update, or update-as-create), ``patch``, ``delete``,
    ``existing`` (a conditional create matched ``id``: nothing is written, 200) or
    ``none`` (a conditional delete matched nothing: nothing to do, 204)."""

    action: str
    id: str | None
    #: found by search criteria (not named by the request)
    conditional: bool = False


_ACTIONS = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _one(work: Work, resource_type: str, query: str, what: str) -> str | None:
    matches = find_matches(work, resource_type, parse_query(query))
    if len(matches) > 1:
        raise PreconditionFailed(f"{what} criteria '{query}' match more than one {resource_type}")
    return matches[0] if matches else None


def resolve_target(
    work: Work,
    method: str,
    resource_type: str,
    *,
    id: str | None = None,
    query: str | None = None,
    body_id: object = None,
    if_none_exist: str | None = None,
) -> Target:
    """The one resolver of write targets, for single interactions and Bundle entries alike.

    POST: ``if_none_exist`` matching one resource is ``existing`` (R4 http.html#ccreate),
    several 412. PUT/PATCH/DELETE to an ``id`` target it; with a ``query`` instead (R4
    http.html#cond-update): several matches 412; one: that resource (PUT: a body id naming
    another is 400); none: PUT creates - under the body's id if it has one, but never over
    an existing resource the criteria did not match (409: R5 makes explicit what R4
    implies); PATCH 404; DELETE nothing to do.
    """
    refuse_audit_write(resource_type)  # before any criteria are searched
    if method == "POST":
        found = _one(work, resource_type, if_none_exist, "If-None-Exist") if if_none_exist else None
        return Target("existing", found, True) if found else Target("create", new_id())
    action = _ACTIONS[method]
    if id is not None:
        return Target(action, id)
    found = _one(work, resource_type, query or "", f"Conditional {action}")
    if method == "PUT":
        return _put_target(work, resource_type, query or "", found, body_id)
    if found is not None:
        return Target(action, found, True)
    if method == "PATCH":
        raise NotFound(f"No {resource_type} matches the conditional patch criteria '{query}'")
    return Target("none", None, True)


def _put_target(work: Work, resource_type: str, query: str, found: str | None, body_id: object) -> Target:
    if body_id is not None and not (isinstance(body_id, str) and is_valid_id(body_id)):
        raise BadRequest(f"Invalid id {body_id!r}: 1-64 characters of A-Z a-z 0-9 - .", expression=f"{resource_type}.id")
    if found is not None:
        if body_id is not None and body_id != found:
            raise BadRequest(
                f"The resource id '{body_id}' differs from the matching {resource_type}/{found}",
                expression=f"{resource_type}.id",
            )
        return Target("update", found, True)
    if body_id is None:
        return Target("create", new_id(), True)
    existing = work.uow.current(resource_type, body_id)
    if existing is not None and not existing.deleted:
        raise Conflict(
            f"{resource_type}/{body_id} exists but does not match '{query}'; a conditional update never "
            "overwrites a resource its criteria do not match",
            expression=f"{resource_type}.id",
        )
    return Target("update", body_id, True)
