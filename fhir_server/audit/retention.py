"""Trimming the log: ``evi-fhir audit purge`` removes what the retention period
(``EVI_AUDIT_RETENTION_YEARS``; PDL and HSLF-FS 2016:40 require at least five years) no
longer requires, and refuses any date inside it. The chain stays verifiable from the first
kept event: the store keeps the last removed event's chain value as its anchor.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from fhir_server.errors import FhirError
from fhir_server.search.params.date import to_range
from fhir_server.storage.audit import AuditAnchor, AuditStore

__all__ = ["RetentionRefused", "retention_cutoff", "purge"]


class RetentionRefused(FhirError):
    """A purge date inside the retention period."""


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def retention_cutoff(today: date, years: int) -> date:
    """The first day the retention period still covers: events recorded before it may go."""
    return _years_before(today, years)


def purge(store: AuditStore, before: str, years: int, now: datetime | None = None) -> tuple[int, AuditAnchor | None]:
    """Remove the events recorded before ``before`` (a date or dateTime), which must not
    lie inside the retention period of ``years``."""
    bounds = to_range(before)
    if bounds is None:
        raise RetentionRefused(f"--before must be a date (YYYY-MM-DD) or dateTime, got {before!r}")
    now = now or datetime.now(timezone.utc)
    cutoff = retention_cutoff(now.date(), years)
    limit = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if bounds[0] > limit:
        raise RetentionRefused(
            f"{before} is inside the retention period: the access log keeps {years} years "
            f"(EVI_AUDIT_RETENTION_YEARS), so nothing recorded on or after {cutoff.isoformat()} may be removed; "
            f"give --before {cutoff.isoformat()} or earlier"
        )
    return store.purge(bounds[0], now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
