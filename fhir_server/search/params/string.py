"""string parameters (R4 search.html#string): case- and accent-insensitive
starts-with by default; ``:exact`` (whole value, exact case and accents) and
``:contains`` (anywhere in the value)."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.search.escaping import unescape
from fhir_server.search.index import StringEntry
from fhir_server.search.text import normalize

__all__ = ["StringValue", "MODIFIERS", "parse_value", "extract"]

MODIFIERS = frozenset({"exact", "contains", "missing"})

# the parts of complex types that a string search looks at (HAPI does the same)
_HUMAN_NAME = ("text", "family", "given", "prefix", "suffix")
_ADDRESS = ("text", "line", "city", "district", "state", "postalCode", "country")


@dataclass(frozen=True, slots=True)
class StringValue:
    normalized: str
    exact: str


def parse_value(raw: str, modifier: str | None, definition=None) -> StringValue:
    if not raw:
        raise InvalidSearch("A string search value may not be empty")
    text = unescape(raw)
    return StringValue(normalize(text), text)


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if not isinstance(node, dict):
        return []
    if any(k in node for k in ("family", "given", "prefix", "suffix")):
        keys = _HUMAN_NAME
    elif any(k in node for k in ("line", "city", "district", "state", "postalCode", "country")):
        keys = _ADDRESS
    else:  # another complex type: its direct string values, not its codes
        keys = tuple(k for k, v in node.items() if isinstance(v, str) and k not in ("id", "system", "use", "url", "type"))
    out: list[str] = []
    for key in keys:
        value = node.get(key)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    return out


def extract(definition, nodes: list) -> list[StringEntry]:
    code = definition if isinstance(definition, str) else definition.code
    return [StringEntry(code, normalize(s), s) for node in nodes for s in _strings(node) if s]
