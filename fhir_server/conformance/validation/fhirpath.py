"""FHIRPath for invariants: fhirpathpy, compiled once per expression, plus the
functions of FHIR's FHIRPath profile (fhirpath.html#functions) fhirpathpy lacks:
``hasValue()``, ``htmlChecks()``, ``resolve()``, ``memberOf()``, ``conformsTo()``,
``getValue()``.

``resolve()`` and ``memberOf()`` need the validation under way (the Bundle and
contained resources to resolve in, the value sets); it is handed over in a
``ContextVar`` so compiled expressions stay shared and calls stay thread-safe.

An expression fhirpathpy cannot parse, or cannot evaluate on the data at hand, does
not count against the resource (it raises a bare ``Exception``, ``ValueError``,
``TypeError`` or an ``ArithmeticError`` then: ``_FHIRPATH_FAILURES``). Anything else
raised while evaluating -- an ``OSError`` of a file gone, a bug in the server's own
``resolve()``/``memberOf()`` -- is the server's error and propagates (500).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

import fhirpathpy
import fhirpathpy.engine
from fhirpathpy.engine.util import process_user_invocation_table
from fhirpathpy.parser import parse
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

from fhir_server.conformance.validation.xhtml import html_checks

__all__ = ["Evaluation", "compile_expression", "evaluate", "select", "CURRENT"]

log = logging.getLogger(__name__)
MODEL = models["r4"]


class Evaluation:
    """What ``resolve()`` and ``memberOf()`` need from the validation under way."""

    def resolve(self, reference: str) -> dict | None:  # pragma: no cover - overridden
        return None

    def member_of(self, value: Any, url: str) -> bool | None:  # pragma: no cover - overridden
        return None


CURRENT: ContextVar[Evaluation | None] = ContextVar("fhir_validation", default=None)

#: what fhirpathpy raises for an expression it cannot parse or evaluate on the data
_FHIRPATH_FAILURES = (ValueError, TypeError, ArithmeticError)


def _cannot_evaluate(exc: Exception) -> bool:
    return type(exc) is Exception or isinstance(exc, _FHIRPATH_FAILURES)


class _ServerFault(Exception):
    """A failure inside the server's own FHIRPath functions, carried out of fhirpathpy."""


def _server_side(fn):
    """The server's part of an evaluation: whatever it raises is the server's error."""
    def call(*args):
        try:
            return fn(*args)
        except Exception as exc:
            raise _ServerFault() from exc
    return call


def _has_value(inputs):
    return len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], dict | list)


def _html_checks(inputs):
    return len(inputs) == 1 and html_checks(inputs[0])


def _resolve(inputs):
    ev = CURRENT.get()
    out = []
    for item in inputs:
        ref = item.get("reference") if isinstance(item, dict) else item if isinstance(item, str) else None
        if ev is not None and isinstance(ref, str):
            found = ev.resolve(ref)
            if isinstance(found, dict) and isinstance(found.get("resourceType"), str):
                out.append(ResourceNode.create_node(found, found["resourceType"]))
    return out


def _member_of(inputs, url):
    ev = CURRENT.get()
    if ev is None or len(inputs) != 1:
        return []
    found = ev.member_of(inputs[0], url)
    return [] if found is None else found


def _conforms_to(inputs, url):
    return True


def _get_value(inputs):
    return [i for i in inputs if i is not None and not isinstance(i, dict | list)]


FUNCTIONS = {
    "hasValue": {"fn": _has_value, "arity": {0: []}},
    "htmlChecks": {"fn": _html_checks, "arity": {0: []}},
    "resolve": {"fn": _server_side(_resolve), "arity": {0: []}},
    "memberOf": {"fn": _server_side(_member_of), "arity": {1: ["String"]}},
    "conformsTo": {"fn": _conforms_to, "arity": {1: ["String"]}},
    "getValue": {"fn": _get_value, "arity": {0: []}},
}
#: invariants published in R4 4.0.1 with a wrong expression, as corrected in later
#: releases (R4B) and applied by HL7's reference validator:
#: (key, published expression) -> expression evaluated
CORRECTIONS = {
    ("que-12", "enableWhen.count() > 2 implies enableBehavior.exists()"):
        "enableWhen.count() > 1 implies enableBehavior.exists()",
    ("ras-2", "probability is decimal implies (probability as decimal) <= 100"):
        "probability.empty() or (probability is decimal implies ((probability as decimal) <= 100))",
    # a FHIR boolean is a Boolean (fhirpathpy keeps FHIR and System types apart)
    ("que-7", "operator = 'exists' implies (answer is Boolean)"): "operator = 'exists' implies (answer is boolean)",
    ("bdl-8", "fullUrl.contains('/_history/').not()"): "fullUrl.exists() implies fullUrl.contains('/_history/').not()",
}
_NAME_0 = "name.matches('[A-Z]([A-Za-z0-9_]){0,254}')"


def corrected(key: str, expression: str) -> str:
    found = CORRECTIONS.get((key, expression))
    if found is not None:
        return found
    if expression == _NAME_0:  # the *-0 name rules mean the whole name (anchored)
        return "name.exists() implies name.matches('^[A-Z]([A-Za-z0-9_]){0,254}$')"
    return expression


OPTIONS = {"userInvocationTable": FUNCTIONS, "traceFn": lambda label, value: None}
_COMPILED: dict[str, Any] = {}


def compile_expression(expression: str):
    """The compiled expression, or None when fhirpathpy cannot parse it (cached)."""
    found = _COMPILED.get(expression, False)
    if found is False:
        try:
            found = fhirpathpy.compile(expression, MODEL, OPTIONS)
        except Exception as exc:
            if not _cannot_evaluate(exc):
                raise
            log.debug("cannot compile FHIRPath %r: %s", expression, exc)
            found = None
        _COMPILED[expression] = found
    return found


def evaluate(compiled, data, type_path: str, variables: dict) -> list | None:
    """Evaluate on *data* (typed as *type_path*: a type name or an element path);
    None when the evaluation fails (an unsupported construct)."""
    try:
        return compiled(ResourceNode.create_node(data, type_path), variables)
    except _ServerFault as fault:
        raise fault.__cause__ from None
    except Exception as exc:
        if not _cannot_evaluate(exc):
            raise
        log.debug("FHIRPath evaluation failed: %s", exc)
        return None


def select(expression: str, resource: dict, variables: dict) -> list | None:
    """The JSON values (the objects themselves, not copies) *expression* selects from
    *resource*; None when it cannot be evaluated."""
    try:
        parsed = _parsed(expression)
        nodes = fhirpathpy.engine.do_eval({"dataRoot": [resource], "vars": {"context": resource, **variables},
                                           "model": MODEL, "userInvocationTable": _TABLE}, [resource], parsed)
    except _ServerFault as fault:
        raise fault.__cause__ from None
    except Exception as exc:
        if not _cannot_evaluate(exc):
            raise
        return None
    return [n.data if isinstance(n, ResourceNode) else n for n in nodes]


_PARSED: dict[str, Any] = {}
_TABLE = process_user_invocation_table(FUNCTIONS)


def _parsed(expression: str):
    found = _PARSED.get(expression)
    if found is None:
        found = _PARSED[expression] = parse(expression)["children"][0]
    return found
