"""Exceptions -> OperationOutcome responses, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api.content import fhir_response
from fhir_server.errors import FhirError

__all__ = ["install_error_handlers", "error_response"]

log = logging.getLogger("fhir_server")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly"}


def error_response(exc: FhirError) -> Response:
    return fhir_response(exc.to_outcome(), exc.status, dict(exc.headers) or None)


def _outcome(status: int, code: str, text: str) -> Response:
    return fhir_response(
        {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code, "diagnostics": text}]},
        status,
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FhirError)
    async def _fhir(request: Request, exc: FhirError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        text = "No such FHIR endpoint" if exc.status_code == 404 else str(exc.detail)
        if exc.status_code == 405:
            text = f"{request.method} is not supported on {request.url.path}"
        return _outcome(exc.status_code, _HTTP_CODES.get(exc.status_code, "processing"), text)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return _outcome(400, "invalid", f"Invalid request: {exc.errors()}")

    # Not an exception_handler(Exception): Starlette re-raises after those and uvicorn
    # then drops the kept-alive connection. This middleware answers and stays up.
    app.add_middleware(_CatchAll)


class _CatchAll:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = _outcome(500, "exception", "Internal server error; the request was not applied")
            await response(scope, receive, send)
