"""Running one export: batches through the store, written as NDJSON, progress saved after
each batch, so that memory stays the same whatever the size and a job resumes where it
stopped (docs/export.md, "How a job runs").

A batch is one read unit of work: the next ``batch`` ids of a type in id order (a keyset,
never an offset), the caller's search run on just those ids (``export_scope.matching``),
their current versions loaded, redacted as the caller may see them and, for a
pseudonymised export, pseudonymised. System level goes type by type; Patient and Group
level go patient by patient (a tenth of a batch of patients at a time), writing each
patient's data of every type. A resource that belongs to several exported patients is
written once, with the first of them in id order.

With ``_since`` at system level a last phase lists what was deleted after it (the IG's
``deleted`` file: one transaction Bundle with a DELETE entry per resource), for the types
the caller sees whole and does not filter: of a type the policy restricts, whether the
caller would have seen a resource that is gone cannot be told, and its id is not given out.

Each step: renew the lease (``save`` of the state as it was: a job taken over or
cancelled stops before it writes), log the batch's children in the PDL access log
(``on_written``: engine.ExportAccessRecorder), append the lines, save the new state
(position, file sizes, counts), then wait as long as ``rate`` asks.
"""

from __future__ import annotations

import bisect
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson

from fhir_server.engine import RequestContext, Runtime, access
from fhir_server.engine.work import Work
from fhir_server.errors import Issue
from fhir_server.reporting.export_files import DELETED_FILE, ERROR_FILE, OutputFiles, file_name
from fhir_server.reporting.export_request import ExportRequest
from fhir_server.reporting.export_scope import (
    compartment_params,
    since_instant,
    compartment_patients,
    export_types,
    group_members,
    matching,
    type_plan,
)
from fhir_server.reporting.pseudonymize import PERSON_TYPES, Pseudonymization
from fhir_server.storage.base import ResourceVersion

__all__ = ["ExportRun", "RunState", "PATIENT_SHARE"]

#: Patient and Group level take batch // PATIENT_SHARE patients per step (each brings its data)
PATIENT_SHARE = 10


@dataclass
class RunState:
    """What is saved after each step (JSON): enough to resume."""

    types: list[str]
    #: system: {"type": index into types, "after": last id read}; patients: {"after": last patient id, "done"}
    position: dict
    #: file name -> [bytes, lines]
    files: dict[str, list[int]] = field(default_factory=dict)
    #: ids (patients, at Patient and Group level) read so far, of about ``total``
    scanned: int = 0
    total: int = 0

    @property
    def written(self) -> int:
        return sum(lines for name, (_, lines) in self.files.items() if name not in (ERROR_FILE, DELETED_FILE))

    def to_json(self) -> dict:
        return {"types": self.types, "position": self.position, "files": self.files, "scanned": self.scanned,
                "total": self.total}

    @classmethod
    def from_json(cls, data: dict) -> "RunState":
        return cls(list(data["types"]), dict(data["position"]), {k: list(v) for k, v in data["files"].items()},
                   int(data.get("scanned", 0)), int(data.get("total", 0)))


@dataclass
class RunOptions:
    batch: int = 1000
    #: resources (patients) read per second at most; 0: no limit
    rate: float = 0
    #: seconds between lease renewals while waiting for ``rate``
    renew_every: float = 10.0


