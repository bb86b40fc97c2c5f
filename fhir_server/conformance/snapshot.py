"""Snapshot generation: a profile's differential applied to its base definition.

``generate_snapshot(profile, resolve)`` follows the R4 rules (profiling.html,
elementdefinition.html) as the HL7 tooling of the 4.0.1 release applies them:

* the base snapshot (``resolve(baseDefinition)``) is copied; each differential
  element is merged into the element with the same id (ids missing from the
  differential are derived from path and sliceName);
* cardinality may only narrow, types only to allowed types (or specialisations,
  Resource -> Patient; target profiles to allowed ones), bindings only get
  stronger, fixed/pattern values may not contradict the base's -- violations are
  collected and raised as one ``SnapshotError``;
* a differential element below an element whose children are not listed yet
  (Patient.identifier.system) lists them from the element's type -- its type
  profile if it has one, else the base type (``resolve`` again) -- or from its
  contentReference;
* a slice (``Patient.identifier:ssn``) is a copy of the unconstrained base element,
  children included, placed after the sliced element's children and earlier slices;
  extensions get the default url slicing, reslices ('a/b') copy their slice;
* a renamed choice (``Observation.valueQuantity``) becomes the type slice
  ``Observation.value[x]:valueQuantity``; without an explicit slicing the choice
  gets closed ``type``/``$this`` slicing and is narrowed to the sliced types.
  Below a slice (``component:systolic.valueQuantity``) the choice itself is
  narrowed to that type instead, as the 4.0.1 tooling does;
* constraints are added to the base's; other properties are replaced.

``check_snapshot(profile, resolve)`` regenerates and lists where the profile's own
snapshot differs; ``make_resolver`` resolves core definitions plus a set of
profiles whose snapshots it generates (recursively) on first use.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

from fhir_server.conformance.structure import (SD_PREFIX, Node, build_tree, compare_snapshots,
                                               core_definition, element_ids, max_count, split_id,
                                               type_codes)

__all__ = ["SnapshotError", "check_snapshot", "generate_snapshot", "make_resolver"]

Resolver = Callable[[str], "dict | None"]

STRENGTH = {"example": 0, "preferred": 1, "extensible": 2, "required": 3}
EXTENSION_SLICING = {"discriminator": [{"type": "value", "path": "url"}], "ordered": False, "rules": "open"}
TYPE_SLICING = {"discriminator": [{"type": "type", "path": "$this"}], "ordered": False, "rules": "closed"}
VALUE_KEYS = ("fixed", "pattern")
# Merged by their own rules, or never taken from the differential.
SPECIAL = {"id", "path", "sliceName", "base", "min", "max", "type", "binding", "constraint",
           "condition", "slicing", "contentReference"}


class SnapshotError(ValueError):
    """The differential breaks its base's rules (or cannot be placed)."""

    def __init__(self, url: str, messages: list[str]) -> None:
        super().__init__(f"{url}: " + "; ".join(messages))
        self.url = url
        self.messages = messages


class _NotFound(LookupError):
    pass


def generate_snapshot(profile: dict, resolve: Resolver) -> list[dict]:
    """The snapshot elements of *profile* (a StructureDefinition dict with a
    differential), built on ``resolve(profile["baseDefinition"])``."""
    builder = _Builder(profile, resolve)
    elements = builder.build()
    if builder.errors:
        raise SnapshotError(profile.get("url", "?"), builder.errors)
    return elements


