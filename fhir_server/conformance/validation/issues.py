"""The validator's findings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ValidationIssue"]


@dataclass(frozen=True)
class ValidationIssue:
    severity: str          # "error" | "warning" | "information"
    code: str              # OperationOutcome issue type: "structure", "required", "value", "code-invalid", ...
    expression: str        # FHIRPath location, e.g. "Patient.identifier[0].value"
    message: str           # human text; for invariants it starts with the key ("evi-pnr-1: ...")
    constraint: str | None = None   # the constraint key, or None
