"""The REST service: a model registry and queries for new loadings (FastAPI; ``structrom serve``).

=======  ==================================  ===========================================================
method   path                                purpose
=======  ==================================  ===========================================================
GET      /health                             liveness (the process answers)
GET      /ready                              readiness (models directory and index usable), else 503
GET      /metrics                            Prometheus text format
GET      /v1/models                          published models (id, sizes, sha256)
GET      /v1/models/{id}                     model card: sizes, training loadings and ranges, loading
                                             schema, units, indicator tolerance, provenance
PUT      /v1/models/{id}                     publish (or replace) a model file: raw HDF5 body; validated,
                                             then moved in atomically [key]
DELETE   /v1/models/{id}                     unpublish [key]
POST     /v1/models/{id}/solve               one loading (JSON) -> QoIs, indicator per increment, trust;
                                             ``?background=true``: 202 + Location of a job
POST     /v1/models/{id}/solve/nodal         multipart: ``request`` (JSON) + ``temperature`` (.npy / HDF5)
POST     /v1/models/{id}/batch               many loadings; above ``sync_batch_max`` (or with
                                             ``?background=true``): 202 + Location of a job
POST     /v1/models/{id}/fields              reconstructed fields as VTU, XDMF (zip) or HDF5
GET      /v1/jobs/{job}                      a job's status and, when done, its result
GET      /v1/queries                         the query log (latest first) [key]
=======  ==================================  ===========================================================

[key]: an API key (``X-API-Key: <key>`` or ``Authorization: Bearer <key>``) is required; reads need one
too when ``read_requires_key``. Errors are JSON ``{"error": {"status", "code", "field", "message"}}``.
Solves run in a bounded thread pool, never on the event loop. No MPI or PETSc import on this path.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import model_page, service
from .config import ServerConfig
from .metrics import Metrics
from .registry import MODEL_ID, Registry, RegistryError
from . import routes_enrich
from .schemas import BatchRequest, FieldsRequest, NodalRequest, SolveRequest

log = logging.getLogger("structrom.api")
VERSION = "1"
ModelId = Annotated[str, PathParam(pattern=MODEL_ID.pattern, max_length=64,
                                   description="model id: letters, digits, '_' and '-' (no dots, no slashes)")]


def error_body(status: int, code: str, message: str, field: str | None = None, **extra) -> dict:
    return {"error": {"status": status, "code": code, "field": field, "message": message, **extra}}


def _error_response(status: int, code: str, message: str, field: str | None = None,
                    headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, field, **extra), status_code=status, headers=headers)


# -- request size limits (pure ASGI: rejects before the body is read) -------------------------------------------
class _TooLarge(HTTPException):
    """Raised while reading a body past the limit (an HTTPException, so FastAPI's body parsing and the
    exception handlers turn it into a 413 rather than a 400 / 500)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


