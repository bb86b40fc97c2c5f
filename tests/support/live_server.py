"""A real evi-fhir server (uvicorn) on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from fhir_server.app import create_app, uvicorn_options
from fhir_server.settings import Settings

__all__ = ["LiveServer", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, **settings):
        port = free_port()
        self.settings = Settings(host="127.0.0.1", port=port, **settings)
        self.app = create_app(self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
            **uvicorn_options(self.settings),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return self.settings.public_base

    @property
    def port(self) -> int:
        return self.settings.port

    def __enter__(self) -> "LiveServer":
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
