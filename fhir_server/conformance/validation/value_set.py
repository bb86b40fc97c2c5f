"""Rules of ValueSet definitions (valueset.html#compose) beyond the invariants, as
HL7's reference validator applies them to a ValueSet being validated:

* an include's or exclude's ``system`` is an absolute URI of a code system: not a
  fragment ('#cs'), not ``url|version`` (the version has its own element; a bare
  trailing '|' is only warned), not the url of a value set, not a supplement;
* each listed ``concept`` is a code of that system, where the validator holds the
  code system in full (``content`` complete) -- a system not held here is noted,
  not judged;
* an imported value set (``valueSet``; '#id' for one contained next to it) the
  validator does not know is noted
  (warning): its codes cannot be checked, and neither can a binding to the value
  set that imports it (``terminology.py``: not expandable).
"""

from __future__ import annotations

from fhir_server.conformance.validation.references import ABSOLUTE_RE

__all__ = ["check_value_set"]


def _list(value) -> list:
    return value if isinstance(value, list) else []


def check_value_set(run, vs: dict, path: str) -> None:
    compose = vs.get("compose")
    if not isinstance(compose, dict):
        return
    for part in ("include", "exclude"):
        for i, inc in enumerate(_list(compose.get(part))):
            if isinstance(inc, dict):
                _include(run, inc, f"{path}.compose.{part}[{i}]")


def _include(run, inc: dict, path: str) -> None:
    for n, url in enumerate(_list(inc.get("valueSet"))):
        if isinstance(url, str) and not _known(run, url):
            run.add("warning", "not-found", f"{path}.valueSet[{n}]", f"The imported value set '{url}' is not "
                                                                      f"known here, so its codes cannot be checked")
    system = inc.get("system")
    if not isinstance(system, str):
        return
    if system.startswith("#"):
        run.error("invalid", f"{path}.system", f"The system '{system}' is a fragment: a code system is named by "
                                               f"an absolute URI, even a contained one")
        return
    if not ABSOLUTE_RE.match(system):
        run.error("invalid", f"{path}.system", f"The system '{system}' must be an absolute URI")
        return
    if "|" in system:  # a version belongs in include.version; an empty one is only noted
        system, _, version = system.partition("|")
        if version:
            run.error("invalid", f"{path}.system", f"The system '{system}|{version}' has a version: use "
                                                   f"include.version")
        else:
            run.add("warning", "invalid", f"{path}.system", f"The system '{system}|' ends with an empty version")
    cs = run.v.resource("CodeSystem", system)
    if cs is None:
        if run.v.resource("ValueSet", system) is not None:
            run.error("invalid", f"{path}.system", f"The system '{system}' is a value set, not a code system "
                                                   f"(import it with include.valueSet)")
        return
    if cs.get("content") == "supplement":
        run.error("invalid", f"{path}.system", f"The system '{system}' is a supplement, not a code system")
        return
    if cs.get("content", "complete") != "complete":
        return
    codes = _codes(cs.get("concept"))
    for n, concept in enumerate(_list(inc.get("concept"))):
        code = concept.get("code") if isinstance(concept, dict) else None
        if isinstance(code, str) and code not in codes:
            run.error("code-invalid", f"{path}.concept[{n}]", f"The code '{code}' is not valid in the system "
                                                             f"{system}")


def _known(run, url: str) -> bool:
    if url.startswith("#"):  # a value set contained next to this one
        root = run.ctx.root if run.ctx else {}
        return any(isinstance(c, dict) and c.get("resourceType") == "ValueSet" and c.get("id") == url[1:]
                   for c in _list(root.get("contained")))
    return run.v.resource("ValueSet", url) is not None or run.v._value_sets(url) is not None


def _codes(concepts, out: set | None = None) -> set[str]:
    out = set() if out is None else out
    for c in _list(concepts):
        if isinstance(c, dict):
            if isinstance(c.get("code"), str):
                out.add(c["code"])
            _codes(c.get("concept"), out)
    return out
