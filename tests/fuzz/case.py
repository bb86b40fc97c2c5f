"""One fuzz case: an HTTP request, and what a refusal must leave alone."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Case", "FHIR_JSON"]

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class Case:
    interaction: str
    method: str
    #: relative to the base, already percent-encoded ("/Patient?name=x")
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    #: stored resources (type, id) that a refused request must leave as they were
    targets: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        body = "" if self.body is None else f" body[{len(self.body)}]={self.body[:300]!r}"
        return f"{self.method} {self.path[:300]}{body}"
