"""A real webhook receiver on a free loopback port, for the notification tests.

It records every POST (path, headers, the JSON body) and answers with the status its
``answer`` gives (a fixed status, or a function of the request number). It can be
stopped and started again on the same port (the receiver "down" while events happen).

    with Receiver() as hook:
        ... create a Subscription with hook.url ...
        bundles = hook.wait_for(lambda got: len(hook.events()) >= 3)
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

from tests.support.live_server import free_port

__all__ = ["Receiver", "Received", "status_of", "event_numbers", "focus_of"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: dict
    status: int  # what the receiver answered
    at: float  # time.time() when it arrived


def status_of(bundle: dict) -> dict[str, object]:
    """The status Parameters of a notification, as {name: value or [parts]}."""
    params = bundle["entry"][0]["resource"]["parameter"]
    out: dict[str, object] = {}
    for p in params:
        if "part" in p:
            out.setdefault(p["name"], []).append({q["name"]: _value(q) for q in p["part"]})
        else:
            out[p["name"]] = _value(p)
    return out


def _value(p: dict):
    for key, value in p.items():
        if key.startswith("value"):
            return value.get("reference") if key == "valueReference" else value
    return None


def event_numbers(bundle: dict) -> list[int]:
    return [int(e["event-number"]) for e in status_of(bundle).get("notification-event", [])]


def focus_of(bundle: dict) -> list[str]:
    return [e.get("focus") for e in status_of(bundle).get("notification-event", [])]


class Receiver:
    def __init__(self, answer: int | Callable[[int], int] = 200, port: int | None = None):
        self.port = port or free_port()
        self.answer = answer
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    n = len(receiver.received)
                    answer = receiver.answer(n) if callable(receiver.answer) else receiver.answer
                    receiver.received.append(Received(self.path, dict(self.headers), body, answer, time.time()))
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def start(self) -> "Receiver":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), self._handler(), bind_and_activate=False)
        server.allow_reuse_address = True
        server.daemon_threads = True
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.server_bind()
        server.server_activate()
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Receiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what arrived ------------------------------------------------------------------
    def bundles(self, kind: str | None = None, accepted: bool = False) -> list[dict]:
        """Notification bodies (of ``kind``: handshake, heartbeat, event-notification), in
        arrival order; ``accepted``: only those it answered 2xx."""
        with self._lock:
            got = list(self.received)
        return [r.body for r in got if (kind is None or status_of(r.body).get("type") == kind)
                and (not accepted or 200 <= r.status < 300)]

    def events(self, accepted: bool = True) -> list[int]:
        """Event numbers in arrival order (of notifications it accepted)."""
        return [n for b in self.bundles("event-notification", accepted) for n in event_numbers(b)]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; received {[status_of(r.body) for r in self.received]}")
            time.sleep(0.02)
