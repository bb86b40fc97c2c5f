"""Slicing (profiling.html#slicing): which slice each repetition of a sliced element
belongs to, by the slicing's discriminators -- ``value`` / ``pattern`` (the fixed or
pattern value, or required binding, the slice sets at the discriminator path),
``exists``, ``type`` and ``profile`` -- over paths of FHIRPath's restricted
discriminator form (names, ``$this``, ``extension('url')``, ``resolve()``,
``ofType(T)``).  Extensions without an explicit slicing are sliced by url.

Per sliced element the tests of each slice are built once (``Slicer`` caches them);
then ``assign`` hands each item to its first matching slice, checks closed and
ordered rules and each slice's cardinality.
"""

from __future__ import annotations

from collections.abc import Callable

from fhir_server.conformance.validation.definitions import (RESOURCE_TYPES, SUFFIX_TO_TYPE, Defn,
                                                            Definitions)
from fhir_server.conformance.validation.values import matches_pattern, same_value

__all__ = ["Slicer", "parse_path"]

Step = tuple
Test = Callable[["object", "object"], bool]
URL_SLICING = (("value", "url"),)


def parse_path(path: str) -> list[Step] | None:
    """'extension('http://x').value.ofType(Coding)' -> steps; None if not understood."""
    parts, depth, quote, cur = [], 0, None, ""
    for ch in path:
        if quote:
            cur += ch
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    steps: list[Step] = []
    for part in parts:
        part = part.strip()
        if part == "$this":
            steps.append(("this",))
        elif part == "resolve()":
            steps.append(("resolve",))
        elif part.startswith("extension(") and part.endswith(")"):
            steps.append(("ext", part[10:-1].strip().strip("'\"")))
        elif part.startswith(("ofType(", "as(")) and part.endswith(")"):
            steps.append(("type", part[part.index("(") + 1:-1].strip().rpartition(".")[2]))
        elif part.isidentifier():
            steps.append(("name", part))
        else:
            return None
    return steps


