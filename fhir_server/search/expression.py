"""Search-parameter expressions compiled once: a fast path for the forms that make up
almost all of the spec's expressions, fhirpathpy for everything else.

Fast forms (about 95% of R4's expression parts):
- ``Type.a.b`` — a plain path (choice elements like ``Observation.value`` resolve to
  ``valueQuantity``, ``valueString``, ... as FHIRPath does);
- ``(Type.a as T)``, ``Type.a.as(T)``, ``Type.a.ofType(T)`` — one choice type;
- ``Type.a.where(resolve() is T)`` — references whose target type is T (judged from
  the reference text, as HAPI does: the server cannot resolve while indexing).
The fast path returns what fhirpathpy returns for these forms (a test compares
both on the spec's examples).
"""

from __future__ import annotations

import re
from typing import Callable

import fhirpathpy
from fhirpathpy.models import models

__all__ = ["compile_expression", "split_union"]

_PATH = r"[A-Z][A-Za-z]+(?:\.[a-z][A-Za-z]*)+"
_SIMPLE = re.compile(rf"^({_PATH})$")
_AS_PARENS = re.compile(rf"^\(({_PATH}) as ([A-Za-z]+)\)$")
_AS_CALL = re.compile(rf"^({_PATH})\.(?:as|ofType)\(([A-Za-z]+)\)$")
_RESOLVE_IS = re.compile(rf"^({_PATH})\.where\(resolve\(\) is ([A-Z][A-Za-z]+)\)$")


def _children(node: object, name: str, only_type: str | None) -> list:
    if not isinstance(node, dict):
        return []
    if only_type is None and name in node:
        value = node[name]
        return value if isinstance(value, list) else [value]
    # a choice element: name + TypeName (valueQuantity, occurrenceDateTime, ...)
    out = []
    for key, value in node.items():
        if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
            type_name = key[len(name):]
            if only_type is not None and type_name.lower() != only_type.lower():
                continue
            out.extend(value if isinstance(value, list) else [value])
    return out


def _navigator(path: str, only_type: str | None = None) -> Callable[[dict], list]:
    root, *steps = path.split(".")

    def navigate(resource: dict) -> list:
        if resource.get("resourceType") != root and root not in ("Resource", "DomainResource"):
            return []
        nodes = [resource]
        last = len(steps) - 1
        for i, step in enumerate(steps):
            next_nodes = []
            for node in nodes:
                next_nodes.extend(_children(node, step, only_type if i == last else None))
            if not next_nodes:
                return []
            nodes = next_nodes
        return nodes

    return navigate


def _references_to(path: str, target: str) -> Callable[[dict], list]:
    navigate = _navigator(path)
    prefix = target + "/"

    def filtered(resource: dict) -> list:
        out = []
        for ref in navigate(resource):
            text = ref.get("reference") if isinstance(ref, dict) else None
            if isinstance(text, str) and (text.startswith(prefix) or f"/{prefix}" in text):
                out.append(ref)
            elif isinstance(ref, dict) and ref.get("type") == target:
                out.append(ref)
        return out

    return filtered


def _compile_part(part: str) -> Callable[[dict], list]:
    if m := _SIMPLE.match(part):
        return _navigator(m.group(1))
    if m := _AS_PARENS.match(part) or _AS_CALL.match(part):
        return _navigator(m.group(1), m.group(2))
    if m := _RESOLVE_IS.match(part):
        return _references_to(m.group(1), m.group(2))
    compiled = fhirpathpy.compile(part, models["r4"])
    return lambda resource: compiled(resource)


def compile_expression(expression: str) -> Callable[[dict], list]:
    """One callable for a ``|``-union of parts (the union of the parts' results)."""
    parts = [_compile_part(p.strip()) for p in split_union(expression)]
    if len(parts) == 1:
        return parts[0]

    def union(resource: dict) -> list:
        out = []
        for part in parts:
            out.extend(part(resource))
        return out

    return union


def split_union(expression: str) -> list[str]:
    """Split on top-level ``|`` (not inside parentheses or quotes)."""
    parts, depth, quoted, buf = [], 0, False, ""
    for ch in expression:
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        if ch == "|" and depth == 0 and not quoted:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
    parts.append(buf)
    return [p for p in (x.strip() for x in parts) if p]
