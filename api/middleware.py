"""ASGI middleware: body size limits (413 before reading), query strings (a parameter given twice: 400), the read
key for every route but ``/health`` (``read_requires_key``: documentation and metrics included), a request whose
client went away cancelled (:class:`Guard`), and request metrics per route template."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from urllib.parse import parse_qsl

from fastapi import HTTPException

from .config import ServerConfig
from .deps import check_key, given_key
from .errors import CLIENT_CLOSED, DomainError, error_response
from .metrics import Metrics

OPEN_PATHS = {"/health"}


class _TooLarge(HTTPException):
    """Raised while reading a body past the limit (an HTTPException, so FastAPI's body parsing and the
    exception handlers turn it into a 413 rather than a 400 / 500)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class _Headers:
    def __init__(self, raw) -> None:
        self._d = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}

    def get(self, key, default=None):
        return self._d.get(key, default)


#: Query parameters per request, at most (the routes take one or two).
MAX_QUERY_PARAMETERS = 32


def query_problem(query_string: bytes) -> tuple[str, str] | None:
    """``(field, message)`` of a query string the routes must not see: a parameter given twice (the framework keeps
    one of the values without a word) or more than :data:`MAX_QUERY_PARAMETERS` parameters; None when it is fine."""
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True,
                          max_num_fields=MAX_QUERY_PARAMETERS)
    except ValueError:
        return "query", f"more than {MAX_QUERY_PARAMETERS} query parameters; give each parameter of the route once"
    twice = [name for name, n in Counter(name for name, _ in pairs).items() if n > 1]
    if twice:
        name = twice[0][:64]
        return f"query.{name}", f"the query parameter {name!r} is given more than once; give it once"
    return None


class Guard:
    """Rejects bodies over the limit with 413 (from ``Content-Length`` before reading anything, or while
    streaming a chunked body), requires the read key when configured, records request counts and
    durations per route template.

    A client that closes its connection once its body is sent and before the answer starts cancels the request:
    the route's task is cancelled, so its solver task is dropped from the queue, or stopped if it runs on
    (:class:`structrom.api.pool.SolverPool`). Without this, requests sent and abandoned at once were all solved, and
    an interactive client waited behind them. The request is recorded with status :data:`CLIENT_CLOSED`."""

    def __init__(self, app, config: ServerConfig, metrics: Metrics, keys: list[bytes]) -> None:
        self.app, self.config, self.metrics, self.keys = app, config, metrics, keys

    def limit(self, scope) -> int:
        path = scope.get("path", "")
        if scope.get("method") == "PUT" and path.startswith("/v1/models/") and path.count("/") == 3:
            return self.config.max_model_bytes
        return self.config.max_request_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        limit = self.limit(scope)
        raw = scope.get("headers") or []
        try:
            if self.config.read_requires_key and scope.get("path") not in OPEN_PATHS:
                try:
                    check_key(self.keys, given_key(_Headers(raw)))
                except DomainError as exc:
                    return await error_response(exc.status, exc.code, exc.message, exc.field)(scope, receive,
                                                                                              send_wrapper)
            cl = dict(raw).get(b"content-length")
            if cl is not None:
                if not cl.strip().isdigit():
                    resp = error_response(400, "bad_content_length", "Content-Length must be a number", "headers")
                    return await resp(scope, receive, send_wrapper)
                if int(cl) > limit:
                    resp = error_response(413, "body_too_large", f"request body of {int(cl)} bytes exceeds the "
                                          f"limit of {limit} bytes", "body", limit=limit)
                    return await resp(scope, receive, send_wrapper)
            problem = query_problem(scope.get("query_string") or b"")
            if problem is not None:
                resp = error_response(400, "invalid_query", problem[1], problem[0])
                return await resp(scope, receive, send_wrapper)
            seen = 0
            watch = _DisconnectWatch(receive, status)

            async def limited_receive():
                nonlocal seen
                if watch.body_done:  # the rest is the disconnect the watcher waits for
                    return await watch.disconnected()
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise _TooLarge(limit)
                    if not message.get("more_body", False):
                        watch.start()
                return message

            try:
                await watch.run(self.app(scope, limited_receive, send_wrapper))
            except _TooLarge:
                if not status["started"]:
                    resp = error_response(413, "body_too_large", f"request body exceeds the limit of {limit} bytes",
                                          "body", limit=limit)
                    await resp(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.inc("structrom_http_requests_total", method=scope.get("method", ""), route=label,
                             status=status["code"])
            self.metrics.observe("structrom_http_request_duration_seconds", time.perf_counter() - start, route=label)


class _DisconnectWatch:
    """Once a request's body is read, waits for the client's ``http.disconnect`` (the server's ``receive`` returns
    it when the connection closes, or once the response is complete) and cancels the route's task if its answer
    has not started; later ``receive`` calls of the route get that same message."""

    def __init__(self, receive, status: dict) -> None:
        self._receive, self._status = receive, status
        self.body_done = False
        self._app: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._message: asyncio.Future | None = None
        self.cancelled = False

    def start(self) -> None:
        self.body_done = True
        self._message = asyncio.get_running_loop().create_future()
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        message = await self._receive()
        if not self._message.done():
            self._message.set_result(message)
        if message["type"] == "http.disconnect" and not self._status["started"] and self._app is not None \
                and not self._app.done():
            self.cancelled = True
            self._app.cancel()

    async def disconnected(self) -> dict:
        return await asyncio.shield(self._message)

    async def run(self, coro) -> None:
        """Run the application ``coro`` as a task; return quietly when the watcher cancelled it."""
        self._app = asyncio.ensure_future(coro)
        try:
            await self._app
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not self.cancelled or (current is not None and current.cancelling()):
                raise  # the server's own cancellation (shutdown), not the client's
            self._status["code"] = CLIENT_CLOSED
        finally:
            if self._watcher is not None and not self._watcher.done():
                self._watcher.cancel()
