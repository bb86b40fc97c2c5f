"""number parameters (R4 search.html#number): prefixes; ``eq`` honours the precision
of the search value (``100`` matches [99.5, 100.5), ``1e2`` too)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import NumberEntry

__all__ = ["NumberValue", "MODIFIERS", "PREFIXES", "parse_number", "parse_value", "extract", "matches"]

MODIFIERS = frozenset({"missing"})
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True, slots=True)
class NumberValue:
    prefix: str
    value: float
    #: the range the precision of the value implies: [low, high)
    low: float
    high: float


def parse_number(prefix: str, text: str) -> NumberValue:
    if not _NUMBER.match(text):
        raise InvalidSearch(f"Invalid number {text!r}")
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise InvalidSearch(f"Invalid number {text!r}") from None
    # half a unit of the last significant digit on either side
    half = Decimal(5).scaleb(d.as_tuple().exponent - 1)
    return NumberValue(prefix, float(d), float(d - half), float(d + half))


def parse_value(raw: str, modifier: str | None, definition=None) -> NumberValue:
    prefix = "eq"
    if raw[:2] in PREFIXES:
        prefix, raw = raw[:2], raw[2:]
    return parse_number(prefix, raw)


def _as_float(node: object) -> float | None:
    if isinstance(node, bool):
        return None
    if isinstance(node, (int, float, Decimal)) and math.isfinite(node):
        return float(node)  # fhirpathpy yields Decimal
    if isinstance(node, str):
        try:
            return float(node)
        except ValueError:
            return None
    return None


def extract(definition, nodes: list) -> list[NumberEntry]:
    code = definition if isinstance(definition, str) else definition.code
    out = []
    for node in nodes:
        if isinstance(node, dict) and ("low" in node or "high" in node):  # Range
            low = _as_float((node.get("low") or {}).get("value"))
            high = _as_float((node.get("high") or {}).get("value"))
            out.append(NumberEntry(code, low if low is not None else -math.inf, high if high is not None else math.inf))
            continue
        value = _as_float(node.get("value") if isinstance(node, dict) else node)
        if value is not None:
            out.append(NumberEntry(code, value, value))
    return out


def matches(v: NumberValue, low: float, high: float) -> bool:
    """In-memory match of a stored range (the SQL compilers mirror this)."""
    p = v.prefix
    if p == "eq":
        return low >= v.low and high < v.high
    if p == "ne":
        return not (low >= v.low and high < v.high)
    if p in ("gt", "sa"):
        return high > v.value if p == "gt" else low > v.value
    if p in ("lt", "eb"):
        return low < v.value if p == "lt" else high < v.value
    if p == "ge":
        return high >= v.value
    if p == "le":
        return low <= v.value
    gap = abs(v.value) * 0.1
    return low <= v.value + gap and high >= v.value - gap
