"""One export worker thread per server process: it claims jobs from the store (any
process's kick-offs, and jobs whose process died once their lease has run out), runs
them one at a time, and removes expired ones with their files. Several processes on one
database each have one; the lease (``storage.jobs``) keeps a job on one of them at a time.

Stopping (the server shutting down) ends the running job at its next step and releases
its lease, so that the next start, here or elsewhere, resumes it at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from fhir_server.reporting.bulk_export import KIND, BulkExport

__all__ = ["ExportWorker"]

log = logging.getLogger(__name__)

#: seconds between sweeps of expired jobs
SWEEP_EVERY = 60.0


class ExportWorker:
    def __init__(self, exports: BulkExport):
        self.exports = exports
        #: this process's name on the jobs it holds
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        exports.wake = self._wake
        self._thread = threading.Thread(target=self._loop, name="evi-export", daemon=True)
        self._swept = float("-inf")

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sweep()
                job = self.exports.jobs.claim(KIND, self.id, self.exports.options.lease_seconds)
                if job is not None:
                    self.exports.run_job(job, self.id, self._stop)
                    continue
            except Exception:  # noqa: BLE001 - the store may be away for a moment: try again later
                log.exception("export worker: a round failed")
            self._wake.wait(self.exports.options.poll_seconds)
            self._wake.clear()

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept >= SWEEP_EVERY:
            self._swept = now
            self.exports.sweep()
