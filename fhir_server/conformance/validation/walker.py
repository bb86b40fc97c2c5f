"""The walk: one resource against its compiled definitions, element by element.

``Run.resource`` validates a resource (and, recursively, the resources it holds:
contained, Bundle entries, Parameters) against its claimed or given profiles --
each profile's snapshot includes the base definition of the type, so the base rules
are checked with it; issues found by several profiles are reported once.

Per element (``Run.element``): JSON shape (arrays, objects, primitive kinds),
primitive formats (the types' regexes, real dates, integer ranges, XHTML),
fixed/pattern values, bindings, min/max values and lengths, reference target types,
extensions (by slice profile or by url; context and value type), the children
(unknown properties, cardinality, slicing: ``slicing.py``) and invariants
(``invariants.py``).  The checks live in mixins: ``values.py`` (formats, fixed/pattern,
bindings, min/max), ``references.py``, ``extensions.py``, ``invariants.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validation import fhirpath, rules
from fhir_server.conformance.validation.bundle import check_bundle
from fhir_server.conformance.validation.questionnaire import check_questionnaire, check_questionnaire_response
from fhir_server.conformance.validation.definitions import (DATA_TYPES, PRIMITIVES, RESOURCE_TYPES, Defn, Model,
                                                            json_kind_ok)
from fhir_server.conformance.validation.extensions import Extensions, type_path
from fhir_server.conformance.validation.invariants import Invariants, merge_constraints, orphans
from fhir_server.conformance.validation.issues import ValidationIssue
from fhir_server.conformance.validation.references import ABSOLUTE_RE, References
from fhir_server.conformance.validation.value_set import check_value_set
from fhir_server.conformance.validation.values import ValueChecks

__all__ = ["Run", "Item", "ResCtx"]

MAX_DEPTH = 64


class Item(NamedTuple):
    path: str       # FHIRPath location in the instance
    value: object   # the JSON value (None: only a primitive's '_' part is there)
    ext: object     # a primitive's '_name' object, or None
    tcode: str      # the type the instance has here
    key: str        # the JSON property name


@dataclass(slots=True)
class ResCtx:
    """The resource being walked and what references resolve in."""

    resource: dict
    root: dict                       # %rootResource: the container for contained resources
    bundle: dict | None = None       # fullUrl -> resource of the enclosing Bundle
    full_url: str | None = None


class Run(References, ValueChecks, Extensions, Invariants, fhirpath.Evaluation):
    """One validation: its issues and where it is (the resource, the Bundle)."""

    def __init__(self, validator, depth: int = 0) -> None:
        self.v = validator
        self.defs = validator._defs
        self.issues: list[ValidationIssue] = []
        self._keys: set[tuple] = set()
        self.depth = depth
        self.ctx: ResCtx | None = None
        self.conformance: dict = {}  # (id(value), profile, type) -> (conforms, value), shared with sub-runs
        self.claims = True  # whether resources' meta.profile claims are validated

    def add(self, severity: str, code: str, expression: str, message: str, constraint: str | None = None) -> None:
        key = (severity, expression, constraint, message)
        if key not in self._keys:
            self._keys.add(key)
            self.issues.append(ValidationIssue(severity, code, expression, message, constraint))

    def error(self, code: str, expression: str, message: str, constraint: str | None = None) -> None:
        self.add("error", code, expression, message, constraint)

    def resource(self, res: dict, path: str, profiles, parent: ResCtx | None = None,
                 contained: bool = False, full_url: str | None = None) -> None:
        rtype = res.get("resourceType")
        if not isinstance(rtype, str) or rtype not in RESOURCE_TYPES:
            self.error("structure", path, f"Unknown resource type {rtype!r}" if rtype else
                       "The resource has no resourceType")
            return
        if self.depth > MAX_DEPTH:
            self.error("too-costly", path, "Resources are nested too deeply")
            return
        meta = res.get("meta")
        claims = meta.get("profile") if isinstance(meta, dict) and self.claims else None
        claims = [u for u in claims if isinstance(u, str)] if isinstance(claims, list) else []
        requested = list(profiles or ())
        models: list[Model] = []
        for i, url in enumerate(dict.fromkeys(requested + claims)):
            m = self.defs.model(url)
            asked = url in requested
            where = path if asked else f"{path}.meta.profile[{claims.index(url)}]"
            if m is None:
                if asked:
                    self.error("not-found", where, f"Profile '{url}' could not be found, so the resource could "
                                                   f"not be validated against it")
                else:
                    self.add("warning", "structure", where, f"Profile reference '{url}' has not been checked "
                                                            f"because it could not be found")
                continue
            if m.type != rtype and m.type not in ("Resource", "DomainResource"):
                self.error("structure", where, f"The profile '{url}' is for {m.type}, not {rtype}")
                continue
            if m.root.path in (rtype, "Resource", "DomainResource") and m not in models:
                models.append(m)
        if not models or not any(m.type == rtype for m in models):
            base = self.defs.model(SD_PREFIX + rtype)
            if base is None:
                self.error("not-found", path, f"No definition for the resource type {rtype}")
                return
            models.insert(0, base)
        if rtype == "Observation":
            for url, why in rules.vital_sign_profiles(res):
                m = self.defs.model(url)
                if m is not None and all(x.url != url for x in models):
                    models.append(m)
                    self.add("information", "informational", path,
                             f"Validate Observation against the {m.name or url} profile ({url}) which is "
                             f"required by the FHIR specification because {why} was found")
        if parent is None:
            ctx = ResCtx(res, res, None, full_url)
        elif contained:
            ctx = ResCtx(res, parent.root, parent.bundle, None)
        else:
            ctx = ResCtx(res, res, parent.bundle, full_url)
        if rtype == "Bundle":
            ctx.bundle = self._bundle_index(res, path)
        saved, self.ctx = self.ctx, ctx
        self.depth += 1
        try:
            for m in models:
                self.element(m.root, rtype, res, None, path, rtype, (rtype, rtype, None, None), resource_root=True)
            if not contained and res.get("contained") and self.v.contained:
                for i in orphans(res):
                    self.add("warning", "invalid", f"{path}.contained[{i}]", f"The contained resource "
                             f"'{res['contained'][i]['id']}' is not referenced to from elsewhere in the containing "
                             f"resource nor does it refer to the containing resource (dom-3)")
            if rtype == "StructureDefinition":
                rules.check_structure_definition(self, res, path)
            elif rtype == "QuestionnaireResponse":
                check_questionnaire_response(self, res, path)
            elif rtype == "Questionnaire":
                check_questionnaire(self, res, path)
            elif rtype == "ValueSet":
                check_value_set(self, res, path)
            elif rtype == "Bundle":
                check_bundle(self, res, path)
        finally:
            self.depth -= 1
            self.ctx = saved

    def element(self, d: Defn, tcode: str, value, ext, path: str, epath: str, holder: tuple,
                resource_root: bool = False) -> None:
        """One instance value *value* (type *tcode*) against definition *d*.  *epath* is
        the element's path without indices (for extension contexts); *holder* the
        (epath, type, path-by-type, value) of the element holding this one."""
        here = (epath, tcode, type_path(holder, epath), value if ext is None else ext)
        if tcode in PRIMITIVES or tcode.startswith("System."):
            self.primitive(d, tcode, value, ext, path, epath, here)
            return
        if not resource_root and (tcode in RESOURCE_TYPES or tcode in ("Resource", "DomainResource")):
            self.nested_resource(d, value, path)
            return
        if not isinstance(value, dict):
            self.error("structure", path, f"The property {path.rsplit('.', 1)[-1]} must be a JSON object, "
                                          f"not {_json_kind(value)}")
            return
        if not resource_root and not any(k != "id" for k in value):
            self.error("invalid", path, "ele-1: All FHIR elements must have a @value or children", "ele-1")
        owners: list[Defn] = []
        extra: list[Defn] = []   # type-profile roots: their own values and invariants apply too
        tref = _type_ref(d, tcode)
        profiles = tref.profiles if tref else ()
        if tcode == "Extension":
            ext_model = self.extension(d, profiles, value, path, holder)
            if ext_model is not None:
                extra.append(ext_model.root)
        else:
            for url in profiles:
                m = self.defs.model(url)
                if m is None:
                    # a profile of another guide not given here: nothing can be checked against it
                    self.error("structure", path, f"Unknown profile {url}")
                elif not extra:
                    extra.append(m.root)
        if d.children is not None:
            owners.append(self._with_type_children(d, tcode) if len(d.types) > 1 else d)
        elif d.content_ref:
            target = self._content_ref(d)
            if target is not None:
                owners.append(target)
        for root in extra:
            if root.children is not None:
                owners.append(root)
        type_model = self.defs.type_model(tcode) if not resource_root else None
        if not owners and type_model is not None:
            owners.append(type_model.root)
        if not owners and not resource_root:
            self.error("structure", path, f"No definition of the type {tcode} is known here")
            return
        for root in [d, *extra]:
            self.values(root, tcode, value, path)
        if tcode == "Reference":
            self.reference(d, tref, value, path)
        elif tcode == "Attachment":
            self.attachment(value, path)
        for owner in owners:
            self.children(owner, value, path, epath, here, resource_root)
        constraints = merge_constraints(d, extra, type_model)
        if constraints:
            tpath = tcode if (tcode in DATA_TYPES and tcode not in ("BackboneElement", "Element")) or \
                resource_root else (d.content_ref or "#" + d.path).lstrip("#")
            self.invariants(constraints, value, tpath, path, owners[0] if owners else None)

    def _with_type_children(self, d: Defn, tcode: str) -> Defn:
        """A choice's listed children are the types' common ones (id, extension): for
        the instance's type, those overlaid on the type's own children."""
        key = (id(d), tcode)
        found = self.v._merged.get(key)
        if found is None:
            type_model = self.defs.type_model(tcode)
            found = d
            if type_model is not None and type_model.root.children:
                listed = {c.name: c for c in d.children}
                found = Defn(id=d.id, path=d.path, name=d.name, min=d.min, max=d.max, array=d.array,
                             types=d.types, model=d.model,
                             children=[listed.get(c.name, c) for c in type_model.root.children])
            self.v._merged[key] = found
            self.v._keep.append(d)
        return found

    def _content_ref(self, d: Defn) -> Defn | None:
        ref = d.content_ref.lstrip("#")
        model = d.model
        if model is not None and ref in model.by_path:
            return model.by_path[ref]
        core = self.defs.model(SD_PREFIX + ref.split(".", 1)[0])
        return core.by_path.get(ref) if core else None

    def nested_resource(self, d: Defn, value, path: str) -> None:
        if not isinstance(value, dict):
            self.error("structure", path, f"A resource was expected, not {_json_kind(value)}")
            return
        rt = value.get("resourceType")
        tref = next((t for t in d.types if t.code == rt), None) or (d.types[0] if d.types else None)
        profiles = list(tref.profiles) if tref and tref.profiles else None
        contained = d.name == "contained"
        if contained and not self.v.contained:
            return
        if profiles is not None and len(profiles) > 1:
            # "the content must conform to at least one of them"; one that cannot be
            # checked here (unknown, broken) is given the benefit of the doubt
            usable = [u for u in profiles if self.defs.model(u) is not None]
            if len(usable) < len(profiles) or any(self.v.conforms(value, u, self) for u in usable):
                profiles = None
            else:
                self.error("structure", path, f"The resource does not conform to any of the profiles "
                                              f"{', '.join(profiles)}")
                profiles = usable[:1]
        for url in profiles or ():
            if self.defs.model(url) is None:
                self.error("structure", path, f"Unknown profile {url} (required here): the resource could not be "
                                              f"checked against it")
        if profiles is not None:
            profiles = [u for u in profiles if self.defs.model(u) is not None] or None
        full_url = None
        if self.ctx and self.ctx.bundle and d.path.endswith("entry.resource"):
            full_url = next((u for u, r in self.ctx.bundle.items() if r is value and ABSOLUTE_RE.match(u)), None)
        self.resource(value, path, profiles, self.ctx, contained=contained, full_url=full_url)

    def children(self, owner: Defn, obj: dict, path: str, epath: str, holder, resource_root: bool) -> None:
        kids = owner.kids()
        found: dict[int, tuple[Defn, list]] = {}
        for key, val in obj.items():
            if key == "resourceType" and resource_root or not isinstance(key, str):
                continue
            name = key[1:] if key[:1] == "_" else key
            hit = kids.get(name)
            if hit is None:
                choice = owner.choice_for(name)
                if choice is not None:
                    child, t = choice
                    allowed = ", ".join(child.codes)
                    where = f"the {holder[1]} '{obj.get('url')}'" if holder[1] == "Extension" else child.id
                    self.error("structure", f"{path}.{name}",
                               f"The definition of {where} allows for the types [{allowed}] but found type {t}")
                    found.setdefault(id(child), (child, []))[1].append((name, t, None, val))
                else:
                    self.error("structure", f"{path}.{key}", f"Unrecognized property '{key}'")
                continue
            child, t = hit
            found.setdefault(id(child), (child, []))[1].append((name, t, key[:1] == "_", val))
        # the children present, then the absent ones that have a minimum or slices to count
        visit = [entry[0] for entry in found.values()]
        visit += [c for c in owner.checked_when_absent() if id(c) not in found]
        for child in visit:
            entry = found.get(id(child))
            items = self._items(child, entry[1], path) if entry else []
            cpath = f"{epath}.{child.stem}"
            if child.slices:
                pairs = self.v.slicing.assign(self, child, items, path)
            else:
                pairs = [(it, child) for it in items]
                self.cardinality(child, len(items), path)
            for it, defn in pairs:
                if it.key is not None:
                    self.element(defn, it.tcode, it.value, it.ext, it.path, cpath, holder)

    def _items(self, child: Defn, parts: list, path: str) -> list[Item]:
        by_name: dict[str, list] = {}
        bad: list[Item] = []
        for name, t, underscore, val in parts:
            if underscore is None:
                bad.append(Item(f"{path}.{name}", val, None, t, None))
                continue
            by_name.setdefault(name, [None, None, t])[1 if underscore else 0] = val
        if child.is_choice and len(by_name) + len(bad) > 1:
            self.error("structure", f"{path}.{child.name[:-3]}",
                       f"Only one of {', '.join(sorted(by_name))} may be present ({child.id} is a choice)")
        out: list[Item] = bad
        for name, (val, ext, t) in by_name.items():
            tcode = t or (child.types[0].code if child.types else "Element")
            values_list = isinstance(val, list)
            ext_list = isinstance(ext, list)
            if child.array:
                if (val is not None and not values_list) or (ext is not None and not ext_list):
                    self.error("structure", f"{path}.{name}",
                               f"This property must be an Array, not {_json_kind(val if val is not None else ext)}")
                    val = [val] if val is not None and not values_list else val
                    ext = [ext] if ext is not None and not ext_list else ext
                vals = val if isinstance(val, list) else []
                exts = ext if isinstance(ext, list) else []
                if (val is not None and not vals) or (ext is not None and not exts and val is None):
                    self.error("invalid", f"{path}.{name}",
                               "Array cannot be empty - the property should not be present if it has no values")
                if ext is not None and val is not None and len(exts) != len(vals):
                    self.error("structure", f"{path}._{name}",
                               f"The arrays {name} and _{name} must have the same length")
                for i in range(max(len(vals), len(exts))):
                    v = vals[i] if i < len(vals) else None
                    x = exts[i] if i < len(exts) else None
                    if v is None and x is None:
                        self.error("structure", f"{path}.{name}[{i}]", "A null entry is only allowed where the "
                                   "other array (the primitive's '_' part) has a value")
                        continue
                    out.append(Item(f"{path}.{name}[{i}]", v, x, tcode, name))
            else:
                if values_list or ext_list:
                    self.error("structure", f"{path}.{name}", "This property must be a single value, not an Array")
                    continue
                if val is None and ext is None:
                    self.error("structure", f"{path}.{name}", "Null values are not allowed")
                    continue
                out.append(Item(f"{path}.{name}", val, ext, tcode, name))
        return out

    def cardinality(self, d: Defn, count: int, path: str, where: str | None = None) -> None:
        if count < d.min:
            self.error("structure" if count else "required", where or f"{path}.{d.name}",
                       f"{d.id}: minimum required = {d.min}, but only found {count}"
                       + (f" (from {d.model.url})" if d.model and d.model.url else ""))
        if count > d.max:
            self.error("structure", where or f"{path}.{d.name}",
                       f"{d.id}: max allowed = {_fmt_max(d.max)}, but found {count}"
                       + (f" (from {d.model.url})" if d.model and d.model.url else ""))

    def primitive(self, d: Defn, tcode: str, value, ext, path: str, epath: str, here: tuple) -> None:
        if value is not None:
            if isinstance(value, dict | list):
                self.error("structure", path, f"The property {path.rsplit('.', 1)[-1]} must be a JSON primitive "
                                              f"({tcode}), not {_json_kind(value)}")
                return
            if not json_kind_ok(tcode, value) and not tcode.startswith("System."):
                self.error("structure", path, f"Error parsing JSON: the primitive value must be a "
                                              f"{_kind_name(tcode)} ({tcode}), not {_json_kind(value)}")
            else:
                self.primitive_format(d, tcode, value, path)
                self.values(d, tcode, value, path)
        if ext is not None:
            if not isinstance(ext, dict):
                self.error("structure", path, "The primitive's '_' part must be a JSON object")
            else:
                if not ext:
                    self.error("invalid", path, "ele-1: All FHIR elements must have a @value or children", "ele-1")
                owner = d if d.children is not None else None
                if owner is None:
                    tm = self.defs.type_model(tcode)
                    owner = tm.root if tm else None
                if owner is not None:
                    self.children(owner, {k: v for k, v in ext.items() if k != "value"}, path, epath,
                                  here, False)
        own = [c for c in d.constraints if c.key != "ele-1"]
        if own and value is not None:
            self.invariants(own, value, tcode, path)


# ------------------------------------------------------------------------------ helpers


def _type_ref(d: Defn, tcode: str):
    for t in d.types:
        if t.code == tcode:
            return t
    return None


def _json_kind(value) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return "a string"


def _kind_name(tcode: str) -> str:
    if tcode == "boolean":
        return "boolean"
    if tcode in ("integer", "positiveInt", "unsignedInt", "decimal"):
        return "number"
    return "string"


def _fmt_max(m: float) -> str:
    return "*" if m == float("inf") else str(int(m))
