"""$triage-queue (domain.md §3 rule 6): the open intake Tasks of an owner, in the order
they are to be assessed.

    GET [base]/Task/$triage-queue?owner=Organization/{id}&_count=20&_offset=0

The order is the priority (stat, asap, urgent, routine; a Task without one counts as
routine), then the receipt time (``authoredOn``, oldest first), then the id. Nothing
else decides: not the requester, not the channel (referrals weigh the same whatever
their sender). ``search.extension`` ``evi-overdue`` on each entry says whether the
assessment due date (``restriction.period.end``) has passed.

How it stays cheap for tens of thousands of open Tasks: the queue is four buckets laid
end to end, one per priority (the last one "routine or none", ``priority:not=stat,asap,
urgent``), each an ordinary engine search sorted by ``authored-on`` (ties: the id). The
request counts each bucket, works out which buckets the page ``[_offset, _offset +
_count)`` falls into, and fetches only those ids with the store's limit/offset; only the
page's bodies are loaded. Everything runs in one read unit of work, so counts and page
agree. Paging is by offset over live data (like a work list: a Task triaged meanwhile
leaves the queue and the later ones move up), not by a search snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence
from urllib.parse import urlencode

import orjson

from fhir_server.engine import RequestContext, Runtime, full_url, plan_search
from fhir_server.errors import BadRequest, Issue
from fhir_server.model import is_valid_id
from fhir_server.search.params.date import to_range
from fhir_server.workflow.codes import EXT_OVERDUE, TASK_TYPE

__all__ = [
    "OPEN_STATUSES",
    "PRIORITIES",
    "QUEUE_PARAMETERS",
    "QueueRequest",
    "bucket_criteria",
    "is_overdue",
    "page_window",
    "parse_queue_params",
    "priority_rank",
    "queue_key",
    "triage_queue",
]

#: the Task statuses of work still to be done (the state machine's non-final ones, less draft)
OPEN_STATUSES = ("requested", "received", "accepted", "ready", "in-progress", "on-hold")
#: R4 request-priority, most pressing first; a missing priority is routine
PRIORITIES = ("stat", "asap", "urgent", "routine")
#: what the operation takes (besides _format and _pretty, which the HTTP layer reads)
QUEUE_PARAMETERS = ("owner", "_count", "_offset", "_summary")
_PASSED_THROUGH = frozenset({"_format", "_pretty"})
OPERATION_PATH = "/Task/$triage-queue"


@dataclass(frozen=True)
class QueueRequest:
    #: "Organization/{id}", or None for every owner
    owner: str | None
    count: int
    offset: int
    summary_count: bool = False

    def link_params(self, offset: int) -> list[tuple[str, str]]:
        params = [("owner", self.owner)] if self.owner else []
        if self.summary_count:
            return [*params, ("_summary", "count")]
        return [*params, ("_count", str(self.count)), ("_offset", str(offset))]


def _int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a non-negative integer, got {raw!r}", expression=name) from None
    if value < 0:
        raise BadRequest(f"{name} must be a non-negative integer, got {raw!r}", expression=name)
    return value


def _owner(raw: str, base_url: str | None) -> str:
    value = raw.strip()
    if base_url and value.startswith(base_url.rstrip("/") + "/"):
        value = value[len(base_url.rstrip("/")) + 1 :]
    rtype, slash, rid = value.partition("/")
    if rtype != "Organization" or not slash or not is_valid_id(rid):
        raise BadRequest(
            f"owner must be a literal reference Organization/{{id}}, got {raw!r}", expression="owner"
        )
    return f"Organization/{rid}"


def parse_queue_params(
    params: Sequence[tuple[str, str]], *, default_count: int, max_count: int, base_url: str | None = None
) -> QueueRequest:
    """The operation's parameters; anything else is a 400 that names what is allowed."""
    unknown = [name for name, _ in params if name not in QUEUE_PARAMETERS and name not in _PASSED_THROUGH]
    if unknown:
        allowed = ", ".join(QUEUE_PARAMETERS)
        raise BadRequest(
            f"Unknown parameter(s) for Task/$triage-queue: {', '.join(dict.fromkeys(unknown))}; it takes {allowed}",
            issues=[
                Issue(f"Unknown parameter '{name}' for Task/$triage-queue; it takes {allowed}", "not-supported", (name,))
                for name in dict.fromkeys(unknown)
            ],
        )
    given: dict[str, str] = {}
    for name, raw in params:
        if name in _PASSED_THROUGH:
            continue
        if name in given:
            raise BadRequest(f"{name} may be given only once", expression=name)
        given[name] = raw
    owner = _owner(given["owner"], base_url) if "owner" in given else None
    count = min(_int("_count", given["_count"]), max_count) if "_count" in given else default_count
    offset = _int("_offset", given["_offset"]) if "_offset" in given else 0
    summary = given.get("_summary", "false")
    if summary not in ("false", "count"):
        raise BadRequest(f"$triage-queue supports _summary=count only, got {summary!r}", expression="_summary")
    return QueueRequest(owner, count, offset, summary == "count")


