"""Helpers for tests with authentication on (domain.md §5): client keys and clients
files, a LiveServer with auth on, access tokens for a client of a given role,
organisation and scopes, and the region's identity provider as a process of its own
on loopback that serves its JWK Set over HTTP and whose keys mint people's tokens.

Keys are real (cryptography), made per test run; nothing here is fixed key material.

    key = ClientKey.new("kalmar-soc", "ES384")
    with auth_server(tmp_path, [client_entry(key, role="municipality",
                                             organization="Organization/kalmar-soc")]) as live:
        token = access_token(live, key, "system/*.rs")
        httpx.get(live.base_url + "/Patient", headers=bearer(token))

    with IdentityProvider(tmp_path) as idp:
        with auth_server(tmp_path, [], **idp.settings()) as live:
            person = idp.mint(hsa_id="SE2321000032-1234", role="evi", care_unit="SE2321000032-EVI1")
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_server.security import client_table
from fhir_server.security.backend_client import public_jwk
from tests.support.live_server import LiveServer, free_port

__all__ = [
    "JWT_BEARER", "ClientKey", "IdentityProvider", "access_token", "assertion_form", "auth_server", "bearer",
    "client_entry", "token_secret", "write_clients",
]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ROOT = Path(__file__).resolve().parents[2]


def token_secret() -> str:
    """A fresh EVI_TOKEN_SECRET (at least 32 bytes)."""
    return uuid.uuid4().hex + uuid.uuid4().hex


def _private_key(alg: str):
    if alg.startswith("RS"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1() if alg == "ES384" else ec.SECP256R1())


@dataclass
class ClientKey:
    """A key pair of a client (or of the identity provider): signs what a test asks."""

    client_id: str
    alg: str
    private_key: object
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def new(cls, client_id: str = "", alg: str = "ES384", kid: str | None = None) -> "ClientKey":
        client_id = client_id or f"client-{uuid.uuid4().hex[:8]}"
        key = cls(client_id, alg, _private_key(alg))
        if kid:
            key.kid = kid
        return key

    def jwk(self) -> dict:
        return public_jwk(self.private_key.public_key(), self.alg, self.kid)

    def jwks(self) -> dict:
        return {"keys": [self.jwk()]}

    def sign(self, claims: dict, **headers) -> str:
        alg = headers.pop("alg", self.alg)
        return jwt.encode(claims, self.private_key, algorithm=alg, headers={"kid": self.kid, "typ": "JWT", **headers})

    def assertion(self, token_url: str, *, headers: dict | None = None, **claims) -> str:
        """A client assertion as SMART says; ``claims`` override (``None`` drops a claim)."""
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": token_url, "exp": now + 240,
                "jti": uuid.uuid4().hex}
        body.update(claims)
        return self.sign({k: v for k, v in body.items() if v is not None}, **(headers or {}))


def client_entry(key: ClientKey, *, role: str = "evi", organization: str = "Organization/evi-test",
                 scopes: tuple[str, ...] = ("system/*.cruds",), name: str | None = None,
                 jwks_url: str | None = None) -> dict:
    """One ``[[client]]`` of the clients file, its keys inline (or at ``jwks_url``)."""
    entry = {"id": key.client_id, "name": name or f"Test client {key.client_id}", "role": role,
             "organization": organization, "scopes": list(scopes)}
    if jwks_url:
        entry["jwks_url"] = jwks_url
    else:
        entry["jwks"] = key.jwks()
    return entry


def write_clients(path: Path, entries: list[dict]) -> Path:
    path.write_text("\n".join(client_table(e) for e in entries))
    return path


def auth_server(tmp_path: Path, clients: list[dict], **settings) -> LiveServer:
    """A LiveServer with auth on (use it as a context manager); its clients file holds
    ``clients``; storage and token secret may be given in ``settings``."""
    folder = tmp_path / f"auth-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    if clients or "oidc_issuer" not in settings:
        settings.setdefault("clients_file", str(write_clients(folder / "clients.toml", clients)))
    settings.setdefault("storage", "sqlite://:memory:")
    settings.setdefault("token_secret", token_secret())
    return LiveServer(auth="smart", **settings)


def assertion_form(assertion: str, scope: str = "system/*.rs", **extra) -> dict:
    return {"grant_type": "client_credentials", "scope": scope, "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion, **extra}


def access_token(live: LiveServer, key: ClientKey, scope: str = "system/*.cruds") -> str:
    """An access token of ``live`` for the registered client of ``key``."""
    token_url = live.base_url + "/auth/token"
    answer = httpx.post(token_url, data=assertion_form(key.assertion(token_url), scope), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}


class IdentityProvider:
    """The region's OpenID Connect provider: a process of its own on a free loopback port
    serving the JWK Set of ``keys`` at ``/jwks`` (re-read on every request, so a test can
    rotate keys), logging each fetch; ``mint`` signs a person's token with a current key."""

    def __init__(self, tmp_path: Path, alg: str = "RS256", audience: str = "evi-fhir-test"):
        self.folder = tmp_path / f"idp-{uuid.uuid4().hex[:8]}"
        self.folder.mkdir()
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/realms/region"
        self.audience = audience
        self.keys = [ClientKey.new(self.issuer, alg)]
        self._jwks = self.folder / "jwks.json"
        self._log = self.folder / "fetches.log"
        self._process: subprocess.Popen | None = None
        self.publish()

    @property
    def jwks_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks"

    def settings(self) -> dict:
        return {"oidc_issuer": self.issuer, "oidc_jwks_url": self.jwks_url, "oidc_audience": self.audience}

    def publish(self) -> None:
        self._jwks.write_text(json.dumps({"keys": [k.jwk() for k in self.keys]}))

    def rotate(self, alg: str | None = None) -> ClientKey:
        """A new current key, published alongside the old ones."""
        key = ClientKey.new(self.issuer, alg or self.keys[-1].alg)
        self.keys.append(key)
        self.publish()
        return key

    @property
    def fetches(self) -> int:
        return len(self._log.read_text().splitlines()) if self._log.exists() else 0

    def mint(self, *, key: ClientKey | None = None, expires_in: int = 300, **claims) -> str:
        """A person's token; ``claims`` override iss/aud/exp (``None`` drops one)."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + expires_in,
                "sub": uuid.uuid4().hex, **claims}
        signer = key or self.keys[-1]
        return jwt.encode({k: v for k, v in body.items() if v is not None}, signer.private_key,
                          algorithm=signer.alg, headers={"kid": signer.kid})

    def __enter__(self) -> "IdentityProvider":
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.idp_server", str(self.port), str(self._jwks), str(self._log)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ},
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=1)
                return self
            except httpx.TransportError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the identity provider did not start: {self._process.stderr.read()!r}")
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
