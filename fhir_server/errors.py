"""The one error hierarchy of evi-fhir.

Every error a client can cause is one of these; ``api`` renders each as an
OperationOutcome with the class's HTTP status and issue code, and with the class's
``headers`` (e.g. ``WWW-Authenticate`` on a 401)::

    FhirError (500, exception)
     ├── BadRequest (400, invalid)
     │    ├── InvalidResource (400, structure)   JSON parsed but not a valid R4 resource
     │    ├── InvalidSearch (400, invalid)        bad search / history parameter
     │    └── ResponseTooLarge (400, too-costly)  the answer would pass EVI_MAX_RESPONSE_ENTRIES
     ├── Unauthorized (401, login)               no, or no valid, bearer token (auth on);
     │                                            carries ``WWW-Authenticate: Bearer``
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
     ├── TooCostly (503, too-costly)              the request ran past its time budget, or the
     │                                            server had no worker for it within that budget
     └── Unavailable (503, transient)             a service the server depends on did not answer
                                                  (the region's identity provider's keys)

The token endpoint (``POST [base]/auth/token``) is OAuth 2.0, not FHIR: its errors are
``OAuthError`` (RFC 6749 §5.2 JSON: ``invalid_client`` 401, ``invalid_request``,
``invalid_grant``, ``invalid_scope``, ``unsupported_grant_type`` 400,
``temporarily_unavailable`` 503), never an OperationOutcome.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

__all__ = [
    "Issue",
    "FhirError",
    "BadRequest",
    "InvalidResource",
    "InvalidSearch",
    "ResponseTooLarge",
    "Unauthorized",
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
    "Unavailable",
    "OAuthError",
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
    #: response headers the answer must carry besides the OperationOutcome
    headers: Mapping[str, str] = MappingProxyType({})

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


#: what an RFC 6750 quoted-string may hold (no ``"`` or ``\``, printable ASCII)
_NOT_QUOTABLE = re.compile(r'[^\x20\x21\x23-\x5b\x5d-\x7e]')


class Unauthorized(FhirError):
    """A request without a usable bearer token (RFC 6750 §3). ``error`` is None when the
    request carried no credentials at all (then the challenge names no error), else
    ``invalid_token``; the message becomes the challenge's ``error_description``."""

    status = 401
    code = "login"

    def __init__(self, message: str, *, error: str | None = "invalid_token"):
        super().__init__(message)
        challenge = 'Bearer realm="evi-fhir"'
        if error:
            challenge += f', error="{error}", error_description="{_NOT_QUOTABLE.sub("?", message)}"'
        self.headers = MappingProxyType({"WWW-Authenticate": challenge})


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


class Unavailable(FhirError):
    status = 503
    code = "transient"


class OAuthError(Exception):
    """An error of the OAuth 2.0 token endpoint (RFC 6749 §5.2), answered as JSON."""

    STATUS = {"invalid_client": 401, "temporarily_unavailable": 503}

    def __init__(self, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = self.STATUS.get(error, 400)

    def to_json(self) -> dict:
        return {"error": self.error, "error_description": self.description}
