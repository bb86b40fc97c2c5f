"""Rules of Bundles that no invariant states (bundle.html, references.html), as HL7's
reference validator applies them:

* entries (bundle.html#bundle-unique): every entry has a fullUrl except in transactions
  and batches (and their responses); a fullUrl that is a RESTful URL
  (``[base]/Type/id``) ends with the entry's resource type and id; a canonical
  resource whose ``url`` is its fullUrl sits at that url;
* links: the paging relations (first, previous, next, last) only in searchsets and
  histories; no relation twice;
* searchsets (search.html#bundle): each entry has a resource; matches and includes
  have ids, matches have the type(s) the search (the ``self`` link) was for, an
  ``outcome`` entry is an OperationOutcome;
* documents (documents.html#content): the Composition's subject, authors, encounter,
  custodian, attesters, event details and sections' authors, focus and entries
  resolve in the Bundle, and every entry is reachable from the Composition (linked
  only backwards: a warning, Provenance excepted);
* messages (messaging.html): the MessageHeader's focus resolves in the Bundle;
  entries not reachable from it are noted (warning).

Reference resolution in the Bundle (bundle.html#references) is ``references.py``'s.
"""

from __future__ import annotations

import re
from functools import lru_cache

from fhir_server.conformance.validation.definitions import RESOURCE_TYPES
from fhir_server.conformance.validation.references import ABSOLUTE_RE

__all__ = ["check_bundle"]

PAGING = ("first", "previous", "next", "last")
NO_FULL_URL = ("transaction", "transaction-response", "batch", "batch-response")


@lru_cache(maxsize=1)
def _restful() -> re.Pattern:
    """A RESTful resource URL, as the reference validator recognises one (its host part
    takes letters, digits and ``\\ . : % $`` only)."""
    types = "|".join(sorted(RESOURCE_TYPES))
    return re.compile(r"((http|https)://([A-Za-z0-9\\.:%$]*/)*)?(" + types +
                      r")/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?")


def check_bundle(run, bundle: dict, path: str) -> None:
    kind = bundle.get("type") if isinstance(bundle.get("type"), str) else ""
    entries = [e for e in _list(bundle.get("entry"))]
    _links(run, kind, _list(bundle.get("link")), path)
    for i, entry in enumerate(entries):
        if isinstance(entry, dict):
            _entry(run, kind, entry, f"{path}.entry[{i}]")
    if not entries:
        if kind in ("document", "message"):
            run.error("invalid", path, f"A {kind} Bundle must have a first entry (the "
                                       f"{'Composition' if kind == 'document' else 'MessageHeader'})")
        return
    if kind == "searchset":
        _searchset(run, bundle, entries, path)
    elif kind in ("document", "message"):
        first = entries[0] if isinstance(entries[0], dict) else {}
        head = first.get("resource")
        if not isinstance(head, dict):
            run.error("invalid", f"{path}.entry[0]", f"A {kind} Bundle must have a resource in its first entry")
            return
        wanted = "Composition" if kind == "document" else "MessageHeader"
        if head.get("resourceType") != wanted:
            run.error("invalid", f"{path}.entry[0].resource", f"The first entry of a {kind} Bundle must be a "
                                                              f"{wanted}, not {head.get('resourceType')}")
        elif kind == "document":
            _document(run, head, first.get("fullUrl"), f"{path}.entry[0].resource")
        else:
            for n, ref in enumerate(_list(head.get("focus"))):
                _must_resolve(run, ref, first.get("fullUrl"), f"{path}.entry[0].resource.focus[{n}]",
                              "MessageHeader Data")
        _interlinked(run, bundle, entries, path, kind == "message")


def _list(value) -> list:
    return value if isinstance(value, list) else []


# ------------------------------------------------------------------------------ entries and links


