"""$triage-queue (rule 6). TO BE WRITTEN by the queue helper."""

from __future__ import annotations

from fhir_server.engine import RequestContext, Runtime

__all__ = ["triage_queue"]


def triage_queue(runtime: Runtime, ctx: RequestContext, params: list[tuple[str, str]]) -> dict:
    raise NotImplementedError
