"""Logical ids, version ids and ``meta`` stamping."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone

__all__ = ["ID_PATTERN", "new_id", "is_valid_id", "format_instant", "now_instant", "stamp_meta"]

#: R4 §2.24.0.1 "id": 1-64 characters of A-Z a-z 0-9 - .
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def new_id() -> str:
    return str(uuid.uuid4())


def is_valid_id(value: object) -> bool:
    # fullmatch: "$" would also match before a trailing newline ("a\n")
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def format_instant(moment: datetime) -> str:
    """A FHIR instant in UTC with microseconds: fixed width, so strings sort in time order."""
    m = moment.astimezone(timezone.utc)
    # not strftime: slower on every write, and glibc writes year 2 as "2" (sorting after "1999")
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"


_second: tuple[int, str] = (-1, "")


def now_instant() -> str:
    """``format_instant(datetime.now(timezone.utc))`` at a fifth of its cost: the date and
    time of day are formatted once a second (the PDL log needs one for every request)."""
    global _second
    second, fraction = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _second  # a tuple, replaced whole: every thread sees one second's pair
    if cached[0] != second:
        cached = _second = (second, format_instant(datetime.fromtimestamp(second, timezone.utc))[:19])
    return f"{cached[1]}.{fraction:06d}Z"


def stamp_meta(resource: dict, resource_id: str, version_id: int, last_updated: str) -> dict:
    """Set id, meta.versionId and meta.lastUpdated; keep the client's profile/tag/security/source.

    The server owns versionId and lastUpdated (R4 §3.1.0.2.1: "the server SHALL
    populate the meta.versionId and meta.lastUpdated with the new correct values").
    """
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version_id)
    meta["lastUpdated"] = last_updated
    # keep id first and meta right after it, as clients expect when reading
    out = {"resourceType": resource["resourceType"], "id": resource_id, "meta": meta}
    for key, value in resource.items():
        if key not in out:
            out[key] = value
    return out
