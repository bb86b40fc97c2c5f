"""The region's identity provider for tests, as a process of its own (see
``tests.support.auth.IdentityProvider``): serves the JWK Set file at ``/jwks``,
re-read on every request, and appends a line to the log file per fetch.

    python -m tests.support.idp_server PORT JWKS_FILE LOG_FILE
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main(port: int, jwks: Path, log: Path) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path == "/jwks":
                body = jwks.read_bytes()
                with log.open("a") as f:
                    f.write("fetch\n")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
            elif self.path == "/ready":
                body = b"ok"
                self.send_response(200)
            else:
                body = b"not found"
                self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