class _Builder:
    def __init__(self, profile: dict, resolve: Resolver) -> None:
        self.profile = profile
        self.resolve = resolve
        self.errors: list[str] = []
        self.type_sliced: set[Node] = set()  # choices whose type slicing we added

    def build(self) -> list[dict]:
        base_url = self.profile.get("baseDefinition", "")
        base = self.resolve(base_url) if base_url else None
        if base is None or not base.get("snapshot", {}).get("element"):
            self.errors.append(f"base definition {base_url or '(none)'} not found or has no snapshot")
            return []
        self.root = build_tree(base["snapshot"]["element"]).clone()
        diff = self.profile.get("differential", {}).get("element", [])
        for eid, el in zip(element_ids(diff), diff):
            try:
                node = self._locate(eid, el)
            except _NotFound as exc:
                self.errors.append(str(exc))
                continue
            self._merge(node, el, eid)
        return list(self.root.elements())

    # ----------------------------------------------------------- finding elements

    def _locate(self, eid: str, el: dict) -> Node:
        (root_name, _), *segments = split_id(eid)
        if root_name != self.root.name:
            raise _NotFound(f"{eid}: not an element of {self.root.name}")
        if el.get("sliceName") and (not segments or segments[-1][1] != el["sliceName"]):
            raise _NotFound(f"{eid}: id does not end with its sliceName {el['sliceName']}")
        node, in_slice = self.root, False
        for name, slice_name in segments:
            node = self._child(node, name, eid, in_slice)
            in_slice = in_slice or node.slice is not None
            if slice_name:
                node = self._slice(node, slice_name, eid)
                in_slice = True
        return node

    def _child(self, node: Node, name: str, eid: str, in_slice: bool) -> Node:
        kids = self._children(node, eid)
        found = next((k for k in kids if k.name == name), None)
        if found is not None:
            return found
        for choice in kids:
            stem = choice.name[:-3]
            if choice.name.endswith("[x]") and name.startswith(stem) and len(name) > len(stem):
                if in_slice and choice.find_slice(name) is None:
                    # within a slice the 4.0.1 tooling narrows the choice in place
                    return self._choice_narrowed(choice, name[len(stem):], eid)
                return self._choice_slice(choice, name, name[len(stem):], eid)
        raise _NotFound(f"{eid}: {node.name} has no element {name}")

    def _children(self, node: Node, eid: str) -> list[Node]:
        if node.children is None:
            node.children = [c.clone() for c in self._listed_children(node, eid)]
        return node.children

    def _listed_children(self, node: Node, eid: str) -> list[Node]:
        """The children of *node* from its contentReference or its (single) type."""
        el = node.el
        if "contentReference" in el:
            return self._referenced(el["contentReference"].lstrip("#"), eid).children or []
        types = el.get("type", [])
        codes = set(type_codes(el))
        if not codes:
            raise _NotFound(f"{eid}: cannot list children of an element without type")
        profiles = sorted({p for t in types for p in t.get("profile", ())})
        if len(codes) > 1:  # a choice of types: only what they all have (id, extension)
            url = SD_PREFIX + "Element"
        else:
            url = profiles[0] if len(profiles) == 1 else SD_PREFIX + codes.pop()
        sd = self.resolve(url)
        if sd is None or not sd.get("snapshot", {}).get("element"):
            raise _NotFound(f"{eid}: cannot list children: {url} not found or has no snapshot")
        return build_tree(sd["snapshot"]["element"]).children or []

    def _referenced(self, path: str, eid: str) -> Node:
        root_name, *names = path.split(".")
        node = self.root.origin
        if root_name != self.root.name:
            sd = self.resolve(SD_PREFIX + root_name)
            if sd is None:
                raise _NotFound(f"{eid}: contentReference #{path} not found")
            node = build_tree(sd["snapshot"]["element"])
        for name in names:
            node = node.child(name) if node else None
        if node is None or node.children is None:
            raise _NotFound(f"{eid}: contentReference #{path} not found")
        return node

    def _slice(self, node: Node, slice_name: str, eid: str) -> Node:
        found = node.find_slice(slice_name)
        if found is not None:
            return found
        if "/" in slice_name:  # reslice: a copy of the slice as constrained so far
            holder = node.find_slice(slice_name.rpartition("/")[0])
            if holder is None:
                raise _NotFound(f"{eid}: reslice of an undefined slice")
            source = holder
        else:
            holder = source = node
            if "slicing" not in node.el:
                if node.name in ("extension", "modifierExtension"):
                    node.el["slicing"] = copy.deepcopy(EXTENSION_SLICING)
                else:
                    self.errors.append(f"{eid}: slice of an element without slicing")
            source = node.origin or node
        new = source.clone(with_slices=False)
        new.el.pop("slicing", None)
        new.slice = new.el["sliceName"] = slice_name
        holder.slices.append(new)
        return new

    def _choice_types(self, choice: Node, suffix: str, eid: str) -> list[dict]:
        types = [t for t in choice.el.get("type", []) if _cap(t.get("code", "")) == suffix]
        if not types:
            raise _NotFound(f"{eid}: type {suffix} is not allowed for {choice.name}")
        return types

    def _choice_narrowed(self, choice: Node, suffix: str, eid: str) -> Node:
        choice.el["type"] = copy.deepcopy(self._choice_types(choice, suffix, eid))
        return choice

    def _choice_slice(self, choice: Node, name: str, suffix: str, eid: str) -> Node:
        found = choice.find_slice(name)
        if found is not None:
            return found
        types = self._choice_types(choice, suffix, eid)
        if "slicing" not in choice.el:
            choice.el["slicing"] = copy.deepcopy(TYPE_SLICING)
            self.type_sliced.add(choice)
        new = (choice.origin or choice).clone(with_slices=False)
        new.el.pop("slicing", None)
        new.slice = new.el["sliceName"] = name
        new.el["type"] = copy.deepcopy(types)
        choice.slices.append(new)
        if choice in self.type_sliced:
            sliced = {t.get("code") for s in choice.slices for t in s.el.get("type", ())}
            choice.el["type"] = [t for t in choice.el["type"] if t.get("code") in sliced]
        return new

    # ------------------------------------------------------------------- merging

    def _merge(self, node: Node, diff: dict, eid: str) -> None:
        el = node.el
        self._cardinality(node, diff, eid)
        if "type" in diff:
            self._types(el, diff["type"], eid)
        if "binding" in diff:
            self._binding(el, diff["binding"], eid)
        if "slicing" in diff:
            el["slicing"] = {**el.get("slicing", {}), **copy.deepcopy(diff["slicing"])}
        if diff.get("constraint"):
            self._constraints(el, diff["constraint"])
        if diff.get("condition"):
            el["condition"] = sorted(set(el.get("condition", [])) | set(diff["condition"]))
        self._values(el, diff, eid)
        for key, value in diff.items():
            if key not in SPECIAL and not key.startswith(VALUE_KEYS):
                el[key] = copy.deepcopy(value)

    def _cardinality(self, node: Node, diff: dict, eid: str) -> None:
        el = node.el
        low, high = diff.get("min", el["min"]), diff.get("max", el["max"])
        # "in a slice, minimum cardinality rules do not apply" (the slice element itself)
        if low < el["min"] and node.slice is None:
            self.errors.append(f"{eid}: min {low} is below the base's {el['min']}")
        if max_count(high) > max_count(el["max"]):
            self.errors.append(f"{eid}: max {high} is above the base's {el['max']}")
        if low > max_count(high):
            self.errors.append(f"{eid}: min {low} is above max {high}")
        el["min"], el["max"] = low, high

    def _types(self, el: dict, types: list[dict], eid: str) -> None:
        base = el.get("type", [])
        for t in types:
            if base and not any(self._type_fits(t, b) for b in base):
                self.errors.append(f"{eid}: type {_describe(t)} is not allowed by the base "
                                   f"({', '.join(_describe(b) for b in base)})")
        el["type"] = copy.deepcopy(types)
        profiles = {p for t in types for p in t.get("profile", ())}
        if len(profiles) == 1:  # the type profile's own rules apply here too
            sd = self.resolve(profiles.pop())
            root = (sd or {}).get("snapshot", {}).get("element", [{}])[0]
            if root.get("constraint"):
                have = {c["key"] for c in el.get("constraint", ())}
                el["constraint"] = el.get("constraint", []) + [
                    copy.deepcopy(c) for c in root["constraint"] if c["key"] not in have]

    def _type_fits(self, t: dict, base: dict) -> bool:
        code, base_code = t.get("code", ""), base.get("code", "")
        fhir_type = next((x.get("valueUrl") for x in base.get("extension", ())
                          if x.get("url", "").endswith("structuredefinition-fhir-type")), None)
        if code not in (base_code, fhir_type) and SD_PREFIX + base_code not in self._lineage(SD_PREFIX + code):
            return False
        for key in ("profile", "targetProfile"):
            allowed = [u.split("|")[0] for u in base.get(key, ())]
            if allowed and SD_PREFIX + "Resource" not in allowed and not all(
                    self._conforms(url.split("|")[0], allowed) for url in t.get(key, ())):
                return False
        return True

    def _conforms(self, url: str, allowed: list[str]) -> bool:
        """Whether the profile *url* is one of *allowed* or derives from one."""
        lineage = self._lineage(url)
        if len(lineage) == 1 and url not in allowed:
            return self.resolve(url) is None  # unknown profiles cannot be checked
        return any(u in allowed for u in lineage)

    def _lineage(self, url: str) -> list[str]:
        """url, its baseDefinition, that one's ... (as far as they resolve): the
        profiles it conforms to and the types it specialises."""
        out = [url]
        while len(out) < 20:
            sd = self.resolve(out[-1])
            base = sd.get("baseDefinition") if sd else None
            if not base:
                break
            out.append(base.split("|")[0])
        return out

    def _binding(self, el: dict, binding: dict, eid: str) -> None:
        base = el.get("binding")
        if base and STRENGTH.get(binding.get("strength"), 0) < STRENGTH.get(base.get("strength"), 0):
            self.errors.append(f"{eid}: binding strength {binding.get('strength')} is weaker "
                               f"than the base's {base.get('strength')}")
        if base and "valueSet" not in binding:
            el["binding"] = {**base, **copy.deepcopy(binding)}
        else:
            el["binding"] = copy.deepcopy(binding)

    def _constraints(self, el: dict, constraints: list[dict]) -> None:
        merged = {c["key"]: c for c in el.get("constraint", [])}
        for c in constraints:
            added = copy.deepcopy(c)
            if "source" not in added and self.profile.get("url"):
                added["source"] = self.profile["url"]
            merged[c["key"]] = added
        el["constraint"] = list(merged.values())

    def _values(self, el: dict, diff: dict, eid: str) -> None:
        """fixed[x] / pattern[x]: may only repeat or refine the base's value."""
        for key in [k for k in diff if k.startswith(VALUE_KEYS)]:
            for base_key in [k for k in el if k.startswith(VALUE_KEYS)]:
                ok = (el[base_key] == diff[key] if base_key.startswith("fixed")
                      else _matches(diff[key], el[base_key]))
                if not ok:
                    self.errors.append(f"{eid}: {key} contradicts the base's {base_key}")
                del el[base_key]
            el[key] = copy.deepcopy(diff[key])