class LimitsAndMetrics:
    """Rejects bodies over the limit with 413 (from ``Content-Length`` before reading anything, or while
    streaming a chunked body) and records request counts and durations per route template."""

    def __init__(self, app, config: ServerConfig, metrics: Metrics) -> None:
        self.app, self.config, self.metrics = app, config, metrics

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
        headers = dict(scope.get("headers") or [])
        cl = headers.get(b"content-length")
        try:
            if cl is not None:
                if not cl.strip().isdigit():
                    resp = _error_response(400, "bad_content_length", "Content-Length must be a number", "headers")
                    return await resp(scope, receive, send_wrapper)
                if int(cl) > limit:
                    resp = _error_response(413, "body_too_large", f"request body of {int(cl)} bytes exceeds the limit "
                                           f"of {limit} bytes", "body", limit=limit)
                    return await resp(scope, receive, send_wrapper)
            seen = 0

            async def limited_receive():
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise _TooLarge(limit)
                return message

            try:
                await self.app(scope, limited_receive, send_wrapper)
            except _TooLarge:
                if not status["started"]:
                    resp = _error_response(413, "body_too_large", f"request body exceeds the limit of {limit} bytes",
                                           "body", limit=limit)
                    await resp(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.inc("structrom_http_requests_total", method=scope.get("method", ""), route=label,
                             status=status["code"])
            self.metrics.observe("structrom_http_request_duration_seconds", time.perf_counter() - start, route=label)


# -- jobs -------------------------------------------------------------------------------------------------------------
class Jobs:
    """Background jobs run on the solver pool; kept in memory (bounded count, finished ones expire)."""

    def __init__(self, executor: ThreadPoolExecutor, max_jobs: int, ttl: float) -> None:
        self.executor, self.max_jobs, self.ttl = executor, max_jobs, ttl
        self._jobs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = time.time()
        done = sorted((j["finished"], k) for k, j in self._jobs.items() if j["finished"] is not None)
        for finished, k in done:
            if now - finished > self.ttl or len(self._jobs) >= self.max_jobs:
                del self._jobs[k]

    def submit(self, kind: str, model_id: str, fn) -> dict:
        with self._lock:
            self._expire()
            if len(self._jobs) >= self.max_jobs:
                raise RegistryError(429, "too_many_jobs", f"{len(self._jobs)} jobs are pending or running; retry later")
            job_id = secrets.token_urlsafe(16)
            job = {"id": job_id, "kind": kind, "model": model_id, "status": "pending", "created": time.time(),
                   "started": None, "finished": None, "result": None, "error": None}
            self._jobs[job_id] = job

        def run():
            job["status"], job["started"] = "running", time.time()
            try:
                job["result"] = fn()
                job["status"] = "done"
            except RegistryError as exc:
                job["error"] = error_body(exc.status, exc.code, exc.message, exc.field)["error"]
                job["status"] = "failed"
            except Exception as exc:  # noqa: BLE001 - reported in the job, logged
                log.exception("job %s failed", job_id)
                job["error"] = error_body(500, "internal_error", f"{type(exc).__name__}: {exc}")["error"]
                job["status"] = "failed"
            finally:
                job["finished"] = time.time()

        self.executor.submit(run)
        return job

    def get(self, job_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise RegistryError(404, "unknown_job", f"no job {job_id!r} (finished jobs expire)", "job_id")
        return dict(job)

    def counts(self) -> dict:
        with self._lock:
            out = {(("status", s),): 0 for s in ("pending", "running", "done", "failed")}
            for j in self._jobs.values():
                out[(("status", j["status"]),)] += 1
            return out


# -- the application ----------------------------------------------------------------------------------------------------
def create_app(config: ServerConfig) -> FastAPI:
    metrics = Metrics()
    keys = [k.encode() for k in config.api_keys()]
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        registry = Registry(config.models_dir, cache_models=config.cache_models, cache_bytes=config.cache_bytes,
                            query_log_rows=config.query_log_rows)
        executor = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="solver")
        state.update(registry=registry, executor=executor, jobs=Jobs(executor, config.max_jobs, config.job_ttl_seconds),
                     pending=0, ready=True)
        log.info("serving %d model(s) from %s (%d rejected); writes %s", len(registry.list()), registry.dir,
                 len(registry.rejected), "enabled" if keys else "DISABLED (no API key configured)")
        try:
            yield
        finally:
            state["ready"] = False
            executor.shutdown(wait=False, cancel_futures=True)
            registry.close()

    app = FastAPI(title="structrom", version=VERSION, lifespan=lifespan,
                  description="Reduced-order models for nonlinear structural mechanics: a model registry and "
                              "queries for new loadings, with an error indicator per increment.")
    app.add_middleware(LimitsAndMetrics, config=config, metrics=metrics)

    metrics.counter("structrom_http_requests_total", "HTTP requests by method, route template and status")
    metrics.histogram("structrom_http_request_duration_seconds", "HTTP request duration by route template")
    metrics.counter("structrom_solves_total", "loadings solved, by model and outcome")
    metrics.histogram("structrom_solve_seconds", "time of one loading's solve and QoIs, by model")
    metrics.gauge("structrom_models_published", "models in the index", lambda: len(state["registry"].list()))
    metrics.gauge("structrom_models_cached", "models loaded in memory", lambda: state["registry"].cached_count())
    metrics.gauge("structrom_model_cache_bytes", "estimated bytes of the loaded models",
                  lambda: state["registry"].cached_bytes())
    metrics.gauge("structrom_model_cache_events", "model cache hits, misses, evictions",
                  lambda: {(("event", "hit"),): state["registry"].hits, (("event", "miss"),): state["registry"].misses,
                           (("event", "eviction"),): state["registry"].evictions})
    metrics.gauge("structrom_jobs", "jobs by status", lambda: state["jobs"].counts())
    metrics.gauge("structrom_pending_solves", "requests waiting for or running on the solver pool",
                  lambda: state["pending"])

    # -- errors ---------------------------------------------------------------------------------------------------
    @app.exception_handler(RegistryError)
    async def _registry_error(request: Request, exc: RegistryError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return _error_response(exc.status, exc.code, exc.message, exc.field, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        details = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            if loc and loc[0] in ("body", "path"):
                loc = loc[1:]
            details.append({"field": ".".join(loc), "message": e.get("msg", ""), "type": e.get("type", "")})
        first = details[0] if details else {"field": None, "message": "invalid request"}
        return _error_response(422, "validation_error", f"{first['field']}: {first['message']}", first["field"],
                               details=details[:50])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code, "http_error")
        return _error_response(exc.status_code, code, str(exc.detail), "body" if exc.status_code == 413 else None,
                               headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error_response(500, "internal_error", f"{type(exc).__name__} (see the server log)")

    # -- security -----------------------------------------------------------------------------------------------------
    def _given_key(request: Request) -> bytes | None:
        key = request.headers.get("x-api-key")
        if key is None:
            auth = request.headers.get("authorization", "")
            if auth[:7].lower() == "bearer ":
                key = auth[7:].strip()
        return key.encode() if key else None

    def _check_key(given: bytes | None) -> None:
        if given is None:
            raise RegistryError(401, "missing_api_key", "an API key is required (header X-API-Key or "
                                "Authorization: Bearer)", "headers.x-api-key")
        ok = False
        for k in keys:  # constant time per key, and every key compared
            ok |= hmac.compare_digest(k, given)
        if not ok:
            raise RegistryError(401, "invalid_api_key", "invalid API key", "headers.x-api-key")

    async def require_read(request: Request) -> None:
        if config.read_requires_key:
            _check_key(_given_key(request))

    async def require_write(request: Request) -> None:
        if not keys:
            raise RegistryError(403, "writes_disabled", "this server has no API key configured: writes are "
                                "disabled (set keys_file or the keys environment variable)")
        _check_key(_given_key(request))

    # async: cheap checks, run on the event loop (a sync dependency would cost a threadpool hop per request)
    Read, Write = Depends(require_read), Depends(require_write)

    # -- helpers ------------------------------------------------------------------------------------------------------
    async def run(fn, n: int = 1):
        """Run ``fn`` on the solver pool (bounded waiting line)."""
        if state["pending"] >= max(4 * config.workers, 64):
            raise RegistryError(429, "busy", "too many requests in flight; retry later")
        state["pending"] += n
        try:
            return await asyncio.get_running_loop().run_in_executor(state["executor"], fn)
        finally:
            state["pending"] -= n

    def check_id(model_id: str) -> None:
        state["registry"].path(model_id)

    def solve_logged(model_id: str, kind: str, body, spec_list, temperature=None) -> Any:
        reg: Registry = state["registry"]
        t0 = time.perf_counter()
        status = 200
        try:
            model = reg.get(model_id)
            if kind == "batch":
                results = []
                for i, spec in enumerate(spec_list):
                    ts = time.perf_counter()
                    try:
                        results.append(service.solve(model, spec, body, max_increments=config.max_increments,
                                                     field_prefix=f"loadings.{i}."))
                        metrics.inc("structrom_solves_total", model=model_id, outcome="ok")
                    except RegistryError as exc:
                        results.append(error_body(exc.status, exc.code, exc.message, exc.field))
                        metrics.inc("structrom_solves_total", model=model_id, outcome="rejected")
                    metrics.observe("structrom_solve_seconds", time.perf_counter() - ts, model=model_id)
                return {"model": model_id, "results": results,
                        "ok": sum("error" not in r for r in results), "failed": sum("error" in r for r in results)}
            try:
                out = service.solve(model, spec_list[0], body, max_increments=config.max_increments,
                                    temperature=temperature)
            except RegistryError:
                metrics.inc("structrom_solves_total", model=model_id, outcome="rejected")
                raise
            metrics.inc("structrom_solves_total", model=model_id, outcome="ok")
            metrics.observe("structrom_solve_seconds", time.perf_counter() - t0, model=model_id)
            out["model"] = model_id
            return out
        except RegistryError as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            reg.log_query(model_id, kind, status, len(spec_list), 1e3 * (time.perf_counter() - t0))

    def accepted(job: dict) -> JSONResponse:
        loc = f"/v1/jobs/{job['id']}"
        return JSONResponse({"job": job["id"], "status": job["status"], "location": loc}, status_code=202,
                            headers={"Location": loc})

    # -- endpoints ------------------------------------------------------------------------------------------------------
    @app.get("/health", tags=["service"])
    async def health():
        """Liveness: the process answers."""
        return {"status": "ok", "version": VERSION}

    @app.get("/ready", tags=["service"], responses={503: {"description": "not ready"}})
    async def ready():
        """Readiness: the models directory and its index are usable."""
        if not state.get("ready"):
            return _error_response(503, "not_ready", "starting or stopping")
        ok, why = state["registry"].ready()
        if not ok:
            return _error_response(503, "not_ready", why)
        return {"status": "ready", "models": len(state["registry"].list())}

    @app.get("/metrics", tags=["service"], response_class=PlainTextResponse)
    async def metrics_endpoint():
        """Prometheus text exposition format."""
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", tags=["models"], dependencies=[Read])
    async def list_models():
        """Published models."""
        reg: Registry = state["registry"]
        return {"models": reg.list(), "rejected": sorted(reg.rejected)}

    @app.get("/v1/models/{model_id}", tags=["models"], dependencies=[Read])
    async def model_card(model_id: ModelId):
        """The model card: sizes, surfaces and node sets, training loadings and ranges (``loading_schema``),
        units, indicator quantity and tolerance, provenance."""
        return state["registry"].card(model_id)

    @app.put("/v1/models/{model_id}", tags=["models"], dependencies=[Write], status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}})
    async def publish(model_id: ModelId, request: Request):
        """Publish (or replace) a model: the raw model file (HDF5) as the body. Validated with
        ``structrom.rom.model_file.load`` in a temp file of the models directory, then moved in atomically."""
        reg: Registry = state["registry"]
        check_id(model_id)
        fd, tmp = reg.temp_upload()
        h, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > config.max_model_bytes:
                        raise _TooLarge(config.max_model_bytes)
                    h.update(chunk)
                    f.write(chunk)
            if size == 0:
                raise RegistryError(422, "empty_body", "the body must be the model file (HDF5)", "body")
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        card = await run(lambda: reg.publish(model_id, tmp, h.hexdigest()))
        return JSONResponse(card, status_code=200 if card.pop("replaced") else 201,
                            headers={"Location": f"/v1/models/{model_id}"})

    @app.delete("/v1/models/{model_id}", tags=["models"], dependencies=[Write], status_code=204)
    async def unpublish(model_id: ModelId):
        """Remove a model."""
        state["registry"].delete(model_id)
        return Response(status_code=204)

    @app.post("/v1/models/{model_id}/solve", tags=["queries"], dependencies=[Read],
              responses={202: {"description": "accepted as a job (``background=true``)"}})
    async def solve(model_id: ModelId, body: SolveRequest,
                    background: Annotated[bool, Query(description="run as a job: 202 + Location")] = False):
        """Solve one loading: max von Mises and max cumulated plastic strain per increment, displacements
        of the requested node sets, the error indicator per increment and the trust flags."""
        check_id(model_id)
        fn = lambda: solve_logged(model_id, "solve", body, [body.loading])  # noqa: E731
        if background:
            return accepted(state["jobs"].submit("solve", model_id, fn))
        return JSONResponse(await run(fn))  # plain JSON (lists and floats): no jsonable_encoder pass

    @app.post("/v1/models/{model_id}/solve/nodal", tags=["queries"], dependencies=[Read])
    async def solve_nodal(model_id: ModelId,
                          request: Annotated[str, Form(description="JSON of the solve request (NodalRequest): "
                                                       "loading without temperature values, options")],
                          temperature: Annotated[UploadFile, File(description="(n_times, n_nodes) nodal "
                                                                  "temperatures: .npy or HDF5")]):
        """Solve a loading whose nodal temperature field is uploaded (.npy or HDF5, one row per time of
        ``temperature_times`` or of the loading)."""
        check_id(model_id)
        try:
            body = NodalRequest.model_validate_json(request)
        except ValidationError as exc:
            e = exc.errors()[0]
            field = "request." + ".".join(str(p) for p in e["loc"]) if e["loc"] else "request"
            raise RegistryError(422, "validation_error", f"{field}: {e['msg']}", field) from None
        data = await temperature.read()
        if body.temperature_times is not None:
            times = body.temperature_times
        elif body.loading.times is not None:
            times = body.loading.times
        else:
            times = [i * body.loading.end_time / body.loading.increments for i in range(body.loading.increments + 1)]

        def fn():
            import numpy as np

            nodal = service.read_nodal_upload(data, temperature.filename or "", np.asarray(times, float),
                                              max_nodes=10**8)
            return solve_logged(model_id, "solve_nodal", body, [body.loading], temperature=nodal)

        return JSONResponse(await run(fn))

    @app.post("/v1/models/{model_id}/batch", tags=["queries"], dependencies=[Read],
              responses={202: {"description": "accepted as a job"}})
    async def batch(model_id: ModelId, body: BatchRequest,
                    background: Annotated[bool, Query(description="run as a job: 202 + Location")] = False):
        """Solve many loadings (same options for all); a bad loading fails alone (its item is an error).
        Batches larger than the server's ``sync_batch_max`` always run as a job (202 + Location)."""
        check_id(model_id)
        if len(body.loadings) > config.max_batch:
            raise RegistryError(422, "batch_too_large", f"{len(body.loadings)} loadings; at most {config.max_batch} "
                                "per request", "loadings")
        fn = lambda: solve_logged(model_id, "batch", body, body.loadings)  # noqa: E731
        if background or len(body.loadings) > config.sync_batch_max:
            return accepted(state["jobs"].submit("batch", model_id, fn))
        return JSONResponse(await run(fn, 1))

    @app.post("/v1/models/{model_id}/fields", tags=["queries"], dependencies=[Read],
              responses={200: {"content": {"application/octet-stream": {}}, "description": "the file"}})
    async def fields(model_id: ModelId, body: FieldsRequest):
        """Solve a loading and download the reconstructed fields (displacement at the nodes; dual
        quantities averaged per element for VTU/XDMF, per integration point in HDF5)."""
        check_id(model_id)

        def fn():
            reg: Registry = state["registry"]
            t0 = time.perf_counter()
            status = 200
            try:
                return service.fields(reg.get(model_id), body.loading, extrapolate=body.extrapolate, fmt=body.format,
                                      increment=body.increment, quantities=body.quantities,
                                      max_increments=config.max_increments)
            except RegistryError as exc:
                status = exc.status
                raise
            finally:
                reg.log_query(model_id, "fields", status, 1, 1e3 * (time.perf_counter() - t0))

        content, media, name = await run(fn)
        return Response(content, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/v1/jobs/{job_id}", tags=["queries"], dependencies=[Read])
    async def job(job_id: str):
        """A job: ``status`` pending / running / done / failed; ``result`` or ``error`` when finished."""
        return state["jobs"].get(job_id)

    @app.get("/v1/queries", tags=["service"], dependencies=[Write])
    async def queries(limit: Annotated[int, Query(ge=1, le=10_000)] = 100):
        """The query log (latest first): time, model, kind, status, number of loadings, milliseconds."""
        return {"queries": state["registry"].query_log(limit)}

    routes_enrich.register(app, state, Write)
    app.state.config = config
    app.state.internal = state
    model_page.register(app, lambda: state["registry"], Read)  # GET /v1/models/{id}/page
    return app


def main_app() -> FastAPI:  # for ``uvicorn --factory structrom.api.server:main_app`` with STRUCTROM_CONFIG
    from .config import load_config

    return create_app(load_config(os.environ.get("STRUCTROM_CONFIG") or None))

