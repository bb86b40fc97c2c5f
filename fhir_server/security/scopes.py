"""SMART scopes (App Launch 2.x §scopes-and-launch-context): what a token allows, per
resource type and interaction.

- v2: ``system/Patient.rs``, ``user/*.cruds``: c create, r read/vread, u update/patch,
  d delete, s search/history; the letters in that order.
- v1: ``system/Patient.read`` (= rs), ``system/Task.write`` (= cud), ``system/*.*`` (= cruds).

``system/`` (backend services) and ``user/`` (a person's token) are honoured alike; a
``patient/`` scope, a v2 scope with search constraints (``?category=...``) and anything
that is not a resource scope (``openid``, ``fhirUser``, ``launch``) grant nothing here:
honouring a constraint partly would widen access, so such scopes are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fhir_server.model import is_resource_type

__all__ = ["Permission", "Scopes", "parse_scope", "INTERACTION_LETTERS"]

_LETTERS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(system|user)/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)$")

#: the letter each interaction needs
INTERACTION_LETTERS = {
    "read": "r", "vread": "r", "search": "s", "history": "s",
    "create": "c", "update": "u", "patch": "u", "delete": "d",
}


@dataclass(frozen=True)
class Permission:
    """One resource scope: ``resource_type`` (``*`` for all) and its letters."""

    context: str  # system | user
    resource_type: str
    letters: frozenset[str]

    def text(self) -> str:
        """The v2 form (letters in canonical order)."""
        return f"{self.context}/{self.resource_type}.{''.join(c for c in _LETTERS if c in self.letters)}"

    def covers(self, resource_type: str, letter: str) -> bool:
        return letter in self.letters and self.resource_type in ("*", resource_type)

    def intersect(self, other: "Permission") -> "Permission | None":
        if self.resource_type == "*":
            rtype = other.resource_type
        elif other.resource_type in ("*", self.resource_type):
            rtype = self.resource_type
        else:
            return None
        letters = self.letters & other.letters
        return Permission(self.context, rtype, letters) if letters else None


def parse_scope(text: str) -> Permission | None:
    """A resource scope, or None for what grants nothing here (see the module doc)."""
    match = _SCOPE.match(text)
    if not match:
        return None
    context, rtype, action = match.groups()
    if rtype != "*" and not is_resource_type(rtype):
        return None
    if action in _V1:
        letters = _V1[action]
    elif "".join(c for c in _LETTERS if c in action) != action:  # v2 letters must be in order, once
        return None
    else:
        letters = action
    return Permission(context, rtype, frozenset(letters))


@dataclass(frozen=True)
class Scopes:
    permissions: tuple[Permission, ...] = ()

    @classmethod
    def parse(cls, text: str | list[str] | tuple[str, ...] | None) -> "Scopes":
        items = text.split() if isinstance(text, str) else list(text or ())
        return cls(tuple(p for p in (parse_scope(s) for s in items) if p is not None))

    def allows(self, resource_type: str, letter: str) -> bool:
        return any(p.covers(resource_type, letter) for p in self.permissions)

    def grant(self, requested: "Scopes") -> "Scopes":
        """What of ``requested`` these (a client's most) allow: each requested scope cut
        down to what some allowed scope of the same context also grants."""
        granted: dict[str, Permission] = {}
        for wanted in requested.permissions:
            for allowed in self.permissions:
                if allowed.context != wanted.context:
                    continue
                cut = wanted.intersect(allowed)
                if cut is not None:
                    granted[cut.text()] = cut
        return Scopes(tuple(granted.values()))

    def text(self) -> str:
        return " ".join(p.text() for p in self.permissions)

    def __bool__(self) -> bool:
        return bool(self.permissions)
