"""When an invariant cannot fail: guards derived from its FHIRPath, so that the write
path evaluates it only on objects where it might (``base_invariants.py``).

A part of an expression that reads only some children of the focus -- no ``$this``,
no ``%resource`` / ``%rootResource`` / ``%context``, no function called on the focus
itself (``exists()``, ``iif(...)``, ``descendants()``) -- evaluates on an object
without those children exactly as on ``{}``. So, evaluated once on ``{}``:

- ``D1 or D2 or ...``: a disjunct that is true there makes the whole true while its
  children are absent: the object must hold one of them (a *group*) for the
  constraint to be able to fail. per-1 ``start.hasValue().not() or end.hasValue().not()
  or (start <= end)`` gives two groups: only a Period with a start and an end is evaluated;
- ``A implies B`` holds where A is false or empty: A's children are a group;
- ``(C1 and C2).not()`` holds where some Ci is false or empty: each such Ci a group
  (qrs-1: an item with an ``answer`` and an ``item``).

And the other way round (*exempt*): a disjunct ``P.exists()`` (or a conjunction of
them) is true whenever the object has P: pat-1 ``name.exists() or telecom.exists() or
...`` is not evaluated on a contact that has a name. ``B`` of ``A implies B`` likewise.

Anything else is evaluated on every object of its type (a Consent's ppc-1 when it has
neither ``policy`` nor ``policyRule``, an Organization's org-1). The guards only ever
skip an evaluation whose verdict is known to be "holds": the write refuses exactly
what ``$validate`` reports.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from fhir_server.conformance.validation import fhirpath
from fhir_server.conformance.validation.definitions import Constraint

__all__ = ["Guard", "NEVER", "guard"]


class Guard(NamedTuple):
    #: the object must have a key of each group
    groups: tuple[frozenset[str], ...]
    #: ... and not all groups of any of these (each a conjunction of groups)
    exempt: tuple[tuple[frozenset[str], ...], ...]


#: the constraint cannot fail on any object of the type
NEVER = Guard((frozenset(),), ())

_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|`[^`]*`|%`[^`]*`|%'[^']*'|%[A-Za-z_][\w-]*|\$[a-z]+|@[\w:+\-.]+
                        |\d+(?:\.\d+)?|[A-Za-z_]\w*|!=|<=|>=|\S""", re.X)
#: external constants that name no data (fhirpath.html#vars; terminology urls)
_CONSTANTS = ("%ucum", "%sct", "%loinc", "%`vs-", "%'vs-", "%`ext-", "%'ext-")
_KEYWORDS = frozenset({"and", "or", "xor", "implies", "in", "contains", "is", "as", "div", "mod"})


def guard(c: Constraint, tpath: str, keys: dict[str, tuple[str, ...]],
          native_reads: tuple[str, ...] | None = None) -> Guard | None:
    """The guard of constraint ``c`` on objects typed ``tpath`` whose FHIRPath names map
    to JSON keys as ``keys`` says (``value`` -> valueQuantity, _valueQuantity ...);
    None: evaluate it always. ``native_reads``: the keys a native verdict reads."""
    if native_reads is not None:
        return Guard((_keys_of(native_reads, keys),), ())
    if not c.expression:
        return NEVER
    text = fhirpath.corrected(c.key, c.expression)
    whole = _Part(text, list(_TOKEN.finditer(text)))
    groups: list[frozenset[str]] = []
    exempt: list[tuple[frozenset[str], ...]] = []
    implied = whole.split("implies")
    if len(implied) == 2:  # implies binds loosest
        groups += _groups([implied[0]], tpath, keys, when=(False, None))
        exempt += _present_any(implied[1], keys)
    elif len(implied) == 1 and len(whole.split("xor")) == 1:  # or, xor bind alike; and tighter
        disjuncts = whole.split("or")
        groups += _groups(disjuncts, tpath, keys, when=(True,))
        exempt += _present_any(whole, keys)
        negated = _negated(whole)
        if negated is not None:
            groups += _groups(negated.split("and"), tpath, keys, when=(False, None))
    if any(not g for g in groups):
        return NEVER  # a part that reads nothing of the object makes it hold
    if not groups and not exempt:
        return None
    # a group that holds another says nothing more (qrs-1: {answer, item} besides {answer})
    groups = [g for g in dict.fromkeys(groups) if not any(h < g for h in groups)]
    return Guard(tuple(groups), tuple(exempt))


