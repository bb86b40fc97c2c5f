"""The rest-hook channel: a notification is POSTed to the endpoint as FHIR JSON, with the
Subscription's headers; any 2xx answer within the timeout is a delivery, anything else
(another status, a refused connection, a timeout) a failure. Redirects are not followed
(an endpoint that moved must be changed on the Subscription)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

__all__ = ["RestHook", "Sent"]

_CONTENT_TYPE = "application/fhir+json; charset=utf-8"


@dataclass(frozen=True)
class Sent:
    ok: bool
    http_status: int | None
    error: str | None
    ms: float


class RestHook:
    """One HTTP client per delivery thread (connections are kept alive per endpoint)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(follow_redirects=False, trust_env=False,
                                  headers={"User-Agent": "evi-fhir notifications"})
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def post(self, endpoint: str, headers: tuple[tuple[str, str], ...], body: bytes, timeout: float) -> Sent:
        started = time.monotonic()
        try:
            answer = self._client().post(endpoint, content=body, timeout=timeout,
                                         headers=[*headers, ("Content-Type", _CONTENT_TYPE)])
        except httpx.TimeoutException:
            return Sent(False, None, "timeout", (time.monotonic() - started) * 1000)
        except (httpx.HTTPError, ValueError) as exc:  # refused, reset, DNS, a bad URL...
            return Sent(False, None, type(exc).__name__, (time.monotonic() - started) * 1000)
        ms = (time.monotonic() - started) * 1000
        if 200 <= answer.status_code < 300:
            return Sent(True, answer.status_code, None, ms)
        return Sent(False, answer.status_code, f"HTTP {answer.status_code}", ms)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()
