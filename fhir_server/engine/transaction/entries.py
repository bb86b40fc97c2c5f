"""Bundle.entry.request -> EntryRequest: what each entry asks for (R4 http.html#transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from fhir_server.errors import BadRequest
from fhir_server.model import is_resource_type

__all__ = ["EntryRequest", "parse_entries", "METHOD_ORDER"]

#: R4 http.html#trules: process DELETE, then POST, then PUT/PATCH, then GET/HEAD
METHOD_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class EntryRequest:
    index: int
    method: str
    url: str
    resource_type: str | None
    id: str | None = None
    version: str | None = None
    #: ``_history`` requested (instance or type level)
    history: bool = False
    query: list[tuple[str, str]] = field(default_factory=list)
    resource: dict | None = None
    full_url: str | None = None
    if_match: str | None = None
    if_none_exist: str | None = None

    @property
    def conditional(self) -> bool:
        return self.id is None and bool(self.query) and self.method in ("PUT", "DELETE", "PATCH")

    @property
    def label(self) -> str:
        return f"Bundle.entry[{self.index}]"


def _parse_url(index: int, url: str, base: str) -> tuple[str | None, str | None, str | None, bool, list]:
    if url.startswith(base + "/"):
        url = url[len(base) + 1 :]
    parts = urlsplit(url)
    if parts.scheme:
        raise BadRequest(f"Bundle.entry[{index}].request.url {url!r} is not on this server", expression=f"Bundle.entry[{index}].request.url")
    segments = [s for s in parts.path.split("/") if s]
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not segments:
        return None, None, None, False, query
    if segments == ["_history"]:
        return None, None, None, True, query
    rtype = segments[0]
    if not is_resource_type(rtype):
        raise BadRequest(f"Bundle.entry[{index}]: unknown resource type {rtype!r} in {url!r}", expression=f"Bundle.entry[{index}].request.url")
    rest = segments[1:]
    if not rest:
        return rtype, None, None, False, query
    if rest == ["_history"]:
        return rtype, None, None, True, query
    if rest == ["_search"]:
        return rtype, None, None, False, query
    if len(rest) == 1:
        return rtype, rest[0], None, False, query
    if len(rest) == 2 and rest[1] == "_history":
        return rtype, rest[0], None, True, query
    if len(rest) == 3 and rest[1] == "_history":
        return rtype, rest[0], rest[2], False, query
    raise BadRequest(f"Bundle.entry[{index}].request.url {url!r} is not a supported interaction", expression=f"Bundle.entry[{index}].request.url")


def parse_entries(bundle: dict, base: str) -> list[EntryRequest]:
    out: list[EntryRequest] = []
    for index, entry in enumerate(bundle.get("entry") or []):
        where = f"Bundle.entry[{index}]"
        request = entry.get("request")
        if not isinstance(request, dict) or not request.get("method") or not request.get("url"):
            raise BadRequest(f"{where} needs request.method and request.url", expression=f"{where}.request")
        method = request["method"]
        if method not in METHOD_ORDER:
            raise BadRequest(f"{where}: unsupported method {method!r}", expression=f"{where}.request.method")
        rtype, rid, version, history, query = _parse_url(index, request["url"], base)
        resource = entry.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise BadRequest(f"{where}: a {method} entry needs a resource", expression=f"{where}.resource")
        if method in ("POST", "PUT", "DELETE", "PATCH") and rtype is None:
            raise BadRequest(f"{where}: {method} needs a resource type in request.url", expression=f"{where}.request.url")
        if method == "POST" and rid is not None:
            raise BadRequest(f"{where}: POST goes to [type], not to an instance", expression=f"{where}.request.url")
        if method in ("PUT", "DELETE", "PATCH") and rid is None and not query:
            raise BadRequest(f"{where}: {method} needs an id or search criteria", expression=f"{where}.request.url")
        out.append(
            EntryRequest(
                index=index,
                method=method,
                url=request["url"],
                resource_type=rtype,
                id=rid,
                version=version,
                history=history,
                query=query,
                resource=resource,
                full_url=entry.get("fullUrl"),
                if_match=request.get("ifMatch"),
                if_none_exist=request.get("ifNoneExist"),
            )
        )
    return out
