"""Compact FHIR R4 4.0.1 fact tables generated from the official spec.

The tables live in ``fhir_server/spec/data/*.json`` and are produced by
``python -m fhir_server.spec.generate``; see that module for their shape.
Nothing is read at import time: each table is loaded on first use and cached.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import orjson

__all__ = ["load_table"]

_DATA = Path(__file__).resolve().parent / "data"


@lru_cache(maxsize=None)
def load_table(name: str) -> dict:
    """Return the parsed table ``data/{name}.json`` (e.g. "types", "valuesets",
    "search_parameters", "compartments").  The result is shared: do not mutate it."""
    if not name.isidentifier():
        raise ValueError(f"invalid table name {name!r}")
    return orjson.loads((_DATA / f"{name}.json").read_bytes())
