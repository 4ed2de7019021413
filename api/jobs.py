"""Background jobs, persisted: table ``jobs`` of ``index.sqlite`` in the models directory holds every job's
request, status and result, so accepted jobs and finished results survive a restart (unfinished jobs are run again).

Bounds: at most ``max_jobs`` stored jobs and ``max_bytes`` of stored results; finished jobs are kept
``ttl`` seconds and never evicted earlier: a full store refuses new jobs (429 with ``Retry-After`` = when
the oldest finished job expires). One client (its owner: :func:`structrom.api.deps.job_owner`) holds at most
``max_per_client`` of the stored jobs (429 ``client_job_quota`` above): without this, one anonymous client filled
the store in seconds and every other client's jobs were refused for ``ttl``. Unfinished jobs count in the server's
admission bound (:class:`structrom.api.pool.Load`) and their solves run at a lower priority than interactive
requests.
SQLite calls are short and run in a thread (``asyncio.to_thread``), never on the event loop.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from .errors import DomainError, error_body

log = logging.getLogger("structrom.api")
JOBS_DB = "index.sqlite"  # the registry's index file, own table and connection
#: ``runner(kind, model_id, request) -> result``: what a job of each kind computes.
Runner = Callable[[str, str, dict], Awaitable[Any]]


class JobStore:
    """The persisted jobs (see the module docstring); methods are blocking (call them in a thread)."""

    def __init__(self, directory: Path, *, max_jobs: int, max_bytes: int, ttl: float,
                 max_per_client: int | None = None) -> None:
        self.max_jobs, self.max_bytes, self.ttl = max_jobs, max_bytes, ttl
        self.max_per_client = max_per_client or max_jobs
        self._lock = threading.Lock()
        self._db = sqlite3.connect(Path(directory) / JOBS_DB, check_same_thread=False, timeout=10)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, kind TEXT, model TEXT, "
                             "status TEXT, created REAL, started REAL, finished REAL, request TEXT, result TEXT, "
                             "error TEXT, bytes INTEGER DEFAULT 0)")
            if "owner" not in [row[1] for row in self._db.execute("PRAGMA table_info(jobs)")]:  # an older store
                self._db.execute("ALTER TABLE jobs ADD COLUMN owner TEXT DEFAULT ''")

    def _expire(self) -> None:
        self._db.execute("DELETE FROM jobs WHERE finished IS NOT NULL AND finished < ?", (time.time() - self.ttl,))

    def _retry_after(self, oldest: float | None) -> float:
        """Seconds until the finished job of time ``oldest`` (None: none finished yet) expires, within [1, 3600]."""
        wait = (oldest + self.ttl - time.time()) if oldest is not None else 5.0
        return min(max(wait, 1.0), 3600.0)

    def create(self, kind: str, model_id: str, request: dict, owner: str = "") -> dict:
        text = json.dumps(request, allow_nan=False)
        with self._lock, self._db:
            self._expire()
            mine, oldest = self._db.execute("SELECT COUNT(*), MIN(finished) FROM jobs WHERE owner = ?",
                                            (owner,)).fetchone()
            if mine >= self.max_per_client:
                raise DomainError(429, "client_job_quota", f"this client holds {mine} jobs (at most "
                                  f"{self.max_per_client} per client: by API key, else by address); its finished jobs "
                                  f"expire after {self.ttl:g} s", retry_after=self._retry_after(oldest))
            count, used, oldest = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(bytes), 0), MIN(finished) FROM jobs").fetchone()
            if count >= self.max_jobs or used + len(text) > self.max_bytes:
                what = f"{count} jobs" if count >= self.max_jobs else f"{used} bytes of results"
                raise DomainError(429, "job_store_full", f"the job store holds {what} (limits {self.max_jobs} jobs, "
                                  f"{self.max_bytes} bytes); finished jobs expire after {self.ttl:g} s",
                                  retry_after=self._retry_after(oldest))
            job = {"id": secrets.token_urlsafe(16), "kind": kind, "model": model_id, "status": "pending",
                   "created": time.time(), "started": None, "finished": None}
            self._db.execute("INSERT INTO jobs (id, kind, model, status, created, request, bytes, owner) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?)", (job["id"], kind, model_id, "pending", job["created"], text,
                                                          len(text), owner))
        return job

    def started(self, job_id: str) -> None:
        with self._lock, self._db:
            self._db.execute("UPDATE jobs SET status = 'running', started = ? WHERE id = ?", (time.time(), job_id))

    def finish(self, job_id: str, result: Any = None, error: dict | None = None) -> None:
        status = "failed" if error is not None else "done"
        text = json.dumps(result, allow_nan=False) if error is None else None
        with self._lock, self._db:
            used = self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM jobs WHERE id != ?", (job_id,)).fetchone()[0]
            if text is not None and used + len(text) > self.max_bytes:
                size, text, status = len(text), None, "failed"
                error = error_body(507, "result_too_large", f"the result ({size} bytes) does not fit in "
                                   "the job store's budget; split the batch")["error"]
            err = json.dumps(error) if error is not None else None
            self._db.execute("UPDATE jobs SET status = ?, finished = ?, result = ?, error = ?, request = NULL, "
                             "bytes = ? WHERE id = ?", (status, time.time(), text, err, len(text or err or ""), job_id))

    def get(self, job_id: str) -> dict:
        with self._lock:
            row = self._db.execute("SELECT id, kind, model, status, created, started, finished, result, error FROM "
                                   "jobs WHERE id = ? AND (finished IS NULL OR finished >= ?)",
                                   (job_id, time.time() - self.ttl)).fetchone()
        if row is None:
            raise DomainError(404, "unknown_job", f"no job {job_id!r} (finished jobs expire after {self.ttl:g} s)",
                              "job_id")
        keys = ("id", "kind", "model", "status", "created", "started", "finished")
        job = dict(zip(keys, row[:7]))
        job["result"] = json.loads(row[7]) if row[7] is not None else None
        job["error"] = json.loads(row[8]) if row[8] is not None else None
        return job

    def unfinished(self) -> list[tuple[str, str, str, dict]]:
        with self._lock:
            rows = self._db.execute("SELECT id, kind, model, request FROM jobs WHERE finished IS NULL "
                                    "ORDER BY created").fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3]) if r[3] else {}) for r in rows]

    def counts(self) -> dict:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = {(("status", s),): 0 for s in ("pending", "running", "done", "failed")}
        for s, n in rows:
            out[(("status", s),)] = n
        return out

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Jobs:
    """Runs persisted jobs on the event loop's side (each solve goes to the solver pool)."""

    def __init__(self, store: JobStore, runner: Runner, load) -> None:
        self.store, self.runner, self.load = store, runner, load
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, kind: str, model_id: str, request: dict, owner: str = "") -> dict:
        """Store and start a job of client ``owner`` (:func:`structrom.api.deps.job_owner`)."""
        self.load.enter()  # counted until it finishes; 429 when the server is saturated
        try:
            job = await asyncio.to_thread(self.store.create, kind, model_id, request, owner)
        except BaseException:
            self.load.leave()
            raise
        self._start(job["id"], kind, model_id, request)
        return job

    def _start(self, job_id: str, kind: str, model_id: str, request: dict) -> None:
        task = asyncio.create_task(self._run(job_id, kind, model_id, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def resume(self) -> int:
        """Start again the jobs a previous run accepted but did not finish."""
        jobs = await asyncio.to_thread(self.store.unfinished)
        for job_id, kind, model_id, request in jobs:
            self.load.enter(force=True)
            self._start(job_id, kind, model_id, request)
        if jobs:
            log.info("resumed %d unfinished job(s)", len(jobs))
        return len(jobs)

    async def _run(self, job_id: str, kind: str, model_id: str, request: dict) -> None:
        try:
            await asyncio.to_thread(self.store.started, job_id)
            try:
                result = await self.runner(kind, model_id, request)
            except DomainError as exc:
                await asyncio.to_thread(self.store.finish, job_id, None, exc.body()["error"])
            except Exception as exc:  # noqa: BLE001 - reported in the job, logged
                log.exception("job %s failed", job_id)
                await asyncio.to_thread(self.store.finish, job_id, None,
                                        error_body(500, "internal_error", f"{type(exc).__name__} (see the server "
                                                   "log)")["error"])
            else:
                await asyncio.to_thread(self.store.finish, job_id, result)
        except asyncio.CancelledError:  # server stopping: the job stays unfinished and resumes at restart
            raise
        finally:
            self.load.leave()

    async def get(self, job_id: str) -> dict:
        return await asyncio.to_thread(self.store.get, job_id)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.store.close()
