"""The clients file (domain.md §5): what loads, and what stops the start naming the
client and the key."""

import json

import pytest

from fhir_server.security import Clients, ClientsFileError, add_client, client_table, load_clients, parse_clients
from fhir_server.security.jwks import RemoteKeySet, StaticKeySet
from tests.support.auth import ClientKey, client_entry


@pytest.fixture(scope="module")
def rsa_key():
    return ClientKey.new("kalmar-soc", "RS384")


@pytest.fixture(scope="module")
def ec_key():
    return ClientKey.new("evi-vgr", "ES384")


def _text(*entries) -> str:
    """The entries as TOML; keys that ``client_table`` does not know (it writes only
    valid ones) as plain string lines."""
    known = ("id", "name", "role", "organization", "scopes", "jwks", "jwks_url")
    return "\n".join(
        client_table(e) + "".join(f"{k} = {json.dumps(v)}\n" for k, v in e.items() if k not in known)
        for e in entries
    )


def test_the_domain_example_loads_with_inline_keys_and_jwks_urls(rsa_key, ec_key):
    clients = parse_clients(_text(
        client_entry(rsa_key, role="municipality", organization="Organization/kalmar-soc",
                     scopes=("system/*.rs", "system/Communication.cu", "system/Task.cu"),
                     name="Kalmar kommun, socialtjänsten"),
        client_entry(ec_key, organization="urn:oid:1.2.752.29.4.19|SE2321000131-E000000000001",
                     jwks_url="https://evi.vgregion.example/jwks.json"),
    ))
    kalmar, vgr = clients.get("kalmar-soc"), clients.get("evi-vgr")
    assert (kalmar.name, kalmar.role, kalmar.organization) == ("Kalmar kommun, socialtjänsten", "municipality",
                                                               "Organization/kalmar-soc")
    assert kalmar.scopes.text() == "system/*.rs system/Communication.cu system/Task.cu"
    assert isinstance(kalmar.keys, StaticKeySet) and kalmar.keys.find(rsa_key.kid, "RS384") is not None
    assert kalmar.keys.find(rsa_key.kid, "ES384") is None  # an RSA key never verifies ES384
    assert isinstance(vgr.keys, RemoteKeySet) and vgr.jwks_url == "https://evi.vgregion.example/jwks.json"
    assert len(clients) == 2 and clients.get("nobody") is None and clients.get(None) is None


def test_an_empty_file_registers_no_client():
    assert len(parse_clients("")) == 0


def _refusal(text: str) -> str:
    with pytest.raises(ClientsFileError) as caught:
        parse_clients(text, "clients file c.toml")
    return str(caught.value)


@pytest.mark.parametrize("change, client, key", [
    ({"colour": "blue"}, "kalmar-soc", "colour"),
    ({"role": "superuser"}, "kalmar-soc", "role"),
    ({"organization": "kalmar-soc"}, "kalmar-soc", "organization"),
    ({"scopes": ["system/*.rs", "patient/*.read"]}, "kalmar-soc", "scopes"),
    ({"scopes": ["system/Spaceship.rs"]}, "kalmar-soc", "scopes"),
    ({"scopes": []}, "kalmar-soc", "scopes"),
    ({"scopes": "system/*.rs"}, "kalmar-soc", "scopes"),
    ({"name": ""}, "kalmar-soc", "name"),
    ({"jwks_url": "https://kalmar.example/jwks.json"}, "kalmar-soc", "jwks"),  # both
    ({"jwks": None}, "kalmar-soc", "jwks"),  # neither
    ({"jwks": None, "jwks_url": "file:///etc/passwd"}, "kalmar-soc", "jwks_url"),
    ({"id": "has space"}, "[[client]] number 1", "id"),
    ({"id": None}, "[[client]] number 1", "id"),
])
def test_a_bad_client_stops_the_start_naming_client_and_key(rsa_key, change, client, key):
    entry = {**client_entry(rsa_key), **change}
    message = _refusal(_text({k: v for k, v in entry.items() if v is not None}))
    assert message.startswith("clients file c.toml: ")
    assert (f"client {client!r}" if not client.startswith("[[") else client) in message
    assert f"key {key!r}" in message


@pytest.mark.parametrize("jwk_change, why", [
    ({"kid": None}, "no 'kid'"),
    ({"alg": "RS256"}, "fits none of RS384, ES384"),
    ({"alg": "HS256"}, "fits none"),
    ({"kty": "oct"}, "fits none"),
    ({"use": "enc"}, "not for signatures"),
    ({"d": "c2VjcmV0"}, "private key material"),
    ({"n": "AQAB"}, "not a valid RSA key"),
])
def test_a_bad_key_is_named(rsa_key, jwk_change, why):
    jwk = {k: v for k, v in {**rsa_key.jwk(), **jwk_change}.items() if v is not None}
    message = _refusal(_text({**client_entry(rsa_key), "jwks": {"keys": [jwk]}}))
    assert "client 'kalmar-soc': key 'jwks'" in message and why in message


def test_an_ec_key_must_be_p384_for_es384():
    p256 = ClientKey.new("p256", "ES256")
    message = _refusal(_text(client_entry(p256)))
    assert "key 'jwks'" in message and "fits none of RS384, ES384" in message


def test_two_keys_with_one_kid_and_a_repeated_client_are_refused(rsa_key, ec_key):
    twin = ClientKey.new("kalmar-soc", "RS384", kid=rsa_key.kid)  # (an EC key may share an RSA key's kid)
    assert "two keys have the kid" in _refusal(_text({**client_entry(rsa_key), "jwks": {"keys": [rsa_key.jwk(), twin.jwk()]}}))
    message = _refusal(_text(client_entry(rsa_key), client_entry(ec_key), client_entry(rsa_key)))
    assert "client 'kalmar-soc': key 'id': registered twice" in message


def test_what_is_not_a_clients_file(tmp_path):
    assert "not valid TOML" in _refusal("[[client]\nid=")
    assert "unknown key 'clients'" in _refusal('[[clients]]\nid = "x"\n')
    assert "'client' must be [[client]] tables" in _refusal('client = "x"\n')
    with pytest.raises(ClientsFileError, match="cannot be read"):
        load_clients(tmp_path / "missing.toml")


def test_add_client_appends_a_checked_table_and_refuses_without_touching_the_file(tmp_path, rsa_key, ec_key):
    path = tmp_path / "clients.toml"
    path.write_text("# the region's clients\n" + client_table(client_entry(rsa_key)).rstrip("\n"))
    added = add_client(path, client_entry(ec_key, name='EVI "VGR" \\ unit\x7f'))
    assert added.name == 'EVI "VGR" \\ unit\x7f'  # escapes survive the round trip
    assert [c.id for c in load_clients(path)] == ["kalmar-soc", "evi-vgr"]
    before = path.read_text()
    assert before.startswith("# the region's clients\n")
    with pytest.raises(ClientsFileError, match="registered twice"):
        add_client(path, client_entry(ec_key))
    with pytest.raises(ClientsFileError, match="key 'role'"):
        add_client(path, {**client_entry(ClientKey.new("x")), "role": "root"})
    assert path.read_text() == before
    assert not list(tmp_path.glob(".*.tmp"))
    fresh = tmp_path / "new.toml"
    add_client(fresh, client_entry(rsa_key))
    assert isinstance(load_clients(fresh), Clients)
