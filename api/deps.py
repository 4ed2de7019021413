"""Dependencies of the routes: the running services (registry, solver pool, jobs, admission bound,
metrics) and the API-key checks."""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from structrom.mpi.errors import StructromError

from .config import ServerConfig
from .errors import DomainError
from .metrics import Metrics


@dataclass
class Services:
    """What the routes use; built by the application's lifespan (``app.state.services``)."""

    config: ServerConfig
    metrics: Metrics
    keys: list[bytes]
    registry: Any = None  # structrom.api.registry.Registry
    pool: Any = None  # structrom.api.pool.SolverPool
    load: Any = None  # structrom.api.pool.Load
    jobs: Any = None  # structrom.api.jobs.Jobs
    ready: bool = False
    extra: dict = field(default_factory=dict)


async def services(request: Request) -> Services:
    s = request.app.state.services
    if not s.ready:
        raise DomainError(503, "not_ready", "starting or stopping", retry_after=2)
    return s


def given_key(headers) -> bytes | None:
    key = headers.get("x-api-key")
    if key is None:
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
    return key.encode() if key else None


def check_key(keys: list[bytes], given: bytes | None) -> None:
    if given is None:
        raise DomainError(401, "missing_api_key", "an API key is required (header X-API-Key or "
                          "Authorization: Bearer)", "headers.x-api-key")
    ok = False
    for k in keys:  # constant time per key, and every key compared
        ok |= hmac.compare_digest(k, given)
    if not ok:
        raise DomainError(401, "invalid_api_key", "invalid API key", "headers.x-api-key")


def job_owner(request: Request) -> str:
    """The client that owns a job (:class:`structrom.api.jobs.JobStore` bounds each one's share): a digest of its API
    key when the key is one of the server's (an unchecked key would give a client a new identity per request), else
    its address."""
    keys = request.app.state.services.keys
    key = given_key(request.headers)
    try:
        check_key(keys, key)
    except DomainError:
        return f"address:{request.client.host if request.client else 'unknown'}"
    return "key:" + hashlib.sha256(key).hexdigest()[:16]


async def require_read(request: Request) -> None:
    """Reads need a key with ``read_requires_key`` (also enforced for every route but /health by the
    middleware, which covers /docs and /openapi.json too)."""
    s = request.app.state.services
    if s.config.read_requires_key:
        check_key(s.keys, given_key(request.headers))


async def require_write(request: Request) -> None:
    s = request.app.state.services
    if not s.keys:
        raise DomainError(403, "writes_disabled", "this server has no API key configured: writes are "
                          f"disabled (restart it with keys_file, --keys-file, or the {s.config.keys_env} "
                          "environment variable set)")
    check_key(s.keys, given_key(request.headers))


# async: cheap checks, run on the event loop (a sync dependency would cost a threadpool hop per request)
Read, Write = Depends(require_read), Depends(require_write)


# -- JSON bodies ---------------------------------------------------------------------------------------------------
class DuplicateKeyError(StructromError, ValueError):
    """A JSON object of a request with a key twice (``json.loads`` would keep the last value without a word)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"the key {key[:64]!r} appears twice in one JSON object; give each key once")
        out[key] = value
    return out


def loads_unique(text: str | bytes) -> Any:
    """``json.loads`` refusing an object with a key twice (:class:`DuplicateKeyError`)."""
    return json.loads(text, object_pairs_hook=_unique_keys)


class _UniqueKeysRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_unique(await self.body())
        return self._json


class UniqueKeysRoute(APIRoute):
    """A route whose JSON body is parsed with :func:`loads_unique`: a key given twice answers 400 ``invalid_body``
    naming the key (the parse error handler of :mod:`.errors`)."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def route_handler(request: Request):
            return await handler(_UniqueKeysRequest(request.scope, request.receive))

        return route_handler
