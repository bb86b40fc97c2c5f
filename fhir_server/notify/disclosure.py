"""Where a delivery that discloses patient data meets the PDL access log (domain.md §6).

The delivery worker calls ``on_disclosure`` once per attempt to send events (a
Subscription's notification, a relay's write), after the attempt, with what went out and
how it ended. The default records nothing; the access log (``audit/``, issue 13) plugs its
recorder in where the app builds the worker (``app.py``: ``Notifier(..., on_disclosure=...)``).
Handshakes and heartbeats carry no patient data and are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fhir_server.security import Caller

__all__ = ["Disclosure", "DisclosureLog", "no_disclosure_log"]


@dataclass(frozen=True)
class Disclosure:
    #: as whom the events were judged: the Subscription's owner (None: auth off, or a relay)
    owner: Caller | None
    #: ``Subscription/{id}`` or ``relay/{key}``
    stream: str
    #: where it went: the rest-hook endpoint, or the relay's FHIR base URL
    recipient: str
    #: empty | id-only | full-resource (a Subscription's payload), or relay
    content: str
    #: the event numbers sent (first, last)
    events: tuple[int, int]
    #: (type, id) of every resource the attempt carried in full (full-resource, relay) or
    #: named (id-only: the focus); none for an empty payload
    resources: tuple[tuple[str, str], ...]
    #: delivered | failed
    outcome: str


DisclosureLog = Callable[[Disclosure], None]


def no_disclosure_log(disclosure: Disclosure) -> None:
    """The default: nothing is recorded (no access log installed)."""
