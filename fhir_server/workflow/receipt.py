"""The receipt time of a contact (domain.md §2, §8 "Historical data").

A contact is received when the server first stores its ServiceRequest (the write time of
version 1), unless the ServiceRequest states an earlier time in the extension
``evi-received`` (valueDateTime) and that value was written by a caller who may give it:

- the ``admin`` role, or anyone while authentication is off (a region loading its
  history, ``evi-fhir load --migrate``): the value is kept; a value in the future, one
  that gives no day (``2025``, ``2025-11``) or a repeated extension is refused (422);
- any other caller: the value is not taken. The ServiceRequest is stored with the
  ``evi-received`` of the version it replaces (none on a create), so such a caller can
  neither set, change nor remove a receipt time; the server's write time stands.

The check runs at AFTER_VALIDATION, so it holds for every way a ServiceRequest is written
(POST, PUT, PATCH, transaction and batch entries). A date without a time is the start of
that day in the region's time zone. The intake Task's authoredOn is the receipt time
(a UTC instant) and its due date is counted from it (``intake``).
"""

from __future__ import annotations

from datetime import datetime, time, timezone

import orjson

from fhir_server.engine import HookPoint, Runtime, WriteEvent
from fhir_server.errors import Unprocessable
from fhir_server.model import format_instant
from fhir_server.workflow.codes import SD
from fhir_server.workflow.region import Region

__all__ = [
    "EXT_RECEIVED",
    "MIGRATING_ROLES",
    "install_receipt",
    "intake_receipt",
    "receipt_time",
    "stated_receipt",
    "without_receipt",
]

EXT_RECEIVED = SD + "evi-received"
#: roles whose evi-received is honoured (and auth off: no caller at all)
MIGRATING_ROLES = frozenset({"admin"})


def stated_receipt(resource: dict | None) -> list[dict]:
    """The evi-received extensions of a ServiceRequest."""
    return [e for e in (resource or {}).get("extension") or () if isinstance(e, dict) and e.get("url") == EXT_RECEIVED]


def receipt_time(value: object, region: Region) -> datetime | None:
    """The instant an evi-received value names (a date: its first moment in the region's
    zone); None for a value that names no day."""
    if not isinstance(value, str):
        return None
    if len(value) == 10:  # a date: YYYY-MM-DD (the model has checked the form)
        try:
            day = datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            return None
        return datetime.combine(day, time(), region.zone).astimezone(timezone.utc)
    if len(value) < 10:  # a year, or a year and month
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo is not None else None


def _may_state_receipt(event: WriteEvent) -> bool:
    caller = event.work.ctx.caller
    return caller is None or caller.role in MIGRATING_ROLES


def _check(extensions: list[dict], region: Region) -> None:
    if len(extensions) > 1:
        raise Unprocessable("A ServiceRequest states its receipt time (evi-received) at most once",
                            expression="ServiceRequest.extension")
    value = extensions[0].get("valueDateTime")
    moment = receipt_time(value, region)
    if moment is None:
        raise Unprocessable(f"evi-received must give a day or a time with its zone, not {value!r}",
                            expression="ServiceRequest.extension")
    if moment > datetime.now(timezone.utc):
        raise Unprocessable(f"evi-received {value} lies in the future: a contact cannot be received later than "
                            "it is stored", expression="ServiceRequest.extension")


def install_receipt(runtime: Runtime, region: Region) -> None:
    def on_write(event: WriteEvent) -> None:
        if event.resource_type != "ServiceRequest" or event.resource is None:
            return
        resource = event.resource
        stated = stated_receipt(resource)
        if _may_state_receipt(event):
            if stated:
                _check(stated, region)
            return
        previous = event.previous
        kept = stated_receipt(orjson.loads(previous.body)) if previous is not None and not previous.deleted else []
        if stated == kept:
            return
        others = [e for e in resource.get("extension") or () if not (isinstance(e, dict) and e.get("url") == EXT_RECEIVED)]
        if others or kept:
            resource["extension"] = others + kept
        else:
            resource.pop("extension", None)

    runtime.hooks.register(HookPoint.AFTER_VALIDATION, on_write)


def intake_receipt(sr: dict, written: str, region: Region) -> str:
    """The receipt time of a stored ServiceRequest: its evi-received (kept only when its
    writer could give it), else ``written`` (the write time of its first version)."""
    stated = stated_receipt(sr)
    moment = receipt_time(stated[0].get("valueDateTime"), region) if stated else None
    return format_instant(moment) if moment is not None else written


def without_receipt(bundle: dict) -> list[str]:
    """The ServiceRequests of a transaction Bundle that state no receipt time (what
    ``evi-fhir load --migrate`` refuses: a migrated referral without one would be stamped
    as received on the day of the migration, which falsifies every wait time after it)."""
    missing = []
    for n, entry in enumerate(bundle.get("entry") or ()):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "ServiceRequest" and not stated_receipt(resource):
            missing.append(f"entry {n} ({entry.get('fullUrl') or resource.get('id') or 'ServiceRequest'})")
    return missing
