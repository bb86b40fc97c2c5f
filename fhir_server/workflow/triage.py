"""$triage (rule 4). TO BE WRITTEN by the triage helper."""

from __future__ import annotations

from fhir_server.engine import RequestContext, Runtime

__all__ = ["triage"]


def triage(runtime: Runtime, ctx: RequestContext, task_id: str, parameters: dict) -> dict:
    raise NotImplementedError
