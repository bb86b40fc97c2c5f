"""The region's OpenID Connect provider for the dashboard's sign-in tests: a small
authorization server on loopback, in a thread of the test process.

It serves discovery (``{issuer}/.well-known/openid-configuration``), its JWK Set
(``/jwks``), an authorization endpoint that signs in ``person`` at once (no form: the
test decides who the person is) and a token endpoint that checks the authorization
code, the redirect URI, the client and the PKCE verifier (S256) before it answers with
an ID token (audience the dashboard's client id, with the nonce) and an access token
(audience the FHIR server, with the claims of domain.md §5). Keys are made per run.

    with OidcProvider(person={"hsa_id": "SE2321000032-1234", "role": "evi", "name": "Eva"}) as idp:
        with auth_server(tmp_path, [], **idp.settings()) as live: ...
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from tests.support.auth import ClientKey
from tests.support.live_server import free_port

__all__ = ["OidcProvider"]


class OidcProvider:
    def __init__(self, *, client_id: str = "evi-dashboard", audience: str = "evi-fhir-test",
                 person: dict | None = None, client_secret: str | None = None):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/realms/region"
        self.client_id = client_id
        self.client_secret = client_secret
        self.audience = audience
        self.person = person or {"hsa_id": "SE2321000032-0001", "role": "evi", "name": "Test Testsson"}
        self.key = ClientKey.new(self.issuer, "RS256")
        #: what the endpoints were asked, for tests to look at
        self.authorizations: list[dict] = []
        self.token_requests: list[dict] = []
        self._codes: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def settings(self) -> dict:
        return {"oidc_issuer": self.issuer, "oidc_jwks_url": f"http://127.0.0.1:{self.port}/jwks",
                "oidc_audience": self.audience, "ui_client_id": self.client_id,
                **({"ui_client_secret": self.client_secret} if self.client_secret else {})}

    def discovery(self) -> dict:
        base = self.issuer
        return {"issuer": base, "authorization_endpoint": base + "/protocol/openid-connect/auth",
                "token_endpoint": base + "/protocol/openid-connect/token",
                "jwks_uri": f"http://127.0.0.1:{self.port}/jwks", "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"], "id_token_signing_alg_values_supported": ["RS256"]}

    # ---- the endpoints --------------------------------------------------------------------

    def authorize(self, query: dict) -> tuple[int, dict]:
        self.authorizations.append(query)
        ok = (query.get("response_type") == "code" and query.get("client_id") == self.client_id
              and query.get("code_challenge_method") == "S256" and query.get("code_challenge")
              and query.get("redirect_uri", "").startswith("http") and "openid" in query.get("scope", "").split())
        if not ok:
            return 400, {"error": "invalid_request"}
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {"challenge": query["code_challenge"], "nonce": query.get("nonce"),
                                 "redirect_uri": query["redirect_uri"], "person": dict(self.person)}
        target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": target}

    def _client_ok(self, form: dict, authorization: str | None) -> bool:
        if self.client_secret is None:
            return form.get("client_id") == self.client_id
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return authorization == f"Basic {expected}"

    def token(self, form: dict, authorization: str | None) -> tuple[int, dict]:
        self.token_requests.append(form)
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code is good once
        if grant is None or form.get("grant_type") != "authorization_code":
            return 400, {"error": "invalid_grant"}
        if not self._client_ok(form, authorization):
            return 401, {"error": "invalid_client"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"] or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant"}
        now, person = int(time.time()), grant["person"]
        sub = person.get("hsa_id", uuid.uuid4().hex)
        id_token = self.key.sign({"iss": self.issuer, "aud": self.client_id, "sub": sub, "iat": now,
                                  "exp": now + 300, "nonce": grant["nonce"], **person})
        access = self.key.sign({"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now, "exp": now + 300,
                                "scope": "user/*.rs", "client_id": self.client_id, **person})
        return 200, {"access_token": access, "id_token": id_token, "token_type": "Bearer", "expires_in": 300}

    # ---- the server ------------------------------------------------------------------------

    def __enter__(self) -> "OidcProvider":
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = b"" if status == 302 else orjson.dumps(body)
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 (http.server's name)
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                issuer_path = urlsplit(provider.issuer).path
                if parts.path == "/jwks":
                    self._answer(200, provider.key.jwks())
                elif parts.path == issuer_path + "/.well-known/openid-configuration":
                    self._answer(200, provider.discovery())
                elif parts.path == issuer_path + "/protocol/openid-connect/auth":
                    status, out = provider.authorize(query)
                    self._answer(status, {} if status == 302 else out, out if status == 302 else None)
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                if urlsplit(self.path).path == urlsplit(provider.issuer).path + "/protocol/openid-connect/token":
                    self._answer(*provider.token(form, self.headers.get("Authorization")))
                else:
                    self._answer(404, {"error": "not found"})

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

