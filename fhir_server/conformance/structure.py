"""StructureDefinition elements: the core definitions and a tree model of a snapshot.

Shared by the snapshot generator (``snapshot.py``) and the profile validator.

* ``core_definition(url)`` -- a core R4 StructureDefinition (resource, data type,
  core profile or extension definition) rebuilt from the compact tables
  ``elements.json`` / ``elements_profiles.json`` (see
  ``fhir_server.spec.generate_elements``) as an ordinary FHIR JSON dict with a
  snapshot.  Only the facts the tables keep are there: no descriptive text.
* ``Node`` / ``build_tree`` -- a snapshot as a tree: each element node has its
  children (by name, in order) and its slices; ``Node.elements()`` flattens it
  back into snapshot order, computing ids and paths.
* ``compare_snapshots`` -- where two snapshots differ in the facts a validator
  uses (``CHECKED_FACTS``: cardinality, types, fixed/pattern, bindings, ...).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from fhir_server.spec import load_table

__all__ = ["CHECKED_FACTS", "SD_PREFIX", "Node", "build_tree", "compare_snapshots", "core_definition",
           "core_extension_urls", "core_ids", "element_ids", "max_count", "slice_free", "split_id", "type_codes"]

SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
FHIR_TYPE_EXT = SD_PREFIX + "structuredefinition-fhir-type"
REGEX_EXT = SD_PREFIX + "regex"
MAX_VS_EXT = SD_PREFIX + "elementdefinition-maxValueSet"
TABLES = ("elements", "elements_profiles")
VERBATIM = ("fixed", "pattern", "minValue", "maxValue", "maxLength")


# ------------------------------------------------------------------------- ids, paths


def slice_free(element_id: str) -> str:
    """The path an element id stands for: the id without its ':sliceName' parts."""
    return re.sub(r":[^.]*", "", element_id)


def split_id(element_id: str) -> list[tuple[str, str | None]]:
    """'Observation.component:bp.code' -> [('Observation', None), ('component', 'bp'),
    ('code', None)].  Slice names have no dots (eld-16); reslices keep their '/'."""
    out = []
    for segment in element_id.split("."):
        name, _, slice_name = segment.partition(":")
        out.append((name, slice_name or None))
    return out


def element_ids(elements: list[dict]) -> list[str]:
    """The id of each element, deriving missing ones (and ones that contradict the
    element's path) from path and sliceName: a child belongs to the latest element
    listed at its parent's path (as a differential without ids is read)."""
    latest: dict[str, str] = {}
    out = []
    for el in elements:
        eid = el.get("id")
        if not eid or ("path" in el and slice_free(eid) != el["path"]):
            parent, _, name = el["path"].rpartition(".")
            eid = f"{latest.get(parent, parent)}.{name}" if parent else name
            if el.get("sliceName"):
                eid += ":" + el["sliceName"]
        latest[slice_free(eid)] = eid
        out.append(eid)
    return out


def max_count(max_: str) -> float:
    return float("inf") if max_ == "*" else int(max_)


def type_codes(el: dict) -> list[str]:
    return [t.get("code", "") for t in el.get("type", ())]


# ---------------------------------------------------------------------- tree model


@dataclass(eq=False)
class Node:
    """One element of a snapshot.  ``children`` is None while the element's children
    have not been listed (they then come from its type); ``slices`` are the named
    slices of this element (a slice's own reslices hang under the slice).
    ``origin`` is the untouched node this one was copied from (used as the base
    when a slice of it is made)."""

    name: str
    el: dict
    slice: str | None = None
    children: list[Node] | None = None
    slices: list[Node] = field(default_factory=list)
    origin: Node | None = None

    def child(self, name: str) -> Node | None:
        return next((c for c in self.children or () if c.name == name), None)

    def find_slice(self, slice_name: str) -> Node | None:
        """The slice named *slice_name* ('a/b' is reslice b of slice a)."""
        holder: Node | None = self
        parts = slice_name.split("/")
        for i in range(1, len(parts)):
            holder = holder.find_slice("/".join(parts[:i])) if holder else None
        return next((s for s in holder.slices if s.slice == slice_name), None) if holder else None

    def clone(self, with_slices: bool = True) -> Node:
        """A deep copy whose nodes remember this one's untouched origin."""
        return Node(self.name, copy.deepcopy(self.el), self.slice,
                    None if self.children is None else [c.clone() for c in self.children],
                    [s.clone() for s in self.slices] if with_slices else [],
                    self.origin or self)

    def elements(self, parent_id: str = "", parent_path: str = "") -> Iterator[dict]:
        """The snapshot elements of this node, its children and its slices, in order."""
        path = f"{parent_path}.{self.name}" if parent_path else self.name
        eid = f"{parent_id}.{self.name}" if parent_id else self.name
        if self.slice:
            eid += ":" + self.slice
        yield {"id": eid, "path": path, **{k: v for k, v in self.el.items() if k not in ("id", "path")}}
        for c in self.children or ():
            yield from c.elements(eid, path)
        for s in self.slices:
            yield from s.elements(parent_id, parent_path)


def build_tree(elements: list[dict]) -> Node:
    """The tree of a snapshot (or any element list in snapshot order)."""
    ids = element_ids(elements)
    segments = split_id(ids[0])
    root = Node(segments[-1][0], copy.deepcopy(elements[0]))
    for eid, el in zip(ids[1:], elements[1:]):
        *parents, (name, slice_name) = split_id(eid)
        holder = _descend(root, parents[1:], eid)
        if slice_name:
            sliced = holder.child(name) if holder.children else None
            owner = sliced.find_slice(slice_name.rpartition("/")[0]) if sliced and "/" in slice_name else sliced
            if owner is None:
                raise ValueError(f"element {eid} comes before the element it slices")
            owner.slices.append(Node(name, copy.deepcopy(el), slice_name))
        else:
            if holder.children is None:
                holder.children = []
            holder.children.append(Node(name, copy.deepcopy(el)))
    return root


def _descend(root: Node, segments: list[tuple[str, str | None]], eid: str) -> Node:
    node = root
    for name, slice_name in segments:
        nxt = node.child(name)
        if nxt is not None and slice_name:
            nxt = nxt.find_slice(slice_name)
        if nxt is None:
            raise ValueError(f"element {eid} comes before its parent")
        node = nxt
    return node


# ------------------------------------------------------------------ core definitions


@lru_cache(maxsize=None)
def _entry(sd_id: str) -> tuple[dict, dict] | None:
    for name in TABLES:
        table = load_table(name)
        if sd_id in table and not sd_id.startswith("_"):
            return table[sd_id], table["_constraints"]
    return None


@lru_cache(maxsize=1)
def _url_index() -> dict[str, str]:
    """Canonical url -> table id, for the few core definitions not under SD_PREFIX."""
    return {entry["url"]: sd_id for name in TABLES for sd_id, entry in load_table(name).items()
            if not sd_id.startswith("_") and "url" in entry}


def core_ids() -> list[str]:
    """Ids of every core StructureDefinition the tables hold."""
    return sorted(k for name in TABLES for k in load_table(name) if not k.startswith("_"))


@lru_cache(maxsize=1)
def core_extension_urls() -> frozenset[str]:
    """Canonical urls of the core package's extension definitions (patient-birthPlace ...)."""
    return frozenset(entry.get("url", SD_PREFIX + sd_id) for name in TABLES for sd_id, entry in load_table(name).items()
                     if not sd_id.startswith("_") and entry.get("t") == "Extension")


def core_definition(url: str) -> dict | None:
    """The core StructureDefinition with this canonical url (a '|version' suffix is
    ignored) or bare id ('Patient'), or None.  Cached and shared: do not mutate."""
    url = url.split("|", 1)[0]
    return _definition(_url_index().get(url) or (url[len(SD_PREFIX):] if url.startswith(SD_PREFIX) else url))


@lru_cache(maxsize=None)
def _definition(sd_id: str) -> dict | None:
    found = _entry(sd_id)
    if found is None:
        return None
    entry, constraints = found
    sd = {"resourceType": "StructureDefinition", "id": sd_id, "url": entry.get("url", SD_PREFIX + sd_id),
          "name": sd_id, "status": "active", "kind": entry["k"], "abstract": bool(entry.get("a")),
          "type": entry.get("t", sd_id)}
    if "bd" in entry:
        sd["baseDefinition"] = _full(entry["bd"])
    if "d" in entry:
        sd["derivation"] = entry["d"]
    if "ctx" in entry:
        sd["context"] = [{"type": t, "expression": e} for t, e in entry["ctx"]]
    if "ci" in entry:
        sd["contextInvariant"] = list(entry["ci"])
    sd["snapshot"] = {"element": [expand_element(c, constraints) for c in entry["el"]]}
    return sd


def _full(url: str) -> str:
    return url if "://" in url else SD_PREFIX + url


def _card(text: str) -> tuple[int, str]:
    low, _, high = text.partition("..")
    return int(low), high


def expand_element(c: dict, constraints: dict) -> dict:
    """A compact table element back in ElementDefinition shape."""
    path = c.get("p") or slice_free(c["id"])
    low, high = _card(c["c"])
    el: dict = {"id": c["id"], "path": path}
    if "sn" in c:
        el["sliceName"] = c["sn"]
    if "sl" in c:
        el["slicing"] = _slicing(c["sl"])
    base_path, base_card = c.get("b", (path, c["c"]))
    base_min, base_max = _card(base_card)
    el.update(min=low, max=high, base={"path": base_path, "min": base_min, "max": base_max})
    if "t" in c:
        el["type"] = [_type(t) for t in c["t"]]
    if "cr" in c:
        el["contentReference"] = c["cr"]
    el.update({k: copy.deepcopy(v) for k, v in c.items() if k.startswith(VERBATIM)})
    if "inv" in c:
        el["constraint"] = [_constraint(ref, constraints[ref]) for ref in c["inv"]]
    if c.get("ms"):
        el["mustSupport"] = True
    el["isModifier"] = bool(c.get("mod"))
    el["isSummary"] = bool(c.get("sum"))
    if "bi" in c:
        el["binding"] = _binding(c["bi"])
    return el


def _slicing(s: dict) -> dict:
    return {"discriminator": [{"type": t, "path": p} for t, p in s["d"]],
            "ordered": bool(s.get("o")), "rules": s["r"]}


def _type(t: str | dict) -> dict:
    if isinstance(t, str):
        return {"code": t}
    ext = []
    if "ft" in t:
        ext.append({"url": FHIR_TYPE_EXT, "valueUrl": t["ft"]})
    if "rx" in t:
        ext.append({"url": REGEX_EXT, "valueString": t["rx"]})
    out: dict = {"extension": ext} if ext else {}
    out["code"] = t["c"]
    for short, key in (("p", "profile"), ("tp", "targetProfile")):
        if short in t:
            out[key] = [_full(u) for u in t[short]]
    for short, key in (("ag", "aggregation"), ("vr", "versioning")):
        if short in t:
            out[key] = copy.deepcopy(t[short])
    return out


def _binding(b: dict) -> dict:
    out: dict = {"strength": b["s"]}
    if "mx" in b:
        out["extension"] = [{"url": MAX_VS_EXT, "valueCanonical": b["mx"]}]
    if "v" in b:
        out["valueSet"] = b["v"]
    return out


def _constraint(ref: str, facts: dict) -> dict:
    return {"key": facts.get("k", ref), "severity": facts["s"], "human": facts["h"],
            "expression": facts["e"]}


# ------------------------------------------------------------------ comparing snapshots


def _types_fact(el: dict) -> list:
    return sorted((t.get("code", ""), sorted(t.get("profile", [])), sorted(t.get("targetProfile", [])))
                  for t in el.get("type", ()))


def _binding_fact(el: dict) -> tuple | None:
    b = el.get("binding")
    return (b.get("strength"), (b.get("valueSet") or "").split("|")[0]) if b else None


def _slicing_fact(el: dict) -> tuple | None:
    s = el.get("slicing")
    if not s:
        return None
    return (tuple((d["type"], d["path"]) for d in s.get("discriminator", ())), s.get("rules"),
            bool(s.get("ordered")))


CHECKED_FACTS: dict[str, Callable[[dict], object]] = {
    "path": lambda el: el.get("path"),
    "sliceName": lambda el: el.get("sliceName"),
    "min": lambda el: el.get("min"),
    "max": lambda el: el.get("max"),
    "type": _types_fact,
    "fixed": lambda el: {k: v for k, v in el.items() if k.startswith("fixed")},
    "pattern": lambda el: {k: v for k, v in el.items() if k.startswith("pattern")},
    "binding": _binding_fact,
    "slicing": _slicing_fact,
    "contentReference": lambda el: el.get("contentReference"),
    "mustSupport": lambda el: bool(el.get("mustSupport")),
    "constraint": lambda el: sorted(c["key"] for c in el.get("constraint", ())),
}


def compare_snapshots(expected: list[dict], actual: list[dict],
                      facts: Iterable[str] = tuple(CHECKED_FACTS)) -> list[str]:
    """Differences of *actual* from *expected*: missing, extra or reordered element
    ids, and per element the named facts (constraints: the expected keys must be
    there; tools may add those of type profiles)."""
    exp = dict(zip(element_ids(expected), expected))
    act = dict(zip(element_ids(actual), actual))
    issues = [f"{i}: missing" for i in exp if i not in act]
    issues += [f"{i}: not expected" for i in act if i not in exp]
    common = [i for i in act if i in exp]
    if common != [i for i in exp if i in act]:
        issues.append("elements are not in the expected order")
    for i in common:
        for name in facts:
            want, got = CHECKED_FACTS[name](exp[i]), CHECKED_FACTS[name](act[i])
            if name == "constraint" and not set(want) - set(got):
                continue
            if want != got:
                issues.append(f"{i}: {name} is {got!r}, expected {want!r}")
    return issues
