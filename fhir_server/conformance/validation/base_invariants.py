"""The base specification's invariants on every write, at the cost of what is there.

The profile validator evaluates every constraint of the R4 base definitions on every
element (``$validate``); a write cannot pay that for each resource (about as much again
as the rest of its validation). The model's structure walk (``model/primitives.py``)
already visits every object with its type, so it is handed a *watch*: per type (data
type, backbone path such as ``Patient.contact``, resource type) the invariants that
can fail there, with the guards of ``invariant_guards.py`` (the keys without which
they cannot fail, or with which they cannot). It notes the objects that need them
(``InvariantSites``), and ``evaluate`` runs the validator's own invariant code
(``invariants.py``: native verdicts, else fhirpathpy) on those alone, with the same
messages as ``$validate``. A plain resource needs none: every invariant of a small
ServiceRequest is out of reach without ``orderDetail``, ``contained``, a '#'
reference, a Period, a Quantity...

The watch is derived from the core tables, per type on first sight: the error
constraints of the type's root (``per-1`` on Period, ``prr-1`` on ServiceRequest,
``pat-1`` on Patient.contact) and of each child element of a data type (``txt-1`` on
Narrative.div, ``org-2`` on Organization.address). ``ele-1`` and ``ext-1`` are the
walk's own; warnings never refuse a write. A contentReference element
(``QuestionnaireResponse.item.item``) is held to the constraints of the element it
refers to, as the specification says; the profile validator checks only its own.

Extensions: an extension whose url is a definition the validator knows (the guide's,
the core package's) is noted too; the caller then runs the validator's walk of the
base definitions on the resource, which checks it against its definition (value
type, bindings, context) as ``$validate`` does. Resources that claim profiles get
that from profile enforcement.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validation.definitions import Constraint, Defn, core_model
from fhir_server.conformance.validation.invariant_guards import NEVER, guard
from fhir_server.conformance.validation.invariants import NATIVE, NATIVE_READS
from fhir_server.conformance.validation.issues import ValidationIssue
from fhir_server.conformance.validation.walker import ResCtx, Run
from fhir_server.model import InvariantSites
from fhir_server.spec import load_table

__all__ = ["invariant_sites", "evaluate", "EXTENSION"]

#: evaluated by the model's walk itself (ele-1: json_rules and "more than an id"; ext-1)
_WALKED = frozenset({"ele-1", "ext-1"})
#: the rule noted for every Extension with a url
EXTENSION = "extension definition"


@dataclass(frozen=True, slots=True, eq=False)
class _Rule:
    constraints: tuple[Constraint, ...]
    #: the FHIRPath type the values are evaluated as (a type name, or a backbone path)
    tpath: str
    #: () for the object itself; else the (JSON key, type) of its child elements it is about
    children: tuple[tuple[str, str], ...] = ()


def invariant_sites() -> InvariantSites:
    """A fresh collector for ``model.validate_resource(..., sites=)``."""
    return InvariantSites(_WATCH)


def evaluate(validator, sites: InvariantSites) -> tuple[list[ValidationIssue], bool]:
    """The error issues of the invariants at ``sites``, and whether an extension with a
    known definition was seen (the caller then runs the validator's base walk)."""
    run: Run | None = None
    extension = False
    bundles: dict[int, dict] = {}
    for site in sites.found:
        rule = site.rule
        if rule is EXTENSION:
            extension = extension or validator.is_extension(site.value.get("url"))
            continue
        if run is None:
            run = Run(validator)
        run.ctx = ResCtx(site.resource, site.root, _bundle_index(validator, site.bundle, bundles), None)
        if not rule.children:
            run.invariants(rule.constraints, site.value, rule.tpath, site.path)
            continue
        for key, tcode in rule.children:
            value = site.value.get(key)
            many = isinstance(value, list)
            for i, item in enumerate(value if many else (value,)):
                if item is not None:
                    path = f"{site.path}.{key}[{i}]" if many else f"{site.path}.{key}"
                    run.invariants(rule.constraints, item, tcode, path)
    issues = [i for i in run.issues if i.severity == "error"] if run is not None else []
    return issues, extension


def _bundle_index(validator, bundle: dict | None, cache: dict[int, dict]) -> dict | None:
    """fullUrl -> resource of the Bundle around a site, for ``resolve()`` (as the walk builds it)."""
    if bundle is None:
        return None
    found = cache.get(id(bundle))
    if found is None:
        # a Run of its own: the index's complaints about fullUrls are not invariants
        found = cache[id(bundle)] = Run(validator)._bundle_index(bundle, "")
    return found


# ------------------------------------------------------------------------------ the watch


class _Watch(dict):
    """type name -> (((rule, key groups, exempt, test), ...), the keys without any of
    which none applies, or None), or None (``primitives.Watch``). Built per type on
    first sight (compiling its core definition, guarding its constraints), then kept
    for the life of the process; a dict, so that looking up a type seen before is C.
    Safe to share between threads."""

    def __init__(self) -> None:
        super().__init__()
        self._types = load_table("types")
        self._lock = threading.Lock()

    def __missing__(self, name: str) -> tuple | None:
        with self._lock:
            if name not in self:
                self[name] = self._build(name)
            return self[name]

    def _build(self, name: str) -> tuple[tuple, frozenset[str] | None] | None:
        entry = self._types.get(name)
        defn = _definition(name) if entry is not None and not name.startswith("_") else None
        if defn is None or entry["k"] == "primitive-type":
            return None
        rules: list[tuple] = []
        keys = _json_keys(entry)
        for c in _own(defn):
            found = guard(c, name, keys, NATIVE_READS.get(c.key))
            if found is None:
                rules.append((_Rule((c,), name), (), (), None))
            elif found is not NEVER:
                rules.append((_Rule((c,), name), found.groups, found.exempt, _may_fail(c)))
        for child in defn.children or ():
            rule = _child_rule(child)
            if rule is not None:
                rules.append((rule, (frozenset(k for k, _ in rule.children),), (), None))
        if name == "Extension":
            rules.append((EXTENSION, (frozenset({"url"}),), (), None))
        if not rules:
            return None
        # no rule without a group: an object with none of their keys needs nothing
        trigger = frozenset(k for r in rules for g in r[1] for k in g) if all(r[1] for r in rules) else None
        return tuple(rules), trigger


def _may_fail(c: Constraint):
    """For a natively evaluated constraint, whether it may fail on an object (its
    native verdict is not True): the walk notes ``Reference`` only for a '#' reference."""
    native = NATIVE.get(c.key)
    return None if native is None else (lambda value: native(value) is not True)


_WATCH = _Watch()


def _definition(name: str) -> Defn | None:
    """The definition of a type's root, or of a backbone element (``Timing.repeat``)."""
    model = core_model(SD_PREFIX + name.split(".", 1)[0])
    if model is None:
        return None
    return model.root if "." not in name else model.by_path.get(name)


def _own(defn: Defn) -> list[Constraint]:
    return [c for c in defn.constraints if c.severity == "error" and c.key not in _WALKED]


def _child_rule(child: Defn) -> _Rule | None:
    """The constraints of a child element of a data type (or primitive) other than its
    type's own: those of a backbone child are its type's root rules, reached by the walk."""
    own = _own(child)
    if not own or child.content_ref or any(t.code in ("BackboneElement", "Element") for t in child.types):
        return None
    if child.is_choice:
        stem = child.name[:-3]
        keys = tuple((stem + t.code[:1].upper() + t.code[1:], t.code) for t in child.types)
    else:
        keys = ((child.name, child.types[0].code),) if child.types else ()
    return _Rule(tuple(own), "", keys) if keys else None


def _json_keys(entry: dict) -> dict[str, tuple[str, ...]]:
    """FHIRPath name -> the JSON keys that hold it (``value`` -> valueQuantity, _valueString ...)."""
    out: dict[str, list[str]] = {}
    for key, facts in entry.get("e", {}).items():
        if key.endswith("[x]"):
            continue
        out.setdefault(facts.get("x") or key, []).extend((key, "_" + key))
    return {name: tuple(keys) for name, keys in out.items()}
