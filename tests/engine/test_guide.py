"""engine/guide.py: the guide is stored at start-up when missing or changed, never twice,
and is read-only afterwards."""

import json
import shutil

import orjson
import pytest

from fhir_server.conformance import ig_directory, ig_resources
from fhir_server.engine import RequestContext, Runtime, create, delete, update
from fhir_server.engine.guide import install_implementation_guide, supported_profiles
from fhir_server.errors import Conflict
from fhir_server.search import SearchRegistry
from fhir_server.storage import open_store

BASE = "http://127.0.0.1:8080/fhir"
FILES = ["CodeSystem-evi-triage-outcome.json", "ValueSet-evi-triage-outcome.json", "StructureDefinition-evi-patient.json"]


def _guide(tmp_path, name: str, edit=None):
    folder = tmp_path / name
    folder.mkdir()
    for f in FILES:
        shutil.copy(ig_directory() / f, folder / f)
    if edit:
        path = folder / FILES[0]
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return folder


def _runtime(url: str) -> Runtime:
    return Runtime(store=open_store(url), registry=SearchRegistry.from_spec())


def _current(runtime: Runtime, resource_type: str, rid: str):
    with runtime.store.unit_of_work(write=False) as uow:
        return uow.current(resource_type, rid)


def test_stored_once_and_again_only_when_the_guide_changes(tmp_path):
    url = f"sqlite://{tmp_path / 'evi.db'}"
    first = _guide(tmp_path, "v1")
    runtime = _runtime(url)
    assert install_implementation_guide(runtime, first, base_url=BASE) == 3
    runtime.store.close()

    again = _runtime(url)
    assert install_implementation_guide(again, first, base_url=BASE) == 0  # a restart writes nothing
    assert _current(again, "CodeSystem", "evi-triage-outcome").version_id == 1
    again.store.close()

    changed = _guide(tmp_path, "v2", edit=lambda cs: cs.update(title="Triage, ny titel"))
    later = _runtime(url)
    assert install_implementation_guide(later, changed, base_url=BASE) == 1
    version = _current(later, "CodeSystem", "evi-triage-outcome")
    assert version.version_id == 2 and version.method == "PUT"
    assert orjson.loads(version.body)["title"] == "Triage, ny titel"
    later.store.close()


def test_a_deleted_guide_resource_comes_back(tmp_path):
    url = f"sqlite://{tmp_path / 'evi.db'}"
    folder = _guide(tmp_path, "g")
    plain = _runtime(url)  # a server without the guide's hooks (an older version) deleted it
    with plain.work(RequestContext(base_url=BASE), write=True) as work:
        update(work, "ValueSet", "evi-triage-outcome", json.loads((folder / FILES[1]).read_text()))
        delete(work, "ValueSet", "evi-triage-outcome")
    plain.store.close()
    runtime = _runtime(url)
    assert install_implementation_guide(runtime, folder, base_url=BASE) == 3
    current = _current(runtime, "ValueSet", "evi-triage-outcome")
    assert not current.deleted and current.version_id == 3
    runtime.store.close()


def test_guide_resources_are_read_only_in_the_engine(tmp_path):
    runtime = _runtime("sqlite://:memory:")
    folder = _guide(tmp_path, "g")
    install_implementation_guide(runtime, folder, base_url=BASE)
    # as a client would send a profile: the guide's generated snapshot is not valid R4
    # (test_guide_snapshots_are_exempt_from_the_base_invariants)
    sd = {k: v for k, v in json.loads((folder / FILES[2]).read_text()).items() if k != "snapshot"}
    with pytest.raises(Conflict, match="StructureDefinition/evi-patient"):
        with runtime.work(RequestContext(base_url=BASE), write=True) as work:
            delete(work, "StructureDefinition", "evi-patient")
    with pytest.raises(Conflict, match="StructureDefinition/evi-patient"):
        with runtime.work(RequestContext(base_url=BASE), write=True) as work:
            update(work, "StructureDefinition", "evi-patient", {**sd, "status": "retired"})
    with pytest.raises(Conflict, match=sd["url"]):
        with runtime.work(RequestContext(base_url=BASE), write=True) as work:
            create(work, "StructureDefinition", {k: v for k, v in sd.items() if k != "id"})
    assert _current(runtime, "StructureDefinition", "evi-patient").version_id == 1
    # ids are per type: a Patient may be called evi-patient
    with runtime.work(RequestContext(base_url=BASE), write=True) as work:
        assert update(work, "Patient", "evi-patient", {"resourceType": "Patient", "id": "evi-patient"}).status == 201


def test_an_invalid_guide_resource_stops_start_up(tmp_path):
    folder = _guide(tmp_path, "bad", edit=lambda cs: cs.update(status="sort-of"))
    with pytest.raises(ValueError, match="CodeSystem/evi-triage-outcome"):
        install_implementation_guide(_runtime("sqlite://:memory:"), folder)


def test_mongodb_stores_the_guide_once():
    pytest.importorskip("mongomock")
    from fhir_server.storage.mongo import MongoStore
    from tests.support.mongo_replica_set import ReplicaSet

    store = MongoStore(ReplicaSet(), "evi")
    runtime = Runtime(store=store, registry=SearchRegistry.from_spec())
    count = len([r for r in ig_resources(ig_directory()) if r.get("id")])
    assert install_implementation_guide(runtime, ig_directory(), base_url=BASE) == count
    assert install_implementation_guide(runtime, ig_directory(), base_url=BASE) == 0


def test_supported_profiles_are_the_guide_resource_profiles():
    profiles = supported_profiles(ig_directory())
    assert profiles["Patient"] == ["https://evi-fhir.org/fhir/StructureDefinition/evi-patient"]
    assert "Extension" not in profiles  # extension definitions are not resource profiles
