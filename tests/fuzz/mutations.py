"""Structural mutations of FHIR JSON, as hypothesis strategies.

A mutation picks one node of a resource (any object, array or value, found by
its path) and breaks it in one of the ways clients do: another JSON kind
(an object written as a JSON string, a number for a string, a list for a
scalar, null), deletion, duplication, a renamed or unknown element, deep
nesting, huge numbers, long strings, control characters and odd unicode, empty
containers, bad ids and references, a wrong resourceType.

Some of these cannot be written by orjson (nesting past 254 levels, integers
past 64 bits, lone surrogates): they are ``Raw`` bytes in the tree that
``encode`` splices into the serialised body.
"""

from __future__ import annotations

import orjson
from hypothesis import strategies as st

__all__ = ["Raw", "encode", "mutated", "mutation", "raw_body", "paths_of", "copy"]

Path = tuple  # keys (str) and indices (int) from the root


class Raw:
    """JSON text spliced in as it is (beyond what orjson writes). Not a dataclass:
    orjson would write a dataclass itself instead of asking ``encode``'s default."""

    __slots__ = ("text",)

    def __init__(self, text: bytes):
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:40]!r}{'...' if len(self.text) > 40 else ''})"


def copy(value):
    """A deep copy of a JSON tree (``Raw`` leaves are immutable and shared)."""
    if isinstance(value, dict):
        return {k: copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy(v) for v in value]
    return value


def encode(value) -> bytes:
    """The JSON bytes of ``value``, with each ``Raw`` spliced in."""
    raws: list[bytes] = []

    def default(obj):
        if isinstance(obj, Raw):
            raws.append(obj.text)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(type(obj).__name__)

    body = orjson.dumps(value, default=default)
    for i, text in enumerate(raws):
        body = body.replace(f'"\\u0000raw{i}\\u0000"'.encode(), text, 1)
    return body


def paths_of(value, limit: int = 400) -> list[Path]:
    """Every node's path (breadth first, at most ``limit``)."""
    out: list[Path] = [()]
    queue = [((), value)]
    while queue and len(out) < limit:
        path, node = queue.pop(0)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            out.append((*path, key))
            queue.append(((*path, key), child))
    return out[:limit]


def _get(root, path: Path):
    for key in path:
        root = root[key]
    return root


def _set(root, path: Path, value):
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


# ------------------------------------------------------------------ replacement values

_ODD_TEXT = [
    "\x00", "\x01", "\x08", "\x0b", "\x1b[31m", "\x1f", "\x7f", "\u0085", "\u00a0", "\u2028", "\u202e",
    "\ufeff", "\ufffe", "\uffff", "\U0001f600", "e\u0301", "\u0000end", "ﬀ", "İ", "ß", "\\", '"', "'; --",
    "<script>x</script>", "%00", "${jndi:x}", "../../etc/passwd", " ", "\t", "\r\n", "",
]
_RAW = [
    b"1e400", b"-1e400", b"99999999999999999999999999999", b"-99999999999999999999999999999",
    b"18446744073709551616", b"1.0e-400", b"-0", b"0.0000000000000000000000000001", b'"\\ud800"',
    b'"\\udfff x"', b"NaN", b"Infinity", b"[1,]", b'{"a":1,"a":2}', b"tru",
]
_NUMBERS = [0, -1, 1, 2**31, -(2**31) - 1, 2**63 - 1, -(2**63), 1.5, -0.0, 1e308, 5e-324, 0.1]
_BAD_IDS = ["", "a" * 65, "has space", "../x", "a/b", "é", "x" * 1000, "-", ".", "a%2Fb", "\x00", "123" * 30]
_BAD_REFERENCES = [
    "", "Patient/", "/Patient/1", "Patient/../../x", "Patient/a/_history/abc", "urn:uuid:not-a-uuid",
    "#", "#missing", "http://evil.example/Patient/1", "Nonsense/1", "patient/1", "Patient/" + "a" * 100,
    "Patient?identifier=x", "Patient/1 ", "Patient/1/_history/99999999999999999999",
]
_TYPES = ["Patient", "Observation", "Task", "Bundle", "Parameters", "OperationOutcome", "Nonsense", "patient", "",
          "Resource"]
