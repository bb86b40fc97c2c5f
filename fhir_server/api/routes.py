"""Routes per interaction level. Each route names its FHIR interaction or operation,
and those lists are what the CapabilityStatement is generated from.

Routes are plain Starlette routes: FastAPI's APIRoute (dependency solving, two
passes of matching) cost a third of the server time of a create (measured with
benchmarks/rest_core.py).

The event loop reads the body (bounded); the request then runs in a worker thread
(``api.workers``), so a long search, a large transaction or ``$reindex`` costs its own
client time, not everyone's. Small interactions on one resource by id (read, vread,
create, update, patch, delete with a body under ``INLINE_BODY``) are first tried on the
loop itself, with units of work that may not wait (``inline``): a SQLite primary-key
lookup or a small write takes well under a millisecond, and handing it to a thread and
back cost this server more than half its throughput (benchmarks/rest_core.py --compare,
docs/concurrency.md). Where such a unit of work would wait (the write lock is taken,
another process writes), the store raises ``WouldBlock`` before anything changed and
the request runs again in the pool. Each request gets its budget
(``EVI_REQUEST_TIMEOUT``, ``EVI_MAX_RESPONSE_ENTRIES``) when it arrives.

With auth on, every route but the ``open`` ones (metadata, the SMART configuration,
the token endpoint) first authenticates its caller (``api.authentication``), before
its body is read: a request without a valid bearer token is answered 401 at once.

Routes that may touch patient data name their restful-interaction code in ``audit``:
their requests carry a PDL trail, and their AuditEvents are stored before the answer
leaves (``api.audit``), whatever the answer (401s included).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.routing import Route as StarletteRoute
from starlette._utils import get_route_path  # the path routes match against (root_path removed)

from fhir_server.api.interactions import (
    capabilities,
    create,
    delete,
    history,
    patch,
    read,
    search_type,
    transaction,
    update,
)
from fhir_server.api.interactions import audit_event
from fhir_server.api.operations import access_log, everything, export, export_status, reindex, validate
from fhir_server.api.operations import expand, lookup, subscription, translate, triage, validate_code
from fhir_server.api import audit, smart_configuration, token
from fhir_server.api.operations import reporting
from fhir_server.api.authentication import authenticate, authentication_of
from fhir_server.api.content import receive_body
from fhir_server.api.deps import runtime_of, settings_of, state_of
from fhir_server.api.workers import workers_of
from fhir_server.engine import Budget, WouldBlock, run_follow_ups
from fhir_server.errors import FhirError

__all__ = ["Route", "ROUTES", "build_routes", "type_interactions", "system_interactions", "operations"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    endpoint: object
    #: the CapabilityStatement interaction code (None: not a listed interaction)
    interaction: str | None
    level: str  # system, type, instance
    #: an operation's name (CapabilityStatement rest.operation / resource.operation)
    operation: str | None = None
    #: runs with the writers (False: with the readers; None: on the event loop, for
    #: answers that need no store, e.g. the cached CapabilityStatement)
    writes: bool | None = False
    #: bound by the request time budget (False: long-running administration)
    budgeted: bool = True
    #: one resource by id: tried on the event loop first (see the module doc)
    inline: bool = False
    #: answered without authentication, also with auth on (domain.md §5)
    open: bool = False
    #: the restful-interaction code its AuditEvents name (None: never patient data, not logged)
    audit: str | None = None


# order matters: literal segments (metadata, _history, _search, $op) before {id}
ROUTES: tuple[Route, ...] = (
    Route("GET", "/metadata", capabilities.capabilities, None, "system", open=True),
    # SMART Backend Services: before /{resource_type}/{id}, which would take them for a read
    Route("GET", "/.well-known/smart-configuration", smart_configuration.smart_configuration, None, "system",
          writes=None, open=True),
    Route("POST", "/auth/token", token.token, None, "system", open=True),
    Route("GET", "/auth/token", token.token, None, "system", writes=None, open=True),  # 405, not a read
    # the access log: read from the audit store, written by the server only (before the generic routes)
    Route("GET", "/AuditEvent", audit_event.search, None, "type"),
    Route("POST", "/AuditEvent/_search", audit_event.search_post, None, "type"),
    Route("GET", "/AuditEvent/{id}/_history/{vid}", audit_event.vread, None, "instance"),
    Route("GET", "/AuditEvent/{id}", audit_event.read, None, "instance"),
    Route("POST", "/AuditEvent", audit_event.refuse, None, "type", writes=None),
    Route("PUT", "/AuditEvent", audit_event.refuse, None, "type", writes=None),
    Route("PATCH", "/AuditEvent", audit_event.refuse, None, "type", writes=None),
    Route("DELETE", "/AuditEvent", audit_event.refuse, None, "type", writes=None),
    Route("PUT", "/AuditEvent/{id}", audit_event.refuse, None, "instance", writes=None),
    Route("PATCH", "/AuditEvent/{id}", audit_event.refuse, None, "instance", writes=None),
    Route("DELETE", "/AuditEvent/{id}", audit_event.refuse, None, "instance", writes=None),
    Route("POST", "", transaction.transaction, "transaction", "system", writes=True, audit="transaction"),
    Route("POST", "/", transaction.transaction, "batch", "system", writes=True, audit="transaction"),
    Route("GET", "", search_type.search_system, "search-system", "system", audit="search-system"),
    Route("GET", "/", search_type.search_system, None, "system", audit="search-system"),
    Route("POST", "/_search", search_type.search_system_post, None, "system", audit="search-system"),
    Route("GET", "/_history", history.history_system, "history-system", "system", audit="history-system"),
    Route("POST", "/$reindex", reindex.reindex_system, None, "system", "reindex", writes=True, budgeted=False),
    # Bulk Data export: kick-off at three levels, then status and files (literal paths before {id})
    Route("GET", "/$export", export.export_system, None, "system", "export", audit="operation"),
    Route("POST", "/$export", export.export_system, None, "system", "export", audit="operation"),
    Route("GET", "/Patient/$export", export.export_patients, None, "type", "export", audit="operation"),
    Route("POST", "/Patient/$export", export.export_patients, None, "type", "export", audit="operation"),
    Route("GET", "/Group/{id}/$export", export.export_group, None, "instance", "export", audit="operation"),
    Route("POST", "/Group/{id}/$export", export.export_group, None, "instance", "export", audit="operation"),
    Route("GET", export.STATUS_PATH + "/{job}", export_status.export_status, None, "system"),
    Route("DELETE", export.STATUS_PATH + "/{job}", export_status.export_cancel, None, "system", writes=True),
    Route("GET", export_status.FILE_PATH + "/{job}/{name}", export_status.export_file, None, "system"),
    Route("GET", "/{resource_type}/_history", history.history_type, "history-type", "type", audit="history-type"),
    Route("POST", "/{resource_type}/_search", search_type.search_type_post, None, "type", audit="search-type"),
    Route("POST", "/{resource_type}/$reindex", reindex.reindex_type, None, "type", "reindex", writes=True, budgeted=False),
    # terminology: literal types before /{resource_type}/{id}, which would take "$expand" for an id
    Route("GET", "/ValueSet/$expand", expand.expand, None, "type", "expand"),
    Route("POST", "/ValueSet/$expand", expand.expand, None, "type", "expand"),
    Route("GET", "/ValueSet/$validate-code", validate_code.value_set, None, "type", "validate-code"),
    Route("POST", "/ValueSet/$validate-code", validate_code.value_set, None, "type", "validate-code"),
    Route("GET", "/CodeSystem/$validate-code", validate_code.code_system, None, "type", "validate-code"),
    Route("POST", "/CodeSystem/$validate-code", validate_code.code_system, None, "type", "validate-code"),
    Route("GET", "/CodeSystem/$lookup", lookup.lookup, None, "type", "lookup"),
    Route("POST", "/CodeSystem/$lookup", lookup.lookup, None, "type", "lookup"),
    Route("GET", "/ConceptMap/$translate", translate.translate, None, "type", "translate"),
    Route("POST", "/ConceptMap/$translate", translate.translate, None, "type", "translate"),
    # EVI's workflow operations on intake Tasks
    Route("GET", "/Task/$triage-queue", triage.triage_queue, None, "type", "triage-queue", audit="operation"),
    Route("POST", "/Task/{id}/$triage", triage.triage, None, "instance", "triage", writes=True, audit="operation"),
    # reporting (domain.md §8): literal paths before /{resource_type}/{id}
    Route("GET", "/$skr-wait-times", reporting.skr_wait_times_operation, None, "system", "skr-wait-times"),
    Route("GET", "/Measure/{id}/$evaluate-measure", reporting.evaluate_measure, None, "instance", "evaluate-measure"),
    Route("POST", "/Measure/{id}/$evaluate-measure", reporting.evaluate_measure, None, "instance", "evaluate-measure"),
    Route("POST", "/{resource_type}/$validate", validate.validate_type, None, "type", "validate"),
    Route("GET", "/{resource_type}", search_type.search_type, "search-type", "type", audit="search-type"),
    Route("POST", "/{resource_type}", create.create, "create", "type", writes=True, inline=True, audit="create"),
    Route("PUT", "/{resource_type}", update.conditional_update, None, "type", writes=True, audit="update"),
    Route("PATCH", "/{resource_type}", patch.conditional_patch, None, "type", writes=True, audit="patch"),
    Route("DELETE", "/{resource_type}", delete.conditional_delete, None, "type", writes=True, audit="delete"),
    Route("GET", "/{resource_type}/{id}/_history/{vid}", read.vread, "vread", "instance", inline=True, audit="vread"),
    Route("GET", "/{resource_type}/{id}/_history", history.history_instance, "history-instance", "instance",
          audit="history-instance"),
    Route("GET", "/{resource_type}/{id}/$everything", everything.everything, None, "instance", "everything",
          audit="operation"),
    # the patient's log extract (domain.md §6): reading the log is not itself logged
    Route("GET", "/Patient/{id}/$access-log", access_log.access_log, None, "instance", "access-log"),
    Route("POST", "/{resource_type}/{id}/$validate", validate.validate_instance, None, "instance", "validate"),
    Route("GET", "/{resource_type}/{id}/$validate", validate.validate_instance, None, "instance", "validate"),
    # before the compartment search, which would take "$expand" for a resource type
    Route("GET", "/Subscription/{id}/$status", subscription.status, None, "instance", "status"),
    Route("POST", "/Subscription/{id}/$status", subscription.status, None, "instance", "status"),
    Route("GET", "/Subscription/{id}/$events", subscription.events, None, "instance", "events"),
    Route("POST", "/Subscription/{id}/$events", subscription.events, None, "instance", "events"),
    Route("GET", "/ValueSet/{id}/$expand", expand.expand_instance, None, "instance", "expand"),
    Route("POST", "/ValueSet/{id}/$expand", expand.expand_instance, None, "instance", "expand"),
    Route("GET", "/ValueSet/{id}/$validate-code", validate_code.value_set_instance, None, "instance", "validate-code"),
    Route("POST", "/ValueSet/{id}/$validate-code", validate_code.value_set_instance, None, "instance", "validate-code"),
    Route("GET", "/CodeSystem/{id}/$validate-code", validate_code.code_system_instance, None, "instance", "validate-code"),
    Route("POST", "/CodeSystem/{id}/$validate-code", validate_code.code_system_instance, None, "instance", "validate-code"),
    Route("GET", "/ConceptMap/{id}/$translate", translate.translate_instance, None, "instance", "translate"),
    Route("POST", "/ConceptMap/{id}/$translate", translate.translate_instance, None, "instance", "translate"),
    Route("GET", "/{compartment_type}/{compartment_id}/{resource_type}", search_type.search_compartment, None, "instance",
          audit="search-type"),
    Route("GET", "/{resource_type}/{id}", read.read, "read", "instance", inline=True, audit="read"),
    Route("PUT", "/{resource_type}/{id}", update.update, "update", "instance", writes=True, inline=True, audit="update"),
    Route("PATCH", "/{resource_type}/{id}", patch.patch, "patch", "instance", writes=True, inline=True, audit="patch"),
    Route("DELETE", "/{resource_type}/{id}", delete.delete, "delete", "instance", writes=True, inline=True,
          audit="delete"),
)


def _endpoint(route: Route):
    handler = route.endpoint

    async def endpoint(request: Request):
        settings = settings_of(request)
        seconds = settings.request_timeout if route.budgeted else None
        state = state_of(request)
        state["budget"] = Budget.for_request(seconds, settings.max_response_entries)
        trail = audit.begin(request, route)
        if trail is None:
            return await _serve(route, handler, request, state)
        try:
            response = await _serve(route, handler, request, state)
        except FhirError as exc:
            await audit.finish(request, route, trail, exc.status)
            raise
        except Exception:  # the catch-all answers 500: a server failure
            await audit.finish(request, route, trail, 500)
            raise
        await audit.finish(request, route, trail, response.status_code)
        return response

    endpoint.__name__ = getattr(handler, "__name__", "endpoint")
    return endpoint


async def _serve(route: Route, handler, request: Request, state: dict):
    """Authenticate, read the body, then run the handler: on the loop, or in a worker."""
    if not route.open:
        authentication = authentication_of(request)
        if authentication is not None:
            await authenticate(request, authentication)
    if route.writes is None:
        return handler(request, **request.path_params)
    if request.method in _WITH_BODY:
        try:
            state["body"] = await receive_body(request, settings_of(request).max_body_size)
        except ClientDisconnect:  # gone before its body arrived: nobody hears an answer
            return Response(status_code=400)
    if route.inline and _may_inline(request, state) and runtime_of(request).store.inline:
        state["inline"] = True
        try:
            response = handler(request, **request.path_params)
        except WouldBlock:  # nothing was changed: run it where waiting is allowed
            state["inline"] = False
            state.pop("follow_ups", None)
            if "audit" in state:  # nor was anything read: it is logged from the run in the pool
                state["audit"].clear()
        else:
            follow_ups = state.get("follow_ups")
            if follow_ups:  # calls to other servers: never on the loop
                await workers_of(request).run(True, run_follow_ups, follow_ups)
            return response
    return await workers_of(request).run(route.writes, _handle, handler, request)


_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
#: bodies up to this size are validated on the loop (a few hundred microseconds)
INLINE_BODY = 16 * 1024


def _may_inline(request: Request, state: dict) -> bool:
    # a conditional create searches first: a search may take long
    return len(state.get("body", b"")) <= INLINE_BODY and "if-none-exist" not in request.headers


def _handle(handler, request: Request):
    """In a worker thread: the handler, then its committed writes' follow-ups (a call to
    another server), before the client hears back."""
    response = handler(request, **request.path_params)
    follow_ups = state_of(request).get("follow_ups")
    if follow_ups:
        run_follow_ups(follow_ups)
    return response


def build_routes(prefix: str) -> list[BaseRoute]:
    return [_ByMethod([StarletteRoute(prefix + r.path, _endpoint(r), methods=[r.method]) for r in ROUTES])]


class _ByMethod(BaseRoute):
    """The routes as one: a request is matched only against the routes of its method
    whose path has the same literal segments where the request's has them, in their
    order (a tree of segments per method: matching all 40-odd paths in turn was a tenth
    of a read's CPU; the tree leaves one to three). A path that only other methods
    serve is a partial match, which the router answers 405."""

    def __init__(self, routes: list[StarletteRoute]):
        self.routes = routes
        self._trees: dict[str, _Segment] = {}
        #: routes whose path a segment tree cannot describe (a parameter inside a
        #: segment, or one that may span segments): always tried, in order
        self._any_shape: dict[str, list[tuple[int, StarletteRoute]]] = {}
        for order, route in enumerate(routes):
            shape = _shape(route.path)
            for method in route.methods or ():
                if shape is None:
                    self._any_shape.setdefault(method, []).append((order, route))
                else:
                    self._trees.setdefault(method, _Segment()).add(shape, order, route)

    def _candidates(self, method: str, path: str) -> list[StarletteRoute]:
        tree = self._trees.get(method)
        found = tree.candidates(path.split("/")) if tree is not None else []
        found.extend(self._any_shape.get(method, ()))
        found.sort(key=_first)
        return [route for _, route in found]

    def matches(self, scope):
        if scope["type"] != "http":
            return Match.NONE, {}
        for route in self._candidates(scope["method"], get_route_path(scope)):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child, _ROUTE: route}
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.PARTIAL:
                return Match.PARTIAL, {**child, _ROUTE: route}
        return Match.NONE, {}

    async def handle(self, scope, receive, send):
        await scope[_ROUTE].handle(scope, receive, send)


def _first(item: tuple) -> int:
    return item[0]


class _Segment:
    """A node of a method's route tree: children by literal segment, one child for a
    parameter segment, and the routes whose path ends here (with their order)."""

    __slots__ = ("literal", "parameter", "routes")

    def __init__(self):
        self.literal: dict[str, _Segment] = {}
        self.parameter: _Segment | None = None
        self.routes: list[tuple[int, StarletteRoute]] = []

    def add(self, shape: list[str | None], order: int, route: StarletteRoute) -> None:
        node = self
        for segment in shape:
            if segment is None:
                node.parameter = node.parameter or _Segment()
                node = node.parameter
            else:
                node = node.literal.setdefault(segment, _Segment())
        node.routes.append((order, route))

    def candidates(self, segments: list[str]) -> list[tuple[int, StarletteRoute]]:
        frontier = [self]
        for segment in segments:
            following = []
            for node in frontier:
                child = node.literal.get(segment)
                if child is not None:
                    following.append(child)
                if node.parameter is not None and segment:  # a parameter is never empty
                    following.append(node.parameter)
            if not following:
                return []
            frontier = following
        return [item for node in frontier for item in node.routes]


def _shape(path: str) -> list[str | None] | None:
    """A route path's segments, None for a parameter; None for the whole path where a
    parameter is not a whole segment of a single-segment kind."""
    shape: list[str | None] = []
    for segment in path.split("/"):
        if segment.startswith("{") and segment.endswith("}") and segment.count("{") == 1:
            if ":" in segment and not segment.endswith((":str}", ":int}", ":float}", ":uuid}")):
                return None  # a ``path`` convertor spans segments
            shape.append(None)
        elif "{" in segment:
            return None
        else:
            shape.append(segment)
    return shape


_ROUTE = "evi.route"


def type_interactions() -> list[str]:
    return [r.interaction for r in ROUTES if r.level in ("type", "instance") and r.interaction]


def system_interactions() -> list[str]:
    return [r.interaction for r in ROUTES if r.level == "system" and r.interaction]


def operations() -> list[tuple[str, str]]:
    """(operation name, level) pairs."""
    return list(dict.fromkeys((r.operation, r.level) for r in ROUTES if r.operation))
