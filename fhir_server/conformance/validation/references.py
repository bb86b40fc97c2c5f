"""References: resolution in the resource (contained) and the enclosing Bundle
(bundle.html#references), target types against the element's target profiles, and
target profiles of resolvable targets."""

from __future__ import annotations

import re

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validation.definitions import RESOURCE_TYPES, Defn
from fhir_server.model.references import REFERENCE_RE

__all__ = ["References", "ABSOLUTE_RE", "REF_RE"]

ABSOLUTE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
REF_RE = REFERENCE_RE  # the write path's structure walk reads references alike (model/references.py)


class References:
    """Mixin of ``Run``."""

    def _bundle_index(self, bundle: dict, path: str) -> dict:
        index: dict = {"\0all": {}}
        entries = bundle.get("entry")
        if not isinstance(entries, list):
            return index
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            full = entry.get("fullUrl")
            res = entry.get("resource")
            if isinstance(full, str):
                if not ABSOLUTE_RE.match(full):
                    self.error("invalid", f"{path}.entry[{i}]", f"The fullUrl must be an absolute URL (not '{full}')")
                if isinstance(res, dict):
                    index.setdefault(full, res)
                    index["\0all"].setdefault(full, []).append(res)
            if isinstance(res, dict) and isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
                index.setdefault(f"{res['resourceType']}/{res['id']}", res)
                index.setdefault("\0typed", {}).setdefault(f"{res['resourceType']}/{res['id']}", []).append(res)
        return index

    def bundle_targets(self, ref: str, full_url: str | None) -> list[dict]:
        """The entries of the enclosing Bundle a reference from an entry with *full_url*
        resolves to (bundle.html#references): an absolute reference by fullUrl; a relative
        one against the RESTful base of the entry's fullUrl only: from an entry whose
        fullUrl is a urn (or absent) a relative reference resolves to nothing, even when
        an entry has that type and id (R4 and later, as the reference validator reads
        bundle.html#references).  A version (``/_history/v``) must be the entry's
        ``meta.versionId``."""
        index = self.ctx.bundle if self.ctx else None
        if not index:
            return []
        target, _, version = ref.partition("/_history/")
        if ABSOLUTE_RE.match(target):
            found = (index.get("\0all") or {}).get(target) or []
        else:
            m = REF_RE.match(full_url or "")
            if full_url and full_url.startswith(("http://", "https://")) and m:
                found = (index.get("\0all") or {}).get(full_url[:m.start(1)] + target) or []
            else:
                found = []
        if version:
            found = [r for r in found if _version(r) == version]
        return found

    def resolve(self, ref: str, ctx=None) -> dict | None:
        ctx = ctx or self.ctx
        if ctx is None or not isinstance(ref, str):
            return None
        if ref.startswith("#"):
            if ref == "#":
                return ctx.root
            contained = ctx.root.get("contained")
            for c in contained if isinstance(contained, list) else ():
                if isinstance(c, dict) and c.get("id") == ref[1:]:
                    return c
            return None
        if ctx.bundle:
            found = ctx.bundle.get(ref)
            if found is not None:
                return found
            m = REF_RE.match(ref)
            if m:
                return ctx.bundle.get(f"{m.group(1)}/{m.group(2)}")
        return None

    def target_type(self, ref: str, ctx=None) -> str | None:
        found = self.resolve(ref, ctx)
        if found is not None:
            rt = found.get("resourceType")
            return rt if isinstance(rt, str) else None
        m = REF_RE.match(ref)
        if m and m.group(1) in RESOURCE_TYPES:
            return m.group(1)
        return None

    def member_of(self, value, url: str) -> bool | None:
        codes = self.v._codes(url)
        if codes is None:
            return None
        return self._in_value_set(value, codes) is not False

    def reference(self, d: Defn, tref, value: dict, path: str) -> None:
        ref = value.get("reference")
        if not isinstance(ref, str):
            return
        if ref.startswith("#") and ref != "#" and self.resolve(ref) is None:
            self.error("structure", path, f"Unable to resolve resource with reference '{ref}'")
            return
        if self.ctx and self.ctx.bundle and not ref.startswith("#") and not self._bundle_match(ref, path):
            return
        if tref and tref.aggregation and not self._aggregation_ok(ref, tref.aggregation):
            self.error("structure", path, f"Bundled or contained reference not found within the bundle/resource "
                                          f"{ref} (aggregation {', '.join(tref.aggregation)})")
            return
        targets = tref.targets if tref else ()
        if not targets:
            return
        kind = self.target_type(ref)
        if kind is None:
            return
        allowed = []
        for url in targets:
            t = self.defs.type_of(url)
            if t is None or t == "Resource":
                return
            allowed.append(t)
        if kind not in allowed:
            self.error("structure", path, f"Invalid reference type: the type '{kind}' implied by the reference "
                                          f"URL {ref} is not a valid target for this element (must be one of "
                                          f"[{', '.join(sorted(set(allowed)))}])")
            return
        target = self.resolve(ref)
        if target is None or target is self.ctx.resource:
            return
        # a resolvable target (contained, in the Bundle) must conform to one of the profiles
        wanted = [u for u in targets if self.defs.type_of(u) == kind and u != SD_PREFIX + kind]
        if wanted and not any(self.v.conforms(target, u, self) for u in wanted):
            self.error("structure", path, f"The resource {ref} does not conform to the target profile "
                                          f"({', '.join(wanted)})")

    def _aggregation_ok(self, ref: str, modes) -> bool:
        """ElementDefinition.type.aggregation: contained, referenced (a reference to a
        resource elsewhere), bundled (resolvable in the enclosing Bundle)."""
        if ref.startswith("#"):
            return "contained" in modes
        if "referenced" in modes:
            return True
        return "bundled" in modes and bool(self.ctx and self.ctx.bundle) and self.resolve(ref) is not None

    def _bundle_match(self, ref: str, path: str) -> bool:
        """Bundle resolution (bundle.html#references): a reference that matches several
        entries, or names a version no entry with that fullUrl has, is an error."""
        everything = self.ctx.bundle.get("\0all") or {}
        target, _, version = ref.partition("/_history/")
        if not ABSOLUTE_RE.match(target):
            base = self.ctx.full_url or ""
            m = REF_RE.match(base)
            if not (base.startswith(("http://", "https://")) and m):
                return True
            target = base[:m.start(1)] + target
        found = everything.get(target) or []
        if version:
            matching = [r for r in found if _version(r) == version]
            if found and not matching:
                self.error("invalid", path, f"Can't find '{ref}' in the bundle: {len(found)} entries have the "
                                            f"fullUrl {target}, none with version {version}")
                return False
            found = matching
        if len(found) > 1:
            self.error("forbidden", path, f"Multiple matches in bundle for reference {ref}")
            return False
        return True


def _version(resource: dict):
    meta = resource.get("meta")
    return meta.get("versionId") if isinstance(meta, dict) else None