_UNKNOWN_KEYS = ["foo", "_foo", "resourceType", "valueString", "extension", "modifierExtension", "id", "meta", "",
                 "€", "a" * 300]


def _long_text(n: int) -> str:
    return ("åäö-" * (n // 4 + 1))[:n]


def _other_kinds(value) -> st.SearchStrategy:
    """Values of another JSON kind than ``value`` (the string-for-object family first)."""
    options = [st.none(), st.booleans(), st.sampled_from(_NUMBERS), st.just({}), st.just([]), st.just("")]
    if isinstance(value, (dict, list)):
        text = encode(value).decode("utf-8", "replace")
        options += [st.just(text), st.just(text[:40]), st.just("{}"), st.just("[]")]
        if isinstance(value, list) and value:
            options.append(st.just(value[0]))  # a scalar (or object) for a list
        if isinstance(value, dict):
            options.append(st.just([value, value]))  # a list for an object
    else:
        options += [st.just([value]), st.just({"value": value}), st.just(str(value)), st.just([value, value])]
        if isinstance(value, str):
            options += [st.sampled_from([1, 0, -5, 3.25, True])]
    return st.one_of(*options)


def _deep(value) -> st.SearchStrategy:
    """``value`` nested n levels down, as objects, arrays or extensions."""

    def build(levels: int, shape: str) -> Raw:
        leaf = encode(value)
        if shape == "array":
            return Raw(b"[" * levels + leaf + b"]" * levels)
        if shape == "object":
            return Raw(b'{"a":' * levels + leaf + b"}" * levels)
        return Raw(b'{"url":"http://x","extension":[' * levels + b'{"url":"http://y","valueString":"v"}' + b"]}" * levels)

    levels = st.sampled_from([5, 20, 28, 29, 30, 31, 32, 45, 50, 60, 62, 63, 64, 65, 100, 300, 1100])
    return st.builds(build, levels, st.sampled_from(["array", "object", "extension"]))


def _odd_string(value) -> st.SearchStrategy:
    base = value if isinstance(value, str) else "x"
    return st.one_of(
        st.builds(lambda odd, at: base[:at] + odd + base[at:], st.sampled_from(_ODD_TEXT), st.integers(0, len(base))),
        st.builds(_long_text, st.sampled_from([255, 1025, 65_537, 300_000])),
        st.text(max_size=20),
    )


def _replacement(value) -> st.SearchStrategy:
    return st.one_of(
        _other_kinds(value),
        _odd_string(value),
        st.builds(Raw, st.sampled_from(_RAW)),
        _deep(value),
    )


# ------------------------------------------------------------------ mutations


def _replace(draw, root, path):
    return _set(root, path, draw(_replacement(_get(root, path))))


def _as_string(draw, root, path):
    """An object (or array) written as JSON text: fhir.resources would decode it into a model."""
    node = _get(root, path)
    return _set(root, path, draw(st.sampled_from([encode(node).decode("utf-8", "replace"), "{}", "[]"])))


def _odd_text(draw, root, path):
    return _set(root, path, draw(_odd_string(_get(root, path))))


def _delete(draw, root, path):
    if not path:
        return _replace(draw, root, path)
    del _get(root, path[:-1])[path[-1]]
    return root


def _duplicate(draw, root, path):
    if not path:
        return _replace(draw, root, path)
    parent, node = _get(root, path[:-1]), _get(root, path)
    if isinstance(parent, list):
        parent.insert(path[-1], copy(node))
    else:  # the same value under a near name: two choices of one [x], or a plain copy
        twin = draw(st.sampled_from([path[-1] + "String", path[-1] + "Boolean", path[-1] + "_", "_" + path[-1]]))
        parent[twin] = copy(node)
    return root


def _rename(draw, root, path):
    if not path:
        return _replace(draw, root, path)
    parent, key = _get(root, path[:-1]), path[-1]
    if isinstance(parent, dict):
        new = draw(st.sampled_from([key.upper(), key[:-1] or "x", key + "x", "_" + key, key.lstrip("_") or "y",
                                    key + "[x]", key.replace("value", "valu"), " " + key]))
        parent[new] = parent.pop(key)
    else:
        parent[key] = {"renamed": parent[key]}
    return root


def _unknown(draw, root, path):
    target = _id_holder(root, path)
    target[draw(st.sampled_from(_UNKNOWN_KEYS))] = draw(st.sampled_from(["x", {"y": 1}, [1]]))
    return root


def _empty(draw, root, path):
    return _set(root, path, draw(st.sampled_from([{}, [], "", [{}], [None], [""]])))


def _bad_id(draw, root, path):
    _id_holder(root, path)["id"] = draw(st.one_of(st.sampled_from(_BAD_IDS), st.integers(-(2**63), 2**64 - 1), st.none()))
    return root


def _bad_reference(draw, root, path):
    holder = _id_holder(root, path)
    holder["reference"] = draw(st.one_of(st.sampled_from(_BAD_REFERENCES), st.just({"reference": "Patient/1"})))
    return root


def _resource_type(draw, root, path):
    if isinstance(root, dict):
        root["resourceType"] = draw(st.one_of(st.sampled_from(_TYPES), st.sampled_from([1, None, ["Patient"]])))
    return root


#: each mutation, weighted by repetition: the two that slipped past validation before come often
_OPS = {
    "replace": (_replace, 3), "as-string": (_as_string, 3), "odd-text": (_odd_text, 3), "delete": (_delete, 1),
    "duplicate": (_duplicate, 1), "rename": (_rename, 1), "unknown": (_unknown, 1), "empty": (_empty, 1),
    "id": (_bad_id, 1), "reference": (_bad_reference, 1), "resourceType": (_resource_type, 1),
}
_OP_NAMES = [name for name, (_, weight) in _OPS.items() for _ in range(weight)]


def _candidates(root, op: str) -> list[Path]:
    paths = paths_of(root)
    if op == "as-string":
        found = [p for p in paths[1:] if isinstance(_get(root, p), (dict, list))]
    elif op == "odd-text":
        found = [p for p in paths if isinstance(_get(root, p), str) and p and p[-1] != "resourceType"]
    else:
        found = paths
    return found or paths


@st.composite
def mutation(draw, value):
    """One mutation of ``value`` (a copy is changed and returned)."""
    value = copy(value)
    op = draw(st.sampled_from(_OP_NAMES))
    path = draw(st.sampled_from(_candidates(value, op)))
    return _OPS[op][0](draw, value, path)


def _id_holder(root, path: Path) -> dict:
    """The object at ``path``, or the nearest object above it."""
    while path:
        node = _get(root, path)
        if isinstance(node, dict):
            return node
        path = path[:-1]
    return root if isinstance(root, dict) else {}


def mutated(value, max_mutations: int = 3) -> st.SearchStrategy:
    """``value`` changed by 1 to ``max_mutations`` mutations."""

    @st.composite
    def chain(draw):
        current = value
        for _ in range(draw(st.integers(1, max_mutations))):
            if not isinstance(current, (dict, list)):
                break
            current = draw(mutation(current))
        return current

    return chain()


def raw_body(value) -> st.SearchStrategy:
    """Bodies broken at the byte level: truncated, with junk, a BOM, bad UTF-8, another JSON value."""
    body = encode(value)
    return st.one_of(
        st.builds(lambda n: body[:n], st.integers(0, max(len(body) - 1, 0))),
        st.builds(lambda junk: body + junk, st.sampled_from([b"x", b",", b"}", b"\x00", b" {}"])),
        st.just(b"\xef\xbb\xbf" + body),
        st.builds(lambda n: body[:n] + b"\xff\xfe" + body[n:], st.integers(0, len(body))),
        st.sampled_from([b"", b"null", b"[]", b"1", b'"Patient"', b"{}", b"[" * 2000, b"{" * 5, b"\x00"]),
    )
