"""Where a delivery that discloses patient data meets the PDL access log (domain.md §6).

The delivery worker calls ``on_disclosure`` once per attempt to send events (a
Subscription's notification, a relay's write), after the attempt, with what went out and
how it ended (``Disclosure``, defined beside its recorder in ``engine/disclosures.py``).
The default records nothing; the app installs ``engine.DisclosureRecorder`` where it
builds the worker (``app.py``: ``Notifier(..., on_disclosure=...)``). Handshakes and
heartbeats carry no patient data and are not reported.
"""

from __future__ import annotations

from typing import Callable

from fhir_server.engine.disclosures import Disclosure

__all__ = ["Disclosure", "DisclosureLog", "no_disclosure_log"]


DisclosureLog = Callable[[Disclosure], None]


def no_disclosure_log(disclosure: Disclosure) -> None:
    """The default: nothing is recorded (no access log installed)."""
