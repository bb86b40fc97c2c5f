"""SMART v1 and v2 scopes (security/scopes.py)."""

import pytest

from fhir_server.security import Scopes, parse_scope


@pytest.mark.parametrize("text, rtype, allowed, refused", [
    ("system/Patient.rs", "Patient", "rs", "cud"),
    ("system/*.cruds", "Task", "cruds", ""),
    ("system/*.read", "Observation", "rs", "cud"),
    ("system/Task.write", "Task", "cud", "rs"),
    ("system/*.*", "Consent", "cruds", ""),
    ("user/Task.ru", "Task", "ru", "cds"),
])
def test_letters_per_interaction(text, rtype, allowed, refused):
    scopes = Scopes.parse(text)
    assert all(scopes.allows(rtype, c) for c in allowed)
    assert not any(scopes.allows(rtype, c) for c in refused)
    assert not Scopes.parse("system/Patient.rs").allows("Observation", "r")


@pytest.mark.parametrize("text", [
    "patient/Patient.rs", "system/Patient.sr", "system/Patient.rr", "system/Nonsense.rs", "openid", "fhirUser",
    "system/Observation.rs?category=laboratory", "system/Patient", "launch/patient", "",
])
def test_what_grants_nothing_here(text):
    assert parse_scope(text) is None
    assert not Scopes.parse(text)


def test_a_request_is_cut_down_to_what_the_client_may_have():
    allowed = Scopes.parse(["system/*.rs", "system/Communication.cu", "system/Task.cu"])
    granted = allowed.grant(Scopes.parse("system/*.cruds system/Patient.read user/Task.c"))
    assert set(granted.text().split()) == {"system/*.rs", "system/Communication.cu", "system/Task.cu", "system/Patient.rs"}
    assert granted.allows("Task", "u") and not granted.allows("Task", "d") and not granted.allows("Patient", "c")
    assert not allowed.grant(Scopes.parse("system/Patient.d"))
