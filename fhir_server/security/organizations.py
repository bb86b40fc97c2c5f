"""The caller's organisation: what ``%organization`` stands for in the access policy is a
literal ``Organization/{id}``, while registrations and people's tokens may name the
organisation by its HSA-id. Resolving one needs a search of the store, which the
``security`` package cannot make (it sits below ``engine``): the ``api`` layer hands it
an ``OrganizationLookup`` that does, in a worker thread.

People's tokens carry their care unit's HSA-id on every request, so resolutions are
kept for ``OrganizationCache.TTL`` seconds (an Organization given a unit's HSA-id is
used from then on at the latest).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable

__all__ = ["HSA_SYSTEM", "OrganizationRef", "OrganizationLookup", "OrganizationCache", "is_organization_spec", "hsa_of"]

#: the identifier system of HSA-ids (Inera's HSA catalogue)
HSA_SYSTEM = "urn:oid:1.2.752.29.4.19"

_LITERAL = re.compile(r"^Organization/[A-Za-z0-9\-.]{1,64}$")
_TOKEN = re.compile(r"^[^\s|]+\|[^\s|]+$")


def is_organization_spec(text: object) -> bool:
    """A literal ``Organization/{id}``, or an identifier as ``system|value``."""
    return isinstance(text, str) and bool(_LITERAL.match(text) or _TOKEN.match(text))


@dataclass(frozen=True)
class OrganizationRef:
    #: ``Organization/{id}``; None when no (or more than one) Organization has the identifier
    literal: str | None
    #: the organisation's HSA-id value, where known
    hsa: str | None


#: ``Organization/{id}`` or ``system|value`` -> what the server holds about it (may block)
OrganizationLookup = Callable[[str], OrganizationRef]


class OrganizationCache:
    """Resolutions of HSA-ids, for ``TTL`` seconds; thread-safe, bounded."""

    TTL = 60.0
    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, OrganizationRef]] = {}
        self._lock = threading.Lock()

    def get(self, spec: str) -> OrganizationRef | None:
        with self._lock:
            found = self._entries.get(spec)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def resolve(self, spec: str, lookup: OrganizationLookup) -> OrganizationRef:
        found = self.get(spec)
        if found is None:
            found = lookup(spec)
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[spec] = (time.monotonic() + self.TTL, found)
        return found


def hsa_of(organization: dict) -> str | None:
    """The HSA-id value among an Organization resource's identifiers."""
    for identifier in organization.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("system") == HSA_SYSTEM:
            value = identifier.get("value")
            if isinstance(value, str) and value:
                return value
    return None
