"""``ConceptMap/$translate`` (R4 conceptmap-operation-translate.html), pure: the
translation of codes over ConceptMaps (the request: ``parameters.parse_translate``).

Inputs (R4 names): ``url`` / ``conceptMap`` / ``conceptMapVersion`` name the map (else
every candidate the caller hands in); ``code`` + ``system`` (+ ``version``), or ``coding``,
or ``codeableConcept`` (each of its codings); ``source`` / ``target`` (value-set canonicals
the map must have as its scope); ``targetsystem``; ``reverse`` (translate from a target
code back to the source codes). ``dependency`` is not supported: a request that names one
is refused (400) rather than answered without it.

Output: Parameters with ``result`` (true when at least one match is not ``unmatched`` or
``disjoint``), ``message`` when there is none, and one ``match`` per target found, with
``equivalence``, ``concept`` (a Coding) and ``source`` (the ConceptMap's canonical url).
A group's ``unmapped`` (mode ``provided``: the same code; ``fixed``: its code) answers for
a code the group does not list; mode ``other-map`` is followed one level, by url, among
the candidates.
"""

from __future__ import annotations

from fhir_server.conformance.parameters import TranslateRequest

__all__ = ["map_matches", "translate"]

#: what an equivalence says when read from target to source (``reverse``)
_REVERSED = {"wider": "narrower", "narrower": "wider", "subsumes": "specializes", "specializes": "subsumes"}
_NO_MATCH = frozenset({"unmatched", "disjoint"})


def _scope(concept_map: dict, side: str) -> str | None:
    return concept_map.get(f"{side}Uri") or concept_map.get(f"{side}Canonical")


def map_matches(concept_map: dict, request: TranslateRequest) -> bool:
    """Whether a candidate map is one the request allows (its url, version, scopes)."""
    if request.url is not None and concept_map.get("url") != request.url.split("|", 1)[0]:
        return False
    if request.concept_map_version is not None and concept_map.get("version") != request.concept_map_version:
        return False
    source, target = ("target", "source") if request.reverse else ("source", "target")
    if request.source is not None and _scope(concept_map, source) != request.source:
        return False
    return request.target is None or _scope(concept_map, target) == request.target


def _concept(system: str | None, code: str, display: str | None, version: str | None = None) -> dict:
    out = {"system": system, "code": code} if system else {"code": code}
    if version:
        out["version"] = version
    if display:
        out["display"] = display
    return out


def _match(equivalence: str, concept: dict, source: str | None) -> dict:
    parts = [{"name": "equivalence", "valueCode": equivalence}, {"name": "concept", "valueCoding": concept}]
    if source:
        parts.append({"name": "source", "valueUri": source})
    return {"name": "match", "part": parts}


def _forward(concept_map: dict, system: str, code: str, request: TranslateRequest, others: dict) -> list[dict]:
    out = []
    for group in concept_map.get("group") or ():
        if group.get("source") != system:
            continue
        if request.target_system is not None and group.get("target") != request.target_system:
            continue
        elements = [e for e in group.get("element") or () if e.get("code") == code]
        for element in elements:
            for t in element.get("target") or ():
                if t.get("code"):
                    out.append(_match(t.get("equivalence", "equivalent"),
                                      _concept(group.get("target"), t["code"], t.get("display"), group.get("targetVersion")),
                                      concept_map.get("url")))
                else:
                    out.append(_match(t.get("equivalence", "unmatched"), _concept(system, code, None), concept_map.get("url")))
        if not elements:
            out += _unmapped(concept_map, group, system, code, request, others)
    return out


def _unmapped(concept_map: dict, group: dict, system: str, code: str, request: TranslateRequest, others: dict) -> list[dict]:
    unmapped = group.get("unmapped") or {}
    mode, url = unmapped.get("mode"), concept_map.get("url")
    if mode == "provided":
        return [_match("equal", _concept(group.get("target"), code, None), url)]
    if mode == "fixed" and unmapped.get("code"):
        return [_match("equivalent", _concept(group.get("target"), unmapped["code"], unmapped.get("display")), url)]
    if mode == "other-map" and unmapped.get("url") in others:  # one level: no loops
        return _forward(others[unmapped["url"]], system, code, request, {})
    return []


def _backward(concept_map: dict, system: str, code: str, request: TranslateRequest) -> list[dict]:
    out = []
    for group in concept_map.get("group") or ():
        if group.get("target") != system:
            continue
        if request.target_system is not None and group.get("source") != request.target_system:
            continue
        for element in group.get("element") or ():
            for t in element.get("target") or ():
                if t.get("code") == code and element.get("code"):
                    equivalence = t.get("equivalence", "equivalent")
                    out.append(_match(_REVERSED.get(equivalence, equivalence),
                                      _concept(group.get("source"), element["code"], element.get("display"),
                                               group.get("sourceVersion")),
                                      concept_map.get("url")))
    return out


def translate(candidates: list[dict], request: TranslateRequest) -> dict:
    """The Parameters answer over ``candidates`` (the maps the request may use)."""
    maps = [m for m in candidates if map_matches(m, request)]
    others = {m["url"]: m for m in candidates if isinstance(m.get("url"), str)}
    matches = []
    for system, code, _ in request.codings:
        for concept_map in maps:
            matches += (_backward(concept_map, system, code, request) if request.reverse
                        else _forward(concept_map, system, code, request, others))
    found = any(p["valueCode"] not in _NO_MATCH for m in matches for p in m["part"] if p["name"] == "equivalence")
    parameters: list[dict] = [{"name": "result", "valueBoolean": found}]
    if not found:
        asked = ", ".join(f"{s}|{c}" for s, c, _ in request.codings)
        parameters.append({"name": "message", "valueString":
                           f"No mapping of {asked} in {len(maps)} ConceptMap(s)"
                           + (" (reverse)" if request.reverse else "")})
    return {"resourceType": "Parameters", "parameter": parameters + matches}
