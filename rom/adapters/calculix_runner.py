"""Running CalculiX: ``ccx -i <job>`` in a job directory, with its errors turned into :class:`CalculixError`.

:func:`run_ccx` returns a :class:`CompletedRun` (``.dat``/``.frd`` result paths, console output, wall time
in seconds); read the results with :func:`.dat.read_dat` and :func:`.frd.read_frd`.
"""
from __future__ import annotations

import os
import subprocess
import time as _time
from dataclasses import dataclass
from pathlib import Path

from .calculix_error import CalculixError

__all__ = ["CompletedRun", "run_ccx"]


@dataclass
class CompletedRun:
    """A finished ccx run: ``dat``/``frd`` result paths, console ``output``, wall ``seconds``."""

    jobdir: Path
    jobname: str
    returncode: int
    output: str
    seconds: float

    @property
    def dat(self) -> Path:
        return self.jobdir / f"{self.jobname}.dat"

    @property
    def frd(self) -> Path:
        return self.jobdir / f"{self.jobname}.frd"


def run_ccx(
    jobdir: str | os.PathLike,
    jobname: str,
    *,
    timeout: float = 600.0,
    ccx: str = "ccx",
    threads: int = 1,
    require: tuple[str, ...] = ("dat", "frd"),
) -> CompletedRun:
    """Run ``ccx -i jobname`` in ``jobdir`` (``OMP_NUM_THREADS=threads``).

    Raises :class:`CalculixError` quoting ccx's ``*ERROR`` lines when it fails (non-zero exit, error
    lines, or a missing required result file) and on timeout.
    """
    jobdir = Path(jobdir)
    if not (jobdir / f"{jobname}.inp").exists():
        raise CalculixError(f"CalculiX input {str(jobdir / (jobname + '.inp'))!r} does not exist")
    for ext in require:  # stale results would hide a failure
        (jobdir / f"{jobname}.{ext}").unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CCX_NPROC_EQUATION_SOLVER=str(threads))
    start = _time.perf_counter()
    try:
        proc = subprocess.run(
            [ccx, "-i", jobname], cwd=jobdir, env=env, capture_output=True, text=True, timeout=timeout
        )
    except FileNotFoundError:
        raise CalculixError(f"CalculiX executable {ccx!r} not found; install calculix-ccx or pass ccx=") from None
    except subprocess.TimeoutExpired:
        raise CalculixError(f"ccx on {jobdir / jobname}.inp did not finish within {timeout} s") from None
    run = CompletedRun(jobdir, jobname, proc.returncode, proc.stdout + proc.stderr, _time.perf_counter() - start)
    lines = run.output.splitlines()
    errors = [
        " ".join(lines[i : i + 3]).strip()
        for i, line in enumerate(lines)
        if "*ERROR" in line
    ]
    missing = [ext for ext in require if not (jobdir / f"{jobname}.{ext}").exists()]
    if proc.returncode != 0 or errors or missing:
        detail = "\n".join(errors[:10]) or "\n".join(lines[-10:])
        raise CalculixError(
            f"ccx failed on {jobdir / jobname}.inp (exit code {proc.returncode}"
            + (f", missing {', '.join(jobname + '.' + e for e in missing)}" if missing else "")
            + f"):\n{detail}"
        )
    return run