class ExportRun:
    """One run of one job, until it is done (``run`` True) or stopped: ``stop`` set, the
    lease lost or the job cancelled (``save`` answered False)."""

    def __init__(self, runtime: Runtime, ctx: RequestContext, request: ExportRequest, directory: Path,
                 state: RunState | None, *, save: Callable[[dict], bool], stop: threading.Event,
                 pseudonymization: Pseudonymization | None = None, options: RunOptions | None = None,
                 on_written: Callable[[list[ResourceVersion]], None] | None = None):
        self.runtime, self.ctx, self.request = runtime, ctx, request
        #: told of each batch's resources before they are written (the PDL log; None: off)
        self._on_written = on_written
        self.directory, self.state, self._save = directory, state, save
        self._stop, self._pseudonymization = stop, pseudonymization
        self.options = options or RunOptions()
        self._ignored = frozenset(n.removeprefix("_typeFilter:") for n, _ in request.ignored
                                  if n.startswith("_typeFilter:"))
        self._files: OutputFiles | None = None
        self._read, self._started = 0, time.monotonic()

    def run(self) -> bool:
        """Raises ``OutputLost`` when the saved state cannot be resumed (start afresh)."""
        fresh = self.state is None
        self._files = OutputFiles(self.directory, None if fresh else self.state.files)
        try:
            if fresh and not self._begin():
                return False
            return self._by_type() if self.request.level == "system" else self._by_patient()
        finally:
            self._files.close()

    # -- the start of a job --------------------------------------------------------------

    def _begin(self) -> bool:
        with self.runtime.work(self.ctx, write=False) as work:
            counts = work.uow.statistics()
            kept = 1 if self.request.since and self.request.level == "system" else 0  # deletions count too
            types = [t for t in export_types(work, self.request, lenient=True) if counts.get(t, (0, 0))[kept] > 0]
            if self.request.level == "system":
                total, position = sum(counts[t][0] for t in types), {"type": 0, "after": None}
            elif self.request.level == "patient":
                total, position = counts.get("Patient", (0, 0))[0], {"after": None, "done": False}
            else:
                total, position = len(group_members(work, self.request.group_id)), {"after": None, "done": False}
        self.state = RunState(types, position, {}, 0, total)
        warnings = [self._warning(name, why) for name, why in self.request.ignored]
        self._files.append(ERROR_FILE, warnings)
        self._files.flush()
        self.state.files = self._files.sizes()
        return self._save(self.state.to_json())

    @staticmethod
    def _warning(name: str, why: str) -> bytes:
        issue = Issue(f"Ignored ({name}): {why}", "not-supported", (name.partition(":")[0],), severity="warning")
        return orjson.dumps({"resourceType": "OperationOutcome", "issue": [issue.to_fhir("not-supported")]}) + b"\n"

    # -- system level: type by type ---------------------------------------------------------

    def _by_type(self) -> bool:
        state, batch = self.state, self.options.batch
        while state.position["type"] < len(state.types):
            index, after = state.position["type"], state.position.get("after")
            rtype = state.types[index]
            with self.runtime.work(self.ctx, write=False) as work:
                plan = type_plan(work, self.request, rtype, ignored=self._ignored)
                ids = work.uow.current_ids(rtype, after, batch)
                versions = access.shown_all(work, work.uow.load(rtype, matching(work, plan, ids)))
            if len(ids) < batch:
                position = {"type": index + 1, "after": None}
            else:
                position = {"type": index, "after": ids[-1]}
            if not self._step({file_name(rtype): self._lines(versions)}, len(ids), position, versions):
                return False
        return self._deletions() if self.request.since else True

    def _deletions(self) -> bool:
        state, batch = self.state, self.options.batch
        since = since_instant(self.request.since)
        while (index := state.position.get("deleted", 0)) < len(state.types):
            rtype, after = state.types[index], state.position.get("after")
            with self.runtime.work(self.ctx, write=False) as work:
                whole = not self.request.filters_for(rtype) and access.policy_filter(work, rtype) is None
                ids = work.uow.deleted_ids(rtype, since, after, batch) if whole else []
            more = len(ids) == batch
            position = {"type": len(state.types), "deleted": index if more else index + 1,
                        "after": ids[-1] if more else None}
            if not self._step({DELETED_FILE: [self._deletion(rtype, i) for i in ids]}, 0, position):
                return False
        return True

    def _deletion(self, rtype: str, rid: str) -> bytes:
        if self._pseudonymization is not None and rtype in PERSON_TYPES:
            rid = self._pseudonymization.person_id(rtype, rid)
        entry = {"request": {"method": "DELETE", "url": f"{rtype}/{rid}"}}
        return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [entry]}) + b"\n"

    # -- Patient and Group level: patient by patient ---------------------------------------

    def _by_patient(self) -> bool:
        state = self.state
        size = max(1, self.options.batch // PATIENT_SHARE)
        while not state.position.get("done"):
            after = state.position.get("after")
            with self.runtime.work(self.ctx, write=False) as work:
                candidates, members = self._next_patients(work, after, size)
                patients = matching(work, type_plan(work, self.request, "Patient", since=False,
                                                    ignored=self._ignored), candidates)
                written: list[ResourceVersion] = []
                lines = self._patients_data(work, patients, members, written) if patients else {}
            position = {"after": candidates[-1] if candidates else after, "done": len(candidates) < size}
            if not self._step(lines, len(candidates), position, written):
                return False
        return True

    def _next_patients(self, work: Work, after: str | None, size: int) -> tuple[list[str], frozenset[str] | None]:
        """The next patient ids in id order (all Patients, or the Group's members) and the
        Group's members (None at Patient level)."""
        if self.request.level == "patient":
            return work.uow.current_ids("Patient", after, size), None
        members = group_members(work, self.request.group_id)
        start = bisect.bisect_right(members, after) if after is not None else 0
        return members[start:start + size], frozenset(members)

    def _patients_data(self, work: Work, patients: list[str], members: frozenset[str] | None,
                       written: list[ResourceVersion]) -> dict[str, list[bytes]]:
        """Each type's lines for these patients; ``written`` gets the versions."""
        out: dict[str, list[bytes]] = {}
        params = compartment_params()
        for rtype in self.state.types:
            if rtype == "Patient":
                ids = matching(work, type_plan(work, self.request, "Patient", ignored=self._ignored), patients)
                versions = work.uow.load("Patient", ids)
            else:
                targets = [("Patient", p) for p in patients]
                found = {i for param in params.get(rtype, ()) for _, i in work.uow.references_to(rtype, param, targets)}
                plan = type_plan(work, self.request, rtype, ignored=self._ignored)
                versions = work.uow.load(rtype, matching(work, plan, sorted(found)))
                versions = [v for v in versions if self._first_owner(work, v, params[rtype], patients[0], members)]
            shown = access.shown_all(work, versions)
            written.extend(shown)
            out[file_name(rtype)] = self._lines(shown)
        return out

    def _first_owner(self, work: Work, version: ResourceVersion, params: tuple[str, ...], first: str,
                     members: frozenset[str] | None) -> bool:
        """Whether this step's patients are the first exported ones ``version`` belongs to
        (else it was written with an earlier one). One reference to a patient: it is."""
        if version.body.count(b"Patient/") <= 1:
            return True
        earlier = sorted(p for p in compartment_patients(work, version, params) if p < first)
        if members is not None:
            earlier = [p for p in earlier if p in members]
        if not earlier:
            return True
        exported = type_plan(work, self.request, "Patient", since=False, ignored=self._ignored)
        return not matching(work, exported, earlier)

    # -- writing -----------------------------------------------------------------------

    def _lines(self, versions: list[ResourceVersion]) -> list[bytes]:
        out = []
        for version in versions:
            body = version.body
            if self._pseudonymization is not None:
                body = orjson.dumps(self._pseudonymization.apply(orjson.loads(body)))
            elif b"\n" in body:  # one resource, one line
                body = orjson.dumps(orjson.loads(body))
            out.append(body + b"\n")
        return out

    def _step(self, lines: dict[str, list[bytes]], read: int, position: dict,
              versions: list[ResourceVersion] | None = None) -> bool:
        """``lines``: file name -> lines to append; ``versions``: what they hold."""
        if self._stop.is_set() or not self._save(self.state.to_json()):  # still ours?
            return False
        if self._on_written is not None and versions:  # logged before anyone can read it
            self._on_written(versions)
        for name, found in lines.items():
            self._files.append(name, found)
        self._files.flush()
        self.state.files, self.state.position = self._files.sizes(), position
        self.state.scanned += read
        if not self._save(self.state.to_json()):
            return False
        return self._throttle(read)

    def _throttle(self, read: int) -> bool:
        """Wait until this run has read no more than ``rate`` per second, renewing the lease."""
        rate = self.options.rate
        if not rate:
            return True
        self._read += read
        wait = self._read / rate - (time.monotonic() - self._started)
        while wait > 0:
            pause = min(wait, self.options.renew_every)
            if self._stop.wait(pause):
                return False
            wait -= pause
            if wait > 0 and not self._save(self.state.to_json()):
                return False
        return True
