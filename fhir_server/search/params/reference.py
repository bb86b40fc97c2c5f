"""reference parameters (R4 search.html#reference): ``[type]/[id]``, ``[id]``, an
absolute URL (this server's base counts as local), a canonical url (``|version``
ignored); ``:[type]`` restricts the target type; ``:identifier`` matches
Reference.identifier as a token. Chaining is parsed in ``search/plan.py``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import ReferenceEntry, TokenEntry
from fhir_server.search.params import token

__all__ = ["ReferenceValue", "MODIFIERS", "TYPE_MODIFIER", "IDENTIFIER_SUFFIX", "parse_value", "extract", "local_part"]

MODIFIERS = frozenset({"identifier", "missing"})
#: any resource type name is also a modifier (``subject:Patient=123``)
TYPE_MODIFIER = True
#: Reference.identifier is indexed as a token under ``param:identifier``
IDENTIFIER_SUFFIX = ":identifier"

_LOCAL = re.compile(r"^(?:(?P<base>https?://.+)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    target_type: str | None
    target_id: str | None
    #: an absolute or canonical url that is not a local Type/id
    url: str | None
    base: str | None = None  # the base of an absolute Type/id url, if any


def local_part(text: str) -> tuple[str | None, str | None, str | None]:
    """(base, type, id) of ``[base/]Type/id[/_history/v]``, or Nones."""
    m = _LOCAL.match(text)
    if not m:
        return None, None, None
    return m["base"], m["type"], m["id"]


def parse_value(raw: str, modifier: str | None, definition=None):
    if not raw:
        raise InvalidSearch("A reference search value may not be empty")
    if modifier == "identifier":
        return token.parse_value(raw, None)
    base, rtype, rid = local_part(raw)
    if rtype is not None:
        if modifier is not None and modifier != rtype:
            raise InvalidSearch(f"Reference {raw!r} contradicts the :{modifier} modifier")
        return ReferenceValue(rtype, rid, raw if base else None, base)
    if "/" not in raw and ":" not in raw:  # a bare id
        return ReferenceValue(modifier, raw, None)
    return ReferenceValue(None, None, raw)  # a canonical keeps its |version: it must match too


def extract(definition, nodes: list) -> list:
    code = definition if isinstance(definition, str) else definition.code
    out: list = []
    for node in nodes:
        text = node.get("reference") if isinstance(node, dict) else node if isinstance(node, str) else None
        if isinstance(text, str) and text and not text.startswith("#"):
            # a canonical's |version is matched with and without it
            unversioned = text.split("|", 1)[0]
            base, rtype, rid = local_part(unversioned)
            if rtype is not None:
                # an absolute Type/id url is indexed both ways; the engine decides what is local
                out.append(ReferenceEntry(code, rtype, rid, unversioned if base else None))
            else:
                out.append(ReferenceEntry(code, None, None, unversioned))
            if unversioned != text:
                out.append(ReferenceEntry(code, None, None, text))
        if isinstance(node, dict) and isinstance(node.get("identifier"), dict):
            out.extend(
                TokenEntry(code + IDENTIFIER_SUFFIX, e.system, e.code, e.text)
                for e in token.extract(code, [node["identifier"]])
            )
    return out
