"""Whose data a stored version is, for the PDL log: what was kept with it when it was
written, else (versions stored before they kept it) what its body names."""

import orjson
import pytest

from fhir_server.app import build_runtime
from fhir_server.engine.audit import version_patients
from fhir_server.settings import Settings
from fhir_server.storage import ResourceVersion

BASE = "https://evi.example.se/fhir"
BODY = orjson.dumps({"resourceType": "Observation", "id": "o", "status": "final", "code": {"text": "x"},
                     "subject": {"reference": f"{BASE}/Patient/p1"}, "performer": [{"reference": "Patient/p2"}]})


@pytest.fixture(scope="module")
def registry():
    runtime = build_runtime(Settings(storage="sqlite://:memory:"))
    yield runtime.registry
    runtime.store.close()


def _version(patients, body=BODY, rtype="Observation"):
    return ResourceVersion(rtype, "o", 1, "2026-01-01T00:00:00.000000Z", False, "POST", body, patients)


def test_what_the_version_kept_is_taken_as_it_is(registry):
    assert version_patients(registry, _version(("p9",)), BASE) == ("p9",)
    assert version_patients(registry, _version(()), BASE) == ()


def test_a_version_that_kept_nothing_is_read_from_its_body(registry):
    assert version_patients(registry, _version(None), BASE) == ("p2", "p1")
    assert version_patients(registry, _version(None, None), BASE) == ()  # a deletion
    assert version_patients(registry, _version(None, b"{}", "Patient"), BASE) == ("o",)
