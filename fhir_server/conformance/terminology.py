"""Terminology over resource dicts: ``$expand``, ``$lookup``, ``$validate-code``
(R4 terminology-service.html, valueset-operation-expand.html,
codesystem-operation-lookup.html, valueset-operation-validate-code.html).

Pure functions: ValueSets and CodeSystems come in as dicts, and the ones they
refer to (``compose.include.system``, ``include.valueSet``) through a ``Resolve``
callable that the engine backs with the store. Nothing here reads a clock or does
I/O; the expansion's identifier and timestamp are arguments.

What an expansion does (R4 valueset.html#compose):

- ``include``: listed ``concept``s, or a whole CodeSystem narrowed by its
  ``filter``s (``is-a``, ``descendent-of``, ``generalizes``, ``is-not-a``, ``=``,
  ``in``, ``not-in``, ``regex``, ``exists``), intersected with its ``valueSet``s;
  ``exclude`` works the same and removes. The result is flat, so paging
  (``offset``/``count``) always applies.
- a hierarchy is a CodeSystem's nested ``concept``s or its ``parent``/``child``
  properties.
- the ``filter`` parameter: every word of it starts a word of the display, a
  designation or the code (case-insensitive) — the "left matching" the
  OperationDefinition suggests.
- ``displayLanguage`` picks a designation in that language as the display when
  the CodeSystem is written in another one (EVI's are Swedish, with English
  designations).

The version pinning parameters (``system-version``, ``force-system-version``, ...)
and ``date`` are not applied: the store holds one version of each code system.
"""

from __future__ import annotations

import re
from typing import Callable

from fhir_server.conformance.code_system import CodeSystemView, Concept, same_language, unprocessable
from fhir_server.conformance.parameters import ExpandRequest, LookupRequest, ValidateCodeRequest

__all__ = ["Resolve", "value_set_concepts", "expand", "lookup", "validate_code"]

#: (resource type, canonical url, version or None) -> the resource, or None when unknown
Resolve = Callable[[str, str, "str | None"], "dict | None"]

_WORD = re.compile(r"\w+")


# ---------------------------------------------------------------- expansion


def _code_system(resolve: Resolve, url: str, version: str | None, context: str) -> CodeSystemView:
    cs = resolve("CodeSystem", url, version)
    if cs is None:
        pinned = f"{url}|{version}" if version else url
        raise unprocessable(f"{context} needs CodeSystem {pinned}, which this server does not hold", "not-found")
    if cs.get("content") == "not-present":
        raise unprocessable(
            f"CodeSystem {url} has no concepts here (content not-present); {context} cannot be expanded", "not-supported"
        )
    return CodeSystemView(cs)


def _include(item: dict, resolve: Resolve, seen: frozenset[str], context: str) -> list[Concept]:
    """One ``compose.include`` (or ``exclude``): system part intersected with its valueSets."""
    system, version = item.get("system"), item.get("version")
    parts: list[list[Concept]] = []
    if isinstance(system, str):
        if item.get("concept"):
            cs = resolve("CodeSystem", system, version)
            view = CodeSystemView(cs) if cs is not None else None
            listed = []
            for c in item["concept"]:
                code = c.get("code") if isinstance(c, dict) else None
                if not isinstance(code, str):
                    continue
                known = view.find(code) if view is not None else None
                if view is not None and known is None and view.resource.get("content", "complete") == "complete":
                    raise unprocessable(f"{context} includes code {code!r}, which CodeSystem {system} does not define")
                base = view.concept(known) if known is not None else Concept(system, code, version=version)
                listed.append(Concept(
                    system, base.code, c.get("display") or base.display, base.version, base.language,
                    tuple(c.get("designation") or ()) or base.designations, base.inactive, base.abstract,
                ))
            parts.append(listed)
        else:
            view = _code_system(resolve, system, version, context)
            codes = list(view.concepts)
            for f in item.get("filter") or ():
                kept = view.filter(f)
                codes = [c for c in codes if c in kept]
            parts.append([view.concept(c) for c in codes])
    for nested in item.get("valueSet") or ():
        parts.append(_expand_url(nested, resolve, seen))
    if not parts:
        return []
    others = [{(c.system, c.code) for c in p} for p in parts[1:]]
    return [c for c in parts[0] if all((c.system, c.code) in o for o in others)]


def _expand_url(canonical: str, resolve: Resolve, seen: frozenset[str]) -> list[Concept]:
    url, _, version = canonical.partition("|")
    vs = resolve("ValueSet", url, version or None)
    if vs is None:
        raise unprocessable(f"ValueSet {canonical} is included but this server does not hold it", "not-found")
    return value_set_concepts(vs, resolve, seen)


def _flatten_expansion(contains, language: str | None) -> list[Concept]:
    out = []
    for c in contains or ():
        if isinstance(c, dict) and c.get("code") and c.get("system"):
            out.append(Concept(c["system"], c["code"], c.get("display"), c.get("version"), language,
                               tuple(c.get("designation") or ()), bool(c.get("inactive")), bool(c.get("abstract"))))
        out.extend(_flatten_expansion(c.get("contains"), language) if isinstance(c, dict) else ())
    return out


