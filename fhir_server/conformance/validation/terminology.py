"""Local terminology: expansion of ValueSets from CodeSystems and ValueSets given as
resources (the implementation guide's, a test case's) plus the core required-binding
table ``valuesets.json``.

``local_value_sets(resources)`` returns ``lookup(url) -> frozenset[(system, code)] | None``
(None: not expandable here -- unknown value set, external or incomplete code system,
a filter we do not evaluate).  Expansions are computed on first use and cached.
Supported: ``compose.include``/``exclude`` with a whole code system, an enumerated
``concept`` list, ``is-a`` / ``descendent-of`` / ``=`` (concept) filters on a local code
system, imported ``valueSet``s; a ValueSet's own ``expansion.contains``; and a
CodeSystem's implicit value set (``CodeSystem.valueSet``, or the system url itself).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from fhir_server.spec import load_table

__all__ = ["ValueSetLookup", "local_value_sets", "core_value_set"]

ValueSetLookup = Callable[[str], "frozenset[tuple[str | None, str]] | None"]
Codes = frozenset[tuple[str | None, str]]
_MISSING = object()


def core_value_set(url: str) -> Codes | None:
    """A core value set from the generated table (the ones required bindings use)."""
    entry = load_table("valuesets").get(url)
    if entry is None or url.startswith("_"):
        return None
    return frozenset((system, code) for system, codes in entry.items() for code in codes)


def _concepts(concepts: Iterable[dict], parent: str | None, tree: dict[str, str | None]) -> None:
    for c in concepts if isinstance(concepts, list) else ():
        if isinstance(c, dict) and isinstance(c.get("code"), str):
            tree[c["code"]] = parent
            _concepts(c.get("concept", ()), c["code"], tree)


class _Expander:
    def __init__(self, resources: Iterable[dict]) -> None:
        self.systems: dict[str, dict] = {}
        self.valuesets: dict[str, dict] = {}
        for r in resources:
            if not isinstance(r, dict) or not isinstance(r.get("url"), str):
                continue
            if r.get("resourceType") == "CodeSystem":
                self.systems[r["url"]] = r
            elif r.get("resourceType") == "ValueSet":
                self.valuesets[r["url"]] = r
        self.implicit = {cs["valueSet"].split("|", 1)[0]: url for url, cs in self.systems.items()
                         if isinstance(cs.get("valueSet"), str)}
        self.cache: dict[str, Codes | None] = {}
        self.lock = threading.Lock()

    def lookup(self, url: str) -> Codes | None:
        if not isinstance(url, str):
            return None
        url = url.split("|", 1)[0]
        found = self.cache.get(url, _MISSING)
        if found is _MISSING:
            with self.lock:
                found = self.cache.get(url, _MISSING)
                if found is _MISSING:
                    found = self.cache[url] = self._expand(url, ())  # import cycles: see _expand's seen
        return found

    def _tree(self, system: str) -> dict[str, str | None] | None:
        cs = self.systems.get(system)
        if cs is None or cs.get("content") not in (None, "complete"):
            return None
        tree: dict[str, str | None] = {}
        _concepts(cs.get("concept", ()), None, tree)
        return tree

    def _expand(self, url: str, seen: tuple[str, ...]) -> Codes | None:
        vs = self.valuesets.get(url)
        if vs is None:
            system = self.implicit.get(url) or (url if url in self.systems else None)
            if system is not None:
                tree = self._tree(system)
                return None if tree is None else frozenset((system, c) for c in tree)
            return core_value_set(url)
        if url in seen:
            return None
        contains = (vs.get("expansion") or {}).get("contains")
        if contains and not vs.get("compose"):
            out: set = set()
            stack = list(contains)
            while stack:
                c = stack.pop()
                if isinstance(c, dict):
                    if isinstance(c.get("code"), str):
                        out.add((c.get("system"), c["code"]))
                    stack.extend(c.get("contains", ()))
            return frozenset(out)
        compose = vs.get("compose") or {}
        codes: set = set()
        for inc in compose.get("include", ()):
            part = self._part(inc, seen + (url,))
            if part is None:
                return None
            codes |= part
        for exc in compose.get("exclude", ()):
            part = self._part(exc, seen + (url,))
            if part is None:
                return None
            codes -= part
        return frozenset(codes)

    def _part(self, part: dict, seen: tuple[str, ...]) -> set | None:
        imported: set | None = None
        for vs_url in part.get("valueSet", ()):
            sub = self._expand(vs_url.split("|", 1)[0], seen) if vs_url.split("|", 1)[0] not in seen else None
            if sub is None:
                return None
            imported = sub if imported is None else imported & sub
        system = part.get("system")
        if system is None:
            return set(imported or ())
        if part.get("concept"):
            codes = {c["code"] for c in part["concept"] if isinstance(c, dict) and "code" in c}
        else:
            tree = self._tree(system)
            if tree is None:
                return None  # an external or incomplete code system: not expandable here
            else:
                codes = set(tree)
                for flt in part.get("filter", ()):
                    prop, op, value = flt.get("property"), flt.get("op"), flt.get("value")
                    if prop != "concept" or op not in ("is-a", "descendent-of", "=", "is-not-a"):
                        return None
                    below = _descendants(tree, value)
                    if op == "is-a":
                        codes &= below | {value}
                    elif op == "descendent-of":
                        codes &= below
                    elif op == "=":
                        codes &= {value}
                    else:
                        codes -= below | {value}
        out = {(system, c) for c in codes}
        return out if imported is None else out & imported


def _descendants(tree: dict[str, str | None], root: str) -> set[str]:
    found = set()
    for code in tree:
        p = tree[code]
        hops = 0
        while p is not None and hops < 100:
            if p == root:
                found.add(code)
                break
            p = tree.get(p)
            hops += 1
    return found


def local_value_sets(resources: Iterable[dict]) -> ValueSetLookup:
    """``lookup(url)``: the (system, code) pairs of a ValueSet (or a CodeSystem's
    implicit value set) given in *resources*, or of a core required-binding value set;
    None when it cannot be expanded locally."""
    return _Expander(list(resources)).lookup
