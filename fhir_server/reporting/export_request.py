"""A Bulk Data kick-off request (Bulk Data Access IG 2.0, export.html "Query Parameters")
as a frozen ``ExportRequest``: pure parsing, no I/O.

- ``_outputFormat``: ``application/fhir+ndjson`` and the abbreviations the IG requires a
  server to accept, ``application/ndjson`` and ``ndjson``; anything else is 400.
- ``_type``, ``_typeFilter``: repeated or comma-separated, as if one comma list (the IG:
  "the server SHALL treat the values provided as if they were comma delimited values
  within a single instance"). A ``_typeFilter`` query is ``Type?search``, URL-encoded by
  the client before the queries are joined with commas; a comma inside a query (an OR of
  values) is told from a separator by what follows it (a resource type and ``?``).
  Search result parameters (``_include``, ``_sort``, ``_count``...) "SHALL NOT be used": 400.
- ``_since``: a FHIR instant (date, time and zone).
- ``_pseudonymize=true|false``: this server's own (docs/export.md).
- ``_elements``, ``patient``, ``includeAssociatedData`` and any other parameter are not
  supported: 400, or, with ``Prefer: handling=lenient``, ignored and reported in the
  manifest's ``error`` file (the IG's lenient processing).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime
from urllib.parse import parse_qsl

from fhir_server.errors import BadRequest
from fhir_server.model import is_resource_type

__all__ = ["ExportRequest", "TypeFilter", "LEVELS", "OUTPUT_FORMATS", "parse_export_request", "parameters_to_pairs"]

LEVELS = ("system", "patient", "group")
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
#: FHIR instant: a full date and time with a zone
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")
#: where a _typeFilter value starts a new query: a comma followed by ``Type?``
_QUERY_START = re.compile(r",(?=[A-Z][A-Za-z]*\?)")
#: search result parameters a _typeFilter may not carry (IG: "SHALL NOT be used")
_RESULT_PARAMETERS = frozenset({
    "_include", "_revinclude", "_sort", "_count", "_offset", "_summary", "_elements", "_total", "_contained",
    "_containedType", "_getpages", "_getpagesoffset", "_format", "_pretty", "_type",
})
#: parameters of the IG this server does not support (with why)
_UNSUPPORTED = {
    "_elements": "_elements is not supported: every element is exported",
    "patient": "the patient parameter is not supported: export a Group of those patients",
    "includeAssociatedData": "includeAssociatedData is not supported",
}
#: parameters that change nothing here
_HARMLESS = frozenset({"_format", "_pretty"})


@dataclass(frozen=True)
class TypeFilter:
    """One ``_typeFilter`` query: resources of ``resource_type`` matching ``params``."""

    resource_type: str
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ExportRequest:
    #: system, patient (``Patient/$export``) or group (``Group/{id}/$export``)
    level: str
    group_id: str | None = None
    #: the types asked for (empty: every type the level covers)
    types: tuple[str, ...] = ()
    #: FHIR instant: only resources changed after it
    since: str | None = None
    #: OR-ed per type; a type without filters is exported whole
    type_filters: tuple[TypeFilter, ...] = ()
    pseudonymize: bool = False
    #: the kick-off URL as sent (the manifest's ``request``)
    url: str = ""
    #: (parameter, why) ignored under ``Prefer: handling=lenient``
    ignored: tuple[tuple[str, str], ...] = ()

    def filters_for(self, resource_type: str) -> tuple[TypeFilter, ...]:
        return tuple(f for f in self.type_filters if f.resource_type == resource_type)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ExportRequest":
        filters = tuple(TypeFilter(f["resource_type"], tuple(tuple(p) for p in f["params"])) for f in data["type_filters"])
        return cls(
            data["level"], data.get("group_id"), tuple(data["types"]), data.get("since"), filters,
            bool(data.get("pseudonymize")), data.get("url", ""), tuple(tuple(i) for i in data.get("ignored", ())),
        )


def parse_export_request(
    level: str, params: list[tuple[str, str]], *, group_id: str | None = None, url: str = "", lenient: bool = False
) -> ExportRequest:
    """The kick-off parameters (query pairs, or a Parameters body made pairs) as a request;
    BadRequest (400) names what is wrong."""
    if level not in LEVELS:
        raise ValueError(f"unknown export level {level!r}")
    ignored: list[tuple[str, str]] = []

    def refuse(name: str, why: str) -> None:
        if not lenient:
            raise BadRequest(f"{why} (Prefer: handling=lenient ignores it)", expression=name)
        ignored.append((name, why))

    types, filters, since, pseudonymize = [], [], None, False
    for name, value in params:
        if name == "_outputFormat":
            if value.strip() not in OUTPUT_FORMATS:
                raise BadRequest(f"_outputFormat {value!r} is not supported: use application/fhir+ndjson "
                                 "(or application/ndjson, ndjson)", expression=name)
        elif name == "_type":
            types.extend(_types(value, refuse))
        elif name == "_typeFilter":
            filters.extend(_type_filters(value, refuse))
        elif name == "_since":
            since = _instant(value)
        elif name == "_pseudonymize":
            if value not in ("true", "false"):
                raise BadRequest(f"_pseudonymize must be true or false, got {value!r}", expression=name)
            pseudonymize = value == "true"
        elif name in _UNSUPPORTED:
            refuse(name, _UNSUPPORTED[name])
        elif name not in _HARMLESS:
            refuse(name, f"{name} is not a parameter of $export")
    types = list(dict.fromkeys(types))
    if types:
        outside = sorted({f.resource_type for f in filters} - set(types))
        if outside:
            raise BadRequest(f"_typeFilter names {', '.join(outside)}, which _type leaves out", expression="_typeFilter")
    return ExportRequest(level, group_id, tuple(types), since, tuple(filters), pseudonymize, url, tuple(ignored))


def _types(value: str, refuse) -> list[str]:
    found = []
    for name in (t.strip() for t in value.split(",")):
        if not name:
            continue
        if is_resource_type(name):
            found.append(name)
        else:
            refuse("_type", f"_type names {name!r}, which is not a resource type")
    return found


def _type_filters(value: str, refuse) -> list[TypeFilter]:
    found = []
    for query in _QUERY_START.split(value):
        query = query.strip()
        if not query:
            continue
        rtype, mark, search = query.partition("?")
        if not mark or not is_resource_type(rtype):
            raise BadRequest(f"_typeFilter {query!r} is not a query of the form Type?parameters", expression="_typeFilter")
        pairs = tuple(parse_qsl(search, keep_blank_values=True))
        if not pairs:
            raise BadRequest(f"_typeFilter {query!r} has no search parameters", expression="_typeFilter")
        result = sorted({k.split(":", 1)[0] for k, _ in pairs} & _RESULT_PARAMETERS)
        if result:
            refuse("_typeFilter", f"_typeFilter {query!r} uses {', '.join(result)}: search result parameters "
                                  "may not be used in an export")
            continue
        found.append(TypeFilter(rtype, pairs))
    return found


def _instant(value: str) -> str:
    text = value.strip()
    if not _INSTANT.match(text):
        raise BadRequest(f"_since must be a FHIR instant such as 2024-01-31T00:00:00Z, got {value!r}",
                         expression="_since")
    try:
        datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"_since {value!r} is not a real moment", expression="_since") from None
    return text


def parameters_to_pairs(parameters: dict) -> list[tuple[str, str]]:
    """A kick-off's Parameters body (the IG's POST form) as query pairs: each parameter's
    primitive value as text. A parameter without one (``patient`` as a Reference) keeps
    its name with an empty value, so that it is refused or ignored as in a query."""
    if not isinstance(parameters, dict) or parameters.get("resourceType") != "Parameters":
        raise BadRequest("A POST kick-off carries a Parameters resource")
    pairs = []
    for parameter in parameters.get("parameter") or ():
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise BadRequest("Each parameter of the Parameters needs a name", expression="Parameters.parameter")
        value = next((v for k, v in parameter.items() if k.startswith("value")), "")
        if isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((parameter["name"], value if isinstance(value, str) else ""))
    return pairs