# ---- the order --------------------------------------------------------------------------


def priority_rank(priority: object) -> int:
    """0 (stat) .. 3 (routine); no priority, or one R4 does not know, counts as routine."""
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES) - 1


def queue_key(task: dict) -> tuple:
    """The queue's order for one Task: (priority rank, receipt time, id). The reference
    definition of rule 6; the server gets the same order from the store's sorted searches
    (Tasks without a receipt time come last in their bucket)."""
    received = to_range(task["authoredOn"]) if isinstance(task.get("authoredOn"), str) else None
    return (priority_rank(task.get("priority")), received is None, received[0] if received else "", task.get("id", ""))


def bucket_criteria(rank: int) -> list[tuple[str, str]]:
    """Search criteria of one priority bucket; the last takes routine and no priority."""
    if rank < len(PRIORITIES) - 1:
        return [("priority", PRIORITIES[rank])]
    return [("priority:not", ",".join(PRIORITIES[:-1]))]


def page_window(sizes: Sequence[int], offset: int, count: int) -> list[tuple[int, int, int]]:
    """(bucket, offset inside it, how many) covering positions ``[offset, offset + count)``
    of the buckets laid end to end, in order; empty buckets and buckets outside are skipped."""
    out = []
    start, end = offset, offset + count
    first = 0
    for bucket, size in enumerate(sizes):
        last = first + size
        lo, hi = max(start, first), min(end, last)
        if lo < hi:
            out.append((bucket, lo - first, hi - lo))
        first = last
        if first >= end:
            break
    return out


def _instant(moment: datetime) -> str:
    m = moment.astimezone(timezone.utc)
    # not strftime: slower on every write, and glibc writes year 2 as "2" (sorting after "1999")
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}Z"


def is_overdue(task: dict, now: datetime) -> bool:
    """``restriction.period.end`` has passed: the whole of it (a due date ``2026-03-18``
    is due until that day ends, UTC). No due date: never overdue."""
    end = (((task.get("restriction") or {}).get("period")) or {}).get("end")
    bounds = to_range(end) if isinstance(end, str) else None
    return bounds is not None and bounds[1] < _instant(now)


# ---- the operation ------------------------------------------------------------------------


def _criteria(owner: str | None) -> list[tuple[str, str]]:
    criteria = [("code", f"{TASK_TYPE}|intake"), ("status", ",".join(OPEN_STATUSES))]
    if owner:
        criteria.append(("owner", owner))
    return criteria


def _link(relation: str, url: str, params: list[tuple[str, str]]) -> dict:
    return {"relation": relation, "url": f"{url}?{urlencode(params)}" if params else url}


def triage_queue(runtime: Runtime, ctx: RequestContext, params: list[tuple[str, str]]) -> dict:
    request = parse_queue_params(
        params, default_count=runtime.default_page_size, max_count=runtime.max_page_size, base_url=ctx.base_url
    )
    now = datetime.now(timezone.utc)
    base = _criteria(request.owner)
    with runtime.work(ctx, write=False) as work:
        plans = [
            plan_search(work, "Task", [*base, *bucket_criteria(rank), ("_sort", "authored-on")])
            for rank in range(len(PRIORITIES))
        ]
        sizes = [work.uow.search(plan, with_total=True, limit=0).total or 0 for plan in plans]
        versions = []
        if not request.summary_count:
            refs: list[tuple[str, str]] = []
            for bucket, start, how_many in page_window(sizes, request.offset, request.count):
                refs.extend(work.uow.search(plans[bucket], with_total=False, limit=how_many, offset=start).refs)
            versions = work.uow.load_refs(refs)
    total = sum(sizes)

    url = f"{ctx.base_url}{OPERATION_PATH}"
    links = [_link("self", url, request.link_params(request.offset))]
    if not request.summary_count and request.count > 0:
        if request.offset + request.count < total:
            links.append(_link("next", url, request.link_params(request.offset + request.count)))
        if request.offset > 0:
            links.append(_link("previous", url, request.link_params(max(request.offset - request.count, 0))))
    bundle: dict = {"resourceType": "Bundle", "type": "searchset", "total": total, "link": links}
    entries = []
    for version in versions:
        task = orjson.loads(version.body)
        entries.append({
            "fullUrl": full_url(ctx.base_url, version),
            "resource": orjson.Fragment(version.body),
            "search": {
                "extension": [{"url": EXT_OVERDUE, "valueBoolean": is_overdue(task, now)}],
                "mode": "match",
            },
        })
    if entries:
        bundle["entry"] = entries
    return bundle
