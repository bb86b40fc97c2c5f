"""What one request did to patient data: its ``AuditTrail``, one ``Access`` per AuditEvent.

The engine adds accesses as it reads, searches and writes (``engine/audit.py``), on the
trail its RequestContext carries; the API settles the trail with the answer's status and
hands the events to the writer before the answer leaves (``api/audit.py``). An access
whose ``outcome`` is None takes the request's; a batch entry settles its own. A trail
belongs to one request, which runs on one thread at a time: no lock.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Access", "AuditTrail", "ACTIONS", "action_of", "outcome_of"]

#: restful-interaction code -> AuditEvent.action (BALP: R read, C create, U update, D
#: delete; E for searches, history and operations, as BALP's Query)
ACTIONS = {"read": "R", "vread": "R", "create": "C", "update": "U", "patch": "U", "delete": "D"}


def action_of(interaction: str) -> str:
    return ACTIONS.get(interaction, "E")


def outcome_of(status: int) -> str:
    """AuditEvent.outcome (audit-event-outcome): 0 success, 4 the client's error or refused
    by access rules (4xx), 8 a server failure (5xx)."""
    if status >= 500:
        return "8"
    return "4" if status >= 400 else "0"


class Access(NamedTuple):
    """One AuditEvent's worth of a request: an interaction on one patient's data (or none).
    (A named tuple: one is made per event on every request's path, and they are cheap.)"""

    #: the restful-interaction code (read, vread, search-type, ..., operation)
    interaction: str
    #: the Patient's logical id; None: no patient could be named
    patient: str | None
    #: the resources concerned, as literal references (versioned where known)
    resources: tuple[str, ...] = ()
    #: searches and operations: the query string as the client sent it, and the path it was sent to
    query: str | None = None
    path: str | None = None
    #: the HTTP status this access ended with; None: the request's
    outcome: int | None = None
    #: for interaction ``operation``: the operation's name (``everything``, ``triage``)
    operation: str | None = None


class AuditTrail:
    __slots__ = ("accesses", "operation", "path", "query", "interaction")

    def __init__(self, path: str = "", query: str = "", operation: str | None = None):
        self.accesses: list[Access] = []
        #: set for an operation: its accesses become one ``operation`` event per patient
        self.operation = operation
        #: what the client asked (the request's, or the batch entry's being run)
        self.path = path
        self.query = query
        #: set where the request itself tells what it is (a Bundle: transaction or batch);
        #: None: the route's interaction
        self.interaction: str | None = None

    def add(self, access: Access) -> None:
        self.accesses.append(access)

    def mark(self) -> int:
        return len(self.accesses)

    def clear(self) -> None:
        del self.accesses[:]

    def settle(self, since: int, status: int, fallback: Access | None = None) -> None:
        """The accesses added since ``mark()`` ended with ``status`` (a batch entry's, a
        failed transaction step's); when there were none, ``fallback`` stands for them."""
        for i in range(since, len(self.accesses)):
            if self.accesses[i].outcome is None:
                self.accesses[i] = self.accesses[i]._replace(outcome=status)
        if len(self.accesses) == since and fallback is not None:
            self.accesses.append(fallback._replace(outcome=status))

    def events(self, fallback: Access | None = None) -> list[Access]:
        """The request's events (those without an outcome take the request's status):
        an operation's accesses merged into one event per patient; ``fallback`` (what
        the request was about) when nothing was recorded."""
        if not self.accesses:
            return [fallback] if fallback is not None else []
        return self._per_patient() if self.operation else self.accesses

    def _per_patient(self) -> list[Access]:
        groups: dict[str | None, list[str]] = {}
        for access in self.accesses:
            groups.setdefault(access.patient, []).extend(access.resources)
        if len(groups) > 1 and not groups.get(None, True):  # a patientless access that named nothing
            del groups[None]
        return [
            Access("operation", patient, tuple(dict.fromkeys(refs)), self.query or None, self.path,
                   operation=self.operation)
            for patient, refs in groups.items()
        ]
