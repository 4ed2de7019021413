"""Model registry: a directory of model files ``<id>.h5`` with a small SQLite index.

* ``index.sqlite`` (in the models directory): one row per published model (file sha256, identity, its
  card as JSON) and a bounded query log. The files are the truth: at start-up (and when a listing sees
  the directory changed) new or changed files are screened and validated in a solver process
  (:meth:`structrom.api.worker.SolverState.describe`) and indexed, rows of vanished files dropped; a file
  that fails is reported (``rejected``) and never served. Stale ``*.partial`` files (a killed upload or
  offline run) are removed at start-up.
* model ids match :data:`MODEL_ID` (no dots, no slashes) and the resolved path must sit directly in the
  models directory, so an id cannot name a file elsewhere;
* publishing: the caller streams the upload into :meth:`Registry.temp_upload` (a hidden temp file in
  the models directory, same file system), has it validated by a solver process, then
  :meth:`Registry.commit` fsyncs it, ``os.replace``-s it over ``<id>.h5`` and fsyncs the directory. A
  running solve keeps the version it opened (:mod:`structrom.api.worker`).

The server process never calls h5py: every file read happens in the solver processes.
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
from pathlib import Path

from structrom.rom.atomic import fsync_path

from .errors import DomainError
from .model_cards import model_card  # noqa: F401 - the registry's validation of a file (solver processes)

log = logging.getLogger("structrom.api")

#: Model ids: letters, digits, ``_`` and ``-``, 1 to 64 characters, starting with a letter or digit.
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SUFFIX = ".h5"
INDEX = "index.sqlite"
LOG_BATCH, LOG_FLUSH_SECONDS = 64, 1.0


RegistryError = DomainError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _refuse_constant(token):
    raise ValueError(f"{token} in a stored card")


def _identity(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class Registry:
    """The models directory and its SQLite index (thread-safe; no h5py call: see the module docstring)."""

    def __init__(self, models_dir: str | Path, *, query_log_rows: int = 100_000) -> None:
        self.dir = Path(models_dir).resolve()
        if not self.dir.is_dir():  # a fresh volume, or a misspelt --models: say which
            log.warning("models directory %s did not exist: created it, empty (check --models / models_dir if "
                        "models were expected)", self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.query_log_rows = query_log_rows
        self._lock = threading.RLock()
        self._db_lock = threading.Lock()
        self._inserts = 0
        self._pending_log: list[tuple] = []
        self._last_flush = time.monotonic()
        self.rejected: dict[str, str] = {}
        self._seen: dict[str, tuple] = {}  # id -> file identity last screened (valid or not)
        self._enriching: set[str] = set()  # ids whose file an enrichment job rewrites (PUT, DELETE refused)
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
        self.removed_partials = self.clean_partials()

    def clean_partials(self) -> list[str]:
        """Remove ``*.partial`` files left by a killed upload or offline run (at start-up, before serving)."""
        removed = []
        for p in self.dir.iterdir():
            if p.name.endswith(".partial") and p.is_file():
                p.unlink(missing_ok=True)
                removed.append(p.name)
        for p in (self.dir / ".pinned").glob("*.h5"):  # versions pinned by solver processes of a past run
            p.unlink(missing_ok=True)
        if removed:
            log.warning("removed %d stale partial file(s) from the models directory: %s", len(removed),
                        ", ".join(sorted(removed)))
        return removed

    # -- ids and paths ------------------------------------------------------------------------------------
    def path(self, model_id: str) -> Path:
        """The file of ``model_id``; raises :class:`DomainError` (422) for an invalid id."""
        if not isinstance(model_id, str) or not MODEL_ID.fullmatch(model_id):
            raise DomainError(422, "invalid_model_id", f"model id {model_id!r} must match {MODEL_ID.pattern}",
                              "model_id")
        p = (self.dir / (model_id + SUFFIX)).resolve()
        if p.parent != self.dir:
            raise DomainError(422, "invalid_model_id", f"model id {model_id!r} escapes the models directory",
                              "model_id")
        return p

    def servable(self, model_id: str) -> Path:
        """The file of a model that may be solved: 404 if absent, 409 if its current file was rejected."""
        p = self.path(model_id)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise DomainError(404, "unknown_model", f"no model {model_id!r}; list them with GET /v1/models",
                              "model_id") from None
        with self._lock:
            if model_id in self.rejected and self._seen.get(model_id) == _identity(st):
                raise DomainError(409, "invalid_model_file", self.rejected[model_id], "model_id")
        return p

    # -- index ----------------------------------------------------------------------------------------------
    def _rows(self) -> dict[str, tuple]:
        with self._db_lock:
            return {r[0]: r[1:] for r in self._db.execute("SELECT id, sha256, bytes, mtime_ns, published, card "
                                                          "FROM models")}

    def _upsert(self, model_id: str, sha: str, size: int, mtime_ns: int, card: dict) -> None:
        with self._db_lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?)",
                             (model_id, sha, size, mtime_ns, time.time(), json.dumps(card, allow_nan=False)))

    def _drop(self, model_id: str) -> None:
        with self._db_lock, self._db:
            self._db.execute("DELETE FROM models WHERE id = ?", (model_id,))

    def changed(self) -> list[tuple[str, Path, tuple]]:
        """Model files whose identity differs from what was last screened, and forget vanished ones."""
        rows = self._rows()
        out, present = [], set()
        for p in sorted(self.dir.glob("*" + SUFFIX)):
            mid = p.name[: -len(SUFFIX)]
            if not MODEL_ID.fullmatch(mid):
                continue
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            present.add(mid)
            ident = _identity(st)
            with self._lock:
                seen = self._seen.get(mid)
            if seen == ident:
                continue
            out.append((mid, p, ident))  # new, changed, or first seen by this process (screened again)
        with self._lock:
            for mid in (set(rows) | set(self._seen) | set(self.rejected)) - present:
                if (self.dir / (mid + SUFFIX)).exists():  # published since the listing above: not vanished
                    continue
                self._drop(mid)
                self._seen.pop(mid, None)
                self.rejected.pop(mid, None)
        return out

    def record(self, model_id: str, ident: tuple, described: dict | None, error: str | None) -> None:
        """The outcome of screening ``model_id``'s file of identity ``ident`` (a description or an error); nothing
        is recorded when the file is no longer that one: deleted or replaced while it was screened, its outcome
        would index a vanished file, mark it rejected, or overwrite the newer version's row. Checked under the
        lock that :meth:`commit` and :meth:`delete` hold while they change the file and its row."""
        with self._lock:
            try:
                now = _identity((self.dir / (model_id + SUFFIX)).stat())
            except FileNotFoundError:
                now = None
            if now != ident:
                return
            self._seen[model_id] = ident
            if described is None:
                self.rejected[model_id] = error or "rejected"
                self._drop(model_id)
                log.warning("model file %s%s rejected: %s", model_id, SUFFIX, error)
            else:
                self.rejected.pop(model_id, None)
                self._upsert(model_id, described["sha256"], ident[2], ident[3], described["card"])

    def list(self) -> list[dict]:
        out = []
        for mid, (sha, size, _, published, card) in sorted(self._rows().items()):
            try:  # a row written by an older server must not break the listing
                c = json.loads(card, parse_constant=_refuse_constant)
                out.append({"id": mid, "kind": str(c.get("kind", "hyper_reduced")), "sha256": sha, "bytes": size,
                            "published": published, "modes": int(c["sizes"]["modes"]), "reduced_points": int(c["sizes"]["reduced_points"]),
                            "surfaces": list(c["surfaces"]), "indicator_tolerance": float(c["indicator"]["tolerance"])})
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("index row of %s unreadable (%s): dropped until the file is screened again", mid, exc)
                with self._lock:
                    self._seen.pop(mid, None)
                self._drop(mid)
        return out

    def card(self, model_id: str) -> dict:
        self.path(model_id)
        with self._db_lock:
            row = self._db.execute("SELECT sha256, bytes, published, card FROM models WHERE id = ?",
                                   (model_id,)).fetchone()
        if row is None:
            if model_id in self.rejected:
                raise DomainError(409, "invalid_model_file", self.rejected[model_id], "model_id")
            raise DomainError(404, "unknown_model", f"no model {model_id!r}; list them with GET /v1/models",
                              "model_id")
        card = json.loads(row[3])
        card.update({"sha256": row[0], "bytes": row[1], "published": row[2]})
        return card

    def kind(self, model_id: str) -> str | None:
        """The indexed kind of ``model_id`` (None when not indexed)."""
        with self._db_lock:
            row = self._db.execute("SELECT card FROM models WHERE id = ?", (model_id,)).fetchone()
        try:
            return None if row is None else str(json.loads(row[0]).get("kind", "hyper_reduced"))
        except (ValueError, AttributeError):
            return None

    # -- publishing --------------------------------------------------------------------------------------------
    def temp_upload(self):
        """A new hidden temp file in the models directory (same file system as the target): ``(fd, path)``."""
        fd, name = tempfile.mkstemp(prefix=".upload-", suffix=".partial", dir=self.dir)
        return fd, Path(name)

    def begin_enrichment(self, model_id: str) -> None:
        """Mark ``model_id`` as being enriched: a child process publishes its next version over ``<id>.h5``
        (:mod:`structrom.api.routes_enrich`). Until :meth:`end_enrichment`, PUT and DELETE of it are refused
        (409): a PUT would be overwritten by the enrichment of the version it replaced, a DELETE undone by it."""
        with self._lock:
            self.writable(model_id)
            self._enriching.add(model_id)

    def end_enrichment(self, model_id: str) -> None:
        with self._lock:
            self._enriching.discard(model_id)

    def writable(self, model_id: str) -> None:
        """Raise :class:`DomainError` (409) while ``model_id`` is being enriched."""
        with self._lock:
            if model_id in self._enriching:
                raise DomainError(409, "enrich_in_progress", f"model {model_id!r} is being enriched (its next "
                                  "version is published when that job ends); retry after the job", "model_id",
                                  retry_after=5)

    def commit(self, model_id: str, tmp: Path, described: dict) -> tuple[bool, dict]:
        """Move the validated upload ``tmp`` to ``<id>.h5`` atomically and durably (fsync of the file, rename,
        fsync of the directory) and index it: ``(True if it replaced a model, the card of this version)``. The
        card is read under the lock of the rename, so that a DELETE right after cannot turn the answer of this
        publication into a 404. Blocking: call off the event loop."""
        target = self.path(model_id)
        fsync_path(tmp)
        with self._lock:
            self.writable(model_id)
            existed = target.exists()
            os.replace(tmp, target)
            fsync_path(self.dir, directory=True)
            st = target.stat()
            ident = _identity(st)
            self._seen[model_id] = ident
            self.rejected.pop(model_id, None)
            self._upsert(model_id, described["sha256"], st.st_size, st.st_mtime_ns, described["card"])
            return existed, self.card(model_id)

    def delete(self, model_id: str) -> None:
        p = self.path(model_id)
        with self._lock:
            self.writable(model_id)
            if not p.exists():
                raise DomainError(404, "unknown_model", f"no model {model_id!r}", "model_id")
            p.unlink()
            fsync_path(self.dir, directory=True)
            self._drop(model_id)
            self._seen.pop(model_id, None)
            self.rejected.pop(model_id, None)

    # -- query log -----------------------------------------------------------------------------------------------
    def log_query(self, model_id: str, kind: str, status: int, loadings: int, ms: float) -> None:
        """Record one query; rows are written in batches (at most ``LOG_BATCH`` rows or ``LOG_FLUSH_SECONDS``
        old: one commit per query cost a tenth of a millisecond of the event loop)."""
        if self.query_log_rows <= 0:
            return
        self._pending_log.append((time.time(), model_id, kind, status, loadings, ms))
        if len(self._pending_log) >= LOG_BATCH or time.monotonic() - self._last_flush > LOG_FLUSH_SECONDS:
            self.flush_log()

    def flush_log(self) -> None:
        rows, self._pending_log = self._pending_log, []
        self._last_flush = time.monotonic()
        if not rows:
            return
        try:
            with self._db_lock, self._db:
                self._db.executemany("INSERT INTO queries (ts, model, kind, status, loadings, ms) VALUES "
                                     "(?, ?, ?, ?, ?, ?)", rows)
                before, self._inserts = self._inserts, self._inserts + len(rows)
                if self._inserts // 1000 != before // 1000:
                    self._db.execute("DELETE FROM queries WHERE n <= (SELECT MAX(n) FROM queries) - ?",
                                     (self.query_log_rows,))
        except sqlite3.Error as exc:  # the log must never fail a query
            log.warning("query log: %s", exc)

    def query_log(self, limit: int = 100) -> list[dict]:
        self.flush_log()
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
        self.flush_log()
        with self._db_lock:
            self._db.close()
