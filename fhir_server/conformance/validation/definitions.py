"""Compiled element definitions: a snapshot as a tree the validator walks fast.

A ``Model`` is one StructureDefinition (core type, resource, profile, extension)
whose snapshot became a tree of ``Defn`` nodes: per element its cardinality,
types, fixed/pattern value, binding, constraints, slicing and slices, and -- where
the snapshot lists them -- its children.  Where it does not (Patient.identifier in
the Patient definition) the children come from the element's type at walk time.

``Defn.kids()`` maps each JSON property name an instance may use to the child
definition and the type that name stands for (``valueQuantity`` -> the
``value[x]`` definition, ``Quantity``).  Models of core definitions are shared by
every validator (they depend on nothing else); profile models are cached per
``Definitions`` (one per validator and its set of profiles).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from fhir_server.conformance.structure import (SD_PREFIX, build_tree, core_definition, max_count,
                                               slice_free)
from fhir_server.spec import load_table

__all__ = ["Constraint", "Defn", "Definitions", "Model", "TypeRef", "PRIMITIVES", "DATA_TYPES",
           "RESOURCE_TYPES", "json_kind_ok", "type_of_url", "is_type_name", "base_types"]

FHIR_TYPE_EXT = SD_PREFIX + "structuredefinition-fhir-type"
REGEX_EXT = SD_PREFIX + "regex"
SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."


@lru_cache(maxsize=1)
def _type_table() -> dict:
    return {k: v for k, v in load_table("types").items() if not k.startswith("_")}


def _names(kind: str) -> frozenset[str]:
    return frozenset(n for n, t in _type_table().items() if t["k"] == kind)


PRIMITIVES = _names("primitive-type")
COMPLEX_TYPES = _names("complex-type")
DATA_TYPES = PRIMITIVES | COMPLEX_TYPES
RESOURCE_TYPES = _names("resource")
#: 'Quantity' -> 'Quantity', 'DateTime' -> 'dateTime': the suffix of a choice property
SUFFIX_TO_TYPE = {n[:1].upper() + n[1:]: n for n in DATA_TYPES}
_PARENTS = {"Age": "Quantity", "Count": "Quantity", "Distance": "Quantity", "Duration": "Quantity",
            "MoneyQuantity": "Quantity", "SimpleQuantity": "Quantity", "code": "string", "id": "string",
            "markdown": "string", "positiveInt": "integer", "unsignedInt": "integer", "canonical": "uri",
            "oid": "uri", "url": "uri", "uuid": "uri", "BackboneElement": "Element",
            "DomainResource": "Resource"}


def base_types(code: str) -> list[str]:
    """The type and what it specialises: Age -> [Age, Quantity, Element]."""
    out = [code]
    while out[-1] in _PARENTS:
        out.append(_PARENTS[out[-1]])
    if code in RESOURCE_TYPES:
        out += ["DomainResource", "Resource"] if code not in ("Bundle", "Binary", "Parameters") else ["Resource"]
    elif out[-1] != "Element":
        out.append("Element")
    return out


def is_type_name(name: str) -> bool:
    return name in DATA_TYPES or name in RESOURCE_TYPES


def type_of_url(url: str) -> str:
    """'http://hl7.org/fhir/StructureDefinition/Patient' -> 'Patient' (the core name)."""
    return url.split("|", 1)[0].rsplit("/", 1)[-1]


_INT_TYPES = {"integer", "positiveInt", "unsignedInt", "integer64"}


def json_kind_ok(code: str, value) -> bool:
    """Whether a JSON value has the kind FHIR JSON uses for primitive type *code*."""
    if code == "boolean":
        return value is True or value is False
    if code in _INT_TYPES:
        return isinstance(value, int) and not isinstance(value, bool)
    if code == "decimal":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


@dataclass(frozen=True, slots=True)
class TypeRef:
    code: str
    profiles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    aggregation: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Constraint:
    key: str
    severity: str
    human: str
    expression: str | None
    source: str | None


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[tuple[str, str], ...]
    rules: str
    ordered: bool


@dataclass(eq=False, slots=True)
class Defn:
    id: str
    path: str
    name: str
    min: int
    max: float
    array: bool                     # the base allows more than one: JSON array
    types: tuple[TypeRef, ...]
    fixed: tuple[str, object] | None = None      # ('Uri', 'http://...')
    pattern: tuple[str, object] | None = None
    binding: tuple[str, str] | None = None       # (strength, value set url)
    constraints: tuple[Constraint, ...] = ()
    slicing: Slicing | None = None
    slice_name: str | None = None
    slices: list[Defn] = field(default_factory=list)
    children: list[Defn] | None = None
    content_ref: str | None = None
    min_value: tuple[str, object] | None = None
    max_value: tuple[str, object] | None = None
    max_length: int | None = None
    regex: str | None = None
    model: Model | None = None
    _kids: dict | None = None
    _absent: list | None = None
    stem: str = ""                  # the name without '[x]'

    def __post_init__(self) -> None:
        self.stem = self.name[:-3] if self.name.endswith("[x]") else self.name

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.types)

    @property
    def is_choice(self) -> bool:
        return self.name.endswith("[x]")

    def kids(self) -> dict[str, tuple[Defn, str | None]]:
        """JSON property name -> (child definition, type the name implies or None)."""
        if self._kids is None:
            out: dict[str, tuple[Defn, str | None]] = {}
            for child in self.children or ():
                if child.is_choice:
                    stem = child.name[:-3]
                    for t in child.types:
                        out[stem + t.code[:1].upper() + t.code[1:]] = (child, t.code)
                    out.setdefault("\0choice:" + stem, (child, None))
                else:
                    out[child.name] = (child, None)
            self._kids = out
        return self._kids

    def checked_when_absent(self) -> list[Defn]:
        """The children a walk must look at even when the instance lacks them: those
        with a minimum, and sliced ones (their slices may have one)."""
        if self._absent is None:
            self._absent = [c for c in self.children or () if c.min > 0 or c.slices]
        return self._absent

    def child(self, name: str) -> Defn | None:
        """The child element named *name* ('value' also finds 'value[x]')."""
        hit = self.kids().get(name) or self.kids().get("\0choice:" + name)
        return hit[0] if hit else None

    def choice_for(self, prop: str) -> tuple[Defn, str] | None:
        """A choice child whose stem *prop* starts with, and the type the rest names
        (the type may not be allowed there: the caller reports that)."""
        for child in self.children or ():
            if child.is_choice:
                stem = child.name[:-3]
                rest = prop[len(stem):]
                if prop.startswith(stem) and rest in SUFFIX_TO_TYPE:
                    return child, SUFFIX_TO_TYPE[rest]
        return None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Defn({self.id})"


@dataclass(eq=False)
class Model:
    """One StructureDefinition, compiled."""

    url: str
    type: str
    kind: str
    derivation: str | None
    root: Defn
    contexts: tuple[tuple[str, str], ...] = ()
    context_invariants: tuple[str, ...] = ()
    by_path: dict[str, Defn] = field(default_factory=dict)
    name: str = ""
    modifier: bool = False          # the root is isModifier: a modifier extension

    @property
    def fixed_url(self) -> str | None:
        """For an extension definition, the url its instances carry."""
        if self.type != "Extension":
            return None
        kid = self.root.kids().get("url")
        if kid and kid[0].fixed:
            return kid[0].fixed[1]
        return self.url


# ------------------------------------------------------------------------------ compiling


def _type_ref(t: dict) -> TypeRef:
    code = t.get("code", "")
    if code.startswith(SYSTEM_PREFIX):
        # the value of a primitive, or an R4 'id'/'url' element typed by the extension
        fhir_type = next((x.get("valueUrl") for x in t.get("extension", ()) if x.get("url") == FHIR_TYPE_EXT), None)
        code = fhir_type if fhir_type in PRIMITIVES else "System." + code[len(SYSTEM_PREFIX):]
    return TypeRef(code, tuple(t.get("profile", ())), tuple(t.get("targetProfile", ())),
                   tuple(t.get("aggregation", ())))


def _prefixed(el: dict, prefix: str) -> tuple[str, object] | None:
    for key, value in el.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key[len(prefix):], value
    return None


def _defn(node, model: Model, profile_url: str | None) -> Defn:
    el = node.el
    path = el.get("path") or slice_free(el.get("id", node.name))
    base = el.get("base") or {}
    base_max = base.get("max", el.get("max", "*"))
    types = tuple(_type_ref(t) for t in el.get("type", ()))
    regex = None
    for t in el.get("type", ()):
        for x in t.get("extension", ()):
            if x.get("url") == REGEX_EXT:
                regex = x.get("valueString")
    binding = el.get("binding")
    d = Defn(
        id=el.get("id", path), path=path, name=path.rsplit(".", 1)[-1],
        min=int(el.get("min", 0)), max=max_count(str(el.get("max", "*"))),
        array=max_count(str(base_max)) > 1,
        types=types,
        fixed=_prefixed(el, "fixed"), pattern=_prefixed(el, "pattern"),
        binding=(binding.get("strength", ""), binding["valueSet"].split("|", 1)[0])
        if binding and binding.get("valueSet") else None,
        constraints=tuple(Constraint(c.get("key", "?"), c.get("severity", "error"), c.get("human", ""),
                                     c.get("expression"), c.get("source") or profile_url)
                          for c in el.get("constraint", ())),
        slicing=Slicing(tuple((x.get("type", "value"), x.get("path", "$this"))
                              for x in el["slicing"].get("discriminator", ())),
                        el["slicing"].get("rules", "open"), bool(el["slicing"].get("ordered")))
        if el.get("slicing") else None,
        slice_name=el.get("sliceName"),
        content_ref=el.get("contentReference"),
        min_value=_prefixed(el, "minValue"), max_value=_prefixed(el, "maxValue"),
        max_length=el.get("maxLength"), regex=regex, model=model,
    )
    if node.children is not None:
        d.children = [_defn(c, model, profile_url) for c in node.children]
    d.slices = [_defn(s, model, profile_url) for s in node.slices]
    if node.slice is None:
        model.by_path.setdefault(path, d)
    return d


def compile_model(sd: dict) -> Model | None:
    elements = (sd.get("snapshot") or {}).get("element")
    if not elements:
        return None
    try:
        tree = build_tree(elements)
    except (ValueError, KeyError, IndexError):
        return None
    url = sd.get("url", "")
    placeholder = Defn(id="", path="", name="", min=0, max=1, array=False, types=())
    model = Model(url=url, type=sd.get("type") or tree.name, kind=sd.get("kind", ""),
                  derivation=sd.get("derivation"), root=placeholder,
                  contexts=tuple((c.get("type", ""), c.get("expression", "")) for c in sd.get("context", ())),
                  context_invariants=tuple(x for x in sd.get("contextInvariant", ()) if isinstance(x, str)),
                  name=sd.get("name", ""), modifier=elements[0].get("isModifier") is True)
    profile_url = url if sd.get("derivation") == "constraint" else None
    model.root = _defn(tree, model, profile_url)
    return model


@lru_cache(maxsize=None)
def core_model(url: str) -> Model | None:
    sd = core_definition(url)
    return compile_model(sd) if sd else None


class Definitions:
    """Compiled models by canonical url, resolved through *resolve* (profiles given to
    the validator, then core)."""

    def __init__(self, resolve: Callable[[str], dict | None], own_urls: frozenset[str]) -> None:
        self._resolve = resolve
        self.own = own_urls
        self._models: dict[str, Model | None] = {}
        self._lock = threading.RLock()  # the resolver generates snapshots: once, not per thread

    def model(self, url: str) -> Model | None:
        url = url.split("|", 1)[0]
        found = self._models.get(url, False)
        if found is not False:
            return found
        if url not in self.own:
            found = core_model(url)
        else:
            with self._lock:
                if url in self._models:
                    return self._models[url]
                sd = self._resolve(url)
                found = compile_model(sd) if sd else None
        self._models[url] = found
        return found

    def resolve(self, url: str) -> dict | None:
        """The StructureDefinition (with its snapshot) for *url*: own profiles, then core."""
        with self._lock:
            return self._resolve(url)

    def type_model(self, code: str) -> Model | None:
        return core_model(SD_PREFIX + code) if is_type_name(code) else None

    def type_of(self, url: str) -> str | None:
        """The resource or data type a profile (or core definition) constrains."""
        m = self.model(url)
        if m is not None:
            return m.type
        name = type_of_url(url)
        return name if is_type_name(name) else None


_RE_CACHE: dict[str, re.Pattern | None] = {}


def compiled_regex(pattern: str) -> re.Pattern | None:
    found = _RE_CACHE.get(pattern, False)
    if found is False:
        try:
            # the spec's regexes are read as the reference (Java) validator reads them: \s, \d
            # and \w are ASCII, so a no-break space in a uri is \S there, and here
            found = re.compile(pattern, re.ASCII)
        except re.error:
            found = None
        _RE_CACHE[pattern] = found
    return found
