"""Search-parameter expressions compiled once: a fast path for the forms that make up
almost all of the spec's expressions, fhirpathpy for everything else.

Fast forms (about 95% of R4's expression parts):
- ``Type.a.b`` — a plain path (choice elements like ``Observation.value`` resolve to
  ``valueQuantity``, ``valueString``, ... as FHIRPath does);
- ``(Type.a as T)``, ``Type.a.as(T)``, ``Type.a.ofType(T)`` — one choice type;
- ``Type.a.where(resolve() is T)`` — references whose target type is T (judged from
  the reference text, as HAPI does: the server cannot resolve while indexing);
- paths with filtering steps ``extension('url')`` and ``where(name = 'text')`` (the
  guide's parameters on extensions: ``ServiceRequest.extension('…').value``; falling
  back to fhirpathpy for them cost a tenth of a create).
The fast path returns what fhirpathpy returns for these forms (a test compares
both on the spec's examples).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable

import fhirpathpy
from fhirpathpy.models import models

from fhir_server.spec import load_table

__all__ = ["compile_expression", "compile_relative", "split_union", "check_syntax", "expression_roots"]

_PATH = r"[A-Z][A-Za-z]+(?:\.[a-z][A-Za-z]*)+"
_RELATIVE_PATH = r"[a-z][A-Za-z]*(?:\.[a-z][A-Za-z]*)*"
_RELATIVE = re.compile(rf"^({_RELATIVE_PATH})(?:\.(?:as|ofType)\(([A-Za-z]+)\))?$")
_SIMPLE = re.compile(rf"^({_PATH})$")
_AS_PARENS = re.compile(rf"^\(({_PATH}) as ([A-Za-z]+)\)$")
_AS_CALL = re.compile(rf"^({_PATH})\.(?:as|ofType)\(([A-Za-z]+)\)$")
_RESOLVE_IS = re.compile(rf"^({_PATH})\.where\(resolve\(\) is ([A-Z][A-Za-z]+)\)$")
_STEP = r"\.(?:extension\('[^'\\]*'\)|where\([a-z][A-Za-z]* ?= ?'[^'\\]*'\)|[a-z][A-Za-z]*(?![(A-Za-z]))"
_FILTERED = re.compile(rf"^([A-Z][A-Za-z]+)((?:{_STEP})+)$")
_STEPS = re.compile(r"\.(?:extension\('([^']*)'\)|where\(([a-z][A-Za-z]*) ?= ?'([^']*)'\)|([a-z][A-Za-z]*))")


@lru_cache(maxsize=1)
def _choice_stems() -> frozenset[str]:
    """Every name that is a choice element somewhere in R4 (``value`` of ``value[x]``)."""
    types = load_table("types")
    return frozenset(
        element[:-3] for name, entry in types.items() if not name.startswith("_")
        for element in entry.get("e", {}) if element.endswith("[x]")
    )


def _children(node: object, name: str, only_type: str | None) -> list:
    if not isinstance(node, dict):
        return []
    if only_type is None:
        if name in node:
            value = node[name]
            return value if isinstance(value, list) else [value]
        if name not in _choice_stems():  # absent, and no valueX-style spelling to look for
            return []
    # a choice element: name + TypeName (valueQuantity, occurrenceDateTime, ...)
    out = []
    for key, value in node.items():
        if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
            type_name = key[len(name):]
            if only_type is not None and type_name.lower() != only_type.lower():
                continue
            out.extend(value if isinstance(value, list) else [value])
    return out


def _navigator(path: str, only_type: str | None = None, relative: bool = False) -> Callable[[dict], list]:
    """Follow ``Type.a.b`` from a resource, or ``a.b`` from any element when ``relative``."""
    root, *steps = (None, *path.split(".")) if relative else path.split(".")

    def navigate(resource: dict) -> list:
        if root is not None and resource.get("resourceType") != root and root not in ("Resource", "DomainResource"):
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


def _filtered(root: str, steps_text: str) -> Callable[[dict], list]:
    """``Type`` then steps: a child name, ``extension('url')`` (the extensions with that
    url) or ``where(name = 'text')`` (the nodes whose single ``name`` is that string)."""
    steps, position = [], 0
    while position < len(steps_text):  # step by step from the start: a url holds dots too
        m = _STEPS.match(steps_text, position)
        url, field, text, name = m.groups()
        steps.append((name, url, field, text))
        position = m.end()

    def navigate(resource: dict) -> list:
        if resource.get("resourceType") != root:
            return []
        nodes = [resource]
        for name, url, field, text in steps:
            if name:
                nodes = [child for node in nodes for child in _children(node, name, None)]
            elif field:
                nodes = [node for node in nodes if isinstance(node, dict) and node.get(field) == text]
            else:
                nodes = [
                    ext for node in nodes if isinstance(node, dict)
                    for ext in _children(node, "extension", None)
                    if isinstance(ext, dict) and ext.get("url") == url
                ]
            if not nodes:
                return []
        return nodes

    return navigate


def _compile_part(part: str) -> Callable[[dict], list]:
    if m := _SIMPLE.match(part):
        return _navigator(m.group(1))
    if m := _AS_PARENS.match(part) or _AS_CALL.match(part):
        return _navigator(m.group(1), m.group(2))
    if m := _RESOLVE_IS.match(part):
        return _references_to(m.group(1), m.group(2))
    if m := _FILTERED.match(part):
        return _filtered(m.group(1), m.group(2))
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


def expression_roots(expression: str) -> tuple[str, ...] | None:
    """The top-level elements a fast-path expression can find anything under (``ServiceRequest.
    subject.where(...)`` -> ``("subject",)``), so that indexing can skip it for a resource
    without them; None where that cannot be told (fhirpathpy, a choice element spelled
    ``valueX``, a filter on the resource itself)."""
    roots: list[str] = []
    types = load_table("types")
    for part in split_union(expression):
        m = _SIMPLE.match(part) or _AS_PARENS.match(part) or _AS_CALL.match(part) or _RESOLVE_IS.match(part)
        if m:
            root, first = m.group(1).split(".")[:2]
        elif m := _FILTERED.match(part):
            root = m.group(1)
            url, field, _, first = _STEPS.match(m.group(2)).groups()
            if field is not None:
                return None
            first = "extension" if url is not None else first
        else:
            return None
        # a choice element of the type is spelled valueQuantity, valueString...: no one key to look for
        if f"{first}[x]" in types.get(root, {}).get("e", {}) or root not in types:
            return None
        roots.append(first)
    return tuple(dict.fromkeys(roots))


def compile_relative(expression: str) -> Callable[[dict], list]:
    """A composite component's expression, evaluated on an element rather than a resource
    (``code``, ``value.as(Quantity)``): fhirpathpy cannot type a bare element."""
    parts = []
    for part in split_union(expression):
        m = _RELATIVE.match(part)
        if m:
            parts.append(_navigator(m.group(1), m.group(2), relative=True))
        else:
            compiled = fhirpathpy.compile(part, models["r4"])
            parts.append(lambda node, compiled=compiled: compiled(node))
    return lambda node: [v for part in parts for v in part(node)]


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


def check_syntax(expression: str) -> None:
    """Raise ValueError unless ``expression`` is well-formed FHIRPath.

    fhirpathpy recovers from syntax errors silently (``Patient.name)))`` compiles),
    so this parses with the same grammar and an error listener that raises.
    """
    from antlr4 import CommonTokenStream, InputStream, Token
    from antlr4.error.ErrorListener import ErrorListener
    from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
    from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

    class _Raise(ErrorListener):
        def syntaxError(self, recognizer, offending, line, column, msg, e):
            raise ValueError(f"column {column + 1}: {msg}")

    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(_Raise())
    parser.expression()
    if tokens.LA(1) != Token.EOF:
        raise ValueError(f"unexpected {tokens.LT(1).text!r} after the expression")
