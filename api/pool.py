"""The solver processes seen from the server: a priority queue of tasks and one driver per process.

``workers`` processes (:mod:`structrom.api.worker`, started by ``forkserver`` so that they share nothing with
the server's threads or sockets) each run one task at a time; the answer is awaited on the event loop (a
reader callback on the pipe), so a request costs no thread hop. Interactive requests (priority 0) go before
job chunks (priority 1), so a solve waits at most for the tasks already running, not behind queued jobs.
A task past its deadline (counted from its arrival, queue wait included) has its process killed, or is
not started (answer 503 ``deadline_exceeded``); a task whose caller went away (:class:`structrom.api.middleware.Guard`
cancels a request whose client disconnected) is dropped from the queue, or, when it runs longer than
:data:`ABANDONED_GRACE_SECONDS` after that, has its process killed; a process that dies
(a crash in native code) answers 500 ``worker_crashed`` for its task alone. Either way the process is
started again for the next task and the server keeps serving.

:class:`Load` is the admission control: requests and unfinished jobs together are bounded; above the bound
the answer is 429 with ``Retry-After``.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import signal

from .errors import DomainError

log = logging.getLogger("structrom.api")


#: A task whose caller went away (a client that disconnected) may finish within this many seconds; past it, its
#: solver process is stopped (and started again for the next task): a restart costs less than a long unwanted solve.
ABANDONED_GRACE_SECONDS = 1.0


class Load:
    """Requests in flight plus unfinished jobs, bounded by ``limit`` (the event loop's thread only)."""

    def __init__(self, limit: int) -> None:
        self.limit, self.active = limit, 0

    @property
    def saturated(self) -> bool:
        return self.active >= self.limit

    def enter(self, n: int = 1, *, force: bool = False) -> None:
        if not force and self.active + n > self.limit:
            raise DomainError(429, "busy", f"{self.active} requests and jobs are in flight (limit {self.limit}); "
                              "retry later", retry_after=1)
        self.active += n

    def leave(self, n: int = 1) -> None:
        self.active = max(0, self.active - n)


class _Worker:
    def __init__(self) -> None:
        self.proc = None
        self.conn = None  # requests to the process
        self.replies = None  # its answers (a separate pipe: the event loop watches only this one)
        self.stats: dict = {}
        self.crashes = 0


class SolverPool:
    """``size`` solver processes fed from a priority queue (see the module docstring)."""

    def __init__(self, size: int, settings: dict, *, task_timeout: float) -> None:
        self.size, self.settings, self.task_timeout = size, dict(settings), task_timeout
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(["structrom.api.worker", "structrom.rom.online", "h5py"])
        self._workers = [_Worker() for _ in range(size)]
        self._queue: asyncio.PriorityQueue | None = None
        self._drivers: list[asyncio.Task] = []
        self._seq = itertools.count()
        self._closing = False
        self.queued = 0
        self.crashes = self.timeouts = 0
        self.abandoned = 0  # tasks dropped or stopped: their caller went away (a client that disconnected)

    # -- processes (called in the I/O threads) ------------------------------------------------------------------
    def _spawn(self, w: _Worker) -> None:
        from . import worker

        inbox, to_worker = self._ctx.Pipe(duplex=False)  # (reader, writer)
        from_worker, outbox = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=worker.main, args=(inbox, outbox, dict(self.settings)), daemon=True,
                                 name="structrom-solver")
        proc.start()
        inbox.close()
        outbox.close()
        w.proc, w.conn, w.replies = proc, to_worker, from_worker

    def _stop(self, w: _Worker, kill: bool = True) -> None:
        if w.proc is None:
            return
        if kill and w.proc.is_alive():
            try:
                os.kill(w.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        w.proc.join(timeout=10)
        for c in (w.conn, w.replies):
            try:
                c.close()
            except OSError:
                pass
        w.proc = w.conn = w.replies = None

    def _crashed(self, w: _Worker, task: str) -> DomainError:
        if w.proc is not None:
            w.proc.join(timeout=5)
        code = w.proc.exitcode if w.proc is not None else None
        self._stop(w)
        if self._closing:
            return DomainError(503, "shutting_down", "the server is stopping", retry_after=5)
        self.crashes += 1
        w.crashes += 1
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        log.error("solver process stopped (%s) during task %s", how, task)
        return DomainError(500, "worker_crashed", f"the solver process stopped ({how}) while answering this "
                           "request; the server keeps serving (a model or upload may be corrupt)")

    async def _call(self, w: _Worker, task: str, args: tuple, timeout: float):
        """Send one task to ``w``'s process and wait for its answer on the event loop (the pipe's reader
        callback; no thread hop). The process is idle when called, so the send does not wait for it."""
        loop = asyncio.get_running_loop()
        if self._closing:
            raise DomainError(503, "shutting_down", "the server is stopping", retry_after=5)
        if w.proc is None or not w.proc.is_alive():
            if w.proc is not None:
                await asyncio.to_thread(self._stop, w)
            await asyncio.to_thread(self._spawn, w)
        readable = loop.create_future()
        fd = w.replies.fileno()
        try:
            w.conn.send((task, args))
            loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
            try:
                await asyncio.wait_for(readable, timeout)
            finally:
                loop.remove_reader(fd)
            os.set_blocking(fd, True)  # the loop's reader may have made it non-blocking; the answer is whole
            status, payload, stats = w.replies.recv()
        except asyncio.TimeoutError:
            self.timeouts += 1
            await asyncio.to_thread(self._stop, w)
            raise DomainError(503, "deadline_exceeded", f"the request took longer than the server's deadline of "
                              f"{timeout:g} s and was stopped", retry_after=1) from None
        except (EOFError, OSError, BrokenPipeError):
            raise await asyncio.to_thread(self._crashed, w, task) from None
        w.stats = stats
        if status == "error":
            raise payload
        return payload

    # -- the event loop's side ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._queue = asyncio.PriorityQueue()
        await asyncio.gather(*(self._call(w, "ping", (), 120.0) for w in self._workers))
        self._drivers = [asyncio.create_task(self._drive(w)) for w in self._workers]

    async def _drive(self, w: _Worker) -> None:
        while True:
            _, _, task, args, deadline, fut = await self._queue.get()
            self.queued -= 1
            if fut.done():  # the caller went away while queued
                self.abandoned += 1
                continue
            timeout = deadline - asyncio.get_running_loop().time()
            if timeout <= 0:  # waited its whole deadline in the queue
                self.timeouts += 1
                fut.set_exception(DomainError(503, "deadline_exceeded", "the server was too busy to start the request "
                                              "within its deadline", retry_after=1))
                continue
            call = asyncio.ensure_future(self._call(w, task, args, timeout))
            try:
                await asyncio.wait({call, fut}, return_when=asyncio.FIRST_COMPLETED)
                if not call.done():  # the caller went away while its task runs
                    await asyncio.wait({call}, timeout=ABANDONED_GRACE_SECONDS)
                if not call.done():  # still running: stop the process rather than finish work no one waits for
                    call.cancel()
                    await asyncio.gather(call, return_exceptions=True)
                    self.abandoned += 1
                    log.info("solver task %s stopped: its client went away", task)
                    await asyncio.to_thread(self._stop, w)  # started again for the next task
                    continue
                result = call.result()
            except asyncio.CancelledError:
                call.cancel()
                if not fut.done():
                    fut.cancel()
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, DomainError) else
                                      DomainError(500, "internal_error", f"{type(exc).__name__}: {exc}"))
            else:
                if not fut.done():
                    fut.set_result(result)

    async def run(self, task: str, *args, priority: int = 0, timeout: float | None = None):
        """Run ``task`` in a solver process; its result, or its :class:`DomainError`."""
        if self._queue is None or self._closing:
            raise DomainError(503, "not_ready", "the solver processes are not running", retry_after=2)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.queued += 1
        deadline = loop.time() + (timeout or self.task_timeout)  # queue wait included
        self._queue.put_nowait((priority, next(self._seq), task, args, deadline, fut))
        return await fut

    def alive(self) -> int:
        return sum(1 for w in self._workers if w.proc is not None and w.proc.is_alive())

    def stats(self) -> dict:
        keys = ("cached", "bytes", "hits", "misses", "evictions")
        return {k: sum(w.stats.get(k, 0) for w in self._workers) for k in keys}

    async def close(self) -> None:
        self._closing = True
        for t in self._drivers:
            t.cancel()
        for w in self._workers:  # kill first: an I/O thread waiting on the pipe then sees EOF and returns
            if w.proc is not None and w.proc.is_alive():
                try:
                    os.kill(w.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        await asyncio.to_thread(self._join_all)

    def _join_all(self) -> None:
        for w in self._workers:
            self._stop(w)
