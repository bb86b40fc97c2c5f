"""Typed index entries, one kind per search-parameter type (HAPI's HFJ_SPIDX_* rows).

``search/extract.py`` produces them; each storage backend maps every kind to its
own layout (a SQLite table, MongoDB sub-documents). Storage never evaluates
FHIRPath. Ranges are closed: [low, high]. Text is stored normalised (casefolded,
accents removed) beside its exact form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Union

__all__ = [
    "TokenEntry",
    "StringEntry",
    "NumberEntry",
    "DateEntry",
    "QuantityEntry",
    "UriEntry",
    "ReferenceEntry",
    "CompositeEntry",
    "IndexEntry",
    "IndexSet",
]


@dataclass(frozen=True, slots=True)
class TokenEntry:
    kind: ClassVar[str] = "token"
    param: str
    system: str | None
    code: str | None
    #: normalised display text (Coding.display, CodeableConcept.text) for ``:text``
    text: str | None = None


@dataclass(frozen=True, slots=True)
class StringEntry:
    kind: ClassVar[str] = "string"
    param: str
    normalized: str
    exact: str


@dataclass(frozen=True, slots=True)
class NumberEntry:
    kind: ClassVar[str] = "number"
    param: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class DateEntry:
    """A value as the closed range [low, high] of UTC instants (fixed-width strings)."""

    kind: ClassVar[str] = "date"
    param: str
    low: str
    high: str


@dataclass(frozen=True, slots=True)
class QuantityEntry:
    kind: ClassVar[str] = "quantity"
    param: str
    system: str | None
    code: str | None  # the unit code, or the unit text when there is no code
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class UriEntry:
    kind: ClassVar[str] = "uri"
    param: str
    uri: str


@dataclass(frozen=True, slots=True)
class ReferenceEntry:
    """``target_type``/``target_id`` for local references; ``url`` for absolute or canonical ones."""

    kind: ClassVar[str] = "reference"
    param: str
    target_type: str | None
    target_id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class CompositeEntry:
    """One combination of component values taken from the same element."""

    kind: ClassVar[str] = "composite"
    param: str
    components: tuple


IndexEntry = Union[
    TokenEntry, StringEntry, NumberEntry, DateEntry, QuantityEntry, UriEntry, ReferenceEntry, CompositeEntry
]


@dataclass(frozen=True, slots=True)
class IndexSet:
    entries: tuple = ()
    #: parameters with at least one value, for ``:missing``
    present: frozenset[str] = field(default_factory=frozenset)

    def of_kind(self, kind: str) -> list:
        return [e for e in self.entries if e.kind == kind]
