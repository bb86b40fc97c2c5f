"""``evi-fhir audit verify`` and ``evi-fhir audit purge``: what they print and their exit
status, over any backend's ``AuditStore`` (the CLI opens the store and closes it)."""

from __future__ import annotations

from typing import TextIO

from fhir_server.audit.record import seal_record
from fhir_server.audit.retention import RetentionRefused, purge
from fhir_server.audit.verify import verify_chain
from fhir_server.storage.audit import AuditStore

__all__ = ["verify_command", "purge_command"]


def verify_command(store: AuditStore, out: TextIO, err: TextIO) -> int:
    """0 when every event's chain value follows; 1 naming the first event that breaks.
    What a stopped server left pending is stored first (it was answered: it belongs in
    the log)."""
    store.recover(seal_record)
    report = verify_chain(store)
    start = (f"from the purge anchor after event {report.anchor.seq} (purged before {report.anchor.before})"
             if report.anchor else "from the first event")
    if report.broken is not None:
        print(f"chain broken at AuditEvent/{report.broken.id} (recorded {report.broken.recorded}): "
              f"{report.problem}; {report.events} events before it verified {start}", file=err)
        return 1
    print(f"audit chain ok: {report.events} events verified {start}; last chain value {report.last_chain or '(none)'}",
          file=out)
    return 0


def purge_command(store: AuditStore, before: str, years: int, out: TextIO, err: TextIO) -> int:
    """0 after removing what lies before ``before``; 2 (saying why) for a date inside the
    retention period or one that is no date."""
    store.recover(seal_record)
    try:
        removed, anchor = purge(store, before, years)
    except RetentionRefused as exc:
        print(f"evi-fhir audit purge: refused: {exc.message}", file=err)
        return 2
    if anchor is None:
        print(f"nothing recorded before {before}: no event removed", file=out)
    else:
        print(f"removed {removed} events recorded before {before}; the chain now starts after AuditEvent/{anchor.seq} "
              f"(anchor chain value {anchor.chain})", file=out)
    return 0
