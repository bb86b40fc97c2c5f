"""quantity parameters (R4 search.html#quantity): ``[prefix][number]|[system]|[code]``.

Units are compared UCUM-equal: a UCUM quantity is also indexed in its canonical
unit (``5 mg`` as ``0.005 g``, ``2 h`` as ``7200 s``), so ``gt4000|http://unitsofmeasure.org|mg``
finds ``5 g``. Without a system the code or unit text must match as given.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import QuantityEntry
from fhir_server.search.params.number import PREFIXES, NumberValue, extract as extract_numbers, parse_number
from fhir_server.search.escaping import split_unescaped, unescape

__all__ = ["QuantityValue", "MODIFIERS", "UCUM", "CANONICAL_SYSTEM", "parse_value", "extract", "canonical"]

MODIFIERS = frozenset({"missing"})
UCUM = "http://unitsofmeasure.org"
#: the system of the extra rows that hold a UCUM quantity in its base unit; only
#: searches that name a UCUM unit look at them
CANONICAL_SYSTEM = "urn:evi-fhir:ucum-canonical"

_PREFIX_FACTORS = {"": 1.0, "k": 1e3, "h": 1e2, "da": 1e1, "d": 1e-1, "c": 1e-2, "m": 1e-3, "u": 1e-6, "n": 1e-9, "p": 1e-12}
_BASES = {"g": "g", "m": "m", "L": "L", "l": "L", "mol": "mol", "s": "s", "eq": "eq", "U": "U"}
_TIME = {"min": 60.0, "h": 3600.0, "d": 86400.0, "wk": 604800.0, "mo": 2629800.0, "a": 31557600.0}


def canonical(code: str, value: float) -> tuple[str, float] | None:
    """A UCUM code in its base unit, for the common prefixed units; None if unknown."""
    if code in _TIME:
        return "s", value * _TIME[code]
    if code in _BASES:
        return _BASES[code], value
    for prefix in sorted(_PREFIX_FACTORS, key=len, reverse=True):
        if prefix and code.startswith(prefix) and code[len(prefix):] in _BASES:
            return _BASES[code[len(prefix):]], value * _PREFIX_FACTORS[prefix]
    return None


@dataclass(frozen=True, slots=True)
class QuantityValue:
    number: NumberValue
    system: str | None
    code: str | None
    #: the value was converted to the base unit ``code`` (search the canonical rows)
    canonical: bool = False


def parse_value(raw: str, modifier: str | None, definition=None) -> QuantityValue:
    parts = split_unescaped(raw, "|")
    if len(parts) not in (1, 3):
        raise InvalidSearch(f"Invalid quantity {raw!r}: use [prefix][number]|[system]|[code]")
    head = parts[0]
    prefix = "eq"
    if head[:2] in PREFIXES:
        prefix, head = head[:2], head[2:]
    number = parse_number(prefix, head)
    system = unescape(parts[1]) or None if len(parts) == 3 else None
    code = unescape(parts[2]) or None if len(parts) == 3 else None
    if system == UCUM and code:
        found = canonical(code, 1.0)
        if found:
            base, factor = found
            number = NumberValue(prefix, number.value * factor, number.low * factor, number.high * factor)
            return QuantityValue(number, system, base, canonical=True)
    return QuantityValue(number, system, code)


def extract(definition, nodes: list) -> list[QuantityEntry]:
    code = definition if isinstance(definition, str) else definition.code
    out: list[QuantityEntry] = []
    for node in nodes:
        if not isinstance(node, dict):
            continue
        unit_node = node.get("low") or node.get("high") or node if ("low" in node or "high" in node) else node
        system = unit_node.get("system") if isinstance(unit_node, dict) else None
        unit = (unit_node.get("code") or unit_node.get("unit")) if isinstance(unit_node, dict) else None
        for number in extract_numbers(code, [node]):
            out.append(QuantityEntry(code, system, unit, number.low, number.high))
            if system == UCUM and unit:
                found = canonical(unit, 1.0)
                if found:
                    base, factor = found
                    out.append(QuantityEntry(code, CANONICAL_SYSTEM, base, number.low * factor, number.high * factor))
    return out
