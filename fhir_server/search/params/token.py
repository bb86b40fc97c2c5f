"""token parameters (R4 search.html#token): ``[system]|[code]``.

Modifiers: ``:not``, ``:text`` (display text, starts-with like string search),
``:of-type`` (identifiers: ``type-system|type-code|value``), ``:in`` / ``:not-in``
(a ValueSet url; the engine expands it against local ValueSets), ``:missing``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.model.identifiers import emitted_system
from fhir_server.search.escaping import split_unescaped, unescape
from fhir_server.search.index import TokenEntry
from fhir_server.search.text import normalize

__all__ = ["TokenValue", "TextValue", "ValueSetValue", "OF_TYPE_SUFFIX", "MODIFIERS", "parse_value", "extract"]

MODIFIERS = frozenset({"not", "text", "of-type", "in", "not-in", "missing"})
#: identifiers with a type are also indexed as ``param:of-type`` with code ``type-code|value``
OF_TYPE_SUFFIX = ":of-type"


@dataclass(frozen=True, slots=True)
class TokenValue:
    """``code`` (any system), ``system|code``, ``|code`` (no system) or ``system|`` (any code)."""

    system: str | None
    code: str | None
    #: True when the query named a system part ("|code" names the empty system)
    system_given: bool


@dataclass(frozen=True, slots=True)
class TextValue:
    """``:text``: the normalised text the display must start with."""

    text: str


@dataclass(frozen=True, slots=True)
class ValueSetValue:
    """``:in`` / ``:not-in``: the ValueSet's url, expanded by the engine into ``codes``."""

    url: str
    codes: tuple[TokenValue, ...] = ()


def parse_value(raw: str, modifier: str | None, definition=None):
    if modifier == "text":
        if not raw:
            raise InvalidSearch("A :text search value may not be empty")
        return TextValue(normalize(unescape(raw)))
    if modifier in ("in", "not-in"):
        if not raw:
            raise InvalidSearch(f":{modifier} needs a ValueSet url")
        return ValueSetValue(unescape(raw))
    if modifier == "of-type":
        parts = split_unescaped(raw, "|")
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise InvalidSearch(f"Invalid :of-type value {raw!r}: use [type-system]|[type-code]|[value]")
        system, code, value = (unescape(p) for p in parts)
        return TokenValue(system or None, f"{code}|{value}", True)
    parts = split_unescaped(raw, "|")
    if len(parts) == 1:
        if not parts[0]:
            raise InvalidSearch("A token search value may not be empty")
        return TokenValue(None, unescape(parts[0]), False)
    if len(parts) != 2:
        raise InvalidSearch(f"Invalid token {raw!r}: use [system]|[code]")
    system, code = (unescape(p) for p in parts)
    if not system and not code:
        raise InvalidSearch(f"Invalid token {raw!r}: system and code are both empty")
    # a Swedish identifier system's accepted variant (the OID of personnummer...) finds what
    # writes stored under the emitted system (model/identifiers.py)
    return TokenValue(emitted_system(system) if system else None, code or None, True)


def _text(value: object) -> str | None:
    return normalize(value) if isinstance(value, str) and value else None


def extract(definition, nodes: list) -> list[TokenEntry]:
    code = definition if isinstance(definition, str) else definition.code
    out: list[TokenEntry] = []
    for node in nodes:
        if isinstance(node, dict):
            if "coding" in node or ("text" in node and "value" not in node and "code" not in node):  # CodeableConcept
                text = _text(node.get("text"))
                codings = [c for c in node.get("coding") or () if isinstance(c, dict)]
                for coding in codings:
                    if coding.get("code") is not None:
                        out.append(TokenEntry(code, coding.get("system"), str(coding["code"]), _text(coding.get("display")) or text))
                    elif coding.get("display"):
                        out.append(TokenEntry(code, coding.get("system"), None, _text(coding["display"])))
                if text and not any(e.text == text for e in out):
                    out.append(TokenEntry(code, None, None, text))
            elif "value" in node and "code" not in node:  # Identifier, ContactPoint
                value = str(node["value"])
                type_ = node.get("type") if isinstance(node.get("type"), dict) else {}
                out.append(TokenEntry(code, node.get("system"), value, _text(type_.get("text"))))
                for coding in type_.get("coding") or ():
                    if isinstance(coding, dict) and coding.get("code"):
                        out.append(TokenEntry(code + OF_TYPE_SUFFIX, coding.get("system"), f"{coding['code']}|{value}"))
            elif "code" in node:  # Coding, or Quantity used as a token
                out.append(TokenEntry(code, node.get("system"), str(node["code"]), _text(node.get("display"))))
        elif isinstance(node, bool):
            out.append(TokenEntry(code, None, "true" if node else "false"))
        elif isinstance(node, (str, int, float)):
            out.append(TokenEntry(code, None, str(node)))
    return out