def value_set_concepts(vs: dict, resolve: Resolve, seen: frozenset[str] = frozenset()) -> list[Concept]:
    """Every concept of a ValueSet, flat, in definition order, each (system, code) once."""
    url = vs.get("url") or vs.get("id") or "the ValueSet"
    if url in seen:
        raise unprocessable(f"ValueSet {url} includes itself")
    seen = seen | {url}
    compose = vs.get("compose")
    if not isinstance(compose, dict):
        if isinstance(vs.get("expansion"), dict):
            return _flatten_expansion(vs["expansion"].get("contains"), vs.get("language"))
        raise unprocessable(f"ValueSet {url} has neither compose nor expansion")
    context = f"ValueSet {url}"
    included: dict[tuple[str, str], Concept] = {}
    for item in compose.get("include") or ():
        for c in _include(item, resolve, seen, context):
            included.setdefault((c.system, c.code), c)
    for item in compose.get("exclude") or ():
        for c in _include(item, resolve, seen, context):
            included.pop((c.system, c.code), None)
    return list(included.values())


def _text_match(concept: Concept, words: list[str]) -> bool:
    starts = {w for text in concept.texts() for w in _WORD.findall(text.casefold())}
    return all(any(s.startswith(w) for s in starts) for w in words)


def _wanted_designations(concept: Concept, tokens: tuple[str, ...]) -> list[dict]:
    if not tokens:
        return list(concept.designations)
    out = []
    for d in concept.designations:
        use = d.get("use") or {}
        uses = (use.get("code"), f"{use.get('system')}|{use.get('code')}")
        if any(same_language(d.get("language"), t) or t in uses for t in tokens):
            out.append(d)
    return out


def _contains(concept: Concept, request: ExpandRequest) -> dict:
    entry = {"system": concept.system}
    if concept.version:
        entry["version"] = concept.version
    if concept.abstract:
        entry["abstract"] = True
    if concept.inactive:
        entry["inactive"] = True
    entry["code"] = concept.code
    display = concept.display_in(request.display_language)
    if display:
        entry["display"] = display
    if request.include_designations and (designations := _wanted_designations(concept, request.designations)):
        entry["designation"] = designations
    return entry


def _used_parameters(request: ExpandRequest, concepts: list[Concept]) -> list[dict]:
    used = [{"name": "used-codesystem", "valueUri": f"{s}|{v}" if v else s}
            for s, v in dict.fromkeys((c.system, c.version) for c in concepts)]
    paged = request.count is not None or request.offset
    for name, key, value in (
        ("filter", "valueString", request.filter), ("offset", "valueInteger", request.offset if paged else None),
        ("count", "valueInteger", request.count), ("displayLanguage", "valueCode", request.display_language),
        ("includeDesignations", "valueBoolean", request.include_designations or None),
        ("activeOnly", "valueBoolean", request.active_only or None),
    ):
        if value is not None:
            used.append({"name": name, key: value})
    # expansion.parameter.value[x] has no canonical type (R4 valueset-definitions.html)
    used.extend({"name": "exclude-system", "valueUri": s} for s in request.exclude_systems)
    return used


def expand(vs: dict, resolve: Resolve, request: ExpandRequest, *, identifier: str, timestamp: str) -> dict:
    """The ValueSet with ``expansion`` (R4 ValueSet-expand ``return``); ``compose`` only with includeDefinition."""
    concepts = value_set_concepts(vs, resolve)
    if request.exclude_systems:
        concepts = [c for c in concepts if c.system not in request.exclude_systems
                    and f"{c.system}|{c.version}" not in request.exclude_systems]
    if request.active_only:
        concepts = [c for c in concepts if not c.inactive]
    if request.filter:
        words = _WORD.findall(request.filter.casefold())
        concepts = [c for c in concepts if _text_match(c, words)]
    end = None if request.count is None else request.offset + request.count
    page = concepts[request.offset:end]
    out = {k: v for k, v in vs.items() if k not in ("meta", "text", "compose", "expansion")}
    if request.include_definition and "compose" in vs:
        out["compose"] = vs["compose"]
    expansion = {"identifier": identifier, "timestamp": timestamp, "total": len(concepts)}
    if request.offset or request.count is not None:
        expansion["offset"] = request.offset
    if parameters := _used_parameters(request, concepts):
        expansion["parameter"] = parameters
    if page:
        expansion["contains"] = [_contains(c, request) for c in page]
    out["expansion"] = expansion
    return out


# ---------------------------------------------------------------- lookup, validate-code


def _parameters(*pairs: tuple[str, dict]) -> dict:
    return {"resourceType": "Parameters", "parameter": [{"name": n, **v} for n, v in pairs]}