def _cap(code: str) -> str:
    return code[:1].upper() + code[1:]


def _describe(t: dict) -> str:
    extra = t.get("profile", []) + t.get("targetProfile", [])
    return t.get("code", "?") + (f"({', '.join(extra)})" if extra else "")


def _matches(value, pattern) -> bool:
    """Whether *value* has everything *pattern* has (FHIR pattern[x] semantics)."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and _matches(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_matches(v, p) for v in value) for p in pattern)
    return value == pattern


# ------------------------------------------------------------------ resolving, checking


def make_resolver(profiles: Iterable[dict], fallback: Resolver = core_definition) -> Resolver:
    """Resolve canonical urls to StructureDefinitions: *profiles* (their snapshot
    generated from differential + base on first use, recursively) before *fallback*.
    A profile whose snapshot cannot be generated resolves as given."""
    by_url = {p["url"]: p for p in profiles
              if p.get("resourceType") == "StructureDefinition" and "url" in p}
    done: dict[str, dict] = {}
    busy: set[str] = set()

    def resolve(url: str) -> dict | None:
        url = url.split("|", 1)[0]
        if url in done:
            return done[url]
        profile = by_url.get(url)
        if profile is None:
            return fallback(url)
        if url in busy or profile.get("derivation") != "constraint" or "differential" not in profile:
            return profile
        busy.add(url)
        try:
            done[url] = {**profile, "snapshot": {"element": generate_snapshot(profile, resolve)}}
        except SnapshotError:
            return profile
        finally:
            busy.discard(url)
        return done[url]

    return resolve


def check_snapshot(profile: dict, resolve: Resolver) -> list[str]:
    """Inconsistencies between *profile*'s snapshot and its differential + base."""
    try:
        generated = generate_snapshot(profile, resolve)
    except SnapshotError as exc:
        return [f"differential: {m}" for m in exc.messages]
    shipped = profile.get("snapshot", {}).get("element")
    if not shipped:
        return ["no snapshot"]
    return compare_snapshots(generated, shipped)
