"""Events as a recipient may see them: the focus version and its additional context,
loaded in a unit of work whose caller is the recipient (the Subscription's owner for a
delivery, the client for ``$events``), so the access policy and redaction that apply to
its own reads apply to what a notification carries (domain.md §5, §7)."""

from __future__ import annotations

import re

import orjson

from fhir_server.engine import Work
from fhir_server.engine import access
from fhir_server.notify.notification import Occurrence
from fhir_server.notify.topics import Topic
from fhir_server.storage import Event

__all__ = ["occurrences", "literal_references"]

_LITERAL = re.compile(r"^([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})$")


def literal_references(value: object, base_url: str, elements: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    """(type, id) of the literal references to this server in ``value`` (a resource), in the
    order met; ``elements``: only under these top-level elements (None: anywhere)."""
    found: list[tuple[str, str]] = []
    prefix = base_url.rstrip("/") + "/"

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str):
                match = _LITERAL.match(ref.removeprefix(prefix) if ref.startswith(prefix) else ref)
                if match:
                    found.append((match.group(1), match.group(2)))
            for key, child in node.items():
                if key != "contained":
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    if isinstance(value, dict):
        for key, child in value.items():
            if key != "contained" and (elements is None or key in elements):
                walk(child)
    return list(dict.fromkeys(found))


def occurrences(work: Work, topic: Topic, events: list[Event], content: str) -> list[Occurrence]:
    """``events`` as ``work``'s caller may see them, with bodies only for full-resource."""
    if content != "full-resource":
        return [Occurrence(e.number, e.at, f"{e.focus_type}/{e.focus_id}") for e in events]
    # the focus was visible to the owner when the event was recorded; its content goes out
    # only while it still is (else the entry keeps just its reference)
    readable = set(access.readable_refs(work, list(dict.fromkeys((e.focus_type, e.focus_id) for e in events))))
    out = []
    for e in events:
        version = None
        if (e.focus_type, e.focus_id) in readable:
            version = work.uow.version(e.focus_type, e.focus_id, e.focus_version)
        context: tuple = ()
        if version is not None and version.body is not None:
            version = access.shown(work, version)
            refs = literal_references(orjson.loads(version.body), work.ctx.base_url, topic.context)
            context = tuple(access.shown_all(work, work.uow.load_refs(access.readable_refs(work, refs))))
        out.append(Occurrence(e.number, e.at, f"{e.focus_type}/{e.focus_id}", version, context))
    return out
