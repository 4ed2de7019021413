"""The solver process: loads models and answers solve, batch, fields and describe tasks sent by the server
(:mod:`structrom.api.pool`) over a pipe, one at a time. Every h5py call of the service happens here, never
in the server process, so that a file that crashes or hangs the HDF5 library costs one solver process
(restarted by the pool) and one request.

Each model version is pinned by a hard link (``<models>/.pinned/<pid>-<inode>-<mtime>-<path hash>.h5``, made
from the opened file and checked to be the same inode): a model is loaded from its pin, so its lazily read
arrays (full modes, dual bases) come from the very file that was opened even after the published name is
replaced or deleted; a solve never mixes versions. A request answered by several tasks (a batch job's
chunks) is pinned once by the server (:func:`pin_for_tasks`), so its chunks never mix versions either.
Models are cached per process (LRU by count and estimated bytes) keyed by the file's (device, inode, size,
mtime); a pin is removed with its cache entry, and pins of dead processes when a solver process starts.
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


PIN_DIR = ".pinned"


class _Moved(Exception):
    """The published file was replaced between opening and pinning it."""


def pin(path: str, key: tuple) -> str:
    """A hard link to the file of identity ``key`` (opened from ``path``), private to this process; raises
    :class:`_Moved` if ``path`` is now another file. Without hard links: ``path`` itself (unpinned)."""
    pins = Path(path).parent
    pins = pins if pins.name == PIN_DIR else pins / PIN_DIR  # a pin of a pin (:func:`pin_for_tasks`) beside it
    # one link per (process, path, version): two paths of one file (a job's pin and the published name, two ids
    # linked by hand) each have their own, so that dropping one cache entry never removes another's file
    tag = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    target = pins / f"{os.getpid()}-{key[1]}-{key[3]}-{tag}.h5"
    try:
        pins.mkdir(exist_ok=True)
        if not target.exists():
            os.link(path, target)
    except FileNotFoundError:
        raise _Moved() from None
    except OSError as exc:
        log.warning("cannot pin %s (%s): model versions are not pinned", path, exc)
        return path
    st = os.stat(target)
    if (st.st_dev, st.st_ino) != key[:2]:
        target.unlink(missing_ok=True)
        raise _Moved()
    return str(target)


def pin_for_tasks(model_id: str, path: str) -> str:
    """A hard link to the file now at ``path`` for several solver tasks of one request (the chunks of a batch
    job): they all answer with this version even if the model is replaced or deleted meanwhile. Made by the
    server process (no file is read), removed with :func:`unpin` when the tasks are done; named after the
    server's pid, so that solver processes keep it (:func:`clean_pins`). Without hard links: ``path``."""
    import secrets

    pins = Path(path).parent / PIN_DIR
    target = pins / f"{os.getpid()}-tasks-{secrets.token_hex(8)}.h5"
    try:
        pins.mkdir(exist_ok=True)
        os.link(path, target)
    except FileNotFoundError:
        raise DomainError(404, "unknown_model", f"no model {model_id!r}; list them with GET /v1/models",
                          "model_id") from None
    except OSError as exc:
        log.warning("cannot pin %s (%s): the tasks of a job may see a replaced version", path, exc)
        return path
    return str(target)


def unpin(pinned: str, path: str) -> None:
    if pinned != path:
        Path(pinned).unlink(missing_ok=True)


