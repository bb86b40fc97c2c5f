"""The one error hierarchy of evi-fhir.

Every error a client can cause is one of these; ``api`` renders each as an
OperationOutcome with the class's HTTP status and issue code::

    FhirError (500, exception)
     ├── BadRequest (400, invalid)
     │    ├── InvalidResource (400, structure)   JSON parsed but not a valid R4 resource
     │    ├── InvalidSearch (400, invalid)        bad search / history parameter
     │    └── ResponseTooLarge (400, too-costly)  the answer would pass EVI_MAX_RESPONSE_ENTRIES
     ├── Forbidden (403, forbidden)             the caller may not do this (policy, settings)
     ├── NotFound (404, not-found)
     ├── MethodNotAllowed (405, not-supported)
     ├── NotAcceptable (406, not-supported)
     ├── Conflict (409, conflict)                 version race, illegal state transition
     ├── Gone (410, deleted)
     ├── PreconditionFailed (412, conflict)       If-Match mismatch, ambiguous conditional
     ├── PayloadTooLarge (413, too-costly)
     ├── UnsupportedMediaType (415, not-supported)
     ├── Unprocessable (422, processing)          business rules, profiles, failed patch test
     └── TooCostly (503, too-costly)              the request ran past its time budget, or the
                                                  server had no worker for it within that budget
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Issue",
    "FhirError",
    "BadRequest",
    "InvalidResource",
    "InvalidSearch",
    "ResponseTooLarge",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "NotAcceptable",
    "Conflict",
    "Gone",
    "PreconditionFailed",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "Unprocessable",
    "TooCostly",
]


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: what went wrong and where (FHIRPath)."""

    diagnostics: str
    code: str | None = None  # falls back to the error class's code
    expression: tuple[str, ...] = ()
    severity: str = "error"

    def to_fhir(self, default_code: str) -> dict:
        out = {"severity": self.severity, "code": self.code or default_code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = list(self.expression)
        return out


class FhirError(Exception):
    status = 500
    code = "exception"

    def __init__(self, message: str, *, issues: list[Issue] | None = None, expression: str | None = None):
        super().__init__(message)
        self.message = message
        if issues:
            self.issues = list(issues)
        else:
            self.issues = [Issue(message, expression=(expression,) if expression else ())]

    def to_outcome(self) -> dict:
        return {"resourceType": "OperationOutcome", "issue": [i.to_fhir(self.code) for i in self.issues]}


class BadRequest(FhirError):
    status = 400
    code = "invalid"


class InvalidResource(BadRequest):
    code = "structure"


class InvalidSearch(BadRequest):
    code = "invalid"


class ResponseTooLarge(BadRequest):
    """The answer would carry more resources than a request may have: the client asked
    for too much at once (a smaller _count or fewer includes work)."""

    code = "too-costly"


class Forbidden(FhirError):
    status = 403
    code = "forbidden"


class NotFound(FhirError):
    status = 404
    code = "not-found"


class MethodNotAllowed(FhirError):
    status = 405
    code = "not-supported"


class NotAcceptable(FhirError):
    status = 406
    code = "not-supported"


class Conflict(FhirError):
    status = 409
    code = "conflict"


class Gone(FhirError):
    status = 410
    code = "deleted"


class PreconditionFailed(FhirError):
    status = 412
    code = "conflict"


class PayloadTooLarge(FhirError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(FhirError):
    status = 415
    code = "not-supported"


class Unprocessable(FhirError):
    status = 422
    code = "processing"


class TooCostly(FhirError):
    status = 503
    code = "too-costly"
