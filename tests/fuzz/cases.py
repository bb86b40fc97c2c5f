"""Fuzz cases: one HTTP request each, as hypothesis strategies (bodies.py: mutated
examples and Bundles; urls.py: hostile URLs)."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.fuzz.bodies import bundle_cases, write_cases
from tests.fuzz.case import FHIR_JSON, Case
from tests.fuzz.urls import url_cases

__all__ = ["Case", "cases", "write_cases", "bundle_cases", "url_cases", "FHIR_JSON"]


def cases() -> st.SearchStrategy:
    """Every kind of case, writes a little more often than reads."""
    return st.one_of(write_cases(), write_cases(), bundle_cases(), url_cases(), url_cases())
