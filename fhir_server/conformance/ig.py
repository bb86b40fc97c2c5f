"""The product's implementation guide (``profiles/``) as data the server loads.

In a source checkout the files are read from ``profiles/``; an installed wheel
carries them as the data package ``fhir_server.ig`` (see pyproject.toml).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import orjson

from fhir_server.search.registry import SearchParamDef, definition_from_resource

__all__ = ["ig_directory", "ig_resources", "ig_search_parameters"]


def ig_directory(override: str | None = None) -> Path | None:
    if override:
        return Path(override)
    checkout = Path(__file__).resolve().parents[2] / "profiles"
    if checkout.is_dir():
        return checkout
    # an installed wheel: the data package (a namespace package: find_spec, not
    # importlib.resources, whose MultiplexedPath is not a path)
    try:
        spec = importlib.util.find_spec("fhir_server.ig")
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=4)
def ig_resources(directory: Path | None) -> tuple[dict, ...]:
    """Every JSON resource of the guide, sorted by file name (none without a guide).

    A folder that is named but missing is an error of the server's set-up, not an
    empty guide: FileNotFoundError (a server that silently had no profiles would
    accept what its profiles forbid)."""
    if directory is None:
        return ()
    if not directory.is_dir():
        raise FileNotFoundError(f"The implementation guide folder {directory} does not exist")
    return tuple(orjson.loads(p.read_bytes()) for p in sorted(directory.rglob("*.json")))


def ig_search_parameters(directory: Path | None) -> list[SearchParamDef]:
    out = []
    for resource in ig_resources(directory):
        if resource.get("resourceType") == "SearchParameter" and resource.get("status") == "active":
            definition = definition_from_resource(resource)
            if definition is not None:
                out.append(definition)
    return out
