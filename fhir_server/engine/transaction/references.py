"""Identity substitution inside a transaction (HAPI's IdSubstitutionMap, in small).

Entries that create or update resources are known by their ``fullUrl``
(``urn:uuid:...`` or an absolute URL); every string in the Bundle equal to such a
fullUrl becomes the assigned ``Type/id`` (R4 http.html#trules: references,
uri/url elements and narrative links alike). Conditional references
(``Patient?identifier=...``) resolve to the one matching resource.
"""

from __future__ import annotations

import re

from fhir_server.engine.conditional import find_matches, parse_query
from fhir_server.engine.work import Work
from fhir_server.errors import BadRequest, NotFound, PreconditionFailed

__all__ = ["rewrite_references"]

_CONDITIONAL = re.compile(r"^([A-Z][A-Za-z]+)\?(.+)$")


def rewrite_references(work: Work, value: object, substitutions: dict[str, str], cache: dict[str, str]) -> object:
    """A copy of ``value`` with fullUrls and conditional references replaced."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                out[key] = _resolve(work, item, substitutions, cache)
            elif key == "div" and isinstance(item, str) and substitutions:
                for old, new in substitutions.items():
                    if old in item:
                        item = item.replace(f'"{old}"', f'"{new}"')
                out[key] = item
            else:
                out[key] = rewrite_references(work, item, substitutions, cache)
        return out
    if isinstance(value, list):
        return [rewrite_references(work, item, substitutions, cache) for item in value]
    if isinstance(value, str) and value in substitutions:
        return substitutions[value]
    return value


def _resolve(work: Work, reference: str, substitutions: dict[str, str], cache: dict[str, str]) -> str:
    if reference in substitutions:
        return substitutions[reference]
    if reference.startswith("urn:uuid:"):
        # it can only mean an entry of this Bundle, and none has that fullUrl
        raise BadRequest(f"Reference {reference!r} matches no fullUrl in the transaction")
    match = _CONDITIONAL.match(reference)
    if not match:
        return reference
    if reference not in cache:
        rtype, query = match.groups()
        ids = find_matches(work, rtype, parse_query(query))
        if not ids:
            raise NotFound(f"Conditional reference {reference!r} matches no resource")
        if len(ids) > 1:
            raise PreconditionFailed(f"Conditional reference {reference!r} matches more than one resource")
        cache[reference] = f"{rtype}/{ids[0]}"
    return cache[reference]
