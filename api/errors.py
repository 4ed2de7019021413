"""Domain errors of the service and their HTTP form, in one place.

Every failure the service reports is a :class:`DomainError` (status, code, message, request field). The
handlers installed by :func:`install_error_handlers` turn it, FastAPI's validation errors and unexpected
exceptions into the JSON body ``{"error": {"status", "code", "field", "message", ...}}``; 429 and 503
carry ``Retry-After``. Messages are scrubbed of server paths (:func:`scrub`).
"""
from __future__ import annotations

import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from structrom.mpi.errors import StructromError

log = logging.getLogger("structrom.api")
_SCRUB: list[tuple[re.Pattern, str]] = [(re.compile(r"/proc/self/fd/\d+"), "model file")]


#: Status recorded for a request whose client closed the connection before its answer (nginx's convention; no
#: client reads it).
CLIENT_CLOSED = 499


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
    """Replace ``path`` (a server directory) by ``replacement`` in every error message from now on (a path below it
    keeps its separator: ``<dir>/small.h5`` reads ``models/small.h5``, not ``modelssmall.h5``)."""
    _SCRUB.insert(0, (re.compile(re.escape(str(path).rstrip("/"))), replacement))


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


#: Longest request field name and message echoed in a validation error (a 1 MB key is not sent back thrice).
MAX_ECHO = 200


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ECHO else f"{text[:MAX_ECHO]}... ({len(text)} characters)"


#: Request fields whose keys are the client's names (sets, surfaces): a key there is never a union member's tag.
NAMED_KEYS = ("pressure", "traction", "force", "displacement")
#: A union member's tag in a pydantic error location (``float``, ``list[tuple[float, float]]``, a model's class
#: name, ``function-after[...]``): not a field of the request.
_MEMBER = re.compile(r"^(float|int|bool|str|none|(list|tuple|dict|set|function-\w+|json-or-python)\[.*\]|"
                     r"[A-Z][A-Za-z]*(Spec|Request))$")


def _request_path(loc: list[str]) -> list[str]:
    """``loc`` without the union members' tags (a client's key of :data:`NAMED_KEYS` kept, whatever its name)."""
    out: list[str] = []
    for part in loc:
        if _MEMBER.match(part) and not (out and out[-1] in NAMED_KEYS):
            continue
        out.append(part)
    return out


def _given(e: dict) -> str:
    """``, got <value>`` for a scalar input of a pydantic error (empty for containers, which the path locates)."""
    value = e.get("input")
    if isinstance(value, (str, bool, int, float)) or value is None:
        return f", got {_clip(json.dumps(value) if not isinstance(value, float) else repr(value))}"
    return ""


def _location(e: dict) -> list[str]:
    """The request path of one pydantic error: its ``loc`` without ``body``/``path``, the query form's tag and the
    union members' tags (:func:`_request_path`)."""
    loc = [str(p) for p in e.get("loc", ())]
    if loc and loc[0] in ("body", "path"):
        loc = loc[1:]
    if loc and loc[0] in ("loading_query", "parameter_query"):  # the form of a query body (api.schemas)
        loc = loc[1:]
    return _request_path(loc)


def _unknown_key_hint(loc: list[str]) -> str:
    """``; did you mean 'pressure'? (allowed keys here: ...)`` for an unknown key at the request path ``loc``,
    from the first request body model whose tables lead there (empty when none does)."""
    from structrom.api import schemas
    from structrom.rom.config import unknown_key_hint

    path = tuple(int(p) if p.isdigit() else p for p in loc)
    for model in (schemas.SolveRequest, schemas.BatchRequest, schemas.ParameterRequest, schemas.FieldsRequest):
        hint = unknown_key_hint(model, path)
        if hint:
            return hint
    return " (check its spelling against the model card's loading_schema or GET /docs)"


def _validation_detail(e: dict) -> dict:
    """``{field, message, type}`` of one pydantic error: ``field`` the dotted request path (``body`` for the
    body as a whole; union members' tags left out), the message with the value given when it is a scalar, long
    names and messages clipped to :data:`MAX_ECHO` characters."""
    loc = _location(e)
    kind, msg = str(e.get("type", "")), str(e.get("msg", ""))
    if kind not in ("json_invalid", "missing", "extra_forbidden", "value_error", "assertion_error") and loc:
        msg += _given(e)
    if kind == "json_invalid":  # loc: (body, character offset)
        at = f" at character {loc[0]}" if loc else ""
        loc, msg = [], (f"not valid JSON{at} ({(e.get('ctx') or {}).get('error', 'decode error')}); send a JSON "
                        "object with Content-Type: application/json")
    elif kind == "extra_forbidden" and loc:
        msg = "unknown key" + _unknown_key_hint(loc)
    elif not loc:
        msg += "; send a JSON object with Content-Type: application/json"
    return {"field": _clip(".".join(loc) or "body"), "message": _clip(msg), "type": kind}


def _unparsable_body(exc: Exception) -> str:
    """The message of a 400 for a body that cannot be parsed (what the parser said, and the fix)."""
    cause = exc.__cause__ or exc.__context__
    why = str(exc.detail) if cause is None else f"{type(cause).__name__}: {cause}"
    return (f"body: cannot be parsed ({_clip(scrub(why))}); send UTF-8 JSON (nesting under 1000 levels, integers "
            "under 4300 digits) with Content-Type: application/json, or an upload as multipart/form-data with at most "
            "1000 parts")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        return error_response(exc.status, exc.code, exc.message, exc.field, retry_after=exc.retry_after, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()[:50]
        details = [_validation_detail(e) for e in errors]
        # the most specific error first: of a union's members, the one that reached furthest into the value (a
        # string inside [time, value] pairs, rather than "the pairs are not a number"; depth in the request, not
        # dots: a set's name may hold one)
        first = details[max(range(len(errors)), key=lambda k: len(_location(errors[k])))] if details else \
            {"field": "body", "message": "invalid request"}
        return error_response(422, "validation_error", f"{first['field']}: {first['message']}", first["field"],
                              details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # a body the JSON / multipart parser gave up on
            return error_response(400, "invalid_body", _unparsable_body(exc), "body")
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        message, field = str(exc.detail), "body" if exc.status_code == 413 else None
        if exc.status_code in (404, 405):  # no route matched: name the request's path and where the routes are listed
            path = _clip(request.url.path)
            message = (f"no route {request.method} {path}; the routes are listed at /docs (OpenAPI: /openapi.json)"
                       if exc.status_code == 404 else f"{request.method} is not allowed on {path}; allowed: "
                       f"{(getattr(exc, 'headers', None) or {}).get('Allow', 'see /docs')}")
            field = "path" if exc.status_code == 404 else "method"
        return error_response(exc.status_code, code, message, field, headers=getattr(exc, "headers", None))

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect):  # a body cut short by its client: no one to answer
        return error_response(CLIENT_CLOSED, "client_closed", "the client closed the connection during its request")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"{type(exc).__name__} (see the server log)")
