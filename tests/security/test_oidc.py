"""People's tokens from the region's identity provider (a process of its own serving
its JWK Set): what is accepted, and how claims map onto the Caller."""

import time

import jwt
import pytest

from fhir_server.errors import Unauthorized, Unavailable
from fhir_server.security import HSA_SYSTEM, OrganizationRef
from fhir_server.security.oidc import PENDING, IdentityProvider as Provider
from tests.support.auth import ClientKey, IdentityProvider
from tests.support.live_server import free_port


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    with IdentityProvider(tmp_path_factory.mktemp("idp")) as running:
        yield running


def _claims(provider: Provider, token: str, *, wait: bool = True):
    head = jwt.get_unverified_header(token)
    return provider.claims(token, head["alg"], head.get("kid"), wait=wait)


def test_claims_become_the_caller(idp):
    provider = Provider(idp.issuer, idp.audience, idp.jwks_url)
    token = idp.mint(hsa_id="SE2321000032-USR1", role="evi", care_unit="SE2321000032-EVI1",
                     scope="user/*.cruds system/Task.rs openid", azp="evi-dashboard")
    assert _claims(provider, token, wait=False) is PENDING  # the keys were never fetched: not on the loop
    claims = _claims(provider, token)
    assert provider.care_unit(claims) == f"{HSA_SYSTEM}|SE2321000032-EVI1"
    caller = provider.caller(claims, OrganizationRef("Organization/evi-vgr", "SE2321000032-EVI1"))
    assert (caller.user, caller.role, caller.client_id) == ("SE2321000032-USR1", "evi", "evi-dashboard")
    assert (caller.organization, caller.organization_hsa) == ("Organization/evi-vgr", "SE2321000032-EVI1")
    assert caller.scopes.text() == "user/*.cruds system/Task.rs"  # openid grants nothing here
    assert _claims(provider, token, wait=False)["hsa_id"] == "SE2321000032-USR1"  # now from memory


def test_a_list_of_scopes_client_id_and_a_missing_care_unit(idp):
    provider = Provider(idp.issuer, idp.audience, idp.jwks_url)
    claims = _claims(provider, idp.mint(hsa_id="U2", role="admin", scope=["system/*.*"], client_id="ops", aud=[idp.audience, "other"]))
    assert provider.care_unit(claims) is None
    caller = provider.caller(claims, None)
    assert (caller.client_id, caller.organization, caller.scopes.text()) == ("ops", None, "system/*.cruds")
    assert provider.care_unit({"care_unit": "a|b"}) is None  # a value, not an identifier


@pytest.mark.parametrize("claims, why", [
    ({"hsa_id": None}, "names no person"),
    ({"hsa_id": ""}, "names no person"),
    ({"role": "superuser"}, "role must be one of"),
    ({"role": None}, "role must be one of"),
])
def test_a_token_without_a_person_or_a_known_role_is_refused(idp, claims, why):
    provider = Provider(idp.issuer, idp.audience, idp.jwks_url)
    verified = _claims(provider, idp.mint(**{"hsa_id": "U1", "role": "evi", **claims}))
    with pytest.raises(Unauthorized, match=why):
        provider.caller(verified, None)


def test_expired_foreign_and_misdirected_tokens_are_refused(idp):
    provider = Provider(idp.issuer, idp.audience, idp.jwks_url)
    person = {"hsa_id": "U1", "role": "evi"}
    stranger = ClientKey.new("stranger", "RS256", kid=idp.keys[0].kid)  # claims the provider's kid
    cases = [
        (idp.mint(expires_in=-60, **person), "expired"),
        (idp.mint(iss="http://127.0.0.1:1/other", **person), "not a valid token"),
        (idp.mint(aud="another-app", **person), "not a valid token"),
        (idp.mint(aud=None, **person), "not a valid token"),
        (idp.mint(exp=None, **person), "not a valid token"),
        (idp.mint(key=stranger, **person), "not a valid token"),
    ]
    for token, why in cases:
        with pytest.raises(Unauthorized, match=why):
            _claims(provider, token)
    unknown = ClientKey.new("stranger", "RS256")
    with pytest.raises(Unauthorized, match="does not publish"):
        _claims(provider, idp.mint(key=unknown, **person))
    token = idp.mint(**person)
    with pytest.raises(Unauthorized, match="names no key"):
        provider.claims(token, "RS256", None, wait=True)
    with pytest.raises(Unauthorized, match="does not publish"):  # RS256 key, ES256 asked: no such key
        provider.claims(token, "ES256", idp.keys[0].kid, wait=True)


def test_a_provider_that_does_not_answer_is_503_not_401():
    provider = Provider("http://127.0.0.1/idp", "evi", f"http://127.0.0.1:{free_port()}/jwks")
    signer = ClientKey.new("x", "RS256")
    token = jwt.encode({"iss": "x", "aud": "evi", "exp": int(time.time()) + 60}, signer.private_key, "RS256",
                       headers={"kid": signer.kid})
    with pytest.raises(Unavailable) as caught:
        provider.claims(token, "RS256", signer.kid, wait=True)
    assert caught.value.status == 503
