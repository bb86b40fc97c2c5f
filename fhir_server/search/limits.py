"""How much one search may ask for, and the checks that hold a query string to it.

Every comma-separated value becomes one more OR term in the store's query, every
parameter one more AND, every chain link one more nested SELECT, and every target
type of an untyped chain one more copy of its values. SQLite refuses expression
trees deeper than 1,000, more than 32,766 bound variables, and plans that nest past
its parser stack; and the time it spends planning grows faster than the terms do
(docs/input-limits.md has the measurements). The limits keep every accepted
search well inside all of that; past them the answer is a 400.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fhir_server.errors import InvalidSearch
from fhir_server.search.escaping import split_unescaped

__all__ = ["SearchLimits", "integer", "offset", "split_values", "check_size"]


@dataclass(frozen=True)
class SearchLimits:
    """Settings ``max_or_values``, ``max_search_parameters``, ``max_search_offset``."""

    #: comma-separated values of one parameter (also ``_sort``, ``_type``, ``_elements``)
    max_or_values: int = 100
    #: parameters in one search request
    max_parameters: int = 30
    #: ``_offset`` and ``_getpagesoffset``
    max_offset: int = 1_000_000

    @property
    def max_terms(self) -> int:
        """Value tests in the whole plan, counted per target type of a chain: an untyped
        chain (``Task?subject.status``) tests its values on each of ~90 types, and SQLite
        binds at most 32,766 variables (about 9 per test at worst)."""
        return self.max_or_values * self.max_parameters


def integer(name: str, raw: str, minimum: int, maximum: int | None = None) -> int:
    # int() alone would take "１２", "1_000" and " 12 "; a query wants ASCII digits
    text = raw[1:] if raw[:1] == "-" else raw
    if not (text.isascii() and text.isdigit()) or len(text) > 30:
        raise InvalidSearch(f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if value < minimum:
        raise InvalidSearch(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidSearch(f"{name} may be at most {maximum}, got {value}")
    return value


def offset(name: str, raw: str, limits: SearchLimits) -> int:
    """``_offset`` / ``_getpagesoffset``: 0 up to ``limits.max_offset``."""
    return integer(name, raw, 0, limits.max_offset)


def split_values(name: str, raw: str, limits: SearchLimits, split: Callable[[str], list[str]] | None = None) -> list[str]:
    """The comma-separated values of one parameter (escaped commas kept), at most ``max_or_values``."""
    parts = split_unescaped(raw, ",") if split is None else split(raw)
    if len(parts) > limits.max_or_values:
        raise InvalidSearch(
            f"{name}: {len(parts)} comma-separated values; at most {limits.max_or_values} are allowed in one parameter"
        )
    return parts


def _terms(f) -> int:
    inner = getattr(f, "inner", None)  # _has
    if inner is not None:
        return _terms(inner)
    chain = getattr(f, "chain", None)
    if chain is not None:
        return sum(_terms(target) for _, target in chain.by_type)
    return max(1, len(getattr(f, "values", ())))


def check_size(filters, limits: SearchLimits) -> None:
    """At most ``limits.max_terms`` value tests in the plan's filters."""
    terms = sum(_terms(f) for f in filters)
    if terms > limits.max_terms:
        raise InvalidSearch(
            f"The search tests {terms} values (each chain counted once per target type); at most "
            f"{limits.max_terms} are allowed: name the chain's type (subject:Patient.name) or use fewer values"
        )
