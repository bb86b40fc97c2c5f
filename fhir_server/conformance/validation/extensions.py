"""Extensions: the definition an extension is checked against (its slice's type
profile, else its url), whether it may be used where it is (``StructureDefinition.context``)
and unknown extensions (allowed, noted; example.org urls are errors)."""

from __future__ import annotations

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validation.definitions import DATA_TYPES, Defn, Model, base_types

__all__ = ["Extensions", "type_path"]

EXAMPLE_HOSTS = ("http://example.org/", "https://example.org/", "http://example.com/", "https://example.com/",
                 "http://example.net/", "https://example.net/")
FHIR_TYPE_EXT = SD_PREFIX + "structuredefinition-fhir-type"


class Extensions:
    """Mixin of ``Run``."""

    def extension(self, d: Defn, profiles, value: dict, path: str, holder) -> Model | None:
        url = value.get("url")
        model = None
        for p in profiles:
            model = self.defs.model(p)
            if model is not None:
                break
            self.error("structure", path, f"Unknown profile {p}")
        if model is None and isinstance(url, str) and "://" in url:
            model = self.defs.model(url)
            if model is None:
                if url.startswith(EXAMPLE_HOSTS) and not self.v.allow_examples:
                    self.error("structure", path, f"The extension {url} could not be found so is not allowed here")
                    self.error("invalid", path + ".url",
                               f"Example URLs are not allowed in this context ({url})")
                else:
                    self.add("information", "not-found", path, f"The extension {url} is not known, so it was "
                                                               f"not checked")
                return None
            if model.type != "Extension":
                self.error("structure", path, f"The url {url} is not an extension definition")
                return None
        if model is None:
            return None
        if not profiles:
            self._context(model, path, holder, url)
        return model

    def _context(self, model: Model, path: str, holder, url) -> None:
        if not model.contexts:
            return
        epath, htype, tpath = holder
        names = {epath, *base_types(htype)}
        if tpath:
            names.add(tpath)
        if "." in epath and htype not in DATA_TYPES:
            names.add("BackboneElement")
        if model.url == FHIR_TYPE_EXT and "ElementDefinition.type" in names:
            return  # R4's own snapshots carry it on ElementDefinition.type, not .code
        for kind, expression in model.contexts:
            if kind == "element":
                expr = expression.replace("[x]", "")
                if expr in names or expr in ("Element", "Base"):
                    return
            elif kind in ("fhirpath", "extension"):
                return
        allowed = ", ".join(f"{'e' if k == 'element' else k}:{e}" for k, e in model.contexts)
        self.error("business-rule", path, f"The extension {url} is not allowed to be used at this point "
                                          f"(allowed = {allowed}; this element is {epath})")


def type_path(holder: tuple, epath: str) -> str | None:
    """'HumanName.family' for the family of a name: the element's path within the
    data type that holds it (extension contexts name elements that way)."""
    htype = holder[1]
    if htype in DATA_TYPES and htype not in ("BackboneElement", "Element"):
        return f"{htype}.{epath.rsplit('.', 1)[-1]}"
    if holder[2] and htype in ("BackboneElement", "Element"):
        return f"{holder[2]}.{epath.rsplit('.', 1)[-1]}"
    return None

