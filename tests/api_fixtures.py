"""Fixtures of the REST service tests: a real ``structrom serve`` process on 127.0.0.1 and small models.

:class:`ServerProcess` starts ``python -m structrom.api.cli serve`` on a free loopback port as a subprocess, waits
for ``/ready`` (bounded), and stops it (SIGTERM, then SIGKILL) at the end. Models come from
:func:`rom_fixtures.build_exact_model` (in-process HF runs in the TEST process; the server process
never builds anything).
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
#: A small, fast family: 2 x 2 training loadings on a coarse box.
SMALL_TRAINING = [(0.03, 0.0), (0.03, 0.5), (0.05, 0.0), (0.05, 0.5)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_small_model(tmp_path, name: str = "small.h5", **kw):
    """A small exact model (8 x 2 x 2 hex8 box, stress and p duals); a few seconds."""
    import rom_fixtures as fx

    kw.setdefault("divisions", (8, 2, 2))
    kw.setdefault("training", SMALL_TRAINING)
    return fx.build_exact_model(tmp_path, name=name, **kw)


class ServerProcess:
    """``python -m structrom.api.cli serve`` on 127.0.0.1 as a subprocess (context manager)."""

    def __init__(self, models_dir: Path, *, keys: list[str] | None = None, args: list[str] | None = None,
                 config: Path | None = None, env: dict | None = None, startup_timeout: float = 60.0) -> None:
        self.models_dir = Path(models_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.keys = list(keys or [])
        self.args = list(args or [])
        self.config = config
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None
        self.log_path = self.models_dir.parent / f"server-{self.port}.log"

    @property
    def key(self) -> str | None:
        return self.keys[0] if self.keys else None

    def __enter__(self) -> "ServerProcess":
        cmd = [sys.executable, "-m", "structrom.api.cli", "serve", "--models", str(self.models_dir), "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning", *self.args]
        if self.config is not None:
            cmd += ["--config", str(self.config)]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", **self.env}
        if self.keys:
            keys_file = self.models_dir.parent / f"keys-{self.port}.txt"
            keys_file.write_text("# test keys\n" + "\n".join(self.keys) + "\n")
            cmd += ["--keys-file", str(keys_file)]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                headers = {"X-API-Key": self.key} if self.key else {}
                if httpx.get(self.url + "/ready", timeout=1.0, headers=headers).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server not ready after {self.startup_timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        try:
            return self.log_path.read_text()[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if getattr(self, "_log", None):
            self._log.close()

    def __exit__(self, *exc) -> None:
        self.stop()

    def mapped_libraries(self) -> str:
        """The server process's memory map (``/proc/<pid>/maps``): the shared objects it loaded."""
        return Path(f"/proc/{self.proc.pid}/maps").read_text()


def new_key() -> str:
    return secrets.token_urlsafe(24)


# -- hostile files and process inspection (tests of the service's hardening) --------------------------------------
def mutated(src: Path, dst: Path, mutate) -> Path:
    """A copy of the model file ``src`` at ``dst`` changed in place by ``mutate(h5py.File)``."""
    import shutil

    import h5py

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        mutate(f)
    return dst


def replace_dataset(f, path: str, **create) -> None:
    """Recreate dataset ``path`` of ``f`` (same shape and type) with other creation options."""
    data = f[path][()]
    del f[path]
    if "external" in create:
        f.create_dataset(path, shape=data.shape, dtype=data.dtype, **create)
    else:
        f.create_dataset(path, data=data, **create)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren...) from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            kids = [int(c) for t in Path(f"/proc/{p}/task").iterdir()
                    for c in (t / "children").read_text().split()]
        except OSError:
            continue
        out += kids
        todo += kids
    return out


def solver_pids(server: "ServerProcess") -> list[int]:
    """The solver processes of a running server (forked by its forkserver, named by the worker module)."""
    out = []
    for pid in descendants(server.proc.pid):
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            pcmd = Path(f"/proc/{parent}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if b"forkserver" in pcmd:
            out.append(pid)
    return out


def peak_rss_bytes(pid: int) -> int:
    """VmHWM (peak resident set) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0
