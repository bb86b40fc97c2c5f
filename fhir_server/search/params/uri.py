"""uri parameters (R4 search.html#uri): exact match; ``:below`` (the stored uri starts
with the value) and ``:above`` (the value starts with the stored uri)."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.search.escaping import unescape
from fhir_server.search.index import UriEntry

__all__ = ["UriValue", "MODIFIERS", "parse_value", "extract"]

MODIFIERS = frozenset({"below", "above", "missing"})


@dataclass(frozen=True, slots=True)
class UriValue:
    uri: str


def parse_value(raw: str, modifier: str | None, definition=None) -> UriValue:
    if not raw:
        raise InvalidSearch("A uri search value may not be empty")
    return UriValue(unescape(raw))


def extract(definition, nodes: list) -> list[UriEntry]:
    code = definition if isinstance(definition, str) else definition.code
    return [UriEntry(code, node) for node in nodes if isinstance(node, str) and node]