def _entry(run, kind: str, entry: dict, path: str) -> None:
    full = entry.get("fullUrl")
    res = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
    rtype = res.get("resourceType") if res else None
    rid = res.get("id") if res and isinstance(res.get("id"), str) else None
    if isinstance(full, str) and ABSOLUTE_RE.match(full) and isinstance(rtype, str) \
            and _restful().fullmatch(full):
        if rid is None:
            run.error("invalid", path, f"The fullUrl '{full}' looks like a RESTful server URL, so the resource "
                                       f"must have an id")
        elif not full.endswith(f"/{rtype}/{rid}"):
            run.error("invalid", path, f"The fullUrl '{full}' looks like a RESTful server URL, so it must end "
                                       f"with the resource's type and id (/{rtype}/{rid})")
    url = res.get("url") if res else None
    if isinstance(url, str) and url == full and not url.startswith(("http://hl7.org/fhir/v3/",
                                                                      "http://hl7.org/fhir/v2/")):
        if not (_restful().fullmatch(url) and rid is not None and url.endswith("/" + rid)):
            run.error("invalid", path, f"The canonical URL ({url}) cannot match the fullUrl ({full}) unless "
                                       f"the resource id ({rid}) also matches")
    if full is None and kind not in NO_FULL_URL:
        run.error("invalid", path, "Except for transactions and batches, each entry in a Bundle must have a "
                                   "fullUrl which is the identity of the resource in the entry")


def _links(run, kind: str, links: list, path: str) -> None:
    seen: set[str] = set()
    paging_allowed = kind in ("searchset", "history")
    for i, link in enumerate(links):
        rel = link.get("relation") if isinstance(link, dict) else None
        if not isinstance(rel, str):
            continue
        where = f"{path}.link[{i}]"
        if rel in PAGING and not paging_allowed and kind:
            run.error("invalid", where, f"The link relation '{rel}' is only allowed in searchset and history "
                                        f"Bundles, not in a {kind}")
        counted = rel in PAGING + ("self",) if paging_allowed else rel == "self"
        if counted and rel in seen:
            run.error("invalid", where, f"The link relation '{rel}' may appear only once")
        seen.add(rel)


# ------------------------------------------------------------------------------ searchsets


def _searchset(run, bundle: dict, entries: list, path: str) -> None:
    self_link = next((x.get("url") for x in _list(bundle.get("link"))
                      if isinstance(x, dict) and x.get("relation") == "self"), None)
    types = _searched_types(self_link) if isinstance(self_link, str) else []
    modes = [(e.get("search") or {}).get("mode") if isinstance(e, dict) and isinstance(e.get("search"), dict)
             else None for e in entries]
    for i, (entry, mode) in enumerate(zip(entries, modes)):
        where = f"{path}.entry[{i}]"
        res = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(res, dict):
            run.error("invalid", where, "Search results must have a resource")
            continue
        rtype, has_id = res.get("resourceType"), isinstance(res.get("id"), str)
        if mode in ("match", "include") and not has_id:
            run.error("invalid", f"{where}.resource", "Search results must have ids")
        if mode == "match" and types and rtype not in types:
            run.error("invalid", f"{where}.resource", f"This is not a matching resource type for the search "
                                                      f"({rtype}; the search was for {', '.join(types)})")
        elif mode == "outcome" and rtype != "OperationOutcome":
            run.error("invalid", f"{where}.resource", f"An entry with search mode 'outcome' must be an "
                                                      f"OperationOutcome, not {rtype}")


def _searched_types(url: str) -> list[str]:
    head, _, query = url.partition("?")
    last = head.rstrip("/").rsplit("/", 1)[-1] if head else ""
    if last in RESOURCE_TYPES:
        return [last]
    for part in query.split("&"):
        if part.startswith("_type="):
            return [t for t in part[6:].split(",") if t]
    return []


# ------------------------------------------------------------------------------ documents, messages


_DOCUMENT_REFS = (("subject", "Composition.subject"), ("author", "Composition.author"),
                  ("encounter", "Composition.encounter"), ("custodian", "Composition.custodian"))


def _document(run, comp: dict, full_url, path: str) -> None:
    for key, name in _DOCUMENT_REFS:
        for n, ref in _indexed(comp.get(key)):
            _must_resolve(run, ref, full_url, f"{path}.{key}{n}", name)
    for i, attester in enumerate(_list(comp.get("attester"))):
        if isinstance(attester, dict):
            _must_resolve(run, attester.get("party"), full_url, f"{path}.attester[{i}].party",
                          "Composition.attester.party")
    for i, event in enumerate(_list(comp.get("event"))):
        for n, ref in _indexed(event.get("detail") if isinstance(event, dict) else None):
            _must_resolve(run, ref, full_url, f"{path}.event[{i}].detail{n}", "Composition.event.detail")
    _sections(run, comp, full_url, path)


