"""Tabulations: counts of resources grouped by values of their index entries, computed by
the store (the measures and SKR wait times of domain.md §8 are built from them).

A ``Tabulation`` names the resources (a ``SearchPlan``, compiled by the backend as for a
search) and the columns to group them by; ``UnitOfWork.tabulate`` answers one row per
distinct combination of column values, with the number of resources that have it::

    Tabulation(plan=<Task?code=…|intake&authored-on=ge…>, columns=(
        Value("status", "code"),
        Follow("focus", "ServiceRequest", Value("contact-channel", "code")),
    ))
    -> [("completed", "phone-advice", 12), ("requested", "referral-electronic", 3), ...]

Columns read the *typed index entries* the search already keeps (``search/index.py``),
never a resource body, so the store needs no FHIRPath and no FHIR knowledge:

  Id()                       the resource's id
  Updated()                  its meta.lastUpdated (fixed-width UTC instant)
  Value(param, field, ...)   the smallest value of one of its index entries: ``code`` of a
                             token (optionally of one ``system``), ``low`` / ``high`` of a
                             date (fixed-width UTC instants), ``target`` of a local
                             reference (``Type/id``, optionally of one ``target_type``)
  Follow(param, type, col)   ``col`` of the resources its reference ``param`` points at
                             (local references of that type), the smallest over them
  Referrers(type, param, col, where)
                             ``col`` of the resources of ``type`` whose reference ``param``
                             points at this one and that hold every ``TokenIs`` of ``where``,
                             the smallest over them
  Coalesce(cols...)          the first column that is not null  } only at the top level:
  NotAfter(a, b)             1 when both are set and a <= b, 0  } not inside Follow/Referrers

Every column is null where nothing matches. "Smallest" is the string order, which for the
index's fixed-width instants is time order. Inside ``Referrers`` the column is an
``Id``, ``Updated`` or ``Value`` of the referring resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from fhir_server.search.plan import SearchPlan

__all__ = [
    "Column",
    "Coalesce",
    "Expression",
    "Follow",
    "Id",
    "NotAfter",
    "Referrers",
    "Tabulation",
    "TabulationError",
    "TokenIs",
    "Updated",
    "Value",
    "check_tabulation",
]

#: the fields a Value may read, per entry kind
FIELDS = {"code": "token", "low": "date", "high": "date", "target": "reference"}


class TabulationError(ValueError):
    """A tabulation the stores cannot run (a programming error of its caller, never a client's)."""


@dataclass(frozen=True, slots=True)
class Id:
    pass


@dataclass(frozen=True, slots=True)
class Updated:
    pass


@dataclass(frozen=True, slots=True)
class Value:
    param: str
    field: str  # one of FIELDS
    #: tokens: only codes of this system
    system: str | None = None
    #: references: only local targets of this type
    target_type: str | None = None

    @property
    def kind(self) -> str:
        return FIELDS[self.field]


@dataclass(frozen=True, slots=True)
class TokenIs:
    """A condition on a referring resource: it has a token of ``param`` with one of ``codes``
    (of ``system``, when given); ``negate``: it has none of them."""

    param: str
    codes: tuple[str, ...]
    system: str | None = None
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Follow:
    param: str
    target_type: str
    column: "Column"


@dataclass(frozen=True, slots=True)
class Referrers:
    source_type: str
    param: str
    column: "Column"
    where: tuple[TokenIs, ...] = ()


Column = Union[Id, Updated, Value, Follow, Referrers]


@dataclass(frozen=True, slots=True)
class Coalesce:
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class NotAfter:
    left: Column
    right: Column


Expression = Union[Column, Coalesce, NotAfter]


@dataclass(frozen=True, slots=True)
class Tabulation:
    #: the resources counted (of ``plan.resource_type``); its paging and sorting are ignored
    plan: SearchPlan
    columns: tuple[Expression, ...]


def check_tabulation(tabulation: Tabulation) -> None:
    """Raise TabulationError unless every backend can run ``tabulation``."""
    if tabulation.plan.resource_type is None:
        raise TabulationError("a tabulation counts resources of one type")
    for expression in tabulation.columns:
        if isinstance(expression, Coalesce):
            if not expression.columns:
                raise TabulationError("Coalesce needs at least one column")
            for column in expression.columns:
                _check_column(column)
        elif isinstance(expression, NotAfter):
            _check_column(expression.left)
            _check_column(expression.right)
        else:
            _check_column(expression)


def _check_column(column, *, inside_referrers: bool = False) -> None:
    if isinstance(column, (Id, Updated)):
        return
    if isinstance(column, Referrers) and any(not w.codes for w in column.where):
        raise TabulationError("TokenIs needs at least one code")
    if isinstance(column, Value):
        if column.field not in FIELDS:
            raise TabulationError(f"Value.field must be one of {sorted(FIELDS)}, not {column.field!r}")
        return
    if inside_referrers:
        raise TabulationError("inside Referrers a column is an Id, Updated or Value of the referring resource")
    if isinstance(column, Follow):
        _check_column(column.column)
    elif isinstance(column, Referrers):
        _check_column(column.column, inside_referrers=True)
    else:
        raise TabulationError(f"{type(column).__name__} is not a column here (Coalesce and NotAfter: top level only)")
