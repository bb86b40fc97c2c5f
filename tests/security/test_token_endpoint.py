"""What of the scopes asked for a client is granted (the HTTP side: tests/integration/
test_token_endpoint.py)."""

import pytest

from fhir_server.security import Scopes
from fhir_server.security.token_endpoint import granted_scopes

REGISTERED = Scopes.parse(["system/*.rs", "system/Communication.cu", "system/Task.cu"])


@pytest.mark.parametrize("asked, granted", [
    ("system/*.rs", "system/*.rs"),
    ("system/*.read", "system/*.read"),  # v1, covered in full: in the client's own words
    ("system/Patient.read system/Task.write", "system/Patient.read system/Task.cu"),
    ("system/*.cruds", "system/*.rs system/Communication.cu system/Task.cu"),
    ("system/*.*", "system/*.rs system/Communication.cu system/Task.cu"),
    ("system/Task.d", ""),
    ("user/*.rs", ""),  # a client's system scopes grant no user/ scope
    ("patient/*.read launch openid", ""),
    ("system/*.rs system/*.rs system/*.read", "system/*.rs system/*.read"),
    ("", ""),
])
def test_what_is_asked_is_cut_down_to_what_the_client_may_have(asked, granted):
    assert granted_scopes(REGISTERED, asked) == granted
