import pytest

from fhir_server.errors import BadRequest, Unprocessable
from fhir_server.model import apply_json_patch

PATIENT = {"resourceType": "Patient", "id": "p1", "active": True}


def test_patch_applies_to_a_copy():
    out = apply_json_patch(PATIENT, [{"op": "replace", "path": "/active", "value": False}])
    assert out["active"] is False and PATIENT["active"] is True


@pytest.mark.parametrize(
    "ops, error",
    [
        ({"op": "add"}, BadRequest),
        ([{"op": "test", "path": "/active", "value": False}], Unprocessable),
        ([{"op": "replace", "path": "/id", "value": "other"}], Unprocessable),
        ([{"op": "replace", "path": "/resourceType", "value": "Group"}], Unprocessable),
        ([{"op": "remove", "path": "/nothing"}], Unprocessable),
        ([{"op": "frobnicate", "path": "/active"}], Unprocessable),
    ],
)
def test_patch_errors(ops, error):
    with pytest.raises(error):
        apply_json_patch(PATIENT, ops)
