"""CodeSystem concepts as data: a CodeSystem's codes with their is-a hierarchy (nested
``concept``s or ``parent``/``child`` properties) and the ``compose.include.filter``
operators of R4 (codesystem-filter-operator: ``is-a``, ``descendent-of``,
``generalizes``, ``is-not-a``, ``=``, ``in``, ``not-in``, ``regex``, ``exists``). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fhir_server.errors import Issue, Unprocessable

__all__ = ["Concept", "CodeSystemView", "same_language", "unprocessable"]

_INACTIVE_STATUS = frozenset({"retired", "inactive", "deprecated"})


def unprocessable(message: str, code: str = "processing") -> Unprocessable:
    return Unprocessable(message, issues=[Issue(message, code=code)])


@dataclass(frozen=True)
class Concept:
    system: str
    code: str
    display: str | None = None
    version: str | None = None
    #: the display's language (the CodeSystem's or ValueSet's ``language``)
    language: str | None = None
    designations: tuple[dict, ...] = ()
    inactive: bool = False
    abstract: bool = False

    def display_in(self, language: str | None) -> str | None:
        """The display in ``language`` (a designation) if the display is in another one."""
        if not language or same_language(self.language, language):
            return self.display
        for d in self.designations:
            if same_language(d.get("language"), language) and d.get("value"):
                return d["value"]
        return self.display

    def texts(self) -> list[str]:
        return [t for t in (self.display, self.code, *(d.get("value") for d in self.designations)) if isinstance(t, str)]


def same_language(a: str | None, b: str | None) -> bool:
    return bool(a and b) and a.split("-")[0].lower() == b.split("-")[0].lower()


def _property_values(concept: dict, code: str) -> list[str]:
    out = []
    for p in concept.get("property") or ():
        if p.get("code") != code:
            continue
        for key, value in p.items():
            if key.startswith("value"):
                value = value.get("code") if isinstance(value, dict) else value
                out.append(str(value).lower() if isinstance(value, bool) else str(value))
    return out


class CodeSystemView:
    """A CodeSystem's concepts by code, with the is-a hierarchy made explicit."""

    def __init__(self, resource: dict):
        self.resource = resource
        self.url: str = resource.get("url") or ""
        self.version: str | None = resource.get("version")
        self.case_sensitive = resource.get("caseSensitive") is not False
        self.concepts: dict[str, dict] = {}
        self.parents: dict[str, set[str]] = {}
        self.children: dict[str, set[str]] = {}
        self._walk(resource.get("concept") or (), None)
        for code, concept in self.concepts.items():
            for parent in _property_values(concept, "parent"):
                self._link(parent, code)
            for child in _property_values(concept, "child"):
                self._link(code, child)
        self._folded = {c.casefold(): c for c in self.concepts} if not self.case_sensitive else {}

    def _walk(self, concepts, parent: str | None) -> None:
        for c in concepts:
            if not isinstance(c, dict) or not isinstance(c.get("code"), str):
                continue
            self.concepts.setdefault(c["code"], c)
            if parent is not None:
                self._link(parent, c["code"])
            self._walk(c.get("concept") or (), c["code"])

    def _link(self, parent: str, child: str) -> None:
        self.children.setdefault(parent, set()).add(child)
        self.parents.setdefault(child, set()).add(parent)

    def find(self, code: str) -> str | None:
        """The code as this system spells it (case-insensitive systems match any case)."""
        if code in self.concepts:
            return code
        return self._folded.get(code.casefold())

    def _closure(self, code: str, edges: dict[str, set[str]]) -> set[str]:
        seen, todo = set(), [code]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def descendants(self, code: str) -> set[str]:
        return self._closure(code, self.children)

    def ancestors(self, code: str) -> set[str]:
        return self._closure(code, self.parents)

    def concept(self, code: str) -> Concept:
        c = self.concepts[code]
        status = set(_property_values(c, "status"))
        return Concept(
            self.url, code, c.get("display"), self.version, self.resource.get("language"),
            tuple(d for d in c.get("designation") or () if isinstance(d, dict)),
            inactive="true" in _property_values(c, "inactive") or bool(status & _INACTIVE_STATUS),
            abstract="true" in _property_values(c, "notSelectable"),
        )

    def filter(self, f: dict) -> set[str]:
        """The codes matching one ``compose.include.filter``."""
        prop, op, value = f.get("property"), f.get("op"), f.get("value")
        if not isinstance(prop, str) or not isinstance(value, str):
            raise unprocessable(f"A filter on {self.url} needs property, op and value")
        everything = set(self.concepts)
        if op in ("is-a", "descendent-of", "generalizes", "is-not-a"):
            code = self.find(value)
            if code is None:
                return everything if op == "is-not-a" else set()
            below = self.descendants(code)
            return {"is-a": below | {code}, "descendent-of": below, "generalizes": self.ancestors(code) | {code},
                    "is-not-a": everything - below - {code}}[op]
        values = {c: self.property_values(c, prop) for c in self.concepts}
        if op == "=":
            return {c for c, vs in values.items() if value in vs}
        if op in ("in", "not-in"):
            wanted = {v.strip() for v in value.split(",")}
            hit = {c for c, vs in values.items() if wanted & set(vs)}
            return hit if op == "in" else everything - hit
        if op == "regex":
            try:
                pattern = re.compile(value)
            except re.error as exc:
                raise unprocessable(f"Invalid regex filter {value!r} on {self.url}: {exc}") from None
            return {c for c, vs in values.items() if any(pattern.fullmatch(v) for v in vs)}
        if op == "exists":
            return {c for c, vs in values.items() if bool(vs) == (value == "true")}
        raise unprocessable(f"Filter operator {op!r} is not supported", code="not-supported")

    def property_values(self, code: str, prop: str) -> list[str]:
        """A concept's values of ``prop``: its own properties, or ``concept``/``code``,
        ``display``, ``parent``, ``child`` as filters name them (codes of Codings, booleans
        as ``true``/``false``)."""
        if prop in ("concept", "code"):
            return [code]
        if prop == "display":
            return [self.concepts[code]["display"]] if self.concepts[code].get("display") else []
        if prop == "parent":
            return sorted(self.parents.get(code, ()))
        if prop == "child":
            return sorted(self.children.get(code, ()))
        return _property_values(self.concepts[code], prop)
