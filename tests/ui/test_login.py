import pytest

from fhir_server.errors import Unavailable
from fhir_server.ui.account import safe_next
from fhir_server.ui.login import Discovery, code_challenge, new_pending_values


def test_the_code_challenge_is_rfc_7636_s256():
    # RFC 7636 Appendix B
    assert code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_each_sign_in_gets_fresh_unguessable_values():
    first, second = new_pending_values(), new_pending_values()
    assert first != second and len(first[2]) >= 43 and all(len(v) >= 32 for v in first)


@pytest.mark.parametrize("raw, expected", [
    ("/ui/remiss/x?y=1", "/ui/remiss/x?y=1"),
    (None, "/ui/"),
    ("https://evil.example/ui/", "/ui/"),
    ("//evil.example/ui/", "/ui/"),
    ("/ui//evil.example", "/ui/"),
    ("/fhir/Patient", "/ui/"),
    ("/ui/\\evil", "/ui/"),
])
def test_after_signing_in_only_dashboard_pages_are_visited(raw, expected):
    assert safe_next(raw, "/ui") == expected


def test_an_unreachable_provider_is_unavailable_not_a_crash():
    with pytest.raises(Unavailable):
        Discovery("http://127.0.0.1:9/realms/none").endpoints()
