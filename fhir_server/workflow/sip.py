"""SIP rules (rule 8, issue 7). TO BE WRITTEN by the SIP helper."""

from __future__ import annotations

from fhir_server.engine import Runtime

__all__ = ["install_sip"]


def install_sip(runtime: Runtime) -> None:
    pass
