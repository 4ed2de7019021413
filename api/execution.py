"""What the query routes and the jobs run: admission, the solver-pool task, metrics and the query log.

Every function here runs on the event loop and only awaits: the work happens in the solver processes
(:mod:`structrom.api.worker`), SQLite writes are single small inserts.
"""
from __future__ import annotations

import asyncio
import time

from .deps import Services
from .errors import CLIENT_CLOSED, DomainError
from pydantic import TypeAdapter

from .schemas import BatchBody, ParameterBatchRequest, SolveBody, SolveRequest
from .worker import pin_for_tasks, unpin

_SOLVE, _BATCH = TypeAdapter(SolveBody), TypeAdapter(BatchBody)
#: Solver-pool priorities: interactive requests before job chunks.
INTERACTIVE, BACKGROUND = 0, 1


def _record(s: Services, model_id: str, results: list[dict]) -> list[dict]:
    for r in results:
        seconds = r.pop("_seconds", None)
        ok = "error" not in r
        s.metrics.inc("structrom_solves_total", model=model_id, outcome="ok" if ok else "rejected")
        if seconds is not None:
            s.metrics.observe("structrom_solve_seconds", seconds, model=model_id)
    return results


async def _logged(s: Services, model_id: str, kind: str, loadings: int, coro):
    t0 = time.perf_counter()
    status = 200
    try:
        return await coro
    except DomainError as exc:
        status = exc.status
        if kind in ("solve", "solve_nodal") and exc.status == 422:
            s.metrics.inc("structrom_solves_total", model=model_id, outcome="rejected")
        raise
    except asyncio.CancelledError:
        status = CLIENT_CLOSED  # the client closed its connection (api.middleware.Guard)
        raise
    except BaseException:
        status = 500
        raise
    finally:
        s.registry.log_query(model_id, kind, status, loadings, 1e3 * (time.perf_counter() - t0))


async def _admitted(s: Services, coro):
    s.load.enter()
    try:
        return await coro
    finally:
        s.load.leave()


async def solve(s: Services, model_id: str, body, *, priority: int = INTERACTIVE) -> dict:
    path = str(s.registry.servable(model_id))

    async def go():
        spec = body.loading if isinstance(body, SolveRequest) else {"parameters": body.parameters}
        (out,) = _record(s, model_id, await s.pool.run("solve", model_id, path, body, [spec], priority=priority))
        out["model"] = model_id
        return out

    coro = _logged(s, model_id, "solve", 1, go())
    return await (_admitted(s, coro) if priority == INTERACTIVE else coro)


async def solve_nodal(s: Services, model_id: str, body, data: bytes, filename: str, times: list[float],
                      times_field: str | None = None) -> dict:
    """``times``: of the uploaded rows; ``times_field``: the request field that gave them (None: the loading's)."""
    path = str(s.registry.servable(model_id))

    async def go():
        (out,) = _record(s, model_id, await s.pool.run("solve", model_id, path, body, [body.loading], None,
                                                       (data, filename, times, times_field)))
        out["model"] = model_id
        return out

    return await _admitted(s, _logged(s, model_id, "solve_nodal", 1, go()))


async def batch(s: Services, model_id: str, body, *, priority: int = INTERACTIVE) -> dict:
    """Every loading of ``body`` (one task for a request; chunks of ``job_chunk`` loadings for a job, so
    that interactive requests interleave, all answered by the version of the model published when it starts)."""
    path = str(s.registry.servable(model_id))
    queries = body.queries
    n = len(queries)
    step = n if priority == INTERACTIVE else s.config.job_chunk
    key = "parameters" if isinstance(body, ParameterBatchRequest) else "loadings"

    async def go():
        results: list[dict] = []
        # several tasks: all answered by the version published now, even if it is replaced meanwhile
        version = pin_for_tasks(model_id, path) if n > step else path
        try:
            for start in range(0, n, step):
                specs = queries[start:start + step]
                prefixes = [f"{key}.{i}." for i in range(start, start + len(specs))]
                results += _record(s, model_id, await s.pool.run("solve", model_id, version, body, specs, prefixes,
                                                                 priority=priority))
        finally:
            unpin(version, path)
        return {"model": model_id, "results": results, "ok": sum("error" not in r for r in results),
                "failed": sum("error" in r for r in results)}

    coro = _logged(s, model_id, "batch", n, go())
    return await (_admitted(s, coro) if priority == INTERACTIVE else coro)


