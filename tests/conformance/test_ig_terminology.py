"""The one reader of the guide's CodeSystems and ValueSets: displays, properties,
hierarchy, implicit value sets; read once per guide directory, also under threads."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import fhir_server.conformance.ig_terminology as module
from fhir_server.app import build_runtime
from fhir_server.conformance import GuideTerminology, guide_terminology, ig_directory
from fhir_server.workflow.displays import coding
from fhir_server.settings import Settings
from fhir_server.workflow.sip import principal_by_type

EVI = "https://evi-fhir.org/fhir/CodeSystem/"
PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def test_the_guides_code_systems():
    terms = guide_terminology(ig_directory())
    assert "book-first-visit" in terms.codes(EVI + "evi-triage-outcome")
    assert terms.codes("http://example.org/unknown") == frozenset()
    assert terms.display(EVI + "evi-task-type", "intake")
    assert terms.display(EVI + "evi-task-type", "no-such-code") is None
    assert terms.property_values(EVI + "evi-organization-type", "social-services", "principal") == ["municipality"]
    assert terms.code_system(EVI + "evi-task-type").resource["url"] == EVI + "evi-task-type"


def test_what_the_workflow_asks_comes_from_the_reader():
    display = guide_terminology(ig_directory()).display(EVI + "evi-task-stage", "received")
    assert coding(EVI + "evi-task-stage", "received") == {"system": EVI + "evi-task-stage", "code": "received",
                                                          "display": display}
    assert principal_by_type()["sis-home"] == "state"


def test_hierarchy_and_implicit_value_sets():
    cs = {"resourceType": "CodeSystem", "url": "urn:cs", "valueSet": "urn:vs-all", "content": "complete",
          "concept": [{"code": "a", "display": "A", "concept": [{"code": "a1"}]}]}
    terms = GuideTerminology([cs, {"resourceType": "ValueSet", "url": "urn:vs"}, {"resourceType": "Patient"}])
    assert terms.code_system("urn:cs|2").descendants("a") == {"a1"}
    assert terms.resolve("ValueSet", "urn:vs") == {"resourceType": "ValueSet", "url": "urn:vs"}
    implicit = {"resourceType": "ValueSet", "url": "urn:vs-all", "compose": {"include": [{"system": "urn:cs"}]}}
    assert terms.resolve("ValueSet", "urn:vs-all") == implicit
    assert terms.resolve("ValueSet", "urn:cs")["compose"] == implicit["compose"]
    assert terms.resolve("CodeSystem", "urn:cs") is cs and terms.resolve("ValueSet", "urn:none") is None


def test_each_directory_is_read_once_even_by_racing_threads(tmp_path, monkeypatch):
    guide = tmp_path / "guide"
    shutil.copytree(PROFILES, guide)
    reads = []
    real = module.ig_resources

    def counting(directory):
        reads.append(directory)
        return real(directory)

    monkeypatch.setattr(module, "ig_resources", counting)
    found, start = [], threading.Barrier(8)

    def ask():
        start.wait()
        found.append(guide_terminology(guide))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reads) == 1 and all(f is found[0] for f in found)
    assert guide_terminology(tmp_path / "guide" / ".." / "guide") is found[0]  # the same folder
    assert guide_terminology(ig_directory()) is not found[0]


def test_a_guide_folder_that_is_missing_is_an_error_not_an_empty_guide(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        guide_terminology(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="implementation guide folder"):
        build_runtime(Settings(storage="sqlite://:memory:", profiles_dir=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    assert guide_terminology(tmp_path / "empty").codes("urn:any") == frozenset()
