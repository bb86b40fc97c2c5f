"""What ``GET [base]/metadata`` answers (R4 http.html#capabilities): the
CapabilityStatement (``mode=full`` / ``normative``, optionally ``_summary``), or the
TerminologyCapabilities (``mode=terminology``).

The CapabilityStatement runs to hundreds of kilobytes (every type, every search
parameter): it is built and serialised once per base URL, registry and summary mode,
and kept with its gzip form, so a client polling metadata costs a dictionary lookup.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from typing import Callable

import orjson

from fhir_server.engine.work import Work
from fhir_server.errors import BadRequest
from fhir_server.model import summarize_deep
from fhir_server.search.plan import parse_search
from fhir_server.search.registry import SearchRegistry

__all__ = ["Capabilities", "Answer", "MODES"]

MODES = frozenset({"full", "normative", "terminology"})
_SUMMARIES = frozenset({"true", "false"})
_KEEP = 32


@dataclass(frozen=True)
class Answer:
    body: bytes
    gzipped: bytes


class Capabilities:
    """``build(base_url, registry) -> CapabilityStatement``, cached per (base, registry, summary)."""

    def __init__(self, build: Callable[[str, SearchRegistry], dict], date: str):
        self._build = build
        self.date = date
        self._cache: dict[tuple, tuple[SearchRegistry, Answer]] = {}
        self._lock = threading.Lock()

    def answer(self, work: Work, mode: str | None, summary: str | None) -> Answer | dict:
        """The cached answer, or (``mode=terminology``) a TerminologyCapabilities to render."""
        mode = mode or "full"
        if mode not in MODES:
            raise BadRequest(f"mode must be one of full, normative, terminology; got {mode!r}", expression="mode")
        if summary is not None and summary not in _SUMMARIES:
            raise BadRequest(f"_summary on metadata must be true or false; got {summary!r}", expression="_summary")
        if mode == "terminology":
            return terminology_capabilities(work, self.date)
        base, registry = work.ctx.base_url, work.registry
        key = (base, summary == "true")
        with self._lock:
            found = self._cache.get(key)
        if found is not None and found[0] is registry:
            return found[1]
        statement = self._build(base, registry)
        if summary == "true":
            statement = summarize_deep(statement)
        body = orjson.dumps(statement)
        answer = Answer(body, gzip.compress(body, 6))
        with self._lock:
            if len(self._cache) >= _KEEP:  # a client inventing Host headers must not grow this
                self._cache.clear()
            self._cache[key] = (registry, answer)
        return answer


def terminology_capabilities(work: Work, date: str) -> dict:
    """The code systems this server answers ``$lookup`` / ``$validate-code`` for (every
    stored CodeSystem with content: the guide's and the region's), and its ``$expand``."""
    plan = parse_search("CodeSystem", [("_count", "1000"), ("_sort", "url")], work.registry, max_count=1000)
    systems: dict[str, list[str]] = {}
    for version in work.uow.load_refs(work.uow.search(plan, with_total=False).refs):
        resource = orjson.loads(version.body)
        url = resource.get("url")
        if isinstance(url, str) and resource.get("content") in ("complete", "fragment", "supplement"):
            versions = systems.setdefault(url, [])
            if isinstance(resource.get("version"), str):
                versions.append(resource["version"])
    return {
        "resourceType": "TerminologyCapabilities",
        "status": "active",
        "date": date,
        "publisher": "evi-fhir",
        "kind": "instance",
        "software": {"name": "evi-fhir"},
        "implementation": {"description": "evi-fhir terminology", "url": work.ctx.base_url},
        "codeSystem": [
            {"uri": url, **({"version": [{"code": v} for v in versions]} if versions else {})}
            for url, versions in systems.items()
        ],
        "expansion": {
            "hierarchical": False,
            "paging": True,
            "parameter": [{"name": n} for n in ("url", "valueSetVersion", "filter", "count", "offset", "activeOnly")],
        },
        "validateCode": {"translations": False},
        "codeSearch": "explicit",
    }
