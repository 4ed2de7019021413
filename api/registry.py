"""Model registry: a directory of model files ``<id>.h5`` with a small SQLite index, and an LRU cache.

* ``index.sqlite`` (in the models directory): one row per published model (file sha256, size, mtime,
  its card as JSON) and a bounded query log. The files are the truth: at start-up the directory is
  scanned, new or changed files are validated and indexed, rows of vanished files dropped; a file that
  fails validation is reported (``rejected``) and never served.
* model ids match :data:`MODEL_ID` (no dots, no slashes) and the resolved path must sit directly in the
  models directory, so an id cannot name a file elsewhere;
* publishing: the caller streams the upload into :meth:`Registry.temp_upload` (a hidden temp file in
  the models directory, same file system), :meth:`Registry.publish` validates it with
  :func:`structrom.rom.model_file.load` (with the mesh) and :meth:`structrom.rom.online.ReducedModel.load`, then
  ``os.replace`` makes it visible atomically. A corrupt or foreign file is deleted, never published;
* loaded :class:`~structrom.rom.online.ReducedModel` objects are cached (LRU) within a count and a byte bound
  (bytes estimated by the file size, an upper bound of what a model keeps in memory).

No MPI or PETSc import here (the online path only).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from structrom.rom.model_file import ModelFileError

log = logging.getLogger("structrom.api")

#: Model ids: letters, digits, ``_`` and ``-``, 1 to 64 characters, starting with a letter or digit.
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SUFFIX = ".h5"
INDEX = "index.sqlite"


class RegistryError(Exception):
    """A registry failure with an HTTP status, a code and (optionally) the request field involved."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_card(model_id: str, path: Path) -> dict:
    """Validate a model file fully and describe it (the card served by ``GET /v1/models/{id}``).
    Raises :class:`~structrom.rom.model_file.ModelFileError`."""
    import h5py

    from structrom.rom import model_file
    from structrom.rom.online import ReducedModel, load_model

    if model_file.read_kind(path) != "hyper_reduced":  # other kinds describe themselves
        return json.loads(json.dumps({"id": model_id, **load_model(path).card()}, default=_json_default))
    data = model_file.load(path, mesh=True)  # checks format, version, shapes, and the mesh group
    model = ReducedModel(data, path, int(data.mesh.n_nodes))  # checks schema, materials, finiteness
    with h5py.File(path, "r") as f:
        n_dofs = int(f["modes/full"].shape[0])
        duals = {name: {"components": int(g.attrs["components"]), "modes": int(g["reduced_basis"].shape[1]),
                        "n_points": int(g["basis"].shape[0]) // max(int(g.attrs["components"]), 1)}
                 for name, g in f.get("dual", {}).items()}
    mesh = data.mesh
    prov = data.provenance if isinstance(data.provenance, dict) else {"value": data.provenance}
    training = prov.get("training")
    if training is None and isinstance(prov.get("snapshots"), list):
        training = [{"file": Path(str(s.get("file", ""))).name, "increments": s.get("increments"),
                     "sha256": s.get("sha256")} for s in prov["snapshots"] if isinstance(s, dict)]
    card = {
        "id": model_id,
        "kind": model.kind,
        "sizes": {"modes": model.n_modes, "reduced_points": model.n_reduced_points,
                  "mesh_nodes": int(mesh.n_nodes), "mesh_elements": int(mesh.n_elements), "dofs": n_dofs,
                  "temperature_nodes": int(len(data.temperature_nodes)), "duals": duals},
        "surfaces": sorted(data.pressure),
        "node_sets": sorted(mesh.node_sets) if hasattr(mesh, "node_sets") else [],
        "centrifugal": data.centrifugal is not None, "gravity": data.gravity is not None,
        "dirichlet": data.dirichlet,
        "materials": data.materials,
        "units": data.units,
        "loading_schema": data.loading_schema,
        "training": training,
        "indicator": {**model.card()["indicator"]},
        "provenance": prov,
        "versions": data.versions or [{"version": 1, "parent": None, "date": prov.get("created"), "loadings_added": []}],
    }
    return json.loads(json.dumps(card, default=_json_default))


class Registry:
    """The models directory, its SQLite index and the cache of loaded models (thread-safe)."""

    def __init__(self, models_dir: str | Path, *, cache_models: int = 8, cache_bytes: int = 2**30,
                 query_log_rows: int = 100_000) -> None:
        self.dir = Path(models_dir).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cache_models, self.cache_bytes, self.query_log_rows = cache_models, cache_bytes, query_log_rows
        self._lock = threading.RLock()
        self._db_lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[tuple, object, int]] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._inserts = 0
        self.rejected: dict[str, str] = {}
        self.hits = self.misses = self.evictions = 0
        self._db = sqlite3.connect(self.dir / INDEX, check_same_thread=False, timeout=10)
        with self._db_lock:
            # WAL without a sync per commit: the query log must not cost an fsync per request
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db_lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS models (id TEXT PRIMARY KEY, sha256 TEXT, bytes INTEGER, "
                             "mtime_ns INTEGER, published REAL, card TEXT)")
            self._db.execute("CREATE TABLE IF NOT EXISTS queries (n INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL, "
                             "model TEXT, kind TEXT, status INTEGER, loadings INTEGER, ms REAL)")
        self.scan()

    # -- ids and paths ------------------------------------------------------------------------------------
    def path(self, model_id: str) -> Path:
        """The file of ``model_id``; raises :class:`RegistryError` (422) for an invalid id."""
        if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
            raise RegistryError(422, "invalid_model_id", f"model id {model_id!r} must match {MODEL_ID.pattern}",
                                "model_id")
        p = (self.dir / (model_id + SUFFIX)).resolve()
        if p.parent != self.dir:
            raise RegistryError(422, "invalid_model_id", f"model id {model_id!r} escapes the models directory",
                                "model_id")
        return p

    # -- index ----------------------------------------------------------------------------------------------
    def _rows(self) -> dict[str, tuple]:
        with self._db_lock:
            return {r[0]: r[1:] for r in self._db.execute("SELECT id, sha256, bytes, mtime_ns, published, card "
                                                          "FROM models")}

    def _upsert(self, model_id: str, sha: str, st: os.stat_result, card: dict) -> None:
        with self._db_lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?)",
                             (model_id, sha, st.st_size, st.st_mtime_ns, time.time(), json.dumps(card)))

    def _drop(self, model_id: str) -> None:
        with self._db_lock, self._db:
            self._db.execute("DELETE FROM models WHERE id = ?", (model_id,))

    def scan(self) -> None:
        """Sync the index with the directory: index new or changed files (validated), drop vanished ones."""
        with self._lock:
            rows = self._rows()
            seen = set()
            for p in sorted(self.dir.glob("*" + SUFFIX)):
                mid = p.name[: -len(SUFFIX)]
                if not MODEL_ID.fullmatch(mid):
                    continue
                seen.add(mid)
                st = p.stat()
                row = rows.get(mid)
                if row is not None and row[1] == st.st_size and row[2] == st.st_mtime_ns:
                    continue
                try:
                    card = model_card(mid, p)
                except (ModelFileError, OSError, KeyError, ValueError) as exc:
                    self.rejected[mid] = str(exc).replace(str(p), mid + SUFFIX)
                    log.warning("model file %s rejected: %s", p, exc)
                    if row is not None:
                        self._drop(mid)
                    continue
                self.rejected.pop(mid, None)
                self._upsert(mid, sha256_file(p), st, card)
            for mid in set(rows) - seen:
                self._drop(mid)
                self._evict(mid)

    def list(self) -> list[dict]:
        out = []
        for mid, (sha, size, _, published, card) in sorted(self._rows().items()):
            c = json.loads(card)
            out.append({"id": mid, "sha256": sha, "bytes": size, "published": published,
                        "modes": c["sizes"]["modes"], "reduced_points": c["sizes"]["reduced_points"],
                        "surfaces": c["surfaces"], "indicator_tolerance": c["indicator"]["tolerance"]})
        return out

    def card(self, model_id: str) -> dict:
        self.path(model_id)
        with self._db_lock:
            row = self._db.execute("SELECT sha256, bytes, published, card FROM models WHERE id = ?",
                                   (model_id,)).fetchone()
        if row is None:
            raise RegistryError(404, "unknown_model", f"no model {model_id!r}; list them with GET /v1/models",
                                "model_id")
        card = json.loads(row[3])
        card.update({"sha256": row[0], "bytes": row[1], "published": row[2]})
        return card

    # -- loaded models ----------------------------------------------------------------------------------------
    def _evict(self, model_id: str) -> None:
        with self._lock:
            self._cache.pop(model_id, None)

    def cached_bytes(self) -> int:
        with self._lock:
            return sum(v[2] for v in self._cache.values())

    def cached_count(self) -> int:
        with self._lock:
            return len(self._cache)

    def get(self, model_id: str):
        """The loaded :class:`~structrom.rom.online.ReducedModel` of ``model_id`` (from the cache if its file is
        unchanged). Raises :class:`RegistryError` (422 bad id, 404 unknown, 409 unreadable file)."""
        from structrom.rom.online import load_model

        p = self.path(model_id)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise RegistryError(404, "unknown_model", f"no model {model_id!r}; list them with GET /v1/models",
                                "model_id") from None
        key = (st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            hit = self._cache.get(model_id)
            if hit is not None and hit[0] == key:
                self._cache.move_to_end(model_id)
                self.hits += 1
                return hit[1]
            gate = self._loading.setdefault(model_id, threading.Lock())
        with gate:  # one load per model at a time; others wait and then hit the cache
            with self._lock:
                hit = self._cache.get(model_id)
                if hit is not None and hit[0] == key:
                    self._cache.move_to_end(model_id)
                    self.hits += 1
                    return hit[1]
            if model_id in self.rejected:
                raise RegistryError(409, "invalid_model_file", self.rejected[model_id], "model_id")
            try:
                model = load_model(p)
            except ModelFileError as exc:
                raise RegistryError(409, "invalid_model_file", str(exc).replace(str(p), model_id + SUFFIX),
                                    "model_id") from None
            with self._lock:
                self.misses += 1
                self._cache[model_id] = (key, model, st.st_size)
                self._cache.move_to_end(model_id)
                while len(self._cache) > 1 and (len(self._cache) > self.cache_models
                                                or self.cached_bytes() > self.cache_bytes):
                    self._cache.popitem(last=False)
                    self.evictions += 1
            return model

    # -- publishing --------------------------------------------------------------------------------------------
    def temp_upload(self):
        """A new hidden temp file in the models directory (same file system as the target): ``(fd, path)``."""
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=".partial", dir=self.dir)
        return fd, Path(name)

    def publish(self, model_id: str, tmp: Path, sha: str) -> dict:
        """Validate the uploaded ``tmp`` and move it to ``<id>.h5`` atomically. ``tmp`` is always
        consumed (moved or deleted). Raises :class:`RegistryError` (422) for an invalid file."""
        target = self.path(model_id)
        try:
            try:
                card = model_card(model_id, tmp)
            except (ModelFileError, OSError, KeyError, ValueError, TypeError) as exc:
                msg = str(exc).replace(str(tmp), "uploaded file")
                raise RegistryError(422, "invalid_model_file", f"model file rejected: {msg}", "body") from None
            with self._lock:
                existed = target.exists()
                os.replace(tmp, target)
                st = target.stat()
                self._upsert(model_id, sha, st, card)
                self.rejected.pop(model_id, None)
                self._evict(model_id)
        finally:
            tmp.unlink(missing_ok=True)
        card = self.card(model_id)
        card["replaced"] = existed
        return card

    def delete(self, model_id: str) -> None:
        p = self.path(model_id)
        with self._lock:
            if not p.exists():
                raise RegistryError(404, "unknown_model", f"no model {model_id!r}", "model_id")
            p.unlink()
            self._drop(model_id)
            self._evict(model_id)
            self.rejected.pop(model_id, None)

    # -- query log -----------------------------------------------------------------------------------------------
    def log_query(self, model_id: str, kind: str, status: int, loadings: int, ms: float) -> None:
        if self.query_log_rows <= 0:
            return
        try:
            with self._db_lock, self._db:
                self._db.execute("INSERT INTO queries (ts, model, kind, status, loadings, ms) VALUES (?, ?, ?, ?, ?, ?)",
                                 (time.time(), model_id, kind, status, loadings, ms))
                self._inserts += 1
                if self._inserts % 1000 == 0:
                    self._db.execute("DELETE FROM queries WHERE n <= (SELECT MAX(n) FROM queries) - ?",
                                     (self.query_log_rows,))
        except sqlite3.Error as exc:  # the log must never fail a query
            log.warning("query log: %s", exc)

    def query_log(self, limit: int = 100) -> list[dict]:
        with self._db_lock:
            rows = self._db.execute("SELECT ts, model, kind, status, loadings, ms FROM queries ORDER BY n DESC "
                                    "LIMIT ?", (limit,)).fetchall()
        return [dict(zip(("ts", "model", "kind", "status", "loadings", "ms"), r)) for r in rows]

    def ready(self) -> tuple[bool, str]:
        if not self.dir.is_dir() or not os.access(self.dir, os.R_OK | os.X_OK):
            return False, f"models directory {self.dir} is not readable"
        try:
            with self._db_lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            return False, f"index: {exc}"
        return True, "ok"

    def close(self) -> None:
        with self._db_lock:
            self._db.close()
