"""Invariants: each constraint of an element evaluated on every instance of it --
natively for the ones on every element or resource (ele-1, ext-1, dom-*, txt-*, ref-1
without a local reference), else with fhirpathpy (``fhirpath.py``).

An expression is evaluated only where it can fail: the guards of
``invariant_guards.py`` (the ones the write path uses, ``base_invariants.py``) name
the children without which a constraint holds (prr-1 ``orderDetail.empty() or
code.exists()`` on a ServiceRequest without ``orderDetail``); they are derived once
per constraint and element definition and kept by the validator."""

from __future__ import annotations

from fhir_server.conformance.validation import fhirpath, fhirpath_native
from fhir_server.conformance.validation.definitions import Constraint, Defn, Model
from fhir_server.conformance.validation.invariant_guards import NEVER, Guard, guard
from fhir_server.conformance.validation.xhtml import has_content, xhtml_problems

__all__ = ["Invariants", "merge_constraints", "NATIVE", "NATIVE_READS", "applies", "orphans"]


class Invariants:
    """Mixin of ``Run``."""

    def invariants(self, constraints, value, tpath: str, path: str, owner: Defn | None = None) -> None:
        """Evaluate *constraints* on one instance value (typed *tpath* for FHIRPath);
        *owner*: the definition whose children the value has (for the guards)."""
        ctx = self.ctx
        variables = {"resource": ctx.resource, "rootResource": ctx.root} if ctx else {}
        token = None
        guards = self.v._guards if owner is not None and isinstance(value, dict) else None
        try:
            for c in constraints:
                native = NATIVE.get(c.key)
                verdict = native(value) if native is not None else None
                if verdict is None and guards is not None:
                    key = (c, tpath, owner)
                    found = guards.get(key, False)
                    if found is False:
                        found = guards[key] = _guard(c, tpath, owner)
                    if found is not None and not applies(found, value):
                        verdict = True
                if verdict is None and c.expression:
                    expression = fhirpath.corrected(c.key, c.expression)
                    result = _natively(expression, value)
                    if result is _FHIRPATHPY:
                        compiled = fhirpath.compile_expression(expression)
                        if compiled is None:
                            continue
                        if token is None:
                            token = fhirpath.CURRENT.set(self)
                        result = fhirpath.evaluate(compiled, value, tpath, variables)
                    # fails on false; an empty result or one that cannot be evaluated passes
                    verdict = not (result and any(r is False for r in result))
                if verdict is False:
                    severity = c.severity if c.severity in ("error", "warning") else "warning"
                    self.add(severity, "invariant", path, f"{c.key}: {c.human}", c.key)
        finally:
            if token is not None:
                fhirpath.CURRENT.reset(token)


_FHIRPATHPY = object()


def _natively(expression: str, value):
    """The result by ``fhirpath_native``, or _FHIRPATHPY when fhirpathpy must evaluate it."""
    fn = fhirpath_native.native(expression)
    if fn is None:
        return _FHIRPATHPY
    try:
        return fn([value])
    except fhirpath_native.Fallback:
        return _FHIRPATHPY


def _guard(c: Constraint, tpath: str, owner: Defn) -> Guard | None:
    if NATIVE.get(c.key) is not None:
        return None
    keys: dict[str, tuple[str, ...]] = {}
    for child in owner.children or ():
        if child.is_choice:
            stem = child.name[:-3]
            names = [stem + t.code[:1].upper() + t.code[1:] for t in child.types]
            keys[stem] = tuple(names) + tuple("_" + n for n in names)
        else:
            keys[child.name] = (child.name, "_" + child.name)
    return guard(c, tpath, keys)


def applies(found: Guard, obj: dict) -> bool:
    """Whether a guarded constraint can fail on *obj* (primitives._applies, the write path's test)."""
    if found is NEVER:
        return False
    for keys in found.groups:
        if keys.isdisjoint(obj):
            return False
    for conjunction in found.exempt:
        for keys in conjunction:
            if keys.isdisjoint(obj):
                break
        else:
            return False
    return True


