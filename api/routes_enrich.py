"""``POST /v1/models/{id}/enrich``: enrichment of a published model as a background job [key].

The route is :data:`structrom.api.routes.enrich.router`; the job kind ``enrich`` runs :func:`run_enrich`
(:func:`structrom.api.execution.run_job`).

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
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .registry import RegistryError


class EnrichRequest(BaseModel):
    """Loadings to check (``loading_from_dict`` form, optional ``name``), the HF solver and its ranks."""

    model_config = ConfigDict(extra="forbid")
    loadings: list[dict[str, Any]] = Field(min_length=1, max_length=100)
    solver: Literal["inhouse", "calculix"] = "inhouse"
    ranks: int = Field(1, ge=1, le=64, strict=True)
    timeout_seconds: float = Field(24 * 3600.0, gt=0, le=30 * 24 * 3600.0, strict=True, allow_inf_nan=False)


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
                result = json.loads(ln[len("ENRICH "):])
                result["path"] = model_path.name  # the model's file name: no server path in an answer
                return result
        raise RegistryError(500, "enrich_failed", "structrom enrich printed no result")
    finally:
        Path(name).unlink(missing_ok=True)
