"""The solver process: loads models and answers solve, batch, fields and describe tasks sent by the server
(:mod:`structrom.api.pool`) over a pipe, one at a time. Every h5py call of the service happens here, never
in the server process, so that a file that crashes or hangs the HDF5 library costs one solver process
(restarted by the pool) and one request.

Each model version is pinned by an open file descriptor: a model is loaded from ``/proc/self/fd/<fd>``, so
its lazily read arrays (full modes, dual bases) come from the very file that was opened even after the
published name is replaced or deleted; a solve never mixes versions. Models are cached per process (LRU
by count and estimated bytes) keyed by the file's (device, inode, size, mtime).
"""
from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from collections import OrderedDict
from pathlib import Path

from .errors import DomainError, scrub

log = logging.getLogger("structrom.api.worker")


def _pinned(fd: int, path: Path) -> str:
    proc = f"/proc/self/fd/{fd}"
    return proc if os.path.exists(proc) else str(path)


class SolverState:
    """The state of one solver process: settings and the cache of loaded model versions."""

    def __init__(self, *, cache_models: int, cache_bytes: int, max_increments: int) -> None:
        self.cache_models, self.cache_bytes, self.max_increments = cache_models, cache_bytes, max_increments
        self._cache: OrderedDict[str, tuple[tuple, object, int, int]] = OrderedDict()
        self.hits = self.misses = self.evictions = 0

    # -- files and models ----------------------------------------------------------------------------------
    @staticmethod
    def _open(model_id: str, path: str) -> tuple[int, tuple]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise DomainError(404, "unknown_model", f"no model {model_id!r}; list them with GET /v1/models",
                              "model_id") from None
        st = os.fstat(fd)
        return fd, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @staticmethod
    def _model_file_error(exc: Exception, model_id: str, where: str, status: int = 409, field: str = "model_id"):
        msg = scrub(str(exc).replace(where, f"{model_id}.h5"))
        return DomainError(status, "invalid_model_file", msg, field)

    def model(self, model_id: str, path: str):
        """The loaded version of ``path`` now: from the cache if the same file, else loaded (screened)."""
        from structrom.rom.model_file import ModelFileError
        from structrom.rom.online import ReducedModel

        fd, key = self._open(model_id, path)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            os.close(fd)
            self._cache.move_to_end(path)
            self.hits += 1
            return hit[1]
        where = _pinned(fd, Path(path))
        try:
            model = ReducedModel.load(where)
        except (ModelFileError, OSError, KeyError, ValueError, TypeError) as exc:
            os.close(fd)
            raise self._model_file_error(exc, model_id, where) from None
        model.api_name = model_id
        self.misses += 1
        if hit is not None:
            self._drop(path)
        self._cache[path] = (key, model, fd, key[2])
        while len(self._cache) > 1 and (len(self._cache) > self.cache_models
                                        or sum(v[3] for v in self._cache.values()) > self.cache_bytes):
            self._drop(next(iter(self._cache)))
            self.evictions += 1
        return model

    def _drop(self, path: str) -> None:
        _, _, fd, _ = self._cache.pop(path)
        os.close(fd)

    def stats(self) -> dict:
        return {"cached": len(self._cache), "bytes": sum(v[3] for v in self._cache.values()), "hits": self.hits,
                "misses": self.misses, "evictions": self.evictions}

    # -- tasks -------------------------------------------------------------------------------------------------
    def ping(self) -> str:
        return "pong"

    def describe(self, model_id: str, path: str, field: str = "model_id", status: int = 409) -> dict:
        """Screen and validate ``path`` fully; its card, sha256 and file identity."""
        from structrom.rom.model_file import ModelFileError

        from .registry import model_card

        fd, key = self._open(model_id, path)
        try:
            where = _pinned(fd, Path(path))
            try:
                card = model_card(model_id, Path(where))
            except (ModelFileError, OSError, KeyError, ValueError, TypeError) as exc:
                raise self._model_file_error(exc, model_id, where, status, field) from None
            h = hashlib.sha256()
            with os.fdopen(os.dup(fd), "rb") as f:
                f.seek(0)
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return {"card": card, "sha256": h.hexdigest(), "key": key}
        finally:
            os.close(fd)

    def solve(self, model_id: str, path: str, body, specs: list, field_prefixes: list[str] | None = None,
              nodal: tuple | None = None) -> list[dict]:
        """Solve ``specs`` (one result or error body per loading) with the options of ``body``; ``nodal``:
        ``(upload bytes, file name, times)`` of an uploaded temperature field for the single loading."""
        import numpy as np

        from . import service

        model = self.model(model_id, path)
        temperature = None
        if nodal is not None:
            data, filename, times = nodal
            temperature = service.read_nodal_upload(data, filename, np.asarray(times, float),
                                                    max_nodes=int(model.n_mesh_nodes or 1))
        out = []
        for i, spec in enumerate(specs):
            t0 = time.perf_counter()
            prefix = field_prefixes[i] if field_prefixes else ""
            try:
                r = service.solve(model, spec, body, max_increments=self.max_increments, field_prefix=prefix,
                                  temperature=temperature)
            except DomainError as exc:
                if len(specs) == 1 and not field_prefixes:
                    raise
                r = exc.body()
            r["_seconds"] = time.perf_counter() - t0
            out.append(r)
        return out

    def fields(self, model_id: str, path: str, body) -> tuple[bytes, str, str]:
        from . import service

        model = self.model(model_id, path)
        return service.fields(model, body.loading, extrapolate=body.extrapolate, fmt=body.format,
                              increment=body.increment, quantities=body.quantities,
                              max_increments=self.max_increments, name=model_id)


def main(conn, settings: dict) -> None:
    """The solver process's loop: receive ``(task, args)``, answer ``("ok", result, stats)`` or
    ``("error", DomainError, stats)``; exits when the server closes the pipe."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when solver processes stop
    logging.basicConfig(level=settings.pop("log_level", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    for prefix, repl in settings.pop("scrub", []):
        from .errors import add_scrubbed_path

        add_scrubbed_path(prefix, repl)
    state = SolverState(**settings)
    while True:
        try:
            task, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", getattr(state, task)(*args), state.stats())
        except DomainError as exc:
            reply = ("error", exc, state.stats())
        except Exception as exc:  # noqa: BLE001 - reported as a 500, logged here
            log.exception("task %s failed", task)
            reply = ("error", DomainError(500, "internal_error", f"{type(exc).__name__} (see the server log)"),
                     state.stats())
        try:
            conn.send(reply)
        except (EOFError, OSError, BrokenPipeError):
            return
