"""Domain errors of the service and their HTTP form, in one place.

Every failure the service reports is a :class:`DomainError` (status, code, message, request field). The
handlers installed by :func:`install_error_handlers` turn it, FastAPI's validation errors and unexpected
exceptions into the JSON body ``{"error": {"status", "code", "field", "message", ...}}``; 429 and 503
carry ``Retry-After``. Messages are scrubbed of server paths (:func:`scrub`).
"""
from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from structrom.mpi.errors import StructromError

log = logging.getLogger("structrom.api")
_SCRUB: list[tuple[re.Pattern, str]] = [(re.compile(r"/proc/self/fd/\d+"), "model file")]


class DomainError(StructromError):
    """A failure with an HTTP status, a code, a message and (optionally) the request field involved."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, *,
                 retry_after: float | None = None, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.retry_after, self.extra = retry_after, extra

    def body(self) -> dict:
        return error_body(self.status, self.code, self.message, self.field, **self.extra)

    def __reduce__(self):  # crosses process boundaries (solver processes -> server)
        return _rebuild, (self.status, self.code, self.message, self.field, self.retry_after, self.extra)


def _rebuild(status, code, message, field, retry_after, extra):
    return DomainError(status, code, message, field, retry_after=retry_after, **extra)


def add_scrubbed_path(path: str, replacement: str) -> None:
    """Replace ``path`` (a server directory) by ``replacement`` in every error message from now on."""
    _SCRUB.insert(0, (re.compile(re.escape(str(path).rstrip("/")) + r"/?"), replacement))


def scrub(text: str) -> str:
    for pattern, repl in _SCRUB:
        text = pattern.sub(repl, text)
    return text


def error_body(status: int, code: str, message: str, field: str | None = None, **extra) -> dict:
    return {"error": {"status": status, "code": code, "field": field, "message": scrub(str(message)), **extra}}


def error_response(status: int, code: str, message: str, field: str | None = None, *,
                   retry_after: float | None = None, headers: dict | None = None, **extra) -> JSONResponse:
    headers = dict(headers or {})
    if retry_after is None and status in (429, 503):
        retry_after = 1
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(round(retry_after))))
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(error_body(status, code, message, field, **extra), status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return error_response(exc.status, exc.code, exc.message, exc.field, retry_after=exc.retry_after, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        details = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            if loc and loc[0] in ("body", "path"):
                loc = loc[1:]
            if loc and loc[0] in ("loading_query", "parameter_query"):  # the form of a query body (api.schemas)
                loc = loc[1:]
            details.append({"field": ".".join(loc), "message": str(e.get("msg", "")), "type": str(e.get("type", ""))})
        first = details[0] if details else {"field": None, "message": "invalid request"}
        return error_response(422, "validation_error", f"{first['field']}: {first['message']}", first["field"],
                              details=details[:50])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), "body" if exc.status_code == 413 else None,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"{type(exc).__name__} (see the server log)")
