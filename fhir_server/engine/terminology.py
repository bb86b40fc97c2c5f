"""The terminology operations over the store: find ValueSets and CodeSystems by
canonical url (the implementation guide's are stored too, see ``engine/guide.py``;
should one be missing there, the guide's own copy is used), then let
``conformance.terminology`` do the work. ``resolver`` is the lookup the ``:in`` /
``:not-in`` search modifiers use too (``engine/valueset.py``), so every expansion of
the server is the same one.

| operation                                | unknown target       | bad input | unexpandable |
|------------------------------------------|----------------------|-----------|--------------|
| ValueSet ``$expand`` (type / instance)   | 404 (410 if deleted) | 400       | 422          |
| CodeSystem ``$lookup``                   | 404 (system or code) | 400       | -            |
| ValueSet / CodeSystem ``$validate-code`` | 404 (410 if deleted) | 400       | 422          |
| ConceptMap ``$translate`` (type / instance) | 404 (410 if deleted; a named url) | 400 | -       |

An invalid code is not an error: ``$validate-code`` answers 200 with ``result`` false,
and so does ``$translate`` for a code no map translates.

"Unexpandable" is a ValueSet this server holds whose definition needs something it
does not hold (a CodeSystem, a nested ValueSet) or cannot evaluate (a filter).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import orjson

from fhir_server.conformance import concept_map, guide_terminology, ig_directory, ig_resources, terminology
from fhir_server.conformance.parameters import Inputs, parse_expand, parse_lookup, parse_translate, parse_validate_code
from fhir_server.engine.instance import read
from fhir_server.engine.work import Work
from fhir_server.errors import BadRequest, NotFound
from fhir_server.model import format_instant
from fhir_server.search.plan import parse_search

__all__ = ["find_canonical", "resolver", "expand", "lookup", "validate_code", "translate"]

#: more stored resources sharing one canonical url than this are not told apart
_CANDIDATES = 20
#: the stored ConceptMaps one ``$translate`` without a named map looks through
_MAPS = 1000


def _escape(value: str) -> str:
    """A literal search value (R4 search.html#escaping): ``,`` ``|`` ``$`` are separators."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("|", "\\|").replace("$", "\\$")


def find_canonical(work: Work, resource_type: str, url: str, version: str | None = None) -> dict | None:
    """The ``resource_type`` with this canonical url (``url|version`` accepted), or None.

    Several versions of one url: the named version, else the most recently updated one.
    """
    url, _, pinned = url.partition("|")
    version = version or pinned or None
    params = [("url", _escape(url))] + ([("version", _escape(version))] if version else [])
    try:
        plan = parse_search(resource_type, params, work.registry)
    except BadRequest:  # an url that is no valid search value cannot name a stored resource
        return None
    ids = work.uow.search(plan, with_total=False, limit=_CANDIDATES).ids
    found = [orjson.loads(v.body) for v in work.uow.load(resource_type, ids)]
    found = [r for r in found if r.get("url") == url and (version is None or r.get("version") == version)]
    if not found:
        return None
    return max(found, key=lambda r: (r.get("meta") or {}).get("lastUpdated", ""))


def resolver(work: Work) -> terminology.Resolve:
    """A ``Resolve`` for one request: stored resources first, then the implementation
    guide's (``guide_terminology``); answers are kept for the request."""
    cache: dict[tuple[str, str, str | None], dict | None] = {}
    guide = guide_terminology(ig_directory(work.runtime.profiles_dir))

    def resolve(resource_type: str, url: str, version: str | None = None) -> dict | None:
        key = (resource_type, url, version)
        if key not in cache:
            found = find_canonical(work, resource_type, url, version)
            if found is None:
                found = guide.resolve(resource_type, url, version)
                if found is not None and version and found.get("version") not in (None, version):
                    found = None  # the guide's copy is another version
            cache[key] = found
        return cache[key]

    return resolve


def _target(work: Work, resource_type: str, instance_id: str | None, given: dict | None,
            url: str | None, version: str | None, resolve) -> dict:
    """The instance, else the resource passed in the request, else the one with ``url``."""
    if instance_id is not None:
        return orjson.loads(read(work, resource_type, instance_id).body)
    if given is not None:
        return given
    if url is None:
        parameter = resource_type[0].lower() + resource_type[1:]
        raise BadRequest(f"Name the {resource_type}: url, or {parameter} in a Parameters body")
    found = resolve(resource_type, url, version)
    if found is None:
        raise NotFound(f"{resource_type} {url}{'|' + version if version else ''} is not known to this server")
    return found


def expand(work: Work, inputs: Inputs, instance_id: str | None = None) -> dict:
    """``$expand``: the expanded ValueSet."""
    request = parse_expand(inputs)
    resolve = resolver(work)
    vs = _target(work, "ValueSet", instance_id, request.value_set, request.url, request.value_set_version, resolve)
    now = format_instant(datetime.now(timezone.utc))
    return terminology.expand(vs, resolve, request, identifier=f"urn:uuid:{uuid.uuid4()}", timestamp=now)


def lookup(work: Work, inputs: Inputs) -> dict:
    """``$lookup``: Parameters with name, version, display, designations and properties."""
    request = parse_lookup(inputs)
    cs = find_canonical(work, "CodeSystem", request.system, request.version)
    if cs is None:
        raise NotFound(f"CodeSystem {request.system} is not known to this server")
    found = terminology.lookup(cs, request.code, request)
    if found is None:
        raise NotFound(f"The code {request.code!r} is not defined by CodeSystem {request.system}")
    return found


def validate_code(work: Work, resource_type: str, inputs: Inputs, instance_id: str | None = None) -> dict:
    """``$validate-code`` against a ValueSet or a CodeSystem: Parameters with result, message, display."""
    code_system = resource_type == "CodeSystem"
    request = parse_validate_code(inputs, code_system=code_system)
    resolve = resolver(work)
    version = None if code_system else request.value_set_version
    url = request.url
    if code_system and url is None and instance_id is None and request.value_set is None:
        url = request.codings[0][0]  # CodeSystem-validate-code: the coding's system names the CodeSystem
    target = _target(work, resource_type, instance_id, request.value_set, url, version, resolve)
    return terminology.validate_code(target, resolve, request)


def _concept_maps(work: Work, url: str | None, version: str | None) -> list[dict]:
    """The stored ConceptMaps (one url: the current one of that url), then the guide's
    that are not stored under their url (``engine/guide.py`` stores them at start-up)."""
    if url is not None:
        found = find_canonical(work, "ConceptMap", url, version)
        stored = [found] if found is not None else []
    else:
        ids = work.uow.search(parse_search("ConceptMap", [], work.registry), with_total=False, limit=_MAPS).ids
        stored = [orjson.loads(v.body) for v in work.uow.load("ConceptMap", ids)]
    urls = {m.get("url") for m in stored}
    guide = [r for r in ig_resources(ig_directory(work.runtime.profiles_dir))
             if r.get("resourceType") == "ConceptMap" and r.get("url") not in urls]
    return stored + guide


def translate(work: Work, inputs: Inputs, instance_id: str | None = None) -> dict:
    """``$translate``: Parameters with result, message and matches (``conformance.concept_map``)."""
    request = parse_translate(inputs)
    if instance_id is not None:
        candidates = [orjson.loads(read(work, "ConceptMap", instance_id).body)]
    elif request.concept_map is not None:
        candidates = [request.concept_map]
    else:
        url = request.url.split("|", 1)[0] if request.url else None
        candidates = _concept_maps(work, url, request.concept_map_version)
        if url is not None and not any(m.get("url") == url for m in candidates):
            raise NotFound(f"ConceptMap {request.url} is not known to this server")
    return concept_map.translate(candidates, request)

