"""Swedish identifiers on every resource and path (domain.md §2): the systems the product
emits, the variants it accepts and normalises, and the format of each value.

Every Identifier a write carries -- ``Patient.identifier``, a Reference's ``identifier``,
``Extension.valueIdentifier``, in contained resources and Bundle entries alike -- whose
system is one of these is checked, whether or not the resource claims a profile:

| system emitted | accepted too | value |
|---|---|---|
| ``http://electronichealth.se/identifier/personnummer`` | ``urn:oid:1.2.752.129.2.1.3.1``, ``https://terminology.hl7.se/sid/se-personnummer`` | 12 digits YYYYMMDDNNNC, a real date, Luhn over the last 10 |
| ``…/samordningsnummer`` | ``urn:oid:1.2.752.129.2.1.3.3`` | as a personnummer with day of birth + 60 |
| ``…/nationelltReservnummer`` | ``…/nationelltReservnumer`` (one m) | 12 characters XXYYMMDDNNGC (Inera's NRID format) |
| ``urn:oid:1.2.752.29.4.19`` (HSA-id) | | ``SE``, 10-digit organisation number, ``-``, letters or digits; at most 31 |
| ``urn:oid:2.5.4.97`` (organisationsnummer) | | 10 digits, Luhn |
| ``urn:oid:1.2.752.129.2.2.1.17`` (kommunkod) | | 4 digits, an SCB county code first |

Accepted variants are rewritten to the emitted system on write (so searches, profiles and
the workflow see one system). A value that breaks its system's format is refused with 422
(``Unprocessable``, issue code ``value``): it is a server business rule, the same answer
a client gets when a claimed ``evi-patient`` profile catches it (R4 http.html: "422 ... the
proposed resource violated applicable FHIR profiles or server business rules"). An
Identifier without a value (e.g. only a data-absent-reason extension) has nothing to check.

Sources: the Luhn check digit of personnummer and samordningsnummer (Skatteverket SKV 704)
and organisationsnummer (SKV 709); the HSA-id prefix rules (Inera: "SE<katalogägarens
organisationsnummer, 10 tecken>-<A-Z, a-z, 0-9>, högst 31 tecken"); the national reserve
number format NRID (Inera, "Nationellt ReservID": XX sekel + constant or 00, YYMMDD, two
letters, a sex digit, a check digit -- its check-digit algorithm is not public, so only the
shape and the date are checked); SCB's county codes for kommunkod.
"""

from __future__ import annotations

import re
from datetime import date

from fhir_server.errors import Issue

__all__ = [
    "PERSONNUMMER",
    "SAMORDNINGSNUMMER",
    "RESERVNUMMER",
    "HSA_ID",
    "ORGANISATIONSNUMMER",
    "KOMMUNKOD",
    "ACCEPTED_SYSTEMS",
    "emitted_system",
    "luhn_ok",
    "identifier_problem",
    "check_identifiers",
]

PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
RESERVNUMMER = "http://electronichealth.se/identifier/nationelltReservnummer"
HSA_ID = "urn:oid:1.2.752.29.4.19"
ORGANISATIONSNUMMER = "urn:oid:2.5.4.97"
KOMMUNKOD = "urn:oid:1.2.752.129.2.2.1.17"

#: accepted variant -> the system the product emits (domain.md §2, "also accepted")
_VARIANTS = {
    "urn:oid:1.2.752.129.2.1.3.1": PERSONNUMMER,
    "https://terminology.hl7.se/sid/se-personnummer": PERSONNUMMER,
    "urn:oid:1.2.752.129.2.1.3.3": SAMORDNINGSNUMMER,
    "http://electronichealth.se/identifier/nationelltReservnumer": RESERVNUMMER,
}

_TWELVE_DIGITS = re.compile(r"(\d{4})(\d{2})(\d{2})\d{4}")
_RESERVE = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})[A-Z]{2}[0-9A-Z]\d")
_HSA = re.compile(r"SE\d{10}-[A-Za-z0-9]+")
#: SCB's county (län) codes, the first two digits of every kommunkod
_COUNTIES = frozenset({"01", "03", "04", "05", "06", "07", "08", "09", "10", "12", "13", "14", "17", "18", "19",
                       "20", "21", "22", "23", "24", "25"})


