"""``mappings/*.json`` agree with ``profiles/``, load from a copy, and docs/mappings.md is current."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from fhir_server.conformance.mappings import (
    NAMES,
    load_mappings,
    main,
    render_markdown,
    triage_outcome,
    triage_outcomes,
)
from fhir_server.spec import load_table

ROOT = Path(__file__).resolve().parents[1]
PROFILES, MAPPINGS = ROOT / "profiles", ROOT / "mappings"
CANONICAL = re.compile(r"https://evi-fhir\.org/fhir/[A-Za-z]+/[A-Za-z0-9.-]+")


def _profiles() -> list[dict]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(PROFILES.glob("*.json"))]


def _code_system(name: str) -> dict:
    return json.loads((PROFILES / f"CodeSystem-{name}.json").read_text(encoding="utf-8"))


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _resources() -> list[dict]:
    return [r for c in load_mappings("concepts")["concepts"] for r in c["resources"]]


# ---- the generated page -------------------------------------------------------------------


def test_docs_page_is_not_stale():
    page = ROOT / "docs" / "mappings.md"
    assert page.read_text(encoding="utf-8") == render_markdown(), "run python -m fhir_server.conformance.mappings"
    assert main(["--check"]) == 0


def test_check_fails_on_a_stale_or_missing_page(tmp_path, capsys):
    page = tmp_path / "mappings.md"
    assert main(["--check", "--output", str(page)]) == 1
    page.write_text(render_markdown().replace("Ej målgrupp", "Ej i målgruppen"), encoding="utf-8")
    assert main(["--check", "--output", str(page)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--output", str(page)]) == 0
    assert main(["--check", "--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8").startswith("# EVI concept → FHIR mappings\n\n> Generated from mappings/*.json")


# ---- agreement with profiles/ -------------------------------------------------------------


def test_every_triage_outcome_code_has_exactly_one_mapping_and_vice_versa():
    code_system = _code_system("evi-triage-outcome")
    rows = load_mappings("triage-outcomes")["outcomes"]
    codes = [row["code"] for row in rows]
    assert sorted(codes) == sorted(c["code"] for c in code_system["concept"])
    assert len(codes) == len(set(codes))
    assert load_mappings("triage-outcomes")["codeSystem"] == code_system["url"]
    for concept in code_system["concept"]:
        mapping = triage_outcome(concept["code"])
        english = [d["value"] for d in concept.get("designation", []) if d.get("language") == "en"]
        assert (mapping.sv, [mapping.en]) == (concept["display"], english), concept["code"]


def test_every_contact_channel_code_is_mapped():
    code_system = _code_system("evi-contact-channel")
    table = load_mappings("channels")
    assert table["codeSystem"] == code_system["url"]
    rows = {row["code"]: row for row in table["channels"]}
    assert len(rows) == len(table["channels"])
    assert set(rows) == {c["code"] for c in code_system["concept"]}
    for concept in code_system["concept"]:
        row = rows[concept["code"]]
        assert row["sv"] == concept["display"]
        # evi-referral invariant evi-ref-2: a referral is an order, everything else a proposal
        assert row["intent"] == ("order" if concept["code"].startswith("referral-") else "proposal")
    assert rows["e-service-self-referral-guardian"]["questionnaires"] == [
        "https://evi-fhir.org/fhir/Questionnaire/evi-self-referral-guardian"
    ]
    assert rows["phone-acute"]["questionnaires"] == []


def test_every_canonical_in_the_mappings_exists_in_profiles():
    known = {r["url"] for r in _profiles() if "url" in r}  # Basic-wrapped topics have none
    for name in NAMES:
        used = {m for s in _strings(load_mappings(name)) for m in CANONICAL.findall(s)}
        assert used, name
        assert used - known == set(), f"{name}.json names canonicals missing from profiles/"


def test_every_profile_extension_and_questionnaire_is_mapped():
    definitions = {r["url"]: r for r in _profiles() if r["resourceType"] == "StructureDefinition"}
    resources = _resources()
    profiled = {r["profile"]: r["resourceType"] for r in resources if r["profile"]}
    for url, resource_type in profiled.items():
        assert definitions[url]["type"] == resource_type, url
    assert {u for u, d in definitions.items() if d["type"] != "Extension"} == set(profiled)
    extensions = {x["url"] for r in resources for x in r["extensions"]}
    assert {u for u, d in definitions.items() if d["type"] == "Extension"} == extensions
    questionnaires = {r["url"] for r in _profiles() if r["resourceType"] == "Questionnaire"}
    assert questionnaires == {c for r in resources for c in r.get("canonicals", [])}


def _resolves(type_name: str, parts: list[str]) -> bool:
    """``parts`` is an element path below ``type_name`` in the R4 base definitions."""
    elements = {e["id"]: e for e in load_table("elements")[type_name]["el"]}
    for k in range(len(parts), 0, -1):
        element = elements.get(".".join([type_name, *parts[:k]]))
        if element is None:
            continue
        if k == len(parts):
            return True
        types = [t if isinstance(t, str) else t["c"] for t in element.get("t", [])]
        return any(t in load_table("elements") and _resolves(t, parts[k:]) for t in types)
    return False


def _paths():
    for concept in load_mappings("concepts")["concepts"]:
        for resource in concept["resources"]:
            yield resource["resourceType"], [e["path"] for e in resource["elements"]]
            yield None, [x["on"] for x in resource["extensions"]]
    for outcome in triage_outcomes().values():
        for created in outcome.creates:
            yield created.resource_type, [path for path, _ in created.elements]
        for update in outcome.updates:
            yield update.resource_type, [update.path]


def test_element_paths_exist_in_the_base_resources():
    count = 0
    for resource_type, paths in _paths():
        for path in paths:
            root, *parts = re.sub(r":[A-Za-z]+", "", path).split(".")
            assert resource_type in (None, root), path
            assert _resolves(root, parts), path
            count += 1
    assert count > 80


# ---- the code's view ----------------------------------------------------------------------


def test_triage_outcome_mapping_says_what_triage_creates():
    booking = triage_outcome("book-first-visit")
    assert [(c.resource_type, c.profile) for c in booking.creates] == [
        ("Appointment", "https://evi-fhir.org/fhir/StructureDefinition/evi-appointment")
    ]
    assert [(u.path, u.from_value, u.to_value) for u in booking.updates] == [("Slot.status", "free", "busy")]
    assert booking.required_parameters == ("slot",)
    assert booking.optional_parameters == ("careLevel", "visitMode", "note")
    assert {p.name: p.value_type for p in booking.parameters} == {
        "slot": "Reference", "careLevel": "Coding", "visitMode": "Coding", "note": "string"
    }
    assert booking.allowed_parameters == {"slot", "careLevel", "visitMode", "note"}

    primary = triage_outcome("refer-primary-care")
    assert primary.required_parameters == ("recipient",)
    assert ("ServiceRequest.performer", "parameter recipient") in primary.creates[0].elements
    assert triage_outcome("refer-other-actor").creates[0].resource_type == "Communication"
    handover = triage_outcome("acute-handover")
    assert handover.required_parameters == () and "recipient" in handover.optional_parameters
    assert dict(handover.creates[0].elements)["Task.code"].endswith("evi-task-type|acute-handover")
    for code in ("advice", "redirect-existing-contact", "not-eligible"):
        assert triage_outcome(code).creates == () and triage_outcome(code).required_parameters == ()

    with pytest.raises(dataclasses.FrozenInstanceError):
        booking.code = "advice"  # type: ignore[misc]
    with pytest.raises(KeyError, match="no triage-outcome mapping"):
        triage_outcome("admitted")


def test_task_outputs_record_the_outcome_and_each_created_resource():
    for code, mapping in triage_outcomes().items():
        first, *created = mapping.task_outputs
        assert (first.slice, first.type, first.value_type) == ("triageOutcome", "triage-outcome", "Coding")
        assert first.value == f"https://evi-fhir.org/fhir/CodeSystem/evi-triage-outcome|{code}"
        assert [(o.slice, o.type, o.value_type, o.value) for o in created] == [
            ("created", "created", "Reference", c.resource_type) for c in mapping.creates
        ]


def test_every_file_says_what_it_is():
    for name in NAMES:
        assert load_mappings(name)["_about"].strip()
    assert sorted(p.stem for p in MAPPINGS.glob("*.json")) == sorted(NAMES)
    with pytest.raises(KeyError):
        load_mappings("../profiles/CodeSystem-evi-triage-outcome")


# ---- packaging ----------------------------------------------------------------------------


def test_loading_from_a_copy_like_the_installed_data_package(tmp_path):
    installed = tmp_path / "site-packages" / "fhir_server" / "mappings"
    shutil.copytree(MAPPINGS, installed)
    about = installed / "channels.json"
    about.write_text(about.read_text(encoding="utf-8").replace('"_about": "', '"_about": "copy: ', 1), encoding="utf-8")

    assert load_mappings("channels", installed)["_about"].startswith("copy: ")
    assert load_mappings("concepts", str(installed)) == load_mappings("concepts")
    assert triage_outcome("book-first-visit", installed) == triage_outcome("book-first-visit")
    assert render_markdown(installed) == render_markdown()
    with pytest.raises(FileNotFoundError):
        load_mappings("concepts", tmp_path)


def test_without_a_checkout_the_installed_data_package_is_found(tmp_path, monkeypatch):
    import fhir_server
    from fhir_server.conformance import mappings

    installed = tmp_path / "site-packages" / "fhir_server"
    shutil.copytree(MAPPINGS, installed / "mappings")  # no __init__.py: a namespace package
    monkeypatch.setattr(mappings, "_ROOT", tmp_path / "no-checkout")
    monkeypatch.setattr(fhir_server, "__path__", [*fhir_server.__path__, str(installed)])
    monkeypatch.delitem(sys.modules, "fhir_server.mappings", raising=False)

    assert mappings.mappings_directory() == installed / "mappings"
    assert mappings.triage_outcome("refer-other-actor").required_parameters == ("recipient",)


def test_pyproject_installs_mappings_as_a_data_package():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "fhir_server.mappings" in setuptools["packages"]
    assert setuptools["package-dir"]["fhir_server.mappings"] == "mappings"
    assert setuptools["package-data"]["fhir_server.mappings"] == ["*.json"]
