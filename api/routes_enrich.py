"""``POST /v1/models/{id}/enrich``: enrichment of a published model as a background job [key].

Registered by :func:`register` (one call in :func:`structrom.api.server.create_app`).

The job runs ``structrom enrich`` (:mod:`structrom.rom.offline.enrich`) in a child process (under
``mpirun -n ranks`` when ``ranks > 1``): HF solves need PETSc or CalculiX, which the server process
never loads. The child publishes the new version atomically over ``<id>.h5`` (the old one kept under
``versions/``, which the registry does not list); the index is then refreshed. A failed HF solve
fails the job with the child's message and leaves the published model untouched. One enrichment per
model at a time (409 otherwise).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from .registry import MODEL_ID, RegistryError


ModelId = Annotated[str, PathParam(pattern=MODEL_ID.pattern, max_length=64,
                                   description="model id: letters, digits, '_' and '-' (no dots, no slashes)")]


class EnrichRequest(BaseModel):
    """Loadings to check (``loading_from_dict`` form, optional ``name``), the HF solver and its ranks."""

    model_config = ConfigDict(extra="forbid")
    loadings: list[dict[str, Any]] = Field(min_length=1, max_length=100)
    solver: Literal["inhouse", "calculix"] = "inhouse"
    ranks: int = Field(1, ge=1, le=64)
    timeout_seconds: float = Field(24 * 3600.0, gt=0)


def _error_lines(text: str) -> str:
    lines = [ln[len("structrom: error: "):] for ln in text.splitlines() if ln.startswith("structrom: error: ")]
    return " ".join(lines) or (text.strip().splitlines() or ["no output"])[-1]


def run_enrich(models_dir: Path, model_path: Path, body: EnrichRequest) -> dict:
    """Run ``structrom enrich`` on ``model_path`` in a child process; the result JSON or RegistryError."""
    fd, name = tempfile.mkstemp(prefix=".enrich-", suffix=".json", dir=models_dir)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(body.loadings, f)
        cmd = [sys.executable, "-m", "structrom.api.cli", "enrich", str(model_path), "--loadings", name, "--solver",
               body.solver, "--json"]
        if body.ranks > 1:
            cmd = ["mpirun", "-n", str(body.ranks), "--bind-to", "none", *cmd]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=body.timeout_seconds)
        except subprocess.TimeoutExpired:
            raise RegistryError(504, "enrich_timeout", f"enrichment exceeded {body.timeout_seconds} s; the published "
                                "model is unchanged") from None
        if proc.returncode != 0:
            raise RegistryError(422 if proc.returncode == 2 else 500, "enrich_failed",
                                f"enrichment failed: {_error_lines(proc.stderr)}", "loadings")
        for ln in proc.stdout.splitlines():
            if ln.startswith("ENRICH "):
                return json.loads(ln[len("ENRICH "):])
        raise RegistryError(500, "enrich_failed", "structrom enrich printed no result")
    finally:
        Path(name).unlink(missing_ok=True)


def register(app: FastAPI, state: dict, write: Any) -> None:
    """Add the enrich route to ``app``; ``state``: the app's state (``registry``, ``jobs``); ``write``: the
    write-key dependency."""
    busy: set[str] = set()
    lock = threading.Lock()

    @app.post("/v1/models/{model_id}/enrich", tags=["models"], dependencies=[write], status_code=202,
              responses={202: {"description": "accepted as a job: poll Location"}})
    async def enrich(model_id: ModelId, body: EnrichRequest):
        """Solve the loadings with the model; HF solves of those above the indicator tolerance, then a new
        model version (old one kept). Always a job: 202 + Location of ``/v1/jobs/{job}``."""
        reg = state["registry"]
        path = reg.path(model_id)
        if not path.exists():
            raise RegistryError(404, "unknown_model", f"no model {model_id!r}; list them with GET /v1/models",
                                "model_id")
        with lock:
            if model_id in busy:
                raise RegistryError(409, "enrich_in_progress", f"model {model_id!r} is being enriched; wait for "
                                    "that job", "model_id")
            busy.add(model_id)

        def fn():
            try:
                out = run_enrich(reg.dir, path, body)
                reg.scan()  # index the new version (the card lists the history)
                return out
            finally:
                with lock:
                    busy.discard(model_id)

        try:
            job = state["jobs"].submit("enrich", model_id, fn)
        except BaseException:
            with lock:
                busy.discard(model_id)
            raise
        loc = f"/v1/jobs/{job['id']}"
        return JSONResponse({"job": job["id"], "status": job["status"], "location": loc}, status_code=202,
                            headers={"Location": loc})