async def fields(s: Services, model_id: str, body) -> tuple[bytes, str, str]:
    path = str(s.registry.servable(model_id))
    coro = s.pool.run("fields", model_id, path, body)
    return await _admitted(s, _logged(s, model_id, "fields", 1, coro))


async def deck(s: Services, model_id: str, data: bytes, filename: str, fmt: str, extrapolate: bool):
    """An uploaded CalculiX deck answered in a solver process (summary dict, or file content)."""
    path = str(s.registry.servable(model_id))
    coro = s.pool.run("deck", model_id, path, data, filename, fmt, extrapolate, s.config.max_request_bytes)
    return await _admitted(s, _logged(s, model_id, "deck", 1, coro))


async def figures(s: Services, model_id: str) -> dict[str, str]:
    """The model page's plots (SVG texts), rendered by a solver process."""
    path = str(s.registry.servable(model_id))
    return await _admitted(s, s.pool.run("figures", model_id, path))


async def run_job(s: Services, kind: str, model_id: str, request: dict):
    """The runner of :class:`structrom.api.jobs.Jobs`: a persisted request, solved at background priority."""
    if kind == "solve":
        return await solve(s, model_id, _SOLVE.validate_python(request), priority=BACKGROUND)
    if kind == "batch":
        return await batch(s, model_id, _BATCH.validate_python(request), priority=BACKGROUND)
    if kind == "enrich":
        return await enrich(s, model_id, request)
    raise DomainError(500, "unknown_job_kind", f"job kind {kind!r} is not known to this server")


async def enrich(s: Services, model_id: str, request: dict) -> dict:
    """``structrom enrich`` in a child process (HF solves need PETSc or CalculiX, never loaded here), then
    the index refreshed (the new version is screened by a solver process like any model file)."""
    import asyncio

    from .routes_enrich import EnrichRequest, run_enrich

    s.registry.begin_enrichment(model_id)  # (409 if already; PUT and DELETE of the model refused meanwhile)
    try:
        path = s.registry.servable(model_id)
        out = await asyncio.to_thread(run_enrich, s.registry.dir, path, EnrichRequest.model_validate(request))
        await scan(s)
        return out
    finally:
        s.registry.end_enrichment(model_id)


# -- the models directory -----------------------------------------------------------------------------------------
_scan_lock: asyncio.Lock | None = None


async def scan(s: Services) -> None:
    """Screen and index new or changed model files (in the solver processes), forget vanished ones."""
    global _scan_lock
    if _scan_lock is None:
        _scan_lock = asyncio.Lock()
    async with _scan_lock:
        for model_id, path, ident in await asyncio.to_thread(s.registry.changed):
            try:
                described = await s.pool.run("describe", model_id, str(path), priority=INTERACTIVE)
            except DomainError as exc:
                if exc.code in ("unknown_model", "model_changing"):
                    continue  # deleted or being replaced while screened: not a rejected file; the next scan sees
                if exc.status >= 500 and exc.code not in ("worker_crashed", "deadline_exceeded"):
                    raise
                # (ignored if the file changed meanwhile; in a thread: a stat and a SQLite row, under the lock a
                # publication holds while it fsyncs)
                await asyncio.to_thread(s.registry.record, model_id, ident, None, exc.message)
                continue
            if tuple(described["key"]) != ident:
                continue  # replaced while being screened: the next scan sees the new file
            # (ignored if deleted or replaced since)
            await asyncio.to_thread(s.registry.record, model_id, ident, described, None)