def _sections(run, holder: dict, full_url, path: str) -> None:
    for i, section in enumerate(_list(holder.get("section"))):
        if not isinstance(section, dict):
            continue
        where = f"{path}.section[{i}]"
        for key, name in (("author", "Section.author"), ("focus", "Section.focus"), ("entry", "Section Entry")):
            for n, ref in _indexed(section.get(key)):
                _must_resolve(run, ref, full_url, f"{where}.{key}{n}", name)
        _sections(run, section, full_url, where)


def _indexed(value) -> list[tuple[str, object]]:
    if isinstance(value, list):
        return [(f"[{i}]", v) for i, v in enumerate(value)]
    return [("", value)] if value is not None else []


def _must_resolve(run, ref, full_url, path: str, name: str) -> None:
    """A reference that must resolve inside the Bundle (documents, messages)."""
    target = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(target, str) or not target or target.startswith("#"):
        return
    found = run.bundle_targets(target, full_url if isinstance(full_url, str) else None)
    if not found:
        typed = ((run.ctx.bundle or {}).get("\0typed") or {}).get(target) if run.ctx else None
        note = (". An entry has that type and id, but a relative reference resolves only against the RESTful "
                "base of the referring entry's fullUrl (bundle.html#references)") if typed else ""
        run.error("not-found", path, f"Can't find '{target}' in the bundle ({name}){note}")
    elif len(found) > 1:
        run.error("invalid", path, f"Found {len(found)} matches for '{target}' in the bundle ({name})")


def _interlinked(run, bundle: dict, entries: list, path: str, message: bool) -> None:
    """Every entry reachable from the first by references (forwards) -- Reference
    elements and uri values naming an entry -- or named by a stylesheet link; entries
    that only refer to reachable ones are warned about (Provenance excepted) and count."""
    nodes = [(i, e) for i, e in enumerate(entries) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    index = {id(e["resource"]): i for i, e in nodes}
    styles = {x.get("url") for x in _list(bundle.get("link"))
              if isinstance(x, dict) and x.get("relation") == "stylesheet" and isinstance(x.get("url"), str)}
    targets: dict[int, set[int]] = {}
    for i, entry in nodes:
        full = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
        out = targets.setdefault(i, set())
        for ref in _references(entry["resource"]):
            for found in run.bundle_targets(ref, full) or ():
                j = index.get(id(found))
                if j is not None and j != i:
                    out.add(j)
    visited: set[int] = set()
    if nodes:
        _visit(nodes[0][0], targets, visited)
    for i, entry in nodes:
        res = entry["resource"]
        if f"{res.get('resourceType')}/{res.get('id')}" in styles:
            visited.add(i)
    again = True
    while again:
        again = False
        for i, entry in nodes:
            if i not in visited and targets[i] & visited:
                if entry["resource"].get("resourceType") != "Provenance" and not message:
                    run.add("warning", "invalid", f"{path}.entry[{i}]", f"Entry '{entry.get('fullUrl')}' isn't "
                            f"reachable by traversing forwards from the Composition. Only Provenance is approved "
                            f"to be used this way (R4 section 3.3.1)")
                _visit(i, targets, visited)
                again = True
    for i, entry in nodes:
        if i not in visited:
            text = f"Entry '{entry.get('fullUrl')}' isn't reachable by traversing links (forward or backward) " \
                   f"from the {'MessageHeader' if message else 'Composition'}"
            run.add("warning" if message else "error", "informational", f"{path}.entry[{i}]", text)


def _visit(start: int, targets: dict, visited: set) -> None:
    stack = [start]
    while stack:
        i = stack.pop()
        if i not in visited:
            visited.add(i)
            stack.extend(targets.get(i, ()))


#: uri-valued elements that name a system, a definition or an endpoint, never an entry
_NOT_LINKS = frozenset({"system", "fullUrl", "profile", "address", "endpoint", "div", "reference"})


def _references(value, out: list | None = None) -> list[str]:
    """The references anywhere in a resource (``Reference.reference`` and absolute uri
    values, not '#'; a system, profile or extension url is no link), not descending
    into a Bundle held inside it."""
    out = [] if out is None else out
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            ref = v.get("reference")
            if isinstance(ref, str) and ref and not ref.startswith("#") and ref not in out:
                out.append(ref)
            for k, x in v.items():
                if isinstance(x, str) and k not in _NOT_LINKS and ABSOLUTE_RE.match(x) and x not in out:
                    out.append(x)
            stack.extend(x for k, x in v.items() if isinstance(x, dict | list)
                         and not (isinstance(x, dict) and x.get("resourceType") == "Bundle"))
        elif isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, dict | list))
    return out
