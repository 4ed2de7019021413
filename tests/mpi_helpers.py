"""Running test programs under ``mpirun`` from pytest."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = Path(__file__).resolve().parent / "mpi_programs"


def mpirun(n: int, args: list[str], timeout: float = 300, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python args...`` on ``n`` ranks; raises with the output if it fails."""
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = ["mpirun", "-n", str(n), "--oversubscribe", "--bind-to", "none", sys.executable, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def run_program(n: int, name: str, *args: str, timeout: float = 300) -> dict:
    """Run ``tests/mpi_programs/<name>`` on ``n`` ranks; it prints one JSON line prefixed 'RESULT '."""
    proc = mpirun(n, [str(PROGRAMS / name), *args], timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise AssertionError(f"{name} printed no RESULT line:\n{proc.stdout}\n{proc.stderr}")
