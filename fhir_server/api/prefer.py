"""The ``Prefer`` header (RFC 7240, R4 http.html#ops): return= and handling=."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Preference", "parse_prefer"]

_RETURNS = {"minimal": "minimal", "representation": "representation", "operationoutcome": "OperationOutcome"}


@dataclass(frozen=True)
class Preference:
    return_pref: str = "representation"
    strict: bool = False


def parse_prefer(header: str | None) -> Preference:
    if not header:
        return Preference()
    return_pref, strict = "representation", False
    for token in header.replace(";", ",").split(","):
        name, _, value = token.strip().partition("=")
        value = value.strip().strip('"').lower()
        if name.strip().lower() == "return" and value in _RETURNS:
            return_pref = _RETURNS[value]
        elif name.strip().lower() == "handling":
            strict = value == "strict"
    return Preference(return_pref, strict)
