"""The product's FHIR content (``profiles/``, ``examples/``) keeps domain.md §2's contract.

Every file parses and passes the R4 validation the server runs; canonicals sit under the
product's base; the code systems, profiles, extensions and forms domain.md names exist with
its exact codes; bindings and profile references resolve; personnummer examples have valid
Luhn check digits. A small differential checker (cardinality, fixed/pattern values, required
bindings to the product's value sets, reference target types, slices by system / url /
pattern / resolved type, and FHIRPath invariants via fhirpathpy) shows that the valid examples
conform and that each invalid example fails with exactly the errors its ``.expected.json``
names. It is a test aid, not the server's profile validator: snapshots are not generated here.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from fhirpathpy import compile as compile_fhirpath, evaluate
from fhirpathpy.models import models

from fhir_server.errors import Unprocessable
from fhir_server.model import validate_resource

ROOT = Path(__file__).resolve().parents[1]
PROFILES, EXAMPLES = ROOT / "profiles", ROOT / "examples"
SPEC = ROOT.parent / "shared" / "fhir-spec" / "hl7.fhir.r4.core-4.0.1" / "package"
BASE = "https://evi-fhir.org/fhir"
PNR = "http://electronichealth.se/identifier/personnummer"
SNR = "http://electronichealth.se/identifier/samordningsnummer"
FHIRPATH_MODEL = models["r4"]
#: FHIR's own FHIRPath functions the guide's invariants use (fhirpathpy lacks hasValue())
FHIRPATH_OPTIONS = {"userInvocationTable": {"hasValue": {"fn": lambda inputs: len(inputs) == 1 and inputs[0] is not None
                                                          and not isinstance(inputs[0], dict | list),
                                                    "arity": {0: []}}}}
#: the examples are dated early 2026; children must be 0-17 then
EXAMPLE_DATE = date(2026, 2, 1)

# ---- the contract, copied from domain.md §2 -------------------------------------------------
CODE_SYSTEMS = {
    "evi-contact-channel": ["phone-professional", "phone-advice", "phone-acute", "phone-existing-patient", "phone-other",
                            "referral-paper", "referral-electronic", "e-service-message", "e-service-self-referral-guardian",
                            "e-service-self-referral-child", "e-service-advice"],
    "evi-triage-outcome": ["advice", "refer-primary-care", "refer-other-actor", "book-first-visit", "acute-handover",
                           "redirect-existing-contact", "not-eligible"],
    "evi-organization-type": ["evi", "bup-clinic", "bup-acute", "bup-mobile-team", "primary-care", "social-services",
                              "school-health", "sis-home"],
    "evi-care-level": ["primary", "specialist"],
    "evi-clinical-question": ["adhd-add", "autism", "anxiety", "depression", "self-harm", "eating-disorder", "trauma",
                              "behaviour", "sleep", "substance-use", "other"],
    "evi-task-stage": ["received", "first-assessment", "referral-assessment", "triaged", "closed"],
    "evi-placement-type": ["foster-home", "hvb", "sis"],
    "evi-placement-legal-basis": ["SoL", "LVU"],
    "evi-visit-mode": ["in-person", "video", "phone"],
    "evi-task-type": ["intake", "social-services-dialogue", "acute-handover", "transfer-care-responsibility"],
    "evi-task-parameter": ["eligibility-flag", "triage-outcome", "created"],
    "evi-eligibility-flag": ["age-out-of-range", "existing-contact", "placed-child"],
    "evi-integrated-care-step": ["sis-assessment", "referral", "bup-assessment", "decision", "offer", "efforts",
                                 "long-term-collaboration", "closure"],
    "evi-careplan-category": ["sip"],
}
PRINCIPAL = {"evi": "region", "bup-clinic": "region", "bup-acute": "region", "bup-mobile-team": "region",
             "primary-care": "region", "social-services": "municipality", "school-health": "municipality", "sis-home": "state"}
PROFILE_TYPES = {
    "evi-patient": "Patient", "evi-organization": "Organization", "evi-referral": "ServiceRequest",
    "evi-intake-task": "Task", "evi-appointment": "Appointment", "evi-notification": "Communication",
    "evi-sip": "CarePlan", "evi-sip-careteam": "CareTeam", "evi-consent": "Consent",
    "evi-integrated-care": "EpisodeOfCare", "evi-care-transfer": "Task",
}
#: extension -> (contexts, value type or None for a complex extension)
EXTENSIONS = {
    "evi-contact-channel": (["ServiceRequest"], "Coding"), "evi-care-level": (["Appointment"], "Coding"),
    "evi-visit-mode": (["Appointment"], "Coding"), "evi-sis-home": (["EpisodeOfCare"], "Reference"),
    "evi-integrated-care-step": (["EpisodeOfCare"], "Coding"), "evi-capacity": (["Organization"], "integer"),
    "evi-overdue": (["Bundle.entry.search"], "boolean"), "evi-placement": (["Patient"], None),
}
PLACEMENT_PARTS = {"type": "evi-placement-type", "legalBasis": "evi-placement-legal-basis", "responsibleMunicipality": None}
QUESTIONNAIRES = ["evi-referral-support-general", "evi-referral-support-school-npf", "evi-self-referral-guardian",
                  "evi-self-referral-child"]
SCENARIOS = ["self-referral-guardian", "school-health-referral-npf", "placed-child-phoning", "sis-transfer"]


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _files(folder: str, expected: bool = False) -> list[Path]:
    return sorted(p for p in (EXAMPLES / folder if folder != "profiles" else PROFILES).glob("*.json")
                  if p.name.endswith(".expected.json") == expected)


GUIDE = {p.name: _read(p) for p in _files("profiles")}
GUIDE_VERSION = next(r["version"] for r in GUIDE.values() if r["resourceType"] == "ImplementationGuide")
BY_URL = {r["url"]: r for r in GUIDE.values() if "url" in r}
VALID = {p.name: _read(p) for p in _files("valid")}
SCENARIO_BUNDLES = {p.stem: _read(p) for p in _files("scenarios")}
INVALID = {p.stem: _read(p) for p in _files("invalid")}


def _of_type(kind: str) -> dict[str, dict]:
    return {r["id"]: r for r in GUIDE.values() if r["resourceType"] == kind}


def _walk(node, path=""):
    """(path, dict) for every object in a JSON tree."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def _resources(data: dict) -> list[dict]:
    return [e["resource"] for e in data["entry"]] if data["resourceType"] == "Bundle" else [data]