def lookup(cs: dict, code: str, request: LookupRequest) -> dict | None:
    """R4 CodeSystem-lookup outputs for ``code``, or None when the system does not define it."""
    view = CodeSystemView(cs)
    found = view.find(code)
    if found is None:
        return None
    concept, raw = view.concept(found), view.concepts[found]
    wanted = set(request.properties)

    def want(prop: str) -> bool:
        return not wanted or prop in wanted

    out = [("name", {"valueString": cs.get("title") or cs.get("name") or view.url})]
    if view.version:
        out.append(("version", {"valueString": view.version}))
    out.append(("display", {"valueString": concept.display_in(request.display_language) or found}))
    if want("designation"):
        for d in concept.designations:
            part = [{"name": "language", "valueCode": d["language"]}] if d.get("language") else []
            part += [{"name": "use", "valueCoding": d["use"]}] if d.get("use") else []
            out.append(("designation", {"part": [*part, {"name": "value", "valueString": d.get("value", "")}]}))
    declared = {p.get("code"): p for p in cs.get("property") or () if isinstance(p, dict)}
    if raw.get("definition") and want("definition"):
        out.append(("property", {"part": [{"name": "code", "valueCode": "definition"},
                                          {"name": "value", "valueString": raw["definition"]}]}))
    for p in raw.get("property") or ():
        if not isinstance(p, dict) or not want(p.get("code", "")):
            continue
        part = [{"name": "code", "valueCode": p["code"]}]
        part += [{"name": "value", k: v} for k, v in p.items() if k.startswith("value")]
        if (declared.get(p["code"]) or {}).get("description"):
            part.append({"name": "description", "valueString": declared[p["code"]]["description"]})
        out.append(("property", {"part": part}))
    for rel, codes in (("parent", view.parents.get(found)), ("child", view.children.get(found))):
        if want(rel):
            out.extend(("property", {"part": [{"name": "code", "valueCode": rel}, {"name": "value", "valueCode": c}]})
                       for c in sorted(codes or ()))
    return _parameters(*out)


def _check_display(concept: Concept, display: str | None, language: str | None) -> str | None:
    """An error message when ``display`` is neither the concept's display nor a designation."""
    if display is None:
        return None
    valid = [t for t in (concept.display, *(d.get("value") for d in concept.designations)) if t]
    if not valid or display.casefold() in {v.casefold() for v in valid}:
        return None
    return (f"The display {display!r} is not a valid display for {concept.system}#{concept.code}; "
            f"expected {concept.display_in(language)!r}")


def _check_one(system: str | None, code: str, version: str | None, display: str | None,
               members: dict[tuple[str, str], Concept] | None, views: dict[str, CodeSystemView],
               request: ValidateCodeRequest, label: str) -> tuple[bool, str | None, str | None]:
    """(valid, message, display) for one coding, against ``members`` (a ValueSet) or the system itself."""
    if system is None:
        return False, f"The code {code!r} has no system", None
    view = views.get(system)
    spelled = view.find(code) if view is not None else None
    if members is not None:
        concept = members.get((system, spelled or code))
        if concept is None:
            reason = (f"the code {code!r} is not defined by {system}" if view is not None and spelled is None
                      else f"{system}#{code} is not in {label}")
            return False, f"Invalid code: {reason}", None
    elif view is None or spelled is None:
        return False, f"The code {code!r} is not defined by {system}", None
    else:
        concept = view.concept(spelled)
    if version and concept.version and version != concept.version:
        return False, f"{system} version {version} is not known here (this server has {concept.version})", None
    if concept.abstract and not request.abstract:
        return False, f"{system}#{code} is abstract and not valid here", concept.display
    preferred = concept.display_in(request.display_language)
    problem = _check_display(concept, display, request.display_language)
    return problem is None, problem, preferred


def validate_code(target: dict, resolve: Resolve, request: ValidateCodeRequest) -> dict:
    """R4 ValueSet-validate-code / CodeSystem-validate-code: ``result``, ``message``, ``display``.

    ``target`` is a ValueSet or a CodeSystem; of a CodeableConcept's codings, one valid one suffices.
    """
    if target.get("resourceType") == "CodeSystem":
        label, members = f"CodeSystem {target.get('url')}", None
        views = {target.get("url"): CodeSystemView(target)}
    else:
        concepts = value_set_concepts(target, resolve)
        label = f"ValueSet {target.get('url') or target.get('id')}"
        members = {(c.system, c.code): c for c in concepts}
        views = {}
        for system in dict.fromkeys(c for c, _ in members):
            cs = resolve("CodeSystem", system, None)
            if cs is not None:
                views[system] = CodeSystemView(cs)
    messages, display = [], None
    for system, code, version, shown in request.codings:
        if system is None and members is None:
            system = target.get("url")
        ok, message, preferred = _check_one(system, code, version, shown, members, views, request, label)
        display = display or preferred
        if ok:
            shown_display = [("display", {"valueString": preferred})] if preferred else []
            return _parameters(("result", {"valueBoolean": True}), *shown_display)
        messages.append(message)
    out = [("result", {"valueBoolean": False}), ("message", {"valueString": "; ".join(m for m in messages if m)})]
    if display:
        out.append(("display", {"valueString": display}))
    return _parameters(*out)