# Native verdicts: True holds, False fails, None -- evaluate the expression.


def _holds(value) -> bool:
    return True


def _no_contained(value) -> bool | None:
    return True if not (isinstance(value, dict) and value.get("contained")) else None


def orphans(value: dict) -> list[int]:
    """dom-3: the indices of contained resources referred to from nowhere else in the
    resource ('#id' as a reference, canonical, uri or url) that do not refer to their
    container ('#') either.  Any string '#id' in the resource counts as a reference.
    fhirpathpy cannot evaluate the published expression (``as`` on a collection); HL7's
    reference validator reports such an orphan as a warning, not as dom-3's error, so
    the walk warns (walker.py) and the invariant itself holds (NATIVE)."""
    contained = value.get("contained")
    if not isinstance(contained, list) or not contained:
        return []
    pointers = _local_pointers(value)
    return [i for i, c in enumerate(contained) if isinstance(c, dict) and isinstance(c.get("id"), str)
            and "#" + c["id"] not in pointers and "#" not in _local_pointers(c)]


def _local_pointers(value) -> set[str]:
    """Every string in *value* (anywhere below it) that starts with '#'."""
    out: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str) and v[:1] == "#":
            out.add(v)
    return out


def _ext_1(value) -> bool | None:
    if not isinstance(value, dict):
        return None
    has_ext = bool(value.get("extension"))
    has_value = any(k.startswith("value") and len(k) > 5 and k[5].isupper() for k in value)
    return has_ext != has_value


def _div(value):
    """txt-1/txt-2 sit on Narrative.div (the xhtml value) in R4; accept the Narrative too."""
    return value.get("div") if isinstance(value, dict) else value


def _txt_1(value) -> bool:
    div = _div(value)
    return not xhtml_problems(div) if isinstance(div, str) else True


def _txt_2(value) -> bool:
    div = _div(value)
    return has_content(div) if isinstance(div, str) else True


def _ref_1(value) -> bool | None:
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#") or ref == "#":
        return True
    return None  # a local reference: evaluated (needs %rootResource)


def _per_1(value) -> bool | None:
    """per-1 ``start <= end`` where both are written alike -- dates of one precision, or
    dateTimes of one length and zone: their text then orders them as FHIRPath's
    comparison does. Anything else (other zones or precisions, a failing order) is
    evaluated: this only spares the common case its FHIRPath."""
    start, end = (value.get("start"), value.get("end")) if isinstance(value, dict) else (None, None)
    if not (isinstance(start, str) and isinstance(end, str)) or len(start) != len(end):
        return None
    if "T" in start or "T" in end:
        zone = start[-1] == end[-1] == "Z" or (start[-6] in "+-" and start[-6:] == end[-6:])
        if not ("T" in start and "T" in end and zone):
            return None
    return True if start <= end else None


NATIVE = {
    "ele-1": _holds,    # checked where each element is walked
    "dom-6": _holds,    # a best-practice rule (narrative): not reported, as HL7's validator does by default
    "ref-1": _ref_1,
    "ext-1": _ext_1,
    "dom-2": _no_contained, "dom-3": _holds,   # orphans(): a warning, as HL7's validator gives "dom-4": _no_contained, "dom-5": _no_contained,
    "txt-1": _txt_1, "txt-2": _txt_2,
    "per-1": _per_1,
}
#: what the native verdicts read of the value: without these keys they hold (the
#: write path evaluates them only where the keys are; base_invariants.py)
NATIVE_READS = {
    "ref-1": ("reference",),
    "dom-2": ("contained",), "dom-3": ("contained",), "dom-4": ("contained",), "dom-5": ("contained",),
}


def merge_constraints(d: Defn, extra: list[Defn], type_model: Model | None) -> list[Constraint]:
    """The element's constraints, then those of its type profiles' and type's roots."""
    out = list(d.constraints)
    if not extra and type_model is None:
        return out
    have = {c.key for c in out}
    for root in [*extra, *([type_model.root] if type_model else [])]:
        for c in root.constraints:
            if c.key not in have:
                have.add(c.key)
                out.append(c)
    return out
