"""How the measures' strata are coded (domain.md §8, written down in docs/reporting.md).

- age band: whole years of age on the day of receipt (region time zone), from the
  birth date: ``0-5``, ``6-12``, ``13-17``, ``18+``; ``unknown`` without a birth date;
- municipality: the home address's district (the first address when none is ``home``)
  naming a Swedish municipality by name (any case) or kommunkod is coded by its
  kommunkod (``mappings/municipalities.json``); another district as written;
  ``unknown`` without one;
- unit, mobile team, SKR unit: an Organization coded by its HSA-id, or ``Organization/{id}``
  when it has none; ``none`` where nothing was handed on.

Only the distinct values of a tabulation are coded here (a few hundred at most), so the
Organizations named are read by id, in one batch.
"""

from __future__ import annotations

import functools
from datetime import date

import orjson

from fhir_server.conformance.mappings import load_mappings
from fhir_server.engine import Work

__all__ = [
    "AGE_BANDS",
    "HSA_SYSTEM",
    "KOMMUNKOD_SYSTEM",
    "NONE",
    "UNKNOWN",
    "age_band",
    "municipality",
    "organization_codes",
]

HSA_SYSTEM = "urn:oid:1.2.752.29.4.19"
KOMMUNKOD_SYSTEM = "urn:oid:1.2.752.129.2.2.1.17"
AGE_BANDS = ("0-5", "6-12", "13-17", "18+")
NONE = "none"
UNKNOWN = "unknown"


def age_band(birth: date | None, on: date | None) -> str:
    if birth is None or on is None:
        return UNKNOWN
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    if years < 0:
        return UNKNOWN
    return "0-5" if years <= 5 else "6-12" if years <= 12 else "13-17" if years <= 17 else "18+"


@functools.lru_cache(maxsize=1)
def _municipalities() -> dict[str, str]:
    """Name (case-folded) or kommunkod -> kommunkod (immutable once read)."""
    table = load_mappings("municipalities")
    codes: dict[str, str] = {}
    for m in table["municipalities"]:
        codes[m["code"]] = m["code"]
        codes[m["name"].casefold()] = m["code"]
    return codes


def municipality(district: str | None) -> str:
    if not district or not district.strip():
        return UNKNOWN
    text = district.strip()
    return _municipalities().get(text) or _municipalities().get(text.casefold()) or text


def municipality_name(code: str) -> str | None:
    table = load_mappings("municipalities")
    return next((m["name"] for m in table["municipalities"] if m["code"] == code), None)


def organization_codes(work: Work, references: set[str | None]) -> dict[str | None, str]:
    """``Organization/{id}`` -> its HSA-id (else the reference); None -> ``none``."""
    ids = sorted({r.partition("/")[2] for r in references if r and r.startswith("Organization/")})
    coded: dict[str | None, str] = {None: NONE}
    for version in work.uow.load("Organization", ids):
        body = orjson.loads(version.body)
        hsa = next((i.get("value") for i in body.get("identifier") or ()
                    if isinstance(i, dict) and i.get("system") == HSA_SYSTEM and i.get("value")), None)
        coded[f"Organization/{version.id}"] = hsa or f"Organization/{version.id}"
    for reference in references:
        coded.setdefault(reference, reference or NONE)
    return coded
