"""Which resource types the server accepts: the R4 (4.0.1) resource types that the
fhir.resources R4B models can validate.

Eighteen R4 types have no R4B model (the MedicinalProduct* family, the
Substance* family and EffectEvidenceSynthesis/RiskEvidenceSynthesis were
replaced in R4B); the server answers 404 for those rather than store resources
it cannot validate. Types new in R4B are not R4 on the wire and are not listed.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

from fhir_server.spec import load_table

__all__ = ["resource_types", "is_resource_type"]


def _has_r4b_model(name: str) -> bool:
    """Whether fhir.resources has an R4B model, without importing it (imports cost ~15 ms each)."""
    return importlib.util.find_spec(f"fhir.resources.R4B.{name.lower()}") is not None


@lru_cache(maxsize=1)
def resource_types() -> tuple[str, ...]:
    """Concrete R4 resource types (from the generated spec table) with an R4B model."""
    types = load_table("types")
    return tuple(
        sorted(
            name
            for name, facts in types.items()
            if "." not in name and not name.startswith("_") and facts.get("k") == "resource" and not facts.get("a")
            and _has_r4b_model(name)
        )
    )


@lru_cache(maxsize=1)
def _type_set() -> frozenset[str]:
    return frozenset(resource_types())


def is_resource_type(name: str) -> bool:
    return name in _type_set()
