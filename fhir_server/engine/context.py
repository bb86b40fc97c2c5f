"""RequestContext: who asks, for what, in which request. Carried on every call below ``api``."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

from fhir_server.audit import AuditTrail
from fhir_server.errors import ResponseTooLarge, TooCostly
from fhir_server.security import Caller

__all__ = ["RequestContext", "Budget"]


class Budget:
    """What one request may still spend: time (a ``time.monotonic()`` deadline, after
    which stores stop its work and roll it back) and resources in its answer (matches,
    includes and history entries, summed over every entry of a batch).

    Shared by every context of one request; thread-safe.
    """

    def __init__(self, deadline: float | None = None, entries: int | None = None):
        self.deadline = deadline
        self._entries = entries
        self._spent = 0
        self._lock = threading.Lock()

    @classmethod
    def for_request(cls, seconds: float | None, entries: int | None) -> "Budget":
        return cls(time.monotonic() + seconds if seconds else None, entries)

    def check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TooCostly("The request ran past its time budget and was stopped; nothing was changed")

    def spend(self, entries: int, what: str) -> None:
        """Count ``entries`` resources into the answer; refuse past the limit."""
        if self._entries is None:
            return
        with self._lock:
            self._spent += entries
            spent = self._spent
        if spent > self._entries:
            raise ResponseTooLarge(
                f"{what} would make the answer hold {spent} resources, more than the limit of "
                f"{self._entries} per request (EVI_MAX_RESPONSE_ENTRIES): lower _count, or narrow "
                "_include/_revinclude or the batch"
            )


_UNLIMITED = Budget()


@dataclass(frozen=True)
class RequestContext:
    base_url: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: who asks (authentication on); None: auth off, or the server's own work (the guide
    #: at start-up, ``evi-fhir load``, rules' follow-ups): unrestricted. Authorization,
    #: redaction, the PDL log and Provenance hang on it.
    caller: Caller | None = None
    #: why the caller reads: ``export`` for a Bulk Data export job, which sees through its
    #: role's export view of the access policy (``security.policy``); None: as its searches do
    purpose: str | None = None
    #: the request came from a client (the API), not from the server's own work (the
    #: guide at start-up, ``evi-fhir load``, rules' follow-ups): what settings forbid
    #: clients to do is checked on this
    from_client: bool = False
    #: ``Prefer: handling=strict``: refuse unknown search parameters instead of ignoring them
    strict_handling: bool = False
    #: where committed units of work leave their follow-ups (``Work.after_commit``) for
    #: the caller to run off the request's thread; None: run them at once, in line
    follow_ups: list | None = field(default=None, compare=False)
    #: runs on the event loop (a read by id on a store with ``inline_reads``): its unit of
    #: work takes the store's connection reserved for the loop
    inline: bool = False
    #: the request's time and answer-size budget (unlimited for the server's own work)
    budget: Budget = field(default=_UNLIMITED, compare=False)
    #: what the request does to patient data, for the PDL log (``engine.audit``); None: not
    #: logged (the log is off, the server's own work, or no client request)
    audit: AuditTrail | None = field(default=None, compare=False)

    @property
    def deadline(self) -> float | None:
        return self.budget.deadline
