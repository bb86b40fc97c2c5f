"""The client's side, for operators: keys, thumbprints, public key files, assertions."""

import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fhir_server.security import ClientsFileError, load_clients
from fhir_server.security.backend_client import (
    BackendClientError,
    generate_key,
    jwk_set_from_file,
    load_private_key,
    register_client,
    sign_assertion,
    thumbprint,
    write_private_key,
)


def test_the_thumbprint_of_rfc_7638s_example_key():
    key = {"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29", "n": (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
        "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5ha"
        "jrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")}
    assert thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg, kty", [("ES384", "EC"), ("RS384", "RSA")])
def test_a_generated_key_signs_what_its_public_jwk_verifies(tmp_path, alg, kty):
    pem, jwk = generate_key(alg)
    assert (jwk["kty"], jwk["alg"], jwk["use"], jwk["kid"]) == (kty, alg, "sig", thumbprint(jwk))
    assert "d" not in jwk
    path = tmp_path / "key.pem"
    write_private_key(path, pem)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(BackendClientError, match="cannot write"):
        write_private_key(path, pem)  # never overwrites
    key, found_alg = load_private_key(path)
    assertion = sign_assertion("c1", key, found_alg, jwk["kid"], "https://evi.example/fhir/auth/token")
    claims = jwt.decode(assertion, jwt.PyJWK(jwk).key, algorithms=[alg], audience="https://evi.example/fhir/auth/token")
    assert claims["iss"] == claims["sub"] == "c1" and 0 < claims["exp"] - time.time() <= 240 and claims["jti"]
    assert jwt.get_unverified_header(assertion)["kid"] == jwk["kid"]


def test_public_keys_come_as_jwk_sets_single_jwks_or_pem(tmp_path):
    _, jwk = generate_key("ES384")
    (tmp_path / "set.json").write_text('{"keys": [%s]}' % json.dumps(jwk))
    (tmp_path / "one.json").write_text(json.dumps(jwk))
    public = ec.generate_private_key(ec.SECP384R1()).public_key()
    (tmp_path / "key.pub").write_bytes(public.public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    assert jwk_set_from_file(tmp_path / "set.json") == jwk_set_from_file(tmp_path / "one.json") == {"keys": [jwk]}
    assert jwk_set_from_file(tmp_path / "key.pub")["keys"][0]["alg"] == "ES384"
    (tmp_path / "junk").write_text("hello")
    for name in ("junk", "missing"):
        with pytest.raises(BackendClientError):
            jwk_set_from_file(tmp_path / name)
    (tmp_path / "p256.pem").write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(BackendClientError, match="P-384"):
        load_private_key(tmp_path / "p256.pem")


def test_registering_with_a_new_key_keeps_no_key_of_a_refused_client(tmp_path):
    clients = tmp_path / "clients.toml"
    fields = {"id": "c1", "name": "C1", "role": "evi", "organization": "Organization/evi", "scopes": ["system/*.rs"]}
    register_client(clients, fields, new_key=str(tmp_path / "c1.pem"))
    assert [c.id for c in load_clients(clients)] == ["c1"] and (tmp_path / "c1.pem").exists()
    with pytest.raises(ClientsFileError, match="registered twice"):
        register_client(clients, fields, new_key=str(tmp_path / "again.pem"))
    assert not (tmp_path / "again.pem").exists()
    with pytest.raises(BackendClientError, match="exactly one"):
        register_client(clients, {**fields, "id": "c2"}, jwks_url="https://x.example/jwks", new_key=str(tmp_path / "x.pem"))
