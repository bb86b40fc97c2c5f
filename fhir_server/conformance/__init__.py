"""Conformance: the CapabilityStatement (later: profiles, validator, terminology)."""

from fhir_server.conformance.capability_statement import build_capability_statement

__all__ = ["build_capability_statement"]