class Slicer:
    """Slice tests per sliced element, built on first use."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self._tests: dict[int, list[tuple[Defn, list[Test] | None]]] = {}
        self._keep: list[Defn] = []  # keeps cached ids alive

    # ------------------------------------------------------------------ assignment

    def assign(self, run, d: Defn, items: list, path: str) -> list:
        """(item, definition to validate it with) for each item of sliced element *d*."""
        matchers = self._matchers(d)
        rules = d.slicing.rules if d.slicing else "open"
        ordered = bool(d.slicing and d.slicing.ordered)
        counts = [0] * len(matchers)
        out = []
        last = -1            # the slice of the previous matched item (ordered slicing)
        unmatched = False    # an item in no slice was seen (openAtEnd: only at the end)
        for item in items:
            hit = -1
            try:
                for i, (s, tests) in enumerate(matchers):
                    if tests is not None and all(t(run, item) for t in tests):
                        if hit < 0:
                            hit = i
                        elif not _reslice_of(s, matchers[hit][0]):
                            run.error("structure", item.path, f"Element matches more than one slice - "
                                                              f"{matchers[hit][0].slice_name}, {s.slice_name}")
            except CannotEvaluate as exc:
                run.error("structure", item.path, f"Slicing cannot be evaluated: {exc}")
                out.append((item, d))
                continue
            if hit < 0:
                if rules == "closed":
                    run.error("structure", item.path, f"This element does not match any known slice defined "
                                                      f"in the profile ({d.id}, closed slicing)")
                unmatched = True
                out.append((item, d))
                continue
            if rules == "openAtEnd" and unmatched:
                run.error("structure", item.path, f"Elements of no slice must come after the slices of {d.id} "
                                                  f"(openAtEnd)")
            if ordered and hit < last:
                run.error("structure", item.path, f"As specified by the profile, element {matchers[hit][0].id} "
                                                  f"is out of order")
            last = max(last, hit)
            counts[hit] += 1
            out.append((item, matchers[hit][0]))
        run.cardinality(d, len(items), path)
        for (s, _), n in zip(matchers, counts):
            run.cardinality(s, n, path, where=f"{path}.{d.name}")
        return out

    def _matchers(self, d: Defn) -> list[tuple[Defn, list[Test] | None]]:
        found = self._tests.get(id(d))
        if found is None:
            discriminators = d.slicing.discriminators if d.slicing and d.slicing.discriminators else (
                URL_SLICING if d.name in ("extension", "modifierExtension") else ())
            found = [(s, self._slice_tests(s, discriminators)) for s in d.slices]
            self._tests[id(d)] = found
            self._keep.append(d)
        return found

    # ------------------------------------------------------------------ building tests

    def _slice_tests(self, s: Defn, discriminators) -> list[Test] | None:
        if not discriminators:
            return None
        tests = []
        for kind, dpath in discriminators:
            steps = parse_path(dpath)
            test = self._test(s, kind, steps) if steps is not None else None
            if test is None and self._unknown_profile_on(s, steps or []):
                return None  # the value is set in a profile not known here: not judged
            if test is None:
                # profiling.html#discriminator: the slice must say what its items hold at the
                # path (a fixed or pattern value, a required binding, min >= 1 or max = 0, one
                # type, a profile); without it no item can be placed in it or kept out of it
                return [_unevaluable(f"The discriminator {kind}:{dpath} cannot be evaluated for the slice "
                                     f"{s.slice_name}: it sets no value, binding, existence, type or profile "
                                     f"at that path")]
            tests.append(test)
        return tests

    def _test(self, s: Defn, kind: str, steps: list[Step]) -> Test | None:
        target, resolved, type_hint, last_ext = self.element_at(s, steps)
        if kind in ("value", "pattern"):
            if target is None:
                return None
            expected = target.fixed or target.pattern
            if expected is None and steps and steps[-1] == ("name", "url") and last_ext is not None:
                expected = ("Uri", last_ext)
            if expected is not None:
                want, is_fixed = expected[1], target.fixed is not None
                compare = same_value if is_fixed and kind == "value" else matches_pattern
                return lambda run, item: any(compare(v, want) for v, _ in values_at(run, item, steps))
            if target.binding and target.binding[0] == "required":
                url = target.binding[1]

                def in_binding(run, item, url=url):
                    codes = run.v._codes(url)
                    return codes is not None and any(
                        run._in_value_set(v, codes) is True for v, _ in values_at(run, item, steps))
                return in_binding
            return None
        if kind == "exists":
            if target is None:
                return None
            if target.min >= 1:
                return lambda run, item: bool(values_at(run, item, steps))
            if target.max == 0:
                return lambda run, item: not values_at(run, item, steps)
            return None
        if kind == "type":
            if target is None:
                return None
            if resolved:
                allowed = {self.defs.type_of(u) for t in target.types for u in t.targets}
                allowed.discard(None)
            else:
                allowed = set(target.codes) if type_hint is None else {type_hint}
                if len(allowed) > 1:
                    return None  # a type discriminator needs the slice to name one type
            if not allowed:
                return None
            return lambda run, item: any(
                (t or (v.get("resourceType") if isinstance(v, dict) else None)) in allowed
                for v, t in values_at(run, item, steps))
        if kind == "profile":
            if target is None:
                return None
            if resolved:
                profiles = [(self.defs.type_of(u), u) for t in target.types for u in t.targets]
            else:
                profiles = [(t.code, u) for t in target.types for u in t.profiles]
            if not profiles:
                return None

            def conforms(run, item):
                for v, t in values_at(run, item, steps):
                    actual = t or (v.get("resourceType") if isinstance(v, dict) else None)
                    for code, url in profiles:
                        if actual is not None and code not in (actual, "Resource", "DomainResource"):
                            continue
                        if self.defs.model(url) is None:
                            # conformsTo() of a profile not known here cannot be decided: the
                            # reference validator reports the slicing as not evaluable
                            raise CannotEvaluate(f"Unable to resolve the profile {url}")
                        if run.v.conforms(v, url, run, t):
                            return True
                return False
            return conforms
        return None

    def _unknown_profile_on(self, s: Defn, steps: list[Step]) -> bool:
        """Whether the discriminator path from slice *s* passes an element typed by a
        profile this validator does not hold (the slice's value may be set there)."""
        cur: Defn | None = s
        for step in [*steps, ("end",)]:
            if cur is None:
                return False
            if any(self.defs.model(u) is None for t in cur.types for u in t.profiles):
                return True
            if step[0] == "name":
                owner = self.owner(cur)
                cur = owner.child(step[1]) if owner else None
            elif step[0] != "this":
                return False
        return False

    def element_at(self, s: Defn, steps: list[Step]):
        """The definition the discriminator path reaches inside slice *s*: (definition,
        went through resolve(), type named by ofType(), url of the last extension step)."""
        cur: Defn | None = s
        resolved = False
        type_hint = None
        last_ext = _extension_url(self.defs, s) if s.codes == ("Extension",) else None
        for step in steps:
            if cur is None:
                return None, resolved, type_hint, last_ext
            op = step[0]
            if op == "this":
                continue
            if op == "resolve":
                resolved = True
                continue
            if op == "type":
                type_hint = step[1]
                for sl in cur.slices:
                    if sl.codes == (type_hint,):
                        cur = sl
                        break
                continue
            if op == "ext":
                url = step[1]
                owner = self.owner(cur, type_hint)
                ext = owner.child("extension") if owner else None
                nxt = None
                for sl in ext.slices if ext else ():
                    if _extension_url(self.defs, sl) == url:
                        nxt = sl
                        break
                if nxt is None:
                    m = self.defs.model(url)
                    nxt = m.root if m else None
                cur, last_ext, type_hint = nxt, url, None
                continue
            owner = self.owner(cur, type_hint)
            if owner is None:
                return None, resolved, type_hint, last_ext
            cur = owner.child(step[1])
            type_hint = None
        return cur, resolved, type_hint, last_ext

    def owner(self, d: Defn, tcode: str | None = None) -> Defn | None:
        """The definition whose children apply below *d*."""
        if d.children is not None:
            return d
        if d.content_ref and d.model is not None:
            target = d.model.by_path.get(d.content_ref.lstrip("#"))
            if target is not None:
                return target
        codes = [tcode] if tcode else list(d.codes)
        for t in d.types:
            if t.code in codes and t.profiles:
                m = self.defs.model(t.profiles[0])
                if m is not None:
                    return m.root
        if len(codes) == 1:
            m = self.defs.type_model(codes[0])
            return m.root if m else None
        return None


class CannotEvaluate(Exception):
    """A discriminator that cannot be evaluated on an item (a profile not known here)."""


def _unevaluable(why: str) -> Test:
    def test(run, item):
        raise CannotEvaluate(why)
    return test


def _reslice_of(a: Defn, b: Defn) -> bool:
    """Whether one slice is a reslice of the other ('a/b' of 'a'): an item may match both."""
    x, y = a.slice_name or "", b.slice_name or ""
    return x.startswith(y + "/") or y.startswith(x + "/")


def _extension_url(defs: Definitions, s: Defn) -> str | None:
    for t in s.types:
        for p in t.profiles:
            m = defs.model(p)
            return (m.fixed_url if m else None) or p
    if s.children is not None:
        kid = s.kids().get("url")
        if kid and kid[0].fixed:
            return kid[0].fixed[1]
    return None


def values_at(run, item, steps: list[Step]) -> list[tuple[object, str | None]]:
    """The instance values a discriminator path reaches from an item: (value, type)."""
    cur: list[tuple[object, str | None]] = [(item.value, item.tcode)]
    for step in steps:
        op = step[0]
        if op == "this":
            continue
        nxt: list[tuple[object, str | None]] = []
        if op == "name":
            name = step[1]
            for v, _ in cur:
                if not isinstance(v, dict):
                    continue
                if name in v:
                    x = v[name]
                    nxt.extend((e, None) for e in x) if isinstance(x, list) else nxt.append((x, None))
                else:
                    for k, x in v.items():
                        if isinstance(k, str) and k.startswith(name) and k[len(name):] in SUFFIX_TO_TYPE:
                            nxt.append((x, SUFFIX_TO_TYPE[k[len(name):]]))
        elif op == "ext":
            for v, _ in cur:
                if isinstance(v, dict):
                    exts = v.get("extension")
                    nxt.extend((e, "Extension") for e in (exts if isinstance(exts, list) else ())
                               if isinstance(e, dict) and e.get("url") == step[1])
        elif op == "resolve":
            for v, _ in cur:
                ref = v.get("reference") if isinstance(v, dict) else None
                if not isinstance(ref, str):
                    continue
                found = run.resolve(ref)
                if found is None:
                    kind = run.target_type(ref)
                    found = {"resourceType": kind} if kind else None
                if found is not None:
                    nxt.append((found, found.get("resourceType")))
        elif op == "type":
            want = step[1]
            for v, t in cur:
                actual = t or (v.get("resourceType") if isinstance(v, dict) else None)
                if actual == want or (actual is None and want not in RESOURCE_TYPES):
                    nxt.append((v, want))
        cur = nxt
    return cur
