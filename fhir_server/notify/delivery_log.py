"""The delivery log: one structured line per attempt (logger ``fhir_server.notify.delivery``).

Each line is ``notify.attempt`` followed by a JSON object: the stream, the kind of
notification (handshake, heartbeat, event-notification, relay), the event numbers, the
recipient's host (never its path or query, which may carry tokens), the outcome, the HTTP
status, the error class, the time taken and the attempt number. No resource content, no
identifier and no personal data go into it: the PDL log (``disclosure.py``) is where who
saw what is kept.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

import orjson

__all__ = ["Attempt", "log_attempt", "delivery_log"]

delivery_log = logging.getLogger("fhir_server.notify.delivery")


@dataclass(frozen=True)
class Attempt:
    stream: str
    kind: str
    recipient: str
    #: delivered | failed
    outcome: str
    http_status: int | None = None
    #: what failed: "HTTP 500", "ConnectError", "timeout" (no message text: it may quote data)
    error: str | None = None
    ms: float = 0.0
    events: tuple[int, int] | None = None
    attempt: int = 1


def _host(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")
    except ValueError:
        return ""


def log_attempt(attempt: Attempt) -> None:
    fields = asdict(attempt)
    fields["recipient"] = _host(attempt.recipient)
    fields["ms"] = round(attempt.ms, 1)
    level = logging.INFO if attempt.outcome == "delivered" else logging.WARNING
    delivery_log.log(level, "notify.attempt %s", orjson.dumps(fields).decode())