def _cs_codes(name: str) -> set[str]:
    return {c["code"] for c in _of_type("CodeSystem")[name]["concept"]}


def _vs_codes(url: str) -> set[tuple[str, str]] | None:
    """(system, code) pairs of one of the product's value sets (whole-code-system includes only)."""
    vs = BY_URL.get(url)
    if vs is None or vs["resourceType"] != "ValueSet":
        return None
    return {(inc["system"], c["code"]) for inc in vs["compose"]["include"] for c in BY_URL[inc["system"]]["concept"]}


def _type_of_profile(url: str) -> str:
    return BY_URL[url]["type"] if url in BY_URL else url.rsplit("/", 1)[-1]


# ---- a small differential checker -----------------------------------------------------------

def _contains(value, pattern) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_contains(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return isinstance(value, list) and all(any(_contains(v, p) for v in value) for p in pattern)
    return value == pattern


class Checker:
    """Errors and warnings of a resource against one of the product's profiles (differential only)."""

    def __init__(self, full_urls: dict[str, str] | None = None):
        self.full_urls = full_urls or {}  # urn:uuid -> resource type, inside a Bundle
        self.findings: list[tuple[str, str, str | None, str]] = []  # severity, expression, key, message

    def errors(self) -> set[tuple[str, str | None]]:
        return {(e, k) for sev, e, k, _ in self.findings if sev == "error"}

    def check(self, node: dict, profile_url: str, root_path: str) -> "Checker":
        elements = {e["id"]: e for e in BY_URL[profile_url]["differential"]["element"]}
        cache: dict[str, list] = {}

        def nodes(eid: str) -> list[tuple[str, object]]:
            if eid not in cache:
                if "." not in eid:
                    cache[eid] = [(root_path, node)]
                else:
                    parent, last = eid.rsplit(".", 1)
                    name, _, slice_name = last.partition(":")
                    cache[eid] = [(p, c) for pp, pn in nodes(parent) for p, c in self._children(pp, pn, name)
                                  if not slice_name or self._in_slice(elements, f"{parent}.{name}", slice_name, c)]
            return cache[eid]

        for eid, el in elements.items():
            if "." in eid:
                self._cardinality(eid, el, nodes)
            for path, value in nodes(eid):
                self._values(eid, el, path, value)
                for c in el.get("constraint", []):
                    if c.get("expression") and evaluate(value, c["expression"], {}, FHIRPATH_MODEL, FHIRPATH_OPTIONS) != [True]:
                        self.findings.append((c["severity"], path, c["key"], c["human"]))
        return self

    @staticmethod
    def _children(path: str, node, name: str):
        if not isinstance(node, dict):
            return
        keys = ([k for k in node if k.startswith(name[:-3]) and k[len(name) - 3:][:1].isupper()]
                if name.endswith("[x]") else [name] if name in node else [])
        for key in keys:
            value = node[key]
            if isinstance(value, list):
                yield from ((f"{path}.{key}[{i}]", v) for i, v in enumerate(value))
            else:
                yield f"{path}.{key}", value

    def _in_slice(self, elements: dict, base_id: str, slice_name: str, child) -> bool:
        sliced = f"{base_id}:{slice_name}"
        if base_id.endswith("xtension"):  # extensions are sliced by url
            profiles = (elements[sliced].get("type") or [{}])[0].get("profile")
            url = profiles[0] if profiles else elements[f"{sliced}.url"]["fixedUri"]
            return child.get("url") == url
        for d in elements[base_id]["slicing"]["discriminator"]:
            path = d["path"]
            if d["type"] == "type" and path.endswith(".resolve()"):
                el = elements[f"{sliced}.{path[:-10]}"]
                allowed = {_type_of_profile(u) for t in el["type"] for u in t.get("targetProfile", [])}
                if self._reference_type(child.get(path[:-10], {}).get("reference", "")) not in allowed:
                    return False
            else:
                el = elements[sliced] if path == "$this" else elements[f"{sliced}.{path}"]
                want = next(v for k, v in el.items() if k.startswith(("fixed", "pattern")))
                if not _contains(child if path == "$this" else child.get(path), want):
                    return False
        return True

    def _reference_type(self, ref: str) -> str | None:
        if ref in self.full_urls:
            return self.full_urls[ref]
        match = re.match(r"^([A-Z][A-Za-z]+)/", ref)
        return match.group(1) if match else None

    def _cardinality(self, eid: str, el: dict, nodes) -> None:
        if "min" not in el and el.get("max", "*") == "*":
            return
        parent, last = eid.rsplit(".", 1)
        name = last.partition(":")[0]
        counts = {}
        for path, _ in nodes(eid):
            owner = re.sub(r"\.[^.]+$", "", path)
            counts[owner] = counts.get(owner, 0) + 1
        for ppath, pnode in nodes(parent):
            if not isinstance(pnode, dict):
                continue
            n = counts.get(ppath, 0)
            if n < el.get("min", 0):
                self.findings.append(("error", f"{ppath}.{name}", None, f"{eid}: minimum required = {el['min']}, but only found {n}"))
            if el.get("max", "*") != "*" and n > int(el["max"]):
                self.findings.append(("error", f"{ppath}.{name}", None, f"{eid}: max allowed = {el['max']}, but found {n}"))

    def _values(self, eid: str, el: dict, path: str, value) -> None:
        for key, want in el.items():
            if key.startswith("fixed") and value != want:
                self.findings.append(("error", path, None, f"{eid}: {value!r} is not the fixed value {want!r}"))
            if key.startswith("pattern") and not _contains(value, want):
                self.findings.append(("error", path, None, f"{eid}: value does not match the pattern {want!r}"))
        binding = el.get("binding", {})
        allowed = _vs_codes(binding.get("valueSet", "")) if binding.get("strength") == "required" else None
        if allowed is not None and isinstance(value, dict):
            codings = value.get("coding", []) if "coding" in value else [value]
            if not any((c.get("system"), c.get("code")) in allowed for c in codings):
                self.findings.append(("error", path, None, f"{eid}: code is not in the value set {binding['valueSet']}"))
        types = el.get("type", [])
        if eid.endswith("[x]") and types:
            stem = path.rsplit(".", 1)[-1].split("[")[0]
            if not any(stem.lower().endswith(t["code"].lower()) for t in types):
                self.findings.append(("error", path, None, f"{eid}: type of {stem} is not allowed"))
        targets = {_type_of_profile(u) for t in types for u in t.get("targetProfile", [])}
        if targets and isinstance(value, dict) and "reference" in value:
            kind = self._reference_type(value["reference"])
            if kind is not None and kind not in targets:
                self.findings.append(("error", path, None, f"{eid}: reference type {kind} is not one of {sorted(targets)}"))
        for t in types:
            if t["code"] == "Extension" and t.get("profile") and isinstance(value, dict):
                self.check(value, t["profile"][0], path)


def _check_all(resource: dict, full_urls: dict | None = None) -> Checker:
    checker = Checker(full_urls)
    for url in resource.get("meta", {}).get("profile", []):
        if url.startswith(BASE):
            checker.check(resource, url, resource["resourceType"])
    return checker


# ---- every file is valid FHIR R4 ------------------------------------------------------------

@pytest.mark.parametrize("path", _files("profiles") + _files("valid") + _files("scenarios") + _files("invalid"),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_file_passes_r4_validation(path):
    data = _read(path)
    for resource in [data] + (_resources(data) if data["resourceType"] == "Bundle" else []):
        try:
            validate_resource(resource)  # raises InvalidResource with the element path
        except Unprocessable as exc:
            # valid R4 whose Swedish identifier breaks its format (the server's rule, 422): invalid examples only
            assert path.parent.name == "invalid" and all(i.code == "value" for i in exc.issues), exc.issues
    if path.parent.name in ("profiles", "valid"):
        assert path.name == f"{data['resourceType']}-{data['id']}.json"


def test_canonical_resources_live_under_the_product_base():
    for name, r in GUIDE.items():
        if r["resourceType"] == "Basic":  # a SubscriptionTopic in its R4 shape: tests/notify/test_topics.py
            continue
        assert r["url"] == f"{BASE}/{r['resourceType']}/{r['id']}", name
        assert (r["version"], r["status"]) == (GUIDE_VERSION, "active"), name
        # who publishes is a setting of the guide build (ig_build.Publication), not of the sources
        assert not {"publisher", "contact", "copyright"} & set(r), name
    for r in GUIDE.values():
        for _, node in _walk(r):
            for key in ("valueSet", "targetProfile", "profile", "source"):
                for url in (node.get(key) if isinstance(node.get(key), list) else [node.get(key)]):
                    if isinstance(url, str) and url.startswith(BASE):
                        assert url.split("|")[0] in BY_URL, f"{r['id']}: {url} does not resolve"


# ---- terminology ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", CODE_SYSTEMS)
def test_code_system_has_every_contract_code(name):
    cs = _of_type("CodeSystem")[name]
    assert set(CODE_SYSTEMS[name]) <= _cs_codes(name), "codes missing from the CodeSystem"
    assert (cs["content"], cs["caseSensitive"], cs["count"]) == ("complete", True, len(cs["concept"]))
    for c in cs["concept"]:
        assert c["display"] and c["definition"], c["code"]
        assert [d["language"] for d in c["designation"]] == ["en"] and c["designation"][0]["value"], c["code"]
    vs = _of_type("ValueSet")[name]
    assert vs["compose"] == {"include": [{"system": cs["url"]}]} and cs["valueSet"] == vs["url"]


def test_organization_types_carry_their_principal():
    cs = _of_type("CodeSystem")["evi-organization-type"]
    assert [p["code"] for p in cs["property"]] == ["principal"]
    assert {c["code"]: c["property"][0]["valueCode"] for c in cs["concept"]} == PRINCIPAL


def test_coded_values_exist_in_the_product_code_systems():
    docs = list(GUIDE.values()) + list(VALID.values()) + list(SCENARIO_BUNDLES.values())
    seen = 0
    for doc in docs:
        for path, node in _walk(doc):
            system = node.get("system")
            if isinstance(system, str) and system.startswith(f"{BASE}/CodeSystem/") and "code" in node:
                assert node["code"] in _cs_codes(system.rsplit("/", 1)[-1]), f"{doc.get('id')}{path}: {node['code']}"
                seen += 1
    assert seen > 50


def test_concept_maps_map_existing_codes():
    maps = _of_type("ConceptMap")
    assert {"evi-visit-mode-to-participation-mode", "evi-visit-mode-to-act-encounter-code",
            "evi-care-level-to-practice-setting", "evi-triage-outcome-to-snomed"} <= set(maps)
    core_codes = _core_codes() if SPEC.is_dir() else None
    for cm in maps.values():
        for group in cm["group"]:
            if group["source"] not in BY_URL:  # an inbound map: into one of the guide's code systems
                codes = {c["code"] for c in BY_URL[group["target"]]["concept"]}
                assert {t["code"] for e in group["element"] for t in e["target"]} <= codes, cm["id"]
                assert all(t["equivalence"] != "inexact" or t.get("comment") for e in group["element"] for t in e["target"])
                continue
            source = BY_URL[group["source"]]
            assert {e["code"] for e in group["element"]} == {c["code"] for c in source["concept"]}, cm["id"]
            for element in group["element"]:
                for target in element["target"]:
                    if target["equivalence"] in ("narrower", "inexact"):
                        assert target.get("comment"), f"{cm['id']} {element['code']}: say how it differs"
                    if "code" in target and core_codes is not None:
                        assert target["code"] in core_codes.get(group["target"], set()), f"{group['target']}|{target['code']}"


def _core_codes() -> dict[str, set[str]]:
    """Codes of the core package's code systems, plus the SNOMED CT codes its value sets enumerate."""
    out: dict[str, set[str]] = {}

    def walk(system, concepts):
        for c in concepts:
            out.setdefault(system, set()).add(c["code"])
            walk(system, c.get("concept", []))

    for p in SPEC.glob("CodeSystem-*.json"):
        cs = _read(p)
        walk(cs["url"], cs.get("concept", []))
    for p in SPEC.glob("ValueSet-*.json"):
        for inc in _read(p).get("compose", {}).get("include", []):
            walk(inc.get("system"), inc.get("concept", []))
    return out


def test_bindings_point_at_existing_value_sets():
    core = {_read(p)["url"] for p in SPEC.glob("ValueSet-*.json")} if SPEC.is_dir() else None
    count = 0
    for sd in _of_type("StructureDefinition").values():
        for el in sd["differential"]["element"]:
            if "binding" in el:
                url = el["binding"]["valueSet"].split("|")[0]
                count += 1
                if url.startswith(BASE):
                    assert BY_URL.get(url, {}).get("resourceType") == "ValueSet", f"{el['id']}: {url}"
                else:
                    assert core is None or url in core, f"{el['id']}: {url}"
    assert count >= 10


# ---- profiles and extensions ----------------------------------------------------------------

@pytest.mark.parametrize("sd", sorted(_of_type("StructureDefinition")))
def test_structure_definition_is_a_well_formed_differential(sd):
    r = _of_type("StructureDefinition")[sd]
    assert r["fhirVersion"] == "4.0.1" and r["derivation"] == "constraint" and r["snapshot"]["element"]  # generated: evi-fhir ig snapshot
    assert r["baseDefinition"] == f"http://hl7.org/fhir/StructureDefinition/{r['type']}"
    elements = r["differential"]["element"]
    assert elements[0]["id"] == r["type"]
    ids = [e["id"] for e in elements]
    assert len(ids) == len(set(ids))
    for e in elements:
        assert e["path"] == ".".join(part.split(":")[0] for part in e["id"].split(".")), e["id"]
        if ":" in e["id"].rsplit(".", 1)[-1]:
            assert e["sliceName"] == e["id"].rsplit(":", 1)[-1]
        for c in e.get("constraint", []):
            assert re.fullmatch(r"evi-[a-z]+-\d", c["key"]) and c["human"] and c["source"] == r["url"]


def test_every_profile_of_the_contract_exists_with_its_base_type():
    sds = _of_type("StructureDefinition")
    for name, kind in PROFILE_TYPES.items():
        assert (sds[name]["type"], sds[name]["kind"], sds[name]["abstract"]) == (kind, "resource", False), name
    claimed = {u for d in list(VALID.values()) + [e["resource"] for b in SCENARIO_BUNDLES.values() for e in b["entry"]]
               for u in d.get("meta", {}).get("profile", [])}
    assert {f"{BASE}/StructureDefinition/{n}" for n in PROFILE_TYPES} <= claimed, "a profile has no valid example"


def test_extensions_of_the_contract_have_contexts_and_value_types():
    sds = _of_type("StructureDefinition")
    for name, (contexts, value_type) in EXTENSIONS.items():
        ext = sds[name]
        assert (ext["type"], ext["kind"]) == ("Extension", "complex-type")
        assert ext["context"] == [{"type": "element", "expression": c} for c in contexts]
        value = next(e for e in ext["differential"]["element"] if e["id"] == "Extension.value[x]")
        if value_type is None:
            assert value["max"] == "0"
        else:
            assert [t["code"] for t in value["type"]] == [value_type] and value["min"] == 1
    parts = {e["sliceName"]: e for e in sds["evi-placement"]["differential"]["element"] if e["id"].count(":") == 1 and "sliceName" in e}
    assert set(parts) == set(PLACEMENT_PARTS)
    for part, vs in PLACEMENT_PARTS.items():
        value = next(e for e in sds["evi-placement"]["differential"]["element"] if e["id"] == f"Extension.extension:{part}.value[x]")
        assert (value.get("binding", {}).get("valueSet")) == (f"{BASE}/ValueSet/{vs}" if vs else None)


def test_fixed_parts_of_the_contract():
    sds = _of_type("StructureDefinition")

    def element(sd, eid):
        return next(e for e in sds[sd]["differential"]["element"] if e["id"] == eid)

    assert element("evi-sip", "CarePlan.category:sip")["patternCodeableConcept"]["coding"] == [
        {"system": f"{BASE}/CodeSystem/evi-careplan-category", "code": "sip"}]
    assert element("evi-intake-task", "Task.code")["patternCodeableConcept"]["coding"][0]["code"] == "intake"
    assert element("evi-care-transfer", "Task.code")["patternCodeableConcept"]["coding"][0]["code"] == "transfer-care-responsibility"
    assert element("evi-consent", "Consent.scope")["patternCodeableConcept"]["coding"][0]["code"] == "patient-privacy"
    assert element("evi-consent", "Consent.category:patientConsent")["patternCodeableConcept"]["coding"] == [
        {"system": "http://loinc.org", "code": "59284-0"}]
    assert element("evi-consent", "Consent.provision.actor.role")["patternCodeableConcept"]["coding"][0]["code"] == "IRCP"
    assert element("evi-referral", "ServiceRequest.reasonCode")["binding"]["valueSet"] == f"{BASE}/ValueSet/evi-clinical-question"
    systems = {e["sliceName"]: element("evi-patient", f"{e['id']}.system")["fixedUri"]
               for e in sds["evi-patient"]["differential"]["element"] if e["id"].startswith("Patient.identifier:") and e["id"].count(".") == 1}
    assert systems == {"personnummer": PNR, "samordningsnummer": SNR,
                       "reservnummer": "http://electronichealth.se/identifier/nationelltReservnummer"}


# ---- examples -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_example_conforms_to_its_profiles(name):
    checker = _check_all(VALID[name])
    assert [f for f in checker.findings if f[0] == "error"] == []


@pytest.mark.parametrize("name", sorted(SCENARIO_BUNDLES))
def test_scenario_is_a_self_contained_conforming_transaction(name):
    bundle = SCENARIO_BUNDLES[name]
    assert bundle["type"] == "transaction"
    full_urls = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    assert len(full_urls) == len(bundle["entry"]) and all(u.startswith("urn:uuid:") for u in full_urls)
    for entry in bundle["entry"]:
        request = entry["request"]
        assert (request["method"], request["url"]) == ("POST", entry["resource"]["resourceType"])
        assert set(request) <= {"method", "url", "ifNoneExist"}
        for path, node in _walk(entry["resource"]):
            ref = node.get("reference")
            if isinstance(ref, str):
                assert ref in full_urls, f"{path}: {ref} is not in the bundle"
        assert [f for f in _check_all(entry["resource"], full_urls).findings if f[0] == "error"] == []
    referrals = [e["resource"] for e in bundle["entry"]
                 if f"{BASE}/StructureDefinition/evi-referral" in e["resource"].get("meta", {}).get("profile", [])]
    assert referrals or name == "sip-initiation"


def test_required_scenarios_exist():
    assert set(SCENARIOS) <= set(SCENARIO_BUNDLES)
    kinds = {n: {e["resource"]["resourceType"] for e in b["entry"]} for n, b in SCENARIO_BUNDLES.items()}
    assert {"Patient", "RelatedPerson", "QuestionnaireResponse", "ServiceRequest"} <= kinds["self-referral-guardian"]
    assert {"Organization", "Patient", "QuestionnaireResponse", "ServiceRequest"} <= kinds["school-health-referral-npf"]
    assert {"EpisodeOfCare", "Consent", "Task"} <= kinds["sis-transfer"]
    placed = next(e["resource"] for e in SCENARIO_BUNDLES["placed-child-phoning"]["entry"] if e["resource"]["resourceType"] == "Patient")
    assert placed["extension"][0]["url"] == f"{BASE}/StructureDefinition/evi-placement"


def test_every_invalid_example_has_an_expected_file_and_back():
    stems = {p.stem for p in _files("invalid")}
    expected = {p.name.removesuffix(".expected.json") for p in _files("invalid", expected=True)}
    assert stems == expected and len(stems) >= 20


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_example_fails_with_exactly_the_expected_errors(name):
    expected = _read(EXAMPLES / "invalid" / f"{name}.expected.json")
    assert set(expected) == {"profile", "errors"} and expected["profile"] in BY_URL and expected["errors"]
    resource = INVALID[name]
    assert resource["meta"]["profile"] == [expected["profile"]]
    checker = _check_all(resource)
    assert checker.errors() == {(e["expression"], e["constraint"]) for e in expected["errors"]}, checker.findings
    for e in expected["errors"]:
        messages = [m for sev, x, k, m in checker.findings if (x, k) == (e["expression"], e["constraint"])]
        assert any(e["message_contains"].lower() in m.lower() for m in messages), (e, messages)
        if e["constraint"]:
            keys = {c["key"] for r in GUIDE.values() if r["resourceType"] == "StructureDefinition"
                    for el in r["differential"]["element"] for c in el.get("constraint", [])}
            assert e["constraint"] in keys


# ---- Swedish identifiers --------------------------------------------------------------------

def luhn_ok(twelve: str) -> bool:
    digits = [int(c) for c in twelve[2:]]
    total = sum((d * 2) // 10 + (d * 2) % 10 if i % 2 == 0 else d for i, d in enumerate(digits[:9]))
    return (total + digits[9]) % 10 == 0


def _birth_date(twelve: str, system: str) -> date:
    day = int(twelve[6:8]) - (60 if system == SNR else 0)
    return date(int(twelve[:4]), int(twelve[4:6]), day)


def _swedish_numbers():
    docs = list(VALID.values()) + [e["resource"] for b in SCENARIO_BUNDLES.values() for e in b["entry"]]
    for doc in docs:
        for _, node in _walk(doc):
            if node.get("system") in (PNR, SNR):
                yield node["system"], node["value"]
            if str(node.get("linkId", "")).endswith(".personnummer"):
                yield PNR, node["answer"][0]["valueString"]


def test_example_personnummer_have_valid_check_digits_and_are_children():
    numbers = list(_swedish_numbers())
    assert len(numbers) >= 15 and {SNR, PNR} <= {s for s, _ in numbers}
    for system, value in numbers:
        assert re.fullmatch(r"\d{12}", value) and luhn_ok(value), value
        born = _birth_date(value, system)
        age = EXAMPLE_DATE.year - born.year - ((EXAMPLE_DATE.month, EXAMPLE_DATE.day) < (born.month, born.day))
        assert 0 <= age <= 17, value


def test_luhn_invariants_agree_with_python():
    """Each invariant is compiled once (parsing dominated: 7 s for 165 uncompiled calls), so
    every check digit of several birth dates and serials costs little."""
    constraints = {c["key"]: c["expression"] for e in _of_type("StructureDefinition")["evi-patient"]["differential"]["element"]
                   for c in e.get("constraint", [])}
    compiled = {key: compile_fhirpath(constraints[key], FHIRPATH_MODEL, FHIRPATH_OPTIONS) for key in ("evi-pnr-1", "evi-snr-1")}

    def holds(key, value):
        return compiled[key]({"value": value}) == [True]

    births = ("20120304", "20100228", "20091231", "20160501", "20240229")
    for birth, serial in ((b, s) for b in births for s in ("982", "113", "450")):
        for check in range(10):
            value = f"{birth}{serial}{check}"
            assert holds("evi-pnr-1", value) == luhn_ok(value), value
            coordination = f"{birth[:6]}{int(birth[6:]) + 60}{serial}{check}"
            assert holds("evi-snr-1", coordination) == luhn_ok(coordination), coordination
            assert not holds("evi-snr-1", value) and not holds("evi-pnr-1", coordination)
    for bad in ("20120304-9823", "2012030498", "201213049829", "201200049820", "abcdefghijkl", "18120304982 "):
        assert not holds("evi-pnr-1", bad), bad
    # the compiled form answers as the uncompiled one the rest of this module uses
    for value in ("201203049823", "201203049824"):
        assert evaluate({"value": value}, constraints["evi-pnr-1"], {}, FHIRPATH_MODEL, FHIRPATH_OPTIONS) == compiled["evi-pnr-1"]({"value": value})


# ---- questionnaires -------------------------------------------------------------------------

def _items(items):
    for item in items:
        yield item
        yield from _items(item.get("item", []))


@pytest.mark.parametrize("qid", QUESTIONNAIRES)
def test_questionnaire_is_consistent(qid):
    q = _of_type("Questionnaire")[qid]
    assert q["language"] == "sv" and q["subjectType"] == ["Patient"]
    items = list(_items(q["item"]))
    link_ids = [i["linkId"] for i in items]
    assert len(link_ids) == len(set(link_ids))
    by_id = {i["linkId"]: i for i in items}
    for item in items:
        for when in item.get("enableWhen", []):
            assert when["question"] in by_id and when["question"] != item["linkId"]
        if len(item.get("enableWhen", [])) > 1:
            assert item["enableBehavior"] in ("all", "any")
        if item["type"] == "choice":
            assert ("answerOption" in item) != ("answerValueSet" in item), item["linkId"]
            assert BY_URL.get(item.get("answerValueSet"), {"resourceType": "ValueSet"})["resourceType"] == "ValueSet"
        assert ("item" in item) == (item["type"] == "group"), item["linkId"]
    assert any(i.get("enableWhen") for i in items) and any(i["type"] == "choice" for i in items)


def test_npf_form_asks_about_adhd_and_autism():
    q = _of_type("Questionnaire")["evi-referral-support-school-npf"]
    groups = {i["linkId"]: i for i in _items(q["item"])}
    for group, code in (("adhd", "adhd-add"), ("autism", "autism")):
        assert groups[group]["enableWhen"][0]["answerCoding"]["code"] == code


def test_questionnaire_responses_match_their_questionnaire():
    responses = [r for d in list(VALID.values()) + list(SCENARIO_BUNDLES.values()) for r in _resources(d)
                 if r["resourceType"] == "QuestionnaireResponse"]
    assert {r["questionnaire"].rsplit("/", 1)[-1] for r in responses} == set(QUESTIONNAIRES)
    answer_keys = {"string": "valueString", "text": "valueString", "boolean": "valueBoolean", "date": "valueDate"}
    for r in responses:
        items = {i["linkId"]: i for i in _items(BY_URL[r["questionnaire"]]["item"])}
        for answered in _items(r["item"]):
            item = items[answered["linkId"]]
            for answer in answered.get("answer", []):
                (key,) = answer
                if item["type"] == "choice":
                    assert key == ("valueString" if item.get("answerOption", [{}])[0].get("valueString") else "valueCoding")
                else:
                    assert key == answer_keys[item["type"]], answered["linkId"]
            required = {i["linkId"] for i in item.get("item", []) if i.get("required") and not i.get("enableWhen")}
            assert required <= {i["linkId"] for i in answered.get("item", [])}, answered["linkId"]


# ---- search parameters ----------------------------------------------------------------------

SEARCH_CASES = [
    ("Task-triage-outcome", "Task-intake-hugo.json", "token", "book-first-visit"),
    ("Appointment-care-level", "Appointment-first-visit-hugo.json", "token", "specialist"),
    ("EpisodeOfCare-integrated-care-step", "EpisodeOfCare-integrated-care-kevin.json", "token", "efforts"),
    ("EpisodeOfCare-sis-home", "EpisodeOfCare-integrated-care-kevin.json", "reference", "sis-ljungbacken"),
    ("ServiceRequest-clinical-question", "ServiceRequest-referral-school-npf-hugo.json", "token", "adhd-add"),
    ("ServiceRequest-contact-channel", "ServiceRequest-self-referral-maja.json", "token", "e-service-self-referral-guardian"),
    ("Patient-placement-municipality", "Patient-placed-child-liam.json", "reference", "socialtjansten-kalmar"),
]


@pytest.mark.parametrize("sp_id, example, kind, value", SEARCH_CASES)
def test_product_search_parameters_index_the_examples(sp_id, example, kind, value):
    from fhir_server.conformance import ig_directory, ig_search_parameters
    from fhir_server.search import SearchRegistry, extract_index

    sp = _of_type("SearchParameter")[sp_id]
    assert sp["id"] == f"{sp['base'][0]}-{sp['code']}" and sp["type"] == kind
    registry = SearchRegistry.from_spec(extra=ig_search_parameters(ig_directory()))
    entries = [e for e in extract_index(registry, VALID[example]).entries if e.param == sp["code"]]
    found = {getattr(e, "code", None) or getattr(e, "target_id", None) for e in entries}
    assert value in found, entries


# ---- the server takes the content -----------------------------------------------------------

def test_server_accepts_valid_examples_and_scenarios(http):
    valid = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in VALID.values()]}
    r = http.post("", json=valid, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    for name, bundle in sorted(SCENARIO_BUNDLES.items()):
        r = http.post("", json=bundle, headers={"Content-Type": "application/fhir+json"})
        assert r.status_code == 200, (name, r.text)
        statuses = [e["response"]["status"] for e in r.json()["entry"]]
        assert all(s.startswith(("200", "201")) for s in statuses), (name, statuses)
