"""What the fuzzer starts from: the valid examples and the scenario Bundles."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import httpx
import orjson

__all__ = ["EXAMPLES", "REGION", "examples", "scenarios", "load_seeds"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REGION = ROOT / "tests" / "support" / "region-test.toml"


@lru_cache(maxsize=1)
def examples() -> tuple[dict, ...]:
    """examples/valid/*.json, in name order (each has an id)."""
    return tuple(orjson.loads(p.read_bytes()) for p in sorted((EXAMPLES / "valid").glob("*.json")))


@lru_cache(maxsize=1)
def scenarios() -> tuple[dict, ...]:
    """examples/scenarios/*.json: transaction Bundles."""
    return tuple(orjson.loads(p.read_bytes()) for p in sorted((EXAMPLES / "scenarios").glob("*.json")))


def load_seeds(client: httpx.Client) -> list[tuple[str, str]]:
    """PUT every example (Organizations first, for the workflow rules) and post the scenarios;
    returns the (type, id) of the examples that were stored."""
    stored = []
    ordered = sorted(examples(), key=lambda r: r["resourceType"] != "Organization")
    for _ in range(2):  # a second round for examples whose rules need a later one
        for resource in ordered:
            key = (resource["resourceType"], resource["id"])
            if key in stored:
                continue
            r = client.put(f"/{key[0]}/{key[1]}", content=orjson.dumps(resource))
            if r.status_code in (200, 201):
                stored.append(key)
    for bundle in scenarios():
        client.post("/", content=orjson.dumps(bundle))
    return stored
