"""Typed index entries, one kind per search-parameter type (HAPI's HFJ_SPIDX_* rows).

``search/extract.py`` produces them; each storage backend maps them to its own
layout (SQLite rows, MongoDB sub-documents). Storage never evaluates FHIRPath.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TokenEntry", "DateEntry", "IndexSet"]


@dataclass(frozen=True, slots=True)
class TokenEntry:
    param: str
    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class DateEntry:
    """A value as the closed range [low, high] of UTC instants (fixed-width strings)."""

    param: str
    low: str
    high: str


@dataclass(frozen=True, slots=True)
class IndexSet:
    tokens: tuple[TokenEntry, ...] = ()
    dates: tuple[DateEntry, ...] = ()
    #: parameters with at least one value, for ``:missing``
    present: frozenset[str] = field(default_factory=frozenset)
