"""PETSc leaves a Python process's signals alone (``structrom.mpi.petsc``).

PETSc's default signal handler made a test process that had run HF solves crash (SIGSEGV inside the
handler) when it wrote to a socket a server had closed: SIGPIPE, which Python ignores, reached PETSc's
handler. Each check runs in a fresh interpreter, since PETSc is initialized once per process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

CHECK = r"""
import signal, socket
before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN when started in the background
{prelude}
from structrom.mpi.petsc import PETSc
a, b = socket.socketpair()
b.close()
try:
    a.send(b"x" * 65536)
    a.send(b"x" * 65536)
    raise SystemExit("no error writing to a closed socket")
except BrokenPipeError:
    pass
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
ignored, caught = int(status["SigIgn"], 16), int(status["SigCgt"], 16)
bit = 1 << (signal.SIGPIPE - 1)
assert ignored & bit and not caught & bit, (hex(ignored), hex(caught))
assert signal.getsignal(signal.SIGINT) is before
# PETSc works
v = PETSc.Vec().createSeq(3)
v.set(2.0)
assert v.norm(PETSc.NormType.NORM_1) == 6.0
print("ok")
"""


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("prelude", [
    "",  # structrom initializes PETSc
    "from petsc4py import PETSc as _first",  # PETSc initialized before, with its handler: removed afterwards
    "import petsc4py; petsc4py.init(['x', '-options_left', 'no'])",  # petsc4py.init called by the program
], ids=["structrom-first", "petsc4py-imported-first", "petsc4py-init-first"])
def test_broken_pipe_is_an_exception_not_a_crash(prelude):
    r = _run(CHECK.format(prelude=prelude))
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout, r.stderr[-2000:])
    assert "PETSC ERROR" not in r.stderr


def test_sigterm_ends_a_petsc_process_quietly():
    """A solver process stopped with SIGTERM dies of SIGTERM (no PETSc error banner, no MPI_Abort code)."""
    code = "from structrom.mpi.petsc import PETSc\nimport time\nprint('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM, (proc.returncode, err[-2000:])
    assert "PETSC ERROR" not in err


def test_options_reach_petsc():
    """Options given to ``initialize`` reach PETSc's options database, before and after initialization."""
    code = ("from structrom.mpi.petsc import initialize\n"
            "P = initialize(['-structrom_probe', '7'])\n"
            "assert P.Options().getInt('structrom_probe') == 7\n"
            "initialize(['-structrom_later', '3'])\n"
            "assert P.Options().getInt('structrom_later') == 3\n"
            "print('ok')\n")
    r = _run(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.stdout, r.stderr[-2000:])
