"""Deliveries that disclose patient data, in the PDL access log (domain.md §6, docs/audit.md).

The delivery worker (``notify``) reports every attempt that carried events: a
Subscription's notification (``id-only`` or ``full-resource``) or a relay's write to an
upstream server (``Disclosure``, below; ``notify/disclosure.py``). Such an attempt hands a
child's data, or the news that it changed, to another system, so it is logged as a
client's read would be: one AuditEvent per patient, stored before the worker moves on.

The event (no BALP pattern covers a push; the nearest is PatientQuery): ``subtype``
``operation`` plus the delivery (``notification`` or ``relay``, with the canonical of
what was sent), ``action`` E, ``outcome`` 0 when the recipient took it and 8 when the
attempt failed (the data may still have reached it); the client agent is the
Subscription's owner (a relay: the server itself), its network address the recipient's
URL (type 5, a URI); entities the Patient, every resource carried or named, and the
stream and event numbers as the request id (``Subscription/{id}#3-5``). A resource's
patients are read from its current version as the delivery is logged (an empty
payload names no resource and is not logged).
"""

from __future__ import annotations

from datetime import datetime, timezone
from dataclasses import dataclass
from typing import Callable

from fhir_server.audit import Access, AuditWriter, RequestFacts, by_patient, is_patient_data
from fhir_server.engine.audit import version_patients
from fhir_server.engine.context import RequestContext
from fhir_server.engine.work import Runtime
from fhir_server.model import format_instant
from fhir_server.security import Caller
from fhir_server.storage.base import ResourceVersion

__all__ = ["Disclosure", "DisclosureRecorder", "ExportAccessRecorder"]

_RELAY_CLIENT = "the server's relay to an upstream FHIR server (no client)"


@dataclass(frozen=True)
class Disclosure:
    """One delivery attempt that carried events, as the delivery worker reports it."""

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


class DisclosureRecorder:
    """``Notifier(on_disclosure=...)``: stores the AuditEvents of each delivery attempt
    (in the worker's thread, through the process's group-commit writer)."""

    def __init__(self, writer: AuditWriter, runtime: Runtime, base_url: str, *, auth_on: bool):
        self.writer = writer
        self.runtime = runtime
        self.base_url = base_url
        self.auth_on = auth_on

    def __call__(self, attempt: Disclosure) -> None:
        accesses = self.accesses(attempt)
        if not accesses:
            return
        relay = attempt.content == "relay"
        facts = RequestFacts(
            recorded=format_instant(datetime.now(timezone.utc)),
            request_id=f"{attempt.stream}#{attempt.events[0]}-{attempt.events[1]}",
            status=200 if attempt.outcome == "delivered" else 502,
            caller=attempt.owner,
            auth_on=self.auth_on,
            address=attempt.recipient,
            address_type="5",
            client_display=_RELAY_CLIENT if relay else None,
        )
        self.writer.write_blocking(facts, accesses)

    def accesses(self, attempt: Disclosure) -> list[Access]:
        """One Access per patient whose data the attempt carried or named."""
        carried = [(t, i) for t, i in attempt.resources if is_patient_data(t)]
        if not carried:
            return []
        ctx = RequestContext(base_url=self.base_url)  # the server's own look: no trail, no rules
        with self.runtime.work(ctx, write=False) as work:
            found = []
            for rtype, rid in carried:
                if rtype == "Patient":
                    patients: tuple[str, ...] = (rid,)
                else:
                    current = work.uow.current(rtype, rid)
                    gone = current is None or current.deleted
                    patients = () if gone else version_patients(self.runtime.registry, current, self.base_url)
                found.append((f"{rtype}/{rid}", patients))
        operation = "relay" if attempt.content == "relay" else "notification"
        return [
            Access("operation", patient, tuple(refs), None, attempt.stream, operation=operation)
            for patient, refs in by_patient(found).items()
        ]


class ExportAccessRecorder:
    """A Bulk Data export job's accesses (domain.md §6: an operation that returns several
    patients' data writes one AuditEvent per patient): ``for_job`` gives the job's run a
    callable that, before each batch of resources is written to its files, stores one
    ``operation`` event (canonical of ``$export``) for every child of the batch not yet
    logged in this run, with the job's caller as the client and the job id as request id.
    A run resumed after a restart may log a child again; none goes unlogged."""

    def __init__(self, writer: AuditWriter, runtime: Runtime, *, auth_on: bool):
        self.writer = writer
        self.runtime = runtime
        self.auth_on = auth_on

    def for_job(self, job_id: str, caller: Caller | None, path: str, base_url: str, *,
                client_display: str | None = None) -> Callable[[list[ResourceVersion]], None]:
        """``client_display``: who asked, where no caller names it (``evi-fhir export``)."""
        seen: set[str] = set()

        def written(versions: list[ResourceVersion]) -> None:
            new: dict[str, None] = {}
            for version in versions:
                for patient in self._patients(version, base_url):
                    if patient not in seen:
                        new[patient] = None
            if not new:
                return
            facts = RequestFacts(recorded=format_instant(datetime.now(timezone.utc)), request_id=job_id,
                                 caller=caller, auth_on=self.auth_on, client_display=client_display)
            accesses = [Access("operation", p, (), None, path, operation="export") for p in new]
            for start in range(0, len(accesses), self.writer.MAX_BATCH):  # one commit per batch of events
                self.writer.write_blocking(facts, accesses[start:start + self.writer.MAX_BATCH])
            seen.update(new)

        return written

    def _patients(self, version: ResourceVersion, base_url: str) -> tuple[str, ...]:
        if not is_patient_data(version.resource_type):
            return ()
        return version_patients(self.runtime.registry, version, base_url)
