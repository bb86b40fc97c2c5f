"""The Caller the api puts on every RequestContext with auth on (``api.authentication``
then ``deps.context_of``), for a registered client's access token and for a person's
token whose care unit the server resolves to its Organization."""

import pytest
from starlette.requests import Request

from fhir_server.api.authentication import authenticate, organization_lookup
from fhir_server.api.deps import context_of
from fhir_server.app import create_app
from fhir_server.engine import RequestContext, process_bundle
from fhir_server.errors import Unauthorized
from fhir_server.settings import Settings
from tests.support.auth import ClientKey, IdentityProvider, assertion_form, client_entry, token_secret, write_clients

HSA = "urn:oid:1.2.752.29.4.19"
BASE = "http://evi.example/fhir"


@pytest.fixture
def idp(tmp_path):
    with IdentityProvider(tmp_path) as running:
        yield running


@pytest.fixture
def app(tmp_path, idp):
    key = ClientKey.new("kalmar-soc", "ES384")
    clients = write_clients(tmp_path / "clients.toml", [client_entry(
        key, role="municipality", organization=f"{HSA}|SE2120000829-SOC1", scopes=("system/*.rs", "system/Task.cu"),
        name="Kalmar kommun, socialtjänsten")])
    app = create_app(Settings(storage="sqlite://:memory:", auth="smart", clients_file=str(clients),
                              token_secret=token_secret(), **idp.settings()))
    units = [("kalmar-soc", "SE2120000829-SOC1"), ("evi-kalmar", "SE2321000065-EVI1")]
    process_bundle(app.state.runtime, RequestContext(base_url=BASE), {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Organization", "id": rid, "name": rid, "identifier": [{"system": HSA, "value": hsa}]},
         "request": {"method": "PUT", "url": f"Organization/{rid}"}} for rid, hsa in units]})
    app.state.key = key
    yield app
    app.state.workers.shutdown()
    app.state.runtime.store.close()


def _request(app, authorization: str | None) -> Request:
    headers = [(b"host", b"evi.example")] + ([(b"authorization", authorization.encode())] if authorization else [])
    return Request({"type": "http", "app": app, "method": "GET", "path": "/fhir/Patient", "headers": headers,
                    "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 8080)})


async def test_a_clients_access_token_puts_its_client_on_the_context(app):
    token_url = f"{BASE}/auth/token"
    answer = app.state.authentication.token_endpoint.answer(
        list(assertion_form(app.state.key.assertion(token_url), "system/*.cruds").items()), token_url,
        organization_lookup(_request(app, None)))
    request = _request(app, f"Bearer {answer['access_token']}")
    caller = await authenticate(request, app.state.authentication)
    context = context_of(request)
    assert context.caller is caller
    assert (caller.role, caller.client_id, caller.client_name, caller.user) == (
        "municipality", "kalmar-soc", "Kalmar kommun, socialtjänsten", None)
    assert (caller.organization, caller.organization_hsa) == ("Organization/kalmar-soc", "SE2120000829-SOC1")
    assert caller.scopes.text() == "system/*.rs system/Task.cu"


async def test_a_persons_token_puts_the_person_and_their_unit_on_the_context(app, idp):
    token = idp.mint(hsa_id="SE2321000065-USR7", role="evi", care_unit="SE2321000065-EVI1",
                     scope="user/*.cruds", azp="evi-dashboard")
    request = _request(app, f"Bearer {token}")
    caller = await authenticate(request, app.state.authentication)  # keys and unit fetched off the loop
    assert context_of(request).caller == caller
    assert (caller.role, caller.user, caller.client_id) == ("evi", "SE2321000065-USR7", "evi-dashboard")
    assert (caller.organization, caller.organization_hsa) == ("Organization/evi-kalmar", "SE2321000065-EVI1")
    assert caller.scopes.allows("Patient", "d")
    unknown_unit = idp.mint(hsa_id="U2", role="care-unit", care_unit="SE-NOT-ON-SERVER")
    caller = await authenticate(_request(app, f"Bearer {unknown_unit}"), app.state.authentication)
    assert (caller.organization, caller.organization_hsa) == (None, "SE-NOT-ON-SERVER")
    # a care unit is one literal value: a comma in it is no search OR
    crafted = idp.mint(hsa_id="U3", role="care-unit", care_unit="SE-NONE,SE2120000829-SOC1")
    caller = await authenticate(_request(app, f"Bearer {crafted}"), app.state.authentication)
    assert caller.organization is None


async def test_without_a_token_nothing_is_put_on_the_context(app):
    request = _request(app, None)
    with pytest.raises(Unauthorized):
        await authenticate(request, app.state.authentication)
    assert context_of(request).caller is None


def test_with_auth_off_the_context_has_no_caller():
    app = create_app(Settings(storage="sqlite://:memory:"))
    try:
        assert app.state.authentication is None
        assert context_of(_request(app, "Bearer whatever")).caller is None
    finally:
        app.state.workers.shutdown()
        app.state.runtime.store.close()
