"""The client's side of SMART Backend Services, for operators and scripts
(``evi-fhir clients add --generate-key``, ``evi-fhir token``): make a key pair, publish
its public half as a JWK, sign an authentication JWT and trade it for an access token.

Keys are made and used by ``cryptography`` and PyJWT; a generated key's ``kid`` is its
JWK thumbprint (RFC 7638), so ``evi-fhir token`` finds it from the private key alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from fhir_server.security.clients import Client, ClientsFileError, add_client

__all__ = [
    "BackendClientError",
    "generate_key",
    "write_private_key",
    "public_jwk",
    "jwk_set_from_file",
    "thumbprint",
    "load_private_key",
    "sign_assertion",
    "request_token",
    "register_client",
]

_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: the members RFC 7638 hashes, per key type
_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}


class BackendClientError(Exception):
    """What went wrong, for the operator (a file, the server's answer)."""


def thumbprint(jwk: dict) -> str:
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwk(public_key, alg: str, kid: str | None = None) -> dict:
    """The JWK of an RSA or EC public key, for signatures with ``alg``."""
    algorithm = RSAAlgorithm if isinstance(public_key, rsa.RSAPublicKey) else ECAlgorithm
    jwk = algorithm.to_jwk(public_key, as_dict=True)
    jwk.update({"alg": alg, "use": "sig"})
    jwk["kid"] = kid or thumbprint(jwk)
    return jwk


def generate_key(alg: str = "ES384") -> tuple[bytes, dict]:
    """A new key pair for ``alg`` (ES384: P-384, RS384: RSA 3072 bits): the private key
    as PEM, and the public JWK."""
    if alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif alg == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise BackendClientError(f"no key type {alg}: use ES384 or RS384")
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem, public_jwk(key.public_key(), alg)


def write_private_key(out: Path, pem: bytes) -> None:
    """A new file, readable by its owner only; an existing file is never overwritten."""
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BackendClientError(f"cannot write the private key to {out}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def jwk_set_from_file(path: Path) -> dict:
    """A JWK Set from a file holding one (JSON), a single JWK, or a PEM public key."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendClientError(f"cannot read {path}: {exc}") from None
    if text.lstrip().startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except ValueError as exc:
            raise BackendClientError(f"{path} is not a PEM public key: {exc}") from None
        return {"keys": [public_jwk(key, "RS384" if isinstance(key, rsa.RSAPublicKey) else "ES384")]}
    try:
        data = json.loads(text)
    except ValueError:
        raise BackendClientError(f"{path} is neither JSON (a JWK Set or a JWK) nor a PEM public key") from None
    if isinstance(data, dict) and "keys" not in data and "kty" in data:
        data = {"keys": [data]}
    return data


def register_client(
    path: Path, fields: dict, *, jwks: str | None = None, jwks_url: str | None = None,
    new_key: str | None = None, key_type: str = "ES384",
) -> Client:
    """``evi-fhir clients add``: the client of ``fields`` with exactly one of its public
    keys from a file (``jwks``), a URL (``jwks_url``) or a new key pair whose private key
    goes to the file ``new_key`` (removed again if the client is refused)."""
    if sum(x is not None for x in (jwks, jwks_url, new_key)) != 1:
        raise BackendClientError("give exactly one of --jwks FILE, --jwks-url URL, --generate-key OUT.pem")
    fields = dict(fields)
    if jwks_url is not None:
        fields["jwks_url"] = jwks_url
    elif jwks is not None:
        fields["jwks"] = jwk_set_from_file(Path(jwks))
    else:
        pem, jwk = generate_key(key_type)
        fields["jwks"] = {"keys": [jwk]}
        write_private_key(Path(new_key), pem)
    try:
        return add_client(path, fields)
    except ClientsFileError:
        if new_key is not None:
            Path(new_key).unlink(missing_ok=True)
        raise


def load_private_key(path: Path):
    """(private key, alg): RS384 for RSA, ES384 for EC P-384."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BackendClientError(f"cannot read a private key (PEM, unencrypted) from {path}: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS384"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return key, "ES384"
    raise BackendClientError(f"{path}: SMART Backend Services keys are RSA (RS384) or EC P-384 (ES384)")


def sign_assertion(client_id: str, key, alg: str, kid: str, token_url: str, lifetime: int = 240) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "JWT"})


def request_token(base_url: str, client_id: str, key_path: Path, scope: str, kid: str | None = None) -> dict:
    """The token endpoint's answer for ``client_id``, found through the server's
    ``.well-known/smart-configuration``."""
    key, alg = load_private_key(key_path)
    kid = kid or public_jwk(key.public_key(), alg)["kid"]
    token_url = _get_json(base_url.rstrip("/") + "/.well-known/smart-configuration").get("token_endpoint")
    if not isinstance(token_url, str):
        raise BackendClientError(f"{base_url} names no token_endpoint in its SMART configuration")
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": _JWT_BEARER,
        "client_assertion": sign_assertion(client_id, key, alg, kid, token_url),
    }
    request = urllib.request.Request(
        token_url, data=urllib.parse.urlencode(form).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
    )
    return _send(request)


def _get_json(url: str) -> dict:
    return _send(urllib.request.Request(url, headers={"Accept": "application/json"}))


def _send(request: urllib.request.Request) -> dict:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        detail = answer.get("error_description") or answer.get("error") or exc.reason
        raise BackendClientError(f"{request.full_url} answered {exc.code}: {answer.get('error', '')} {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise BackendClientError(f"{request.full_url}: {exc}") from None
    if not isinstance(answer, dict):
        raise BackendClientError(f"{request.full_url} did not answer with a JSON object")
    return answer