def clean_pins(models_dir: Path) -> None:
    """Remove the pins of processes that no longer run."""
    for p in (Path(models_dir) / PIN_DIR).glob("*.h5"):
        try:
            pid = int(p.name.split("-", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            p.unlink(missing_ok=True)
        except PermissionError:
            pass


class SolverState:
    """The state of one solver process: settings and the cache of loaded model versions."""

    def __init__(self, *, cache_models: int, cache_bytes: int, max_increments: int,
                 max_response_bytes: int = 512 * 2**20) -> None:
        self.cache_models, self.cache_bytes, self.max_increments = cache_models, cache_bytes, max_increments
        self.max_response_bytes = max_response_bytes
        # path -> (file identity, model, pin, bytes)
        self._cache: OrderedDict[str, tuple[tuple, object, str, int]] = OrderedDict()
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
        msg = scrub(str(exc).replace(where, f"{model_id}.h5").replace(str(Path(where).parent), "models"))
        return DomainError(status, "invalid_model_file", msg, field)

    def _pinned_version(self, model_id: str, path: str) -> tuple[tuple, str]:
        """The identity of the file now at ``path`` and a pin of it (retried if replaced meanwhile)."""
        for _ in range(5):
            fd, key = self._open(model_id, path)
            os.close(fd)
            hit = self._cache.get(path)
            if hit is not None and hit[0] == key:
                return key, hit[2]
            try:
                return key, pin(path, key)
            except _Moved:
                continue
        raise DomainError(503, "model_changing", f"model {model_id!r} is being replaced; retry", "model_id",
                          retry_after=1)

    def model(self, model_id: str, path: str):
        """The loaded version of ``path`` now: from the cache if the same file, else loaded (screened)."""
        from structrom.rom.model_file import ModelFileError
        from structrom.rom.online import load_model

        key, pinned = self._pinned_version(model_id, path)
        hit = self._cache.get(path)
        if hit is not None and hit[0] == key:
            self._cache.move_to_end(path)
            self.hits += 1
            return hit[1]
        try:
            model = load_model(pinned)  # any kind; screened before any read
        except (ModelFileError, OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError,
                OverflowError) as exc:
            unpin(pinned, path)
            raise self._model_file_error(exc, model_id, pinned) from None
        model.api_name = model_id
        model.api_sha256 = _sha256(pinned)  # the version that answers (the card's sha256 of that file)
        self.misses += 1
        if hit is not None:
            self._drop(path)
        for gone in [p for p in self._cache if not os.path.exists(p)]:  # deleted models, finished jobs' pins
            self._drop(gone)
        self._cache[path] = (key, model, pinned, key[2])
        while len(self._cache) > 1 and (len(self._cache) > self.cache_models
                                        or sum(v[3] for v in self._cache.values()) > self.cache_bytes):
            self._drop(next(iter(self._cache)))
            self.evictions += 1
        return model

    def _drop(self, path: str) -> None:
        _, _, pinned, _ = self._cache.pop(path)
        unpin(pinned, path)

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

        key, pinned = self._pinned_version(model_id, path)
        try:
            try:
                card = model_card(model_id, Path(pinned))
            except (ModelFileError, OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError,
                    OverflowError) as exc:
                raise self._model_file_error(exc, model_id, pinned, status, field) from None
            return {"card": card, "sha256": _sha256(pinned), "key": key}
        finally:
            if not any(v[2] == pinned for v in self._cache.values()):
                unpin(pinned, path)

    def solve(self, model_id: str, path: str, body, specs: list, field_prefixes: list[str] | None = None,
              nodal: tuple | None = None) -> list[dict]:
        """Solve ``specs`` (one result or error body per loading) with the options of ``body``; ``nodal``:
        ``(upload bytes, file name, times, the request field of the times or None)`` of an uploaded temperature
        field for the single loading."""
        import numpy as np

        from . import service

        model = self.model(model_id, path)
        kind = getattr(model, "kind", "hyper_reduced")
        temperature = None
        if nodal is not None:
            unsupported(model_id, kind, "solve_nodal")
            data, filename, times, times_field = nodal
            temperature = service.read_nodal_upload(data, filename, np.asarray(times, float),
                                                    max_nodes=int(model.n_mesh_nodes or 1), times_field=times_field)
        if kind == "separated":  # (options of the whole request: one 422, not one per query of a batch)
            separated_options(model_id, body)
        out = []
        for i, spec in enumerate(specs):
            t0 = time.perf_counter()
            prefix = field_prefixes[i] if field_prefixes else ""
            try:
                r = {"kind": kind, "model_sha256": model.api_sha256,
                     **answer(model_id, model, kind, spec, body, prefix, self.max_increments, temperature)}
            except DomainError as exc:
                if len(specs) == 1 and not field_prefixes:
                    raise
                r = exc.body()
            r["_seconds"] = time.perf_counter() - t0
            out.append(r)
        return out

    def figures(self, model_id: str, path: str) -> dict[str, str]:
        """The model page's plots as SVG texts (read and rendered here, never in the HTTP process)."""
        from .model_page import svg_figures

        model = self.model(model_id, path)  # screened, pinned and validated like any solve
        if getattr(model, "kind", "hyper_reduced") != "hyper_reduced":
            return {}  # the plots (POD decay, reduced points) are drawn for the hyper-reduced layout
        return svg_figures(path)

    def fields(self, model_id: str, path: str, body) -> tuple[bytes, str, str]:
        from . import service

        model = self.model(model_id, path)
        unsupported(model_id, getattr(model, "kind", "hyper_reduced"), "fields")
        return service.fields(model, body.loading, extrapolate=body.extrapolate, fmt=body.format,
                              increment=body.increment, quantities=body.quantities,
                              max_increments=self.max_increments, name=model_id,
                              max_bytes=self.max_response_bytes)

    def deck(self, model_id: str, path: str, data: bytes, filename: str, fmt: str, extrapolate: bool,
             max_bytes: int):
        """An uploaded CalculiX deck answered by the model (:mod:`.deck_service`)."""
        from structrom.rom import model_file

        from .deck_service import answer_deck

        model = self.model(model_id, path)
        unsupported(model_id, getattr(model, "kind", "hyper_reduced"), "solve_deck")
        mesh = model.__dict__.get("_api_mesh")
        if mesh is None:
            mesh = model._api_mesh = model_file.load(model.path, mesh=True).mesh
        return answer_deck(model, data, filename, fmt=fmt, extrapolate=extrapolate, max_bytes=max_bytes,
                           max_increments=self.max_increments, mesh=mesh)


def unsupported(model_id: str, kind: str, feature: str) -> None:
    """422 ``unsupported_for_kind`` when a model of ``kind`` does not answer ``feature``."""
    from .model_cards import FEATURES

    if feature not in FEATURES.get(kind, ()):
        raise DomainError(422, "unsupported_for_kind", f"model {model_id!r} is a {kind} model: {feature} does not "
                          f"apply to it (it answers {', '.join(FEATURES.get(kind, ()))})", "model_id")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def separated_options(model_id: str, body) -> None:
    """422 ``unsupported_for_kind`` naming the field for the options of ``body`` a separated model does not read
    (an explicit value without effect is refused, never silently dropped)."""
    if getattr(body, "cycles", None) is not None:
        raise DomainError(422, "unsupported_for_kind", f"model {model_id!r} is a separated model: it answers "
                          "no cycle quantities (no strain or stress history at reduced points)", "cycles")
    if "reconstruct" in getattr(body, "model_fields_set", ()):
        raise DomainError(422, "unsupported_for_kind", f"model {model_id!r} is a separated model: it has no "
                          "reduced points nor dual bases, so 'reconstruct' has no effect; leave it out", "reconstruct")


def answer(model_id: str, model, kind: str, spec, body, prefix: str, max_increments: int, temperature) -> dict:
    """One query of a request: a loading (:class:`~structrom.api.schemas.LoadingSpec`) for the hyper-reduced and
    dictionary kinds, ``{"parameters": values}`` for the separated kind; the other form is a 422 naming the field
    and the form the model answers."""
    from . import separated_service, service

    if isinstance(spec, dict):  # parameter values
        field = prefix[:-1] if prefix else "parameters"
        if kind != "separated":
            raise DomainError(422, "wrong_query_kind", f"model {model_id!r} is a {kind} model: it answers a "
                              "'loading' (its card's loading_schema), not 'parameters'", field)
        return separated_service.solve_parameters(model, {"parameters": spec["parameters"],
                                                          "extrapolate": body.extrapolate},
                                                  field=field, node_sets=body.node_sets)
    if kind == "separated":
        raise DomainError(422, "wrong_query_kind", f"model {model_id!r} is a separated model: it answers "
                          "'parameters' ({name: value}, names and ranges in its card), not a loading",
                          prefix[:-1] if prefix else "loading")
    return service.solve(model, spec, body, max_increments=max_increments, field_prefix=prefix, temperature=temperature)


def main(inbox, outbox, settings: dict) -> None:
    """The solver process's loop: receive ``(task, args)`` from ``inbox``, answer ``("ok", result, stats)``
    or ``("error", DomainError, stats)`` on ``outbox``; exits when the server closes the pipe."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when solver processes stop
    logging.basicConfig(level=settings.pop("log_level", "WARNING"),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s")
    for prefix, repl in settings.pop("scrub", []):
        from .errors import add_scrubbed_path

        add_scrubbed_path(prefix, repl)
    from structrom.rom import h5_screening

    expanded = settings.pop("max_expanded_bytes", None)
    if expanded is not None:
        h5_screening.set_default_limits(h5_screening.Limits(max_dataset_bytes=expanded, max_total_bytes=expanded))
    models_dir = settings.pop("models_dir", None)
    if models_dir is not None:
        clean_pins(models_dir)
    state = SolverState(**settings)
    from structrom.rom.model_file import ModelFileError

    while True:
        try:
            task, args = inbox.recv()
        except (EOFError, OSError):
            return
        try:
            reply = ("ok", getattr(state, task)(*args), state.stats())
        except DomainError as exc:
            reply = ("error", exc, state.stats())
        except (ModelFileError, OSError, RuntimeError) as exc:  # a model file unreadable mid-solve (lazy reads)
            reply = ("error", DomainError(409, "invalid_model_file", scrub(f"model file unreadable: {exc}"),
                                          "model_id"), state.stats())
        except Exception as exc:  # noqa: BLE001 - reported as a 500, logged here
            log.exception("task %s failed", task)
            reply = ("error", DomainError(500, "internal_error", f"{type(exc).__name__} (see the server log)"),
                     state.stats())
        try:
            outbox.send(reply)
        except (EOFError, OSError, BrokenPipeError):
            return
