"""token parameters (R4 §3.1.1.4.10 / search.html#token): ``[system]|[code]``."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.errors import InvalidSearch
from fhir_server.search.index import TokenEntry

__all__ = ["TokenValue", "MODIFIERS", "parse_value", "extract"]

MODIFIERS = frozenset({"not", "missing"})


@dataclass(frozen=True, slots=True)
class TokenValue:
    """``code`` (any system), ``system|code``, ``|code`` (no system) or ``system|`` (any code)."""

    system: str | None
    code: str | None
    #: True when the query named a system part ("|code" names the empty system)
    system_given: bool


def _unescape(text: str) -> str:
    return text.replace("\\|", "|").replace("\\,", ",").replace("\\$", "$").replace("\\\\", "\\")


def _split_unescaped_pipe(raw: str) -> list[str]:
    parts, buf, i = [], "", 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            buf += raw[i : i + 2]
            i += 2
            continue
        if ch == "|":
            parts.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    parts.append(buf)
    return parts


def parse_value(raw: str, modifier: str | None) -> TokenValue:
    parts = _split_unescaped_pipe(raw)
    if len(parts) == 1:
        if not parts[0]:
            raise InvalidSearch("A token search value may not be empty")
        return TokenValue(None, _unescape(parts[0]), False)
    if len(parts) != 2:
        raise InvalidSearch(f"Invalid token {raw!r}: use [system]|[code]")
    system, code = (_unescape(p) for p in parts)
    if not system and not code:
        raise InvalidSearch(f"Invalid token {raw!r}: system and code are both empty")
    return TokenValue(system or None, code or None, True)


def extract(code: str, nodes: list) -> list[TokenEntry]:
    out: list[TokenEntry] = []
    for node in nodes:
        if isinstance(node, dict):
            if "coding" in node:  # CodeableConcept
                for coding in node.get("coding") or ():
                    if coding.get("code") is not None:
                        out.append(TokenEntry(code, coding.get("system"), str(coding["code"])))
            elif "value" in node and "code" not in node:  # Identifier, ContactPoint
                out.append(TokenEntry(code, node.get("system"), str(node["value"])))
            elif "code" in node:  # Coding, Quantity-as-token
                out.append(TokenEntry(code, node.get("system"), str(node["code"])))
        elif isinstance(node, bool):
            out.append(TokenEntry(code, None, "true" if node else "false"))
        elif isinstance(node, (str, int, float)):
            out.append(TokenEntry(code, None, str(node)))
    return out
