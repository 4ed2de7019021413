"""The REST service: a model registry and queries for new loadings (FastAPI; ``structrom serve``).

=======  ==================================  ===========================================================
method   path                                purpose
=======  ==================================  ===========================================================
GET      /health                             liveness (the process answers; never needs a key)
GET      /ready                              readiness: started, solver processes up, index usable, not
                                             saturated; else 503 + Retry-After
GET      /metrics                            Prometheus text format
GET      /v1/models                          published models (id, sizes, sha256) and rejected files
GET      /v1/models/{id}                     model card: sizes, training loadings and ranges, loading
                                             schema, units, indicator tolerance, provenance
PUT      /v1/models/{id}                     publish (or replace) a model file: raw HDF5 body; screened,
                                             validated, then moved in atomically [key]
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

[key]: an API key (``X-API-Key: <key>`` or ``Authorization: Bearer <key>``) is required; with
``read_requires_key`` every route but ``/health`` needs one (documentation and metrics included). Errors
are JSON ``{"error": {"status", "code", "field", "message"}}`` (:mod:`structrom.api.errors`).

Process model: this process parses HTTP and never reads a model file; files are screened, models loaded
and solved in ``workers`` solver processes (:mod:`structrom.api.pool`, :mod:`structrom.api.worker`), so a
crash or a hang in native code costs one request. Routes live in :mod:`structrom.api.routes` (one
``APIRouter`` per area, registered in ``routes.ROUTERS``). No MPI or PETSc import on this path.
"""
from __future__ import annotations

import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import execution
from .config import ServerConfig
from .deps import Services
from .docs_page import install_docs_page
from .errors import add_scrubbed_path, install_error_handlers
from .jobs import Jobs, JobStore
from .metrics import Metrics
from .middleware import Guard
from .pool import Load, SolverPool
from .registry import Registry
from .routes import ROUTERS
from .routes.service import VERSION

log = logging.getLogger("structrom.api")
__all__ = ["VERSION", "create_app", "main_app"]


def _metrics(s: Services) -> Metrics:
    m = s.metrics
    m.counter("structrom_http_requests_total", "HTTP requests by method, route template and status")
    m.histogram("structrom_http_request_duration_seconds", "HTTP request duration by route template")
    m.counter("structrom_solves_total", "loadings solved, by model and outcome")
    m.histogram("structrom_solve_seconds", "time of one loading's solve and QoIs, by model")
    m.gauge("structrom_models_published", "models in the index", lambda: len(s.registry.list()))
    m.gauge("structrom_models_cached", "models loaded in the solver processes", lambda: s.pool.stats()["cached"])
    m.gauge("structrom_model_cache_bytes", "estimated bytes of the loaded models", lambda: s.pool.stats()["bytes"])
    m.gauge("structrom_model_cache_events", "model cache hits, misses, evictions (all solver processes)",
            lambda: {(("event", e),): s.pool.stats()[k] for e, k in
                     (("hit", "hits"), ("miss", "misses"), ("eviction", "evictions"))})
    m.gauge("structrom_jobs", "jobs by status", lambda: s.jobs.store.counts())
    m.gauge("structrom_inflight", "requests and unfinished jobs admitted", lambda: s.load.active)
    m.gauge("structrom_solver_queue", "solver tasks waiting for a process", lambda: s.pool.queued)
    m.gauge("structrom_solver_processes", "solver processes running", lambda: s.pool.alive())
    m.gauge("structrom_solver_failures", "solver processes stopped by a crash or a deadline",
            lambda: {(("cause", "crash"),): s.pool.crashes, (("cause", "deadline"),): s.pool.timeouts})
    m.gauge("structrom_solver_tasks_abandoned", "solver tasks dropped or stopped: their client went away",
            lambda: s.pool.abandoned)
    return m


def create_app(config: ServerConfig) -> FastAPI:
    """The application (solver processes start with its lifespan; they are started by ``forkserver``, so
    a script that runs the application must guard its entry point with ``if __name__ == "__main__"``)."""
    keys = [k.encode() for k in config.api_keys()]
    s = Services(config=config, metrics=Metrics(), keys=keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        s.registry = Registry(config.models_dir, query_log_rows=config.query_log_rows)
        add_scrubbed_path(str(s.registry.dir), "models")
        s.load = Load(config.max_inflight)
        s.pool = SolverPool(config.workers, {
            "cache_models": config.cache_models, "cache_bytes": config.cache_bytes,
            "max_increments": config.max_increments, "max_expanded_bytes": config.max_model_expanded_bytes,
            "max_response_bytes": config.max_response_bytes,
            "log_level": logging.getLogger().level or logging.WARNING,
            "scrub": [(str(s.registry.dir), "models")], "models_dir": str(s.registry.dir)},
            task_timeout=config.request_timeout_seconds)
        await s.pool.start()
        store = JobStore(s.registry.dir, max_jobs=config.max_jobs, max_bytes=config.job_store_bytes,
                         ttl=config.job_ttl_seconds, max_per_client=config.max_jobs_per_client)
        s.jobs = Jobs(store, lambda kind, mid, req: execution.run_job(s, kind, mid, req), s.load)
        await execution.scan(s)
        s.ready = True
        await s.jobs.resume()
        log.info("serving %d model(s) from %s (%d rejected) with %d solver process(es); writes %s",
                 len(s.registry.list()), s.registry.dir, len(s.registry.rejected), config.workers,
                 "enabled" if keys else "DISABLED (no API key configured)")
        try:
            yield
        finally:
            s.ready = False
            await s.jobs.close()
            await s.pool.close()
            s.registry.close()

    app = FastAPI(title="structrom", version=VERSION, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Reduced-order models for nonlinear structural mechanics: a model registry and "
                              "queries for new loadings, with an error indicator per increment.")
    app.state.services = s
    app.state.config = config
    install_error_handlers(app)
    app.add_middleware(Guard, config=config, metrics=_metrics(s), keys=keys)
    for router in ROUTERS:
        app.include_router(router)
    install_docs_page(app)
    return app


def main_app() -> FastAPI:  # for ``uvicorn --factory structrom.api.server:main_app`` with STRUCTROM_CONFIG
    from .config import load_config

    return create_app(load_config(os.environ.get("STRUCTROM_CONFIG") or None))


def uvicorn_options(config: ServerConfig) -> dict:
    """uvicorn settings of :class:`ServerConfig`: read deadlines and connection bounds
    (:mod:`structrom.api.http_guard`)."""
    from .http_guard import guarded_protocol

    return {"http": guarded_protocol(header_timeout=config.header_timeout_seconds,
                                     body_timeout=config.body_timeout_seconds,
                                     max_idle=config.max_idle_connections, max_header_bytes=config.max_header_bytes),
            "timeout_keep_alive": config.keep_alive_seconds, "limit_concurrency": config.max_connections,
            "timeout_graceful_shutdown": 10}
