"""The Bulk Data export (Bulk Data Access IG 2.0, domain.md §8): kick-off, status,
cancel and files, over jobs kept in the store (``Store.jobs``) and run by one worker
thread per server process (``export_worker``). docs/export.md tells the whole story.

A job belongs to its caller: only the same role, client, user and organisation see its
status and files (anyone else gets 404, as for a job that does not exist). It runs with
the caller's rights as they were at kick-off, through the role's export view of the
access policy (``purpose="export"``); the ``reporting`` role's output is always
pseudonymised, anyone's is with ``_pseudonymize=true``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import orjson

from fhir_server.engine import RequestContext, Runtime
from fhir_server.errors import BadRequest, FhirError, NotFound
from fhir_server.model import format_instant
from fhir_server.reporting.export_files import DELETED_FILE, ERROR_FILE, OutputLost, is_file_name, remove_directory
from fhir_server.reporting.export_request import ExportRequest
from fhir_server.reporting.export_run import ExportRun, RunOptions, RunState
from fhir_server.reporting.export_scope import export_types, group_members, type_plan, unknown_parameters
from fhir_server.reporting.pseudonymize import Pseudonymization
from fhir_server.reporting.pseudonyms import PseudonymKeyError, Pseudonymizer
from fhir_server.security import Caller, Scopes
from fhir_server.security.policy import EXPORT
from fhir_server.storage.jobs import RUNNABLE, Job

__all__ = ["BulkExport", "ExportOptions", "ExportStatus", "PseudonymsUnavailable", "KIND", "job_owner"]

KIND = "export"
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")

log = logging.getLogger(__name__)


class PseudonymsUnavailable(FhirError):
    """Pseudonymised output was asked for (or is the caller's only kind) and the server
    has no usable ``EVI_PSEUDONYM_KEY``: the operator must set one."""

    status = 503
    code = "not-supported"


@dataclass(frozen=True)
class ExportOptions:
    directory: Path
    batch_size: int = 1000
    rate: float = 0
    lease_seconds: float = 30
    retention_seconds: float = 24 * 3600
    #: seconds an idle worker waits before it looks for work again (other processes' jobs,
    #: jobs whose process died)
    poll_seconds: float = 1.0
    pseudonym_key: str | None = None
    #: the manifest's ``requiresAccessToken``: files need the same bearer token (auth on)
    requires_access_token: bool = False


@dataclass(frozen=True)
class ExportStatus:
    job: Job
    #: in-progress, complete or failed
    state: str
    progress: str = ""
    manifest: dict | None = None
    error: str | None = None


def job_owner(caller: Caller | None) -> str:
    """Who a job belongs to: the same identity a search snapshot belongs to."""
    if caller is None:
        return ""
    return "|".join((caller.role, caller.client_id or "", caller.user or "", caller.organization or ""))


def _caller_json(caller: Caller | None) -> dict | None:
    if caller is None:
        return None
    return {"role": caller.role, "scopes": caller.scopes.text(), "client_id": caller.client_id,
            "client_name": caller.client_name, "user": caller.user, "organization": caller.organization,
            "organization_hsa": caller.organization_hsa}


def _caller(data: dict | None) -> Caller | None:
    if data is None:
        return None
    return Caller(data["role"], Scopes.parse(data["scopes"]), data.get("client_id"), data.get("client_name"),
                  data.get("user"), data.get("organization"), data.get("organization_hsa"))


class BulkExport:
    def __init__(self, runtime: Runtime, options: ExportOptions):
        self.runtime = runtime
        self.options = options
        self.jobs = runtime.store.jobs
        #: set by the worker so that a kick-off starts at once (None: no worker here)
        self.wake: threading.Event | None = None
        #: the PDL log of the children each job writes out (``engine.ExportAccessRecorder``,
        #: set by the app; None: the log is off)
        self.access_log = None

    # -- kick-off --------------------------------------------------------------------------

    def kick_off(self, ctx: RequestContext, request: ExportRequest, *, lenient: bool = False) -> Job:
        """Check the request as the caller may make it (400, 403, 404 now, not in the job),
        then store the job; it runs on some server process's worker."""
        ctx = dataclasses.replace(ctx, purpose=EXPORT)
        pseudonymize = request.pseudonymize or (ctx.caller is not None and ctx.caller.role == "reporting")
        if pseudonymize:
            self.pseudonymization()
        with self.runtime.work(ctx, write=False) as work:
            export_types(work, request, lenient=lenient)
            if request.level == "group":
                group_members(work, request.group_id)
            unknown = unknown_parameters(work, request)
            if unknown and not lenient:
                raise BadRequest(f"_typeFilter: unknown or unsupported search parameters {', '.join(unknown)} "
                                 "(Prefer: handling=lenient ignores them)", expression="_typeFilter")
            for rtype in dict.fromkeys(f.resource_type for f in request.type_filters):
                type_plan(work, request, rtype, ignored=frozenset(unknown))
            now = max(format_instant(datetime.now(timezone.utc)), work.uow.newest_instant() or "")
        ignored = request.ignored + tuple((f"_typeFilter:{n}", "unknown or unsupported search parameter")
                                          for n in unknown)
        request = dataclasses.replace(request, pseudonymize=pseudonymize, ignored=ignored)
        what = {"export": request.to_json(), "caller": _caller_json(ctx.caller), "base_url": ctx.base_url,
                "transaction_time": now}
        job = Job(uuid.uuid4().hex, KIND, job_owner(ctx.caller), "queued", orjson.dumps(what), b"null", time.time())
        self.jobs.add(job)
        if self.wake is not None:
            self.wake.set()
        return job

    def pseudonymization(self) -> Pseudonymization:
        try:
            return Pseudonymization(Pseudonymizer(self.options.pseudonym_key))
        except PseudonymKeyError as exc:
            raise PseudonymsUnavailable(f"Pseudonymised export is not available on this server: {exc}") from None

    # -- status, cancel, files ---------------------------------------------------------------

    def _own(self, ctx: RequestContext, job_id: str) -> Job:
        job = self.jobs.get(job_id) if _JOB_ID.match(job_id) else None
        if job is None or job.kind != KIND or job.owner != job_owner(ctx.caller):
            raise NotFound(f"There is no export {job_id!r} (it may have been cancelled or have expired)")
        return job

    def status(self, ctx: RequestContext, job_id: str, files_base: str) -> ExportStatus:
        """``files_base``: the URL the job's files are served under (``.../{name}`` each)."""
        job = self._own(ctx, job_id)
        state = orjson.loads(job.state)
        if job.status in RUNNABLE:
            return ExportStatus(job, "in-progress", progress=_progress(job, state))
        if job.status == "failed":
            return ExportStatus(job, "failed", error=(state or {}).get("error") or "The export failed")
        what = orjson.loads(job.request)
        lists: dict[str, list[dict]] = {"output": [], "deleted": [], "error": []}
        special = {ERROR_FILE: ("error", "OperationOutcome"), DELETED_FILE: ("deleted", "Bundle")}
        for name, (_, count) in sorted(RunState.from_json(state).files.items()):
            if count:
                where, rtype = special.get(name, ("output", name.removesuffix(".ndjson")))
                lists[where].append({"type": rtype, "url": f"{files_base}/{name}", "count": count})
        manifest = {"transactionTime": what["transaction_time"], "request": what["export"]["url"],
                    "requiresAccessToken": self.options.requires_access_token, **lists}
        return ExportStatus(job, "complete", manifest=manifest)

    def cancel(self, ctx: RequestContext, job_id: str) -> None:
        """Forget the job and remove its files; a worker running it stops at its next step."""
        job = self._own(ctx, job_id)
        self.jobs.remove(job.id)
        remove_directory(self.directory(job.id))

    def file(self, ctx: RequestContext, job_id: str, name: str) -> Path:
        """A complete job's file, for its owner (404 for anything else)."""
        job = self._own(ctx, job_id)
        files = RunState.from_json(orjson.loads(job.state)).files if job.status == "completed" else {}
        if not is_file_name(name) or not files.get(name, [0, 0])[1]:
            raise NotFound(f"Export {job_id} has no file {name!r}")
        path = self.directory(job.id) / name
        if not path.is_file():
            raise NotFound(f"Export {job_id} has no file {name!r} any more")
        return path

    def directory(self, job_id: str) -> Path:
        return self.options.directory / job_id

    # -- running (the worker's side) ------------------------------------------------------------

    def run_job(self, job: Job, worker: str, stop: threading.Event) -> None:
        """Run a claimed job until it is done, stopped (lease released) or taken away."""
        what = orjson.loads(job.request)
        request = ExportRequest.from_json(what["export"])
        ctx = RequestContext(base_url=what["base_url"], caller=_caller(what["caller"]), from_client=True,
                             purpose=EXPORT)
        state = orjson.loads(job.state)
        lease = self.options.lease_seconds

        def save(data: dict, status: str = "running", lease_seconds: float = lease, expires: float | None = None) -> bool:
            return self.jobs.save(job.id, worker, state=orjson.dumps(data), status=status,
                                  lease_seconds=lease_seconds, expires=expires)

        run = self._run(request, ctx, job.id, state, save, stop)
        try:
            finished = self._attempt(run)
        except Exception as exc:  # noqa: BLE001 - the job fails; the worker goes on
            self._failed(job, run, save, exc)
            return
        if finished:
            save(run.state.to_json(), "completed", 0, time.time() + self.options.retention_seconds)
        elif stop.is_set() and run.state is not None:
            save(run.state.to_json(), "running", 0)  # released: another process (or a restart) resumes it
        elif self.jobs.get(job.id) is None:
            remove_directory(self.directory(job.id))  # cancelled while it ran

    def _run(self, request, ctx, job_id, state, save, stop) -> ExportRun:
        options = RunOptions(self.options.batch_size, self.options.rate, max(self.options.lease_seconds / 3, 0.05))
        on_written = None
        if self.access_log is not None:
            on_written = self.access_log.for_job(job_id, ctx.caller, _kick_off_path(request), ctx.base_url)
        return ExportRun(self.runtime, ctx, request, self.directory(job_id),
                         RunState.from_json(state) if state else None, save=save, stop=stop,
                         pseudonymization=self.pseudonymization() if request.pseudonymize else None, options=options,
                         on_written=on_written)

    @staticmethod
    def _attempt(run: ExportRun) -> bool:
        try:
            return run.run()
        except OutputLost as exc:  # the machine crashed under a running job: start it afresh
            log.warning("export output lost (%s): starting the job again", exc)
            run.state = None
            return run.run()

    def _failed(self, job: Job, run: ExportRun, save, exc: Exception) -> None:
        if self.jobs.get(job.id) is None:  # cancelled: its directory went away under it
            remove_directory(self.directory(job.id))
            return
        if isinstance(exc, FhirError):
            message = exc.message
        else:
            log.exception("export %s failed", job.id)
            message = "The export failed on an internal error (logged by the server)"
        data = {**(run.state.to_json() if run.state else RunState([], {}).to_json()), "error": message}
        save(data, "failed", 0, time.time() + self.options.retention_seconds)

    def sweep(self) -> None:
        """Remove expired jobs and their files."""
        for job_id in self.jobs.sweep(time.time()):
            remove_directory(self.directory(job_id))


def _progress(job: Job, state: dict | None) -> str:
    """The ``X-Progress`` text (under 100 characters)."""
    if job.status == "queued" or not state:
        return "queued"
    run = RunState.from_json(state)
    unit = "resources" if orjson.loads(job.request)["export"]["level"] == "system" else "patients"
    share = min(99, int(100 * run.scanned / run.total)) if run.total else 0
    return f"{share}% ({run.scanned} of ~{run.total} {unit} read, {run.written} resources written)"


def _kick_off_path(request: ExportRequest) -> str:
    """Where the job was asked for, as the PDL events name it."""
    if request.level == "group":
        return f"Group/{request.group_id}/$export"
    return "Patient/$export" if request.level == "patient" else "$export"
