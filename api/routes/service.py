"""Service routes: liveness, readiness (503 while saturated or not started), Prometheus metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from ..errors import DomainError
from ..responses import Health, Ready, errors

VERSION = "1"
router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health)
async def health() -> dict:
    """Liveness: the process answers (never needs a key)."""
    return {"status": "ok", "version": VERSION}


@router.get("/ready", response_model=Ready, responses=errors())
async def ready(request: Request) -> dict:
    """Readiness: started, solver processes running, models directory and index usable, and not
    saturated (requests and jobs in flight below ``max_inflight``); else 503 with ``Retry-After``."""
    s = request.app.state.services
    if not s.ready:
        raise DomainError(503, "not_ready", "starting or stopping", retry_after=2)
    if s.load.saturated:
        raise DomainError(503, "saturated", f"{s.load.active} requests and jobs in flight (limit {s.load.limit})",
                          retry_after=1)
    if s.pool.alive() == 0:
        raise DomainError(503, "no_solver_process", "no solver process is running", retry_after=2)
    ok, why = s.registry.ready()
    if not ok:
        raise DomainError(503, "not_ready", why, retry_after=5)
    return {"status": "ready", "models": len(s.registry.list())}


@router.get("/metrics", response_class=PlainTextResponse, responses=errors())
async def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text exposition format."""
    return PlainTextResponse(request.app.state.services.metrics.render(), media_type="text/plain; version=0.0.4")
