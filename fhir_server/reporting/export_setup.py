"""The export as the settings make it (``EVI_EXPORT_*``, ``EVI_PSEUDONYM_KEY``), and the
operator's export (``evi-fhir export``): the same run as a job's, in this process, into
a directory of the operator's choosing, as the server's own work (unrestricted)."""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Callable

from fhir_server.engine import RequestContext, Runtime
from fhir_server.reporting.bulk_export import BulkExport, ExportOptions
from fhir_server.reporting.export_request import ExportRequest
from fhir_server.reporting.export_run import ExportRun, RunOptions, RunState
from fhir_server.settings import Settings
from fhir_server.storage.base import ResourceVersion

__all__ = ["export_directory", "export_options", "export_to_directory"]


def export_directory(settings: Settings) -> Path:
    """``EVI_EXPORT_DIR``, else beside a SQLite database (``evi.db-export``), else
    ``evi-export`` in the working directory (MongoDB), else a temporary one (``:memory:``)."""
    if settings.export_dir:
        return Path(settings.export_dir)
    url = settings.storage
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://").partition("?")[0]  # without the tuning options
        if path in ("", ":memory:", "/:memory:"):  # made when a job first writes
            return Path(tempfile.gettempdir()) / f"evi-export-{uuid.uuid4().hex[:12]}"
        return Path(path + "-export")
    return Path("evi-export")


def export_options(settings: Settings) -> ExportOptions:
    return ExportOptions(
        directory=export_directory(settings),
        batch_size=settings.export_batch_size,
        rate=settings.export_rate,
        lease_seconds=settings.export_lease_seconds,
        retention_seconds=settings.export_retention_hours * 3600,
        pseudonym_key=settings.pseudonym_key,
        requires_access_token=settings.auth != "off",
    )


def export_to_directory(
    runtime: Runtime, request: ExportRequest, out: Path, options: ExportOptions, *, base_url: str,
    progress: Callable[[RunState], None] | None = None,
    on_written: Callable[[list[ResourceVersion]], None] | None = None,
) -> RunState:
    """Export into ``out`` (its ``{Type}.ndjson`` files are replaced); ``progress`` sees the
    state after every step; ``on_written`` each batch before it is written (the PDL log).
    Raises what a kick-off would (400, 404, 503 without a key)."""
    exports = BulkExport(runtime, options)
    pseudonymization = exports.pseudonymization() if request.pseudonymize else None
    ctx = RequestContext(base_url=base_url)
    holder: list[ExportRun] = []

    def save(data: dict) -> bool:
        if progress is not None and holder and holder[0].state is not None:
            progress(holder[0].state)
        return True

    run = ExportRun(runtime, ctx, request, out, None, save=save, stop=threading.Event(),
                    pseudonymization=pseudonymization, options=RunOptions(options.batch_size, options.rate),
                    on_written=on_written)
    holder.append(run)
    run.run()
    return run.state
