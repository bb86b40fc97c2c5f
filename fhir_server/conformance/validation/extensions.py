"""Extensions: the definition an extension is checked against (its slice's type
profile, else its url), whether it may be used where it is (``StructureDefinition.context``)
and unknown extensions (allowed, noted; example.org urls are errors)."""

from __future__ import annotations

from fhir_server.conformance.structure import SD_PREFIX
from fhir_server.conformance.validation import fhirpath
from fhir_server.conformance.validation.definitions import DATA_TYPES, Defn, Model, base_types

__all__ = ["Extensions", "is_example_url", "type_path"]

#: example domains (RFC 2606, HL7's 'acme') and example OID arcs (2.999, IANA's example
#: enterprise 32473): an extension there is one nobody can resolve
EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net", "acme.com", "acme.org")
EXAMPLE_OIDS = ("urn:oid:2.999.", "urn:oid:1.3.6.1.4.1.32473.")


def is_example_url(url: str) -> bool:
    return url.startswith(EXAMPLE_OIDS) or any(f"{d}/" in url or url.endswith(d) for d in EXAMPLE_DOMAINS)


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
            if model is None and url.split("|", 1)[0] in self.defs.own:
                # given, but its snapshot cannot be made (a base not held here, a circle of bases)
                self.error("structure", path, f"The extension definition {url} cannot be used: no snapshot "
                                              f"can be generated for it")
                return None
            if model is None:
                if is_example_url(url) and not self.v.allow_examples:
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
        if d.name in ("extension", "modifierExtension") and model.type == "Extension" \
                and model.modifier != (d.name == "modifierExtension"):
            # extensibility.html#modifierExtension: a modifier sits in modifierExtension, only a modifier does
            self.error("structure", path, f"The extension {url} must be used as a modifierExtension"
                       if model.modifier else f"The extension {url} is not a modifier extension, so it must "
                                              f"not be used as a modifierExtension")
        if not profiles:
            self._context(model, path, holder, url)
        return model

    def _context(self, model: Model, path: str, holder, url) -> None:
        """StructureDefinition.context (extensibility.html#context): the element the
        extension sits on is one a context names -- by path or type (``element``), as an
        extension with that url (``extension``), or among what a FHIRPath expression
        selects from the resource (``fhirpath``) -- and each contextInvariant holds on it."""
        if model.contexts and not any(self._in_context(kind, expression, model, holder)
                                      for kind, expression in model.contexts):
            allowed = ", ".join(f"{_PREFIX.get(k, k)}:{e}" for k, e in model.contexts)
            self.error("business-rule", path, f"The extension {url} is not allowed to be used at this point "
                                              f"(allowed = {allowed}; this element is {holder[0]})")
            return
        for expression in model.context_invariants:
            compiled = fhirpath.compile_expression(expression)
            result = fhirpath.evaluate(compiled, holder[3], holder[1], self._variables()) \
                if compiled is not None and isinstance(holder[3], dict) else None
            if result is not None and (not result or any(r is False for r in result)):
                self.error("business-rule", path, f"The extension {url} is not allowed to be used at this point "
                                                  f"(based on context invariant '{expression}')")

    def _in_context(self, kind: str, expression: str, model: Model, holder) -> bool:
        epath, htype, tpath, container = holder
        if kind == "element":
            names = {epath, *base_types(htype)}
            if tpath:
                names.add(tpath)
            if "." in epath and htype not in DATA_TYPES:
                names.add("BackboneElement")
            if model.url == FHIR_TYPE_EXT and "ElementDefinition.type" in names:
                return True  # R4's own snapshots carry it on ElementDefinition.type, not .code
            expr = expression.replace("[x]", "")
            return expr in names or expr in ("Element", "Base", "Any")
        if kind == "extension":
            return htype == "Extension" and isinstance(container, dict) and container.get("url") == expression
        if kind == "fhirpath":
            return self._selected(expression, container)
        return False

    def _selected(self, expression: str, container) -> bool:
        """Whether *expression*, evaluated on the resource, selects *container*; an
        expression that cannot be evaluated here is given the benefit of the doubt."""
        if self.ctx is None:
            return True
        found = fhirpath.select(expression, self.ctx.resource, self._variables())
        if found is None:
            return True
        return any(item is container or (not isinstance(container, dict) and item == container) for item in found)

    def _variables(self) -> dict:
        return {"resource": self.ctx.resource, "rootResource": self.ctx.root} if self.ctx else {}


_PREFIX = {"element": "e", "extension": "x", "fhirpath": "p"}


def type_path(holder: tuple, epath: str) -> str | None:
    """'HumanName.family' for the family of a name: the element's path within the
    data type that holds it (extension contexts name elements that way)."""
    htype = holder[1]
    if htype in DATA_TYPES and htype not in ("BackboneElement", "Element"):
        return f"{htype}.{epath.rsplit('.', 1)[-1]}"
    if holder[2] and htype in ("BackboneElement", "Element"):
        return f"{holder[2]}.{epath.rsplit('.', 1)[-1]}"
    return None

