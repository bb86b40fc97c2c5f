"""The profile validator: a resource against the R4 base definition of its type and
the profiles it claims (or is given) -- cardinality, types and target profiles,
fixed and pattern values, required/extensible bindings against local value sets,
FHIRPath invariants, slicing, extensions (context and value types).

    guide = ig_resources(ig_directory())
    validator = Validator(guide, local_value_sets(guide))   # or value_set_lookup(guide_terminology(dir))
    issues = validator.validate(resource)            # its meta.profile claims + base
    issues = validator.validate(resource, [url])     # these profiles, its claims + base

Each issue carries the FHIRPath location of the element in the instance
(``Patient.identifier[0]``; for a missing element its parent's path plus the
element's name, ``Patient.birthDate``) and, for invariants, the constraint key (the
message starts with it: ``evi-pnr-1: ...``).  Profiles are given as
StructureDefinitions (differentials are enough: snapshots are generated on first
use, see ``snapshot.py``); their compiled form, the slice tests and the FHIRPath
expressions are cached for the life of the validator -- build one per set of
profiles and reuse it (it is safe to share between threads).

Besides what profiles say, rules of the specification no invariant states are
applied: resources held in resources (contained, Bundle entries, Parameters) are
validated too; Bundles follow bundle.html (fullUrls, links, searchsets, documents and
messages) and their references resolve unambiguously; a QuestionnaireResponse must
fit its Questionnaire (when the validator was given it or it is contained); ValueSet
compose rules; a StructureDefinition's differential must apply to its base; and
vital-signs Observations must meet the vital signs profiles.  The work itself lives
in ``fhir_server.conformance.validation``: definitions (compiled snapshots), walker
(the walk) with values / references / extensions / invariants, slicing, bundle,
questionnaire, value_set, rules, fhirpath (+ fhirpath_native, invariant_guards),
terminology, xhtml.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from fhir_server.conformance.snapshot import make_resolver
from fhir_server.conformance.structure import core_extension_urls
from fhir_server.conformance.validation.definitions import Definitions, compiled_regex
from fhir_server.conformance.validation.issues import ValidationIssue
from fhir_server.conformance.validation.slicing import Slicer
from fhir_server.conformance.validation.terminology import local_value_sets, value_set_lookup
from fhir_server.conformance.validation.walker import Run
from fhir_server.spec import load_table

__all__ = ["ValidationIssue", "Validator", "local_value_sets", "value_set_lookup"]


ValueSets = Callable[[str], "frozenset[tuple[str | None, str]] | None"]
#: core value sets the lookup cannot expand (UCUM, MIME types, languages ...): codes
#: bound to them are not checked, silently -- as the base validation does
_CORE_VS_PREFIXES = ("http://hl7.org/fhir/ValueSet/", "http://terminology.hl7.org/ValueSet/")


class Validator:
    """Validates resources against profiles; reuse one instance (it caches)."""

    def __init__(self, profiles: Iterable[dict] = (), value_sets: ValueSets | None = None, *,
                 allow_examples: bool = False, contained: bool = True) -> None:
        """*profiles*: resources beyond the core -- StructureDefinitions (profiles,
        extensions), and Questionnaires for QuestionnaireResponses; other resources are
        ignored.  *value_sets*: ``url -> {(system, code)}`` or None when unknown
        (default: ``local_value_sets(profiles)``).  *allow_examples*: extensions with
        example.org / example.com urls that are not known pass unchecked (the reference
        validator's ``allowExamples``); by default they are errors.  *contained*: whether
        contained resources are validated (its ``validateContains``)."""
        self.allow_examples = allow_examples
        self.contained = contained
        resources = [p for p in profiles if isinstance(p, dict)]
        sds = [p for p in resources if p.get("resourceType") == "StructureDefinition" and isinstance(p.get("url"), str)]
        self._defs = Definitions(make_resolver(sds), frozenset(p["url"] for p in sds))
        self._extensions = frozenset(p["url"] for p in sds if p.get("type") == "Extension") | core_extension_urls()
        self._value_sets = value_sets if value_sets is not None else local_value_sets(resources)
        self.slicing = Slicer(self._defs)
        self._code_cache: dict[str, tuple | None] = {}
        self._regex_cache: dict[str, object] = {}
        self._resources = resources
        self._by_url: dict | None = None
        self._questionnaires = {r["url"]: r for r in resources
                                if r.get("resourceType") == "Questionnaire" and isinstance(r.get("url"), str)}
        self._merged: dict[tuple, object] = {}
        self._guards: dict[tuple, object] = {}  # (constraint, type path, owner) -> guard (invariants.py)
        self._keep: list = []

    # ------------------------------------------------------------------ public

    def validate(self, resource: dict, profiles: Sequence[str] | None = None, *,
                 claims: bool = True) -> list[ValidationIssue]:
        """Issues of *resource* against *profiles* (None: its meta.profile claims) and
        the base definition of its type.  Bad input gives issues; a failure of the
        validator itself (a file of the guide or of the spec tables gone, a bug) raises
        and is the server's error (500), never an issue blamed on the resource.
        ``claims=False``: the meta.profile claims (its own, its contained resources')
        are not checked -- the base definitions and the extensions' only."""
        run = Run(self)
        run.claims = claims
        if not isinstance(resource, dict):
            run.error("structure", "", "A resource must be a JSON object")
            return run.issues
        path = resource.get("resourceType") if isinstance(resource.get("resourceType"), str) else "Resource"
        try:
            run.resource(resource, path, [u for u in profiles if isinstance(u, str)] if profiles else None)
        except RecursionError:  # the client's nesting, not a fault of the validator
            run.error("too-costly", path, "The resource is nested too deeply to validate")
        return run.issues

    def is_extension(self, url: object) -> bool:
        """Whether *url* is an extension definition this validator checks extensions against."""
        return isinstance(url, str) and url.split("|", 1)[0] in self._extensions

    def known_profile(self, url: str) -> bool:
        """Whether *url* names a profile (or core definition) this validator can use."""
        return isinstance(url, str) and self._defs.model(url) is not None

    # ------------------------------------------------------------------ used by the walk

    def conforms(self, value, url: str, run: Run, tcode: str | None = None) -> bool:
        """Whether *value* (a resource or an element) has no errors against profile *url*."""
        model = self._defs.model(url)
        if model is None or run.depth > 32:
            return False
        key = (id(value), url, tcode)
        known = run.conformance.get(key)
        if known is not None:
            return known[0]
        sub = Run(self, depth=run.depth + 1)
        sub.ctx, sub.conformance, sub.claims = run.ctx, run.conformance, run.claims
        if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
            sub.resource(value, value["resourceType"], [url], run.ctx, contained=False)
        else:
            t = tcode or model.type
            sub.element(model.root, t, value, None, t, t, (t, t, None, None))
        verdict = not any(i.severity == "error" for i in sub.issues)
        run.conformance[key] = (verdict, value)  # the value is kept so its id stays its own
        return verdict

    def _codes(self, url: str):
        """(pairs, codes, systems) of a value set, or None when it is not known here."""
        url = url.split("|", 1)[0]
        if url not in self._code_cache:
            pairs = self._value_sets(url)  # None when not expandable here; a failure is the server's
            self._code_cache[url] = None if pairs is None else (
                frozenset(pairs), frozenset(c for _, c in pairs), frozenset(s for s, _ in pairs))
        return self._code_cache[url]

    def resource(self, resource_type: str, url: str) -> dict | None:
        """A resource this validator was given, by type and canonical url (a version ignored)."""
        if self._by_url is None:
            self._by_url = {(r.get("resourceType"), r["url"]): r for r in self._resources
                            if isinstance(r.get("url"), str)}
        return self._by_url.get((resource_type, url.split("|", 1)[0]))

    def expand_resource(self, vs: dict, siblings: Iterable[dict] = ()):
        """The (system, code) pairs of a ValueSet resource that has no url of its own (a
        contained one), over the resources this validator was given and the resources
        contained next to it (an import '#id' names one of those); None when it cannot
        be expanded here."""
        url = "urn:evi-fhir:contained-value-set"
        local = [{**s, "url": "#" + s["id"]} for s in siblings if isinstance(s, dict) and s is not vs
                 and s.get("resourceType") in ("ValueSet", "CodeSystem") and isinstance(s.get("id"), str)]
        return local_value_sets([*self._resources, *local, {**vs, "url": url}])(url)

    def _questionnaire(self, url: str) -> dict | None:
        return self._questionnaires.get(url.split("|", 1)[0])

    @staticmethod
    def _skipped(url: str) -> bool:
        return url in load_table("valuesets").get("_skipped", {}) or url.startswith(_CORE_VS_PREFIXES)

    def _type_regex(self, tcode: str):
        if tcode not in self._regex_cache:
            model = self._defs.type_model(tcode)
            kid = model.root.kids().get("value") if model else None
            pattern = kid[0].regex if kid else None
            self._regex_cache[tcode] = compiled_regex(pattern) if pattern else None
        return self._regex_cache[tcode]
