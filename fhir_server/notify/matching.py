"""Judging a subscriber's filter criteria on the focus resource itself, without the store.

Why: asking the store ``_id = focus AND criteria`` costs more the larger the database: an
index filter compiles to an uncorrelated ``rid IN (SELECT ...)``, and SQLite builds the
list of every resource meeting the criterion (every Task of that owner) before it looks
at the one focus. Every event would pay for that. The criteria the topics allow are plain
reference and token parameters (``topics.py``), which the same extractors the search
index uses (``search.params``) can judge on the resource alone, with the meaning the
search gives them: a reference value is a local ``Type/id``; a token value is ``code``
(any system), ``system|code``, ``|code`` (no system) or ``system|`` (any code of it).

A chained criterion (``care-team.participant``) needs the resources it goes through:
``criteria_hold`` answers None and the store is asked, as before.
"""

from __future__ import annotations

from fhir_server.notify.criteria import Criterion
from fhir_server.notify.topics import Topic
from fhir_server.search import SearchRegistry
from fhir_server.search.escaping import split_unescaped, unescape
from fhir_server.search.params import PARAM_TYPES

__all__ = ["criteria_hold"]


def _entries(registry: SearchRegistry, resource: dict, name: str, base_url: str) -> tuple[str, list] | None:
    """(parameter type, index entries of ``name`` for ``resource``); None: not judged here."""
    for extractor in registry.extractors(resource["resourceType"]):
        d = extractor.definition
        if d.code != name:
            continue
        if d.type not in ("reference", "token"):
            return None
        nodes = extractor.evaluate(resource)
        found = [e for e in (PARAM_TYPES[d.type].extract(d, nodes) if nodes else []) if e.param == name]
        if d.type == "reference":  # as the index keeps them: absolute urls to this server are local
            prefix = base_url.rstrip("/") + "/"
            found = [type(e)(e.param, e.target_type, e.target_id, None)
                     if e.kind == "reference" and e.url and e.target_type and e.url.startswith(prefix) else e
                     for e in found]
        return d.type, found
    return None


def _reference_holds(entries: list, value: str) -> bool:
    rtype, rid = value.split("/", 1)
    return any(e.kind == "reference" and e.url is None and (e.target_type, e.target_id) == (rtype, rid)
               for e in entries)


def _token_holds(entries: list, system: str | None, code: str | None) -> bool:
    for e in entries:
        if e.kind != "token":
            continue
        if system is None and e.code == code:  # code: any system
            return True
        if system == "" and e.system is None and e.code == code:  # |code
            return True
        if system and e.system == system and (code is None or e.code == code):  # system|code, system|
            return True
    return False


def _pair_holds(registry: SearchRegistry, resource: dict, base_url: str, name: str, raw: str) -> bool | None:
    if "." in name or ":" in name:
        return None  # a chain: the store must follow it
    found = _entries(registry, resource, name, base_url)
    if found is None:
        return None
    kind, entries = found
    for value in split_unescaped(raw, ","):
        if kind == "reference" and _reference_holds(entries, unescape(value)):
            return True
        if kind == "token":
            parts = split_unescaped(value, "|")
            if len(parts) > 2:
                return None  # not a plain token value: the store judges it
            system, code = (None, parts[0]) if len(parts) == 1 else (unescape(parts[0]), parts[1])
            if _token_holds(entries, system, unescape(code) or None):
                return True
    return False


def criteria_hold(registry: SearchRegistry, topic: Topic, criteria: tuple[Criterion, ...], resource: dict,
                  base_url: str) -> bool | None:
    """Whether every criterion holds for ``resource`` (AND; a criterion's values OR); None
    when one of them can only be judged by the store."""
    undecided = False
    for criterion in criteria:
        for name, raw in criterion.pairs:
            param = topic.filter_param(name)
            if param is None:
                return None
            held = _pair_holds(registry, resource, base_url, name, raw)
            if held is False:
                return False
            undecided = undecided or held is None
    return None if undecided else True
