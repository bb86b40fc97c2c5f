"""A small native evaluator for the plain shapes of invariant expressions: paths of
element names (choices read as ``value`` -> ``valueCoding``), ``extension('url')``,
string, number and boolean literals, ``=`` / ``!=`` / ``<`` ... , ``and`` / ``or`` /
``xor`` / ``implies`` / ``not()``, and ``exists()``, ``empty()``, ``count()``,
``hasValue()``, ``startsWith()``.  fhirpathpy takes 30-100 us an expression
(evi-ref-2 on a referral: 100 us, most of a profile validation); these shapes, over
plain JSON, take a few.

Compiled from fhirpathpy's own parse tree, so the grammar is fhirpathpy's.  Anything
else -- another function, a variable, a type name, a date literal -- is not compiled
(``native(expression)`` is None) and fhirpathpy evaluates the expression.  While
evaluating, whatever the subset does not decide exactly as FHIRPath does raises
``Fallback`` and fhirpathpy evaluates that instance: a primitive's ``_name`` part
(an element with extensions and perhaps no value), equality of complex values,
operands of a boolean operator that are not one boolean, ``startsWith`` on more than
one string.  ``tests/conformance/validation/test_fhirpath_native.py`` holds it to
fhirpathpy's verdicts on the core invariants over the official examples.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache

from fhirpathpy.parser import parse

from fhir_server.conformance.validation.definitions import SUFFIX_TO_TYPE

__all__ = ["Fallback", "native"]

Fn = Callable[[list], list]


class Fallback(Exception):
    """This instance is beyond the subset: evaluate it with fhirpathpy."""


class _NotNative(Exception):
    """The expression is beyond the subset."""


_LOCK = threading.Lock()


@lru_cache(maxsize=4096)
def _compiled(expression: str) -> Fn | None:
    try:
        tree = parse(expression)
        return _expr(tree["children"][0])
    except _NotNative:
        return None
    except Exception:  # noqa: BLE001 - fhirpathpy's parser raises bare exceptions; it decides then
        return None


def native(expression: str) -> Fn | None:
    """``f(focus_list) -> result_list`` for *expression*, or None (use fhirpathpy)."""
    with _LOCK:  # lru_cache is thread-safe, but compile each expression once
        return _compiled(expression)


# ------------------------------------------------------------------------------ compiling


def _kids(node: dict) -> list[dict]:
    return node.get("children") or []


def _expr(node: dict) -> Fn:
    kind = node.get("type")
    kids = _kids(node)
    if kind == "TermExpression":
        return _term(kids[0])
    if kind == "InvocationExpression":
        return _invocation(_expr(kids[0]), kids[1])
    if kind in ("AndExpression", "OrExpression", "ImpliesExpression", "XorExpression"):
        op = node["terminalNodeText"][0] if node.get("terminalNodeText") else kind[:-10].lower()
        return _logic(op, _expr(kids[0]), _expr(kids[1]))
    if kind == "EqualityExpression":
        op = node["terminalNodeText"][0]
        if op not in ("=", "!="):
            raise _NotNative(op)
        return _equality(op == "!=", _expr(kids[0]), _expr(kids[1]))
    if kind == "InequalityExpression":
        return _compare(node["terminalNodeText"][0], _expr(kids[0]), _expr(kids[1]))
    raise _NotNative(kind)


def _term(node: dict) -> Fn:
    kind = node.get("type")
    kids = _kids(node)
    if kind == "ParenthesizedTerm":
        return _expr(kids[0])
    if kind == "LiteralTerm":
        value = _literal(kids[0])
        return lambda focus: [value]
    if kind == "InvocationTerm":
        return _invocation(lambda focus: focus, kids[0])
    raise _NotNative(kind)


def _literal(node: dict):
    kind, text = node.get("type"), node.get("text") or ""
    if kind == "StringLiteral" and "\\" not in text and len(text) >= 2:
        return text[1:-1]
    if kind == "BooleanLiteral":
        return text == "true"
    if kind == "NumberLiteral":
        return float(text) if "." in text else int(text)
    raise _NotNative(kind)


def _invocation(source: Fn, node: dict) -> Fn:
    kind = node.get("type")
    kids = _kids(node)
    if kind == "MemberInvocation":
        name = kids[0].get("text") or ""
        if not name[:1].islower():  # a type name, `quoted`, $this ...
            raise _NotNative(name)
        return lambda focus: _member(source(focus), name)
    if kind == "FunctionInvocation":
        functn = _kids(kids[0])
        name = functn[0].get("text")
        args = _kids(functn[1]) if len(functn) > 1 else []
        return _function(name, source, args)
    raise _NotNative(kind)


def _function(name: str, source: Fn, args: list[dict]) -> Fn:
    if name in _NO_ARGS and not args:
        fn = _NO_ARGS[name]
        return lambda focus: fn(source(focus))
    if name in ("extension", "startsWith") and len(args) == 1:
        arg = _expr(args[0])
        literal = arg([])
        if len(literal) != 1 or not isinstance(literal[0], str):
            raise _NotNative(name)
        text = literal[0]
        if name == "extension":
            return lambda focus: _extension(source(focus), text)
        return lambda focus: _starts_with(source(focus), text)
    raise _NotNative(name)


# ------------------------------------------------------------------------------ evaluating


def _member(items: list, name: str) -> list:
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if "_" + name in item:
            raise Fallback(name)  # a primitive's extensions: FHIRPath sees an element there
        found = item.get(name)
        if found is None:
            for key, value in item.items():  # a choice: value -> valueCoding
                if key.startswith(name) and key[len(name):] in SUFFIX_TO_TYPE:
                    if "_" + key in item:
                        raise Fallback(key)
                    found = value
                    break
            if found is None:
                continue
        if isinstance(found, list):
            out.extend(x for x in found if x is not None)
        else:
            out.append(found)
    return out


def _extension(items: list, url: str) -> list:
    return [e for e in _member(items, "extension") if isinstance(e, dict) and e.get("url") == url]


def _starts_with(items: list, prefix: str) -> list:
    if not items:
        return []
    if len(items) > 1 or not isinstance(items[0], str):
        raise Fallback("startsWith")
    return [items[0].startswith(prefix)]


def _has_value(items: list) -> list:
    return [len(items) == 1 and not isinstance(items[0], dict | list)]


def _not(items: list) -> list:
    b = _boolean(items)
    return [] if b is None else [not b]


_NO_ARGS: dict[str, Callable[[list], list]] = {
    "exists": lambda items: [bool(items)],
    "empty": lambda items: [not items],
    "count": lambda items: [len(items)],
    "not": _not,
    "hasValue": _has_value,
}


def _boolean(items: list) -> bool | None:
    """A boolean operand: one boolean, or empty (None)."""
    if not items:
        return None
    if len(items) == 1 and isinstance(items[0], bool):
        return items[0]
    raise Fallback("boolean operand")


def _logic(op: str, left: Fn, right: Fn) -> Fn:
    if op == "and":
        def fn(focus):
            a = _boolean(left(focus))
            if a is False:
                return [False]
            b = _boolean(right(focus))
            if b is False:
                return [False]
            return [True] if a and b else []
    elif op == "or":
        def fn(focus):
            a = _boolean(left(focus))
            if a is True:
                return [True]
            b = _boolean(right(focus))
            if b is True:
                return [True]
            return [False] if a is False and b is False else []
    elif op == "implies":
        def fn(focus):
            a = _boolean(left(focus))
            if a is False:
                return [True]
            b = _boolean(right(focus))
            if b is True:
                return [True]
            return [False] if a is True and b is False else []
    elif op == "xor":
        def fn(focus):
            a, b = _boolean(left(focus)), _boolean(right(focus))
            return [] if a is None or b is None else [a != b]
    else:
        raise _NotNative(op)
    return fn


def _same(a, b) -> bool:
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        raise Fallback("complex equality")
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, str) != isinstance(b, str):
        raise Fallback("mixed equality")  # '1' = 1, a date against a string ...: FHIRPath's conversions
    return a == b


def _equality(negate: bool, left: Fn, right: Fn) -> Fn:
    def fn(focus):
        a, b = left(focus), right(focus)
        if not a or not b:
            return []
        same = len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
        return [same != negate]
    return fn


_COMPARE = {"<": lambda a, b: a < b, ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def _compare(op: str, left: Fn, right: Fn) -> Fn:
    test = _COMPARE.get(op)
    if test is None:
        raise _NotNative(op)

    def fn(focus):
        a, b = left(focus), right(focus)
        if not a or not b:
            return []
        if len(a) > 1 or len(b) > 1 or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                               for x in (a[0], b[0])):
            raise Fallback("comparison")  # strings (dates, times), quantities: FHIRPath's rules
        return [test(a[0], b[0])]
    return fn
