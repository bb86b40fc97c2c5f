"""Reference targets (R4 references.html): the resource type a literal reference
names must be one its element allows (the targetProfiles of ElementDefinition.type,
the generated types table's ``r``). ``ServiceRequest.subject`` may name a Patient or a
Group, never an Organization. The models do not look; ``$validate`` does, with the
same reading of a reference as here: a local ``#id`` is the contained resource of
that id, ``[base/]Type/id[/_history/v]`` names Type, and inside a Bundle an entry's
fullUrl names the entry's resource. A reference none of these reads is not checked.
"""

from __future__ import annotations

import re
from functools import lru_cache

from fhir_server.errors import Issue
from fhir_server.spec import load_table

__all__ = ["REFERENCE_RE", "target_issue"]

#: a relative or absolute literal reference: group 1 the type, group 2 the id
REFERENCE_RE = re.compile(r"^(?:(?:https?://[^?#]*?/)?)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})"
                          r"(?:/_history/[A-Za-z0-9\-.]{1,64})?$")


def target_issue(reference: dict, targets: frozenset[str], where: str, root: dict, bundle: dict | None) -> Issue | None:
    """The issue of a Reference whose ``reference`` names a type outside ``targets``."""
    ref = reference.get("reference")
    if not isinstance(ref, str):
        return None
    kind = _named_type(ref, root, bundle)
    if kind is None or kind in targets:
        return None
    text = (f"Invalid reference type: the type '{kind}' implied by the reference URL {ref} is not a valid "
            f"target for this element (must be one of [{', '.join(sorted(targets))}])")
    return Issue(text, "structure", (where,))


def _named_type(ref: str, root: dict, bundle: dict | None) -> str | None:
    if ref.startswith("#"):
        found = root if ref == "#" else _contained(root, ref[1:])
    elif bundle is not None and (found := _entry(bundle, ref)) is not None:
        pass
    else:
        m = REFERENCE_RE.match(ref)
        return m.group(1) if m and m.group(1) in _resource_names() else None
    kind = found.get("resourceType") if isinstance(found, dict) else None
    return kind if isinstance(kind, str) else None


@lru_cache(maxsize=1)
def _resource_names() -> frozenset[str]:
    """Every R4 resource type name, served or not: a reference may name any of them."""
    return frozenset(n for n, t in load_table("types").items() if not n.startswith("_") and t["k"] == "resource")


def _contained(root: dict, rid: str) -> dict | None:
    contained = root.get("contained")
    for c in contained if isinstance(contained, list) else ():
        if isinstance(c, dict) and c.get("id") == rid:
            return c
    return None


def _entry(bundle: dict, ref: str) -> dict | None:
    """The resource of the first entry with this fullUrl (or, as ``Type/id``, this type and id)."""
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and (entry.get("fullUrl") == ref or
                                           f"{resource.get('resourceType')}/{resource.get('id')}" == ref):
            return resource
    return None