def _groups(parts: list[_Part], tpath: str, keys: dict, when: tuple) -> list[frozenset[str]]:
    """For each part that, without the children it reads, takes a value in ``when``
    (True; False, or None for empty), the JSON keys of those children."""
    out = []
    for part in parts:
        names = part.reads()
        if names is None or not part.tokens:
            continue
        compiled = fhirpath.compile_expression(part.source())
        result = fhirpath.evaluate(compiled, {}, tpath, {}) if compiled is not None else None
        if result is None or len(result) > 1:
            continue
        value = result[0] if result else None
        if any(value is w for w in when):
            out.append(_keys_of(names, keys))
    return out


def _present_any(part: _Part, keys: dict) -> list[tuple[frozenset[str], ...]]:
    """Conjunctions of groups each of which makes ``part`` (an or-chain) true."""
    out = []
    for disjunct in part.split("or"):
        conj = _present(disjunct, keys)
        if conj is not None:
            out.append(conj)
    return out


def _present(part: _Part, keys: dict) -> tuple[frozenset[str], ...] | None:
    """``P.exists()``, ``(P.exists() and Q.exists())``: true when the object has P (and
    Q) -- their value keys, not ``_P``: a primitive's extension alone has no value."""
    part = part.unwrapped()
    conjuncts = part.split("and")
    if len(conjuncts) > 1:
        found = [_present(c, keys) for c in conjuncts]
        return None if any(f is None for f in found) else tuple(g for f in found for g in f)
    toks = [m.group() for m in part.tokens]
    if len(toks) != 5 or toks[1:] != [".", "exists", "(", ")"] or toks[0] not in keys:
        return None
    present = frozenset(k for k in keys[toks[0]] if not k.startswith("_"))
    return (present,) if present else None


def _negated(part: _Part) -> _Part | None:
    """X of ``(X).not()``."""
    toks = [m.group() for m in part.tokens]
    if len(toks) >= 6 and toks[0] == "(" and toks[-5:] == [")", ".", "not", "(", ")"]:
        inner = _Part(part.text, part.tokens[1:-5])
        if inner.balanced():
            return inner
    return None


def _keys_of(names, keys: dict) -> frozenset[str]:
    return frozenset(k for name in names for k in keys.get(name, ()))


class _Part:
    """A stretch of an expression's tokens, with the text they span."""

    __slots__ = ("text", "tokens")

    def __init__(self, text: str, tokens: list[re.Match]) -> None:
        self.text, self.tokens = text, tokens

    def source(self) -> str:
        return self.text[self.tokens[0].start():self.tokens[-1].end()] if self.tokens else ""

    def balanced(self) -> bool:
        depth = 0
        for m in self.tokens:
            depth += (m.group() == "(") - (m.group() == ")")
            if depth < 0:
                return False
        return depth == 0

    def unwrapped(self) -> _Part:
        """Without parentheses around the whole."""
        part = self
        while len(part.tokens) > 2 and part.tokens[0].group() == "(" and part.tokens[-1].group() == ")":
            inner = _Part(part.text, part.tokens[1:-1])
            if not inner.balanced():
                break
            part = inner
        return part

    def split(self, word: str) -> list[_Part]:
        """Split at ``word`` outside parentheses."""
        parts, depth, current = [], 0, []
        for m in self.tokens:
            tok = m.group()
            depth += (tok == "(") - (tok == ")")
            if depth == 0 and tok == word:
                parts.append(_Part(self.text, current))
                current = []
            else:
                current.append(m)
        parts.append(_Part(self.text, current))
        return parts

    def reads(self) -> frozenset[str] | None:
        """The names of the focus's children this can read, or None when it may read
        more (``$this``, ``%resource``, a function called on the focus). A type name
        that starts a path (``Appointment.status``) is read through: fhirpath.html
        allows it, fhirpathpy reads it as a child that is never there."""
        toks = [m.group() for m in self.tokens]
        names = set()
        for i, tok in enumerate(toks):
            if tok == "$this" or (tok[0] == "%" and not tok.startswith(_CONSTANTS)):
                return None
            if not (tok[0].isalpha() or tok[0] in "_`") or (i and toks[i - 1] == "." and not _prefix(toks, i - 2)):
                continue
            if i + 1 < len(toks) and toks[i + 1] == "(" and tok not in _KEYWORDS:
                return None
            names.add(tok.strip("`"))
        return frozenset(names)


def _prefix(toks: list[str], i: int) -> bool:
    """Whether ``toks[i]`` is a type name starting a path (element names are lower case)."""
    return i >= 0 and toks[i][:1].isupper() and (i == 0 or toks[i - 1] != ".")