def emitted_system(system: str) -> str:
    """The system the product emits for ``system`` (itself when it is no accepted variant)."""
    return _VARIANTS.get(system, system)


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of a digit string whose last digit is the check digit;
    for a 12-digit personnummer pass the last 10 (the check covers YYMMDDNNN)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _person_number(value: str, day_offset: int, what: str) -> str | None:
    m = _TWELVE_DIGITS.fullmatch(value)
    if m is None or value[:2] not in ("19", "20"):
        return f"a {what} is 12 digits YYYYMMDDNNNC (century included, no hyphen)"
    year, month, day = int(m[1]), int(m[2]), int(m[3]) - day_offset
    if not _real_date(year, month, day):
        shifted = " (day of birth + 60)" if day_offset else ""
        return f"the {what} {value} does not start with a real date of birth{shifted}"
    if not luhn_ok(value[2:]):
        return f"the {what} {value} has a wrong Luhn check digit (computed over the last 10 digits)"
    return None


def _personnummer(value: str) -> str | None:
    return _person_number(value, 0, "personnummer")


def _samordningsnummer(value: str) -> str | None:
    return _person_number(value, 60, "samordningsnummer")


def _reservnummer(value: str) -> str | None:
    m = _RESERVE.fullmatch(value)
    if m is None:
        return "a nationellt reservnummer is 12 characters XXYYMMDDNNGC: 8 digits, 2 capital letters, a sex digit or letter and a check digit"
    prefix, month, day = int(m[1]), int(m[3]), int(m[4])
    if prefix == 0:  # unknown date of birth: a serial in YYMMDD with MM 20-99 and DD 40-59
        if month < 20 or not 40 <= day <= 59:
            return f"the reservnummer {value} (unknown date of birth, 00) needs MM 20-99 and DD 40-59"
        return None
    # a known date of birth: XX is its century (19, 20) plus 3, 6, ... 78; 01-21 are not used
    century = next((c for c in (19, 20) if prefix - c >= 3 and (prefix - c) % 3 == 0), None)
    if century is None:
        return f"the reservnummer {value} starts with {m[1]}: neither 00 nor a century (19, 20) plus a multiple of 3"
    if not _real_date(century * 100 + int(m[2]), month, day):
        return f"the reservnummer {value} does not hold a real date of birth"
    return None


def _hsa_id(value: str) -> str | None:
    if _HSA.fullmatch(value) is None or len(value) > 31:
        return ("an HSA-id is SE, the 10-digit organisation number, a hyphen and letters or digits "
                "(A-Z, a-z, 0-9), at most 31 characters")
    return None


def _organisationsnummer(value: str) -> str | None:
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        return "an organisationsnummer is 10 digits without hyphen"
    if not luhn_ok(value):
        return f"the organisationsnummer {value} has a wrong Luhn check digit"
    return None


def _kommunkod(value: str) -> str | None:
    if len(value) != 4 or not value.isascii() or not value.isdigit() or value[:2] not in _COUNTIES:
        return "a kommunkod is SCB's 4-digit municipality code, starting with a county code (01, 03-10, 12-14, 17-25)"
    return None


_CHECKS = {
    PERSONNUMMER: _personnummer,
    SAMORDNINGSNUMMER: _samordningsnummer,
    RESERVNUMMER: _reservnummer,
    HSA_ID: _hsa_id,
    ORGANISATIONSNUMMER: _organisationsnummer,
    KOMMUNKOD: _kommunkod,
}
#: every system whose Identifiers are checked (the emitted ones and their variants)
ACCEPTED_SYSTEMS = frozenset(_CHECKS) | frozenset(_VARIANTS)


def identifier_problem(system: str, value: object) -> str | None:
    """What is wrong with ``value`` as an identifier of ``system`` (emitted or a variant), or None."""
    check = _CHECKS.get(emitted_system(system))
    if check is None or not isinstance(value, str):
        return None  # not a Swedish system, or no value (the models hold value to a string)
    return check(value)


def check_identifiers(found: list[tuple[dict, str]]) -> list[Issue]:
    """Normalise the system of each (Identifier, FHIRPath) in place and return the issues of
    their values. The Identifiers were found by the model's walk (``ACCEPTED_SYSTEMS``)."""
    issues = []
    for identifier, path in found:
        system = identifier["system"]
        emitted = emitted_system(system)
        if emitted != system:
            identifier["system"] = emitted
        problem = identifier_problem(emitted, identifier.get("value"))
        if problem is not None:
            issues.append(Issue(problem[0].upper() + problem[1:], "value", (f"{path}.value",)))
    return issues
