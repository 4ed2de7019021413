"""Third-party native readers in a process of their own.

``ansys-mapdl-reader`` parses binary result files in C/C++: on a damaged file (a corrupted record length, a
truncated table) it can abort (``std::bad_alloc``), crash (segmentation fault) or ask for an allocation the size of
the corrupted number: of 40 copies of the reader's example ``.rst`` damaged at random, 11 ended the Python process
by a signal (SIGABRT, SIGSEGV). :func:`run_isolated` runs such a reader in a spawned process, whose address
space is limited to the machine's physical memory: a crash ends that process, not the caller, and becomes the
caller's error naming the files.

The process is a fresh interpreter (``python -c``) that receives the function and its arguments pickled on its
standard input and answers on its standard output: it does not import the caller's main module, so a user's
script without an ``if __name__ == "__main__":`` guard is neither run again nor stopped by multiprocessing's
bootstrapping error (which looked like a reader crash).

The function may call :func:`stage` to say what it reads next (``"result set 2: the constraint (D) records"``): when
the process is killed (a signal, or ``timeout``), the caller learns which record it was reading. A process past its
``timeout`` is killed and waited for (no orphan is left); the offsets it had read its open files to are then
kept (:class:`ReaderStopped` ``offsets``: the caller can name the block of a text file it was in).
"""
from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import TypeVar

from structrom.mpi.errors import StructromError

T = TypeVar("T")

__all__ = ["ISOLATE", "ReaderStopped", "run_isolated", "stage"]

#: False: :func:`run_isolated` calls the function in this process (for tests that replace the reader in it).
ISOLATE = True

#: The worker: the caller's ``sys.path`` first (so that the function's module imports as in the caller), then the call.
_WORKER = ("import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
           "from structrom.rom.adapters.reader_process import _serve; _serve()")


#: In the worker: the file :func:`stage` writes to (None: not in a worker).
_STAGE_FILE: str | None = None


class ReaderStopped(StructromError, RuntimeError):
    """The reader's process ended without an answer: ``why`` (killed by a signal, or past its time limit) and
    ``stage``, the last :func:`stage` it announced ("" if none); ``offsets``: ``{path: byte offset}`` of the regular
    files it had open when it was stopped at its time limit (where its reads had got to, ahead of the record it was
    reading by at most its stream's buffer; empty after a crash, or without ``/proc``)."""

    def __init__(self, why: str, stage: str, timed_out: bool = False, offsets: dict[str, int] | None = None):
        super().__init__(f"{why}{f' while reading {stage}' if stage else ''}")
        self.why, self.stage, self.timed_out, self.offsets = why, stage, timed_out, dict(offsets or {})


def _open_file_offsets(pid: int) -> dict[str, int]:
    """``{path: offset}`` of the regular files process ``pid`` has open (Linux ``/proc/<pid>/fdinfo``'s ``pos``);
    empty where ``/proc`` does not tell."""
    out: dict[str, int] = {}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if not os.path.isfile(target):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                pos = next((int(line.split()[1]) for line in f if line.startswith("pos:")), None)
        except (OSError, ValueError, IndexError):
            continue
        if pos is not None:
            out[target] = max(pos, out.get(target, 0))
    return out


def stage(what: str) -> None:
    """In the reader's process: ``what`` is read next (kept in a small file the caller reads if the process dies);
    nothing outside a worker."""
    if _STAGE_FILE is not None:
        with open(_STAGE_FILE, "w") as f:
            f.write(what)


def _main_module() -> str | None:
    """The module name the caller's ``__main__`` was run as (``python -m name``), None for a script or none: the
    worker imports that module as its ``__main__`` (functions of the caller's ``__main__`` then unpickle, as with
    multiprocessing's spawn), and never runs a script."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None)


def _limit_memory() -> None:
    """The worker's address space at most the machine's physical memory: an allocation sized by a corrupted
    header fails in the reader instead of swapping the machine."""
    try:
        import resource

        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = physical if hard == resource.RLIM_INFINITY else min(physical, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # (not POSIX, or not allowed: no limit)
        pass


def _serve() -> None:
    """In the worker: read ``(fn, args, kwargs)`` from stdin, write ``(True, value)`` or ``(False, exception)`` to
    the original stdout; the function's own output (Python's and native code's) goes to stderr."""
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    _limit_memory()
    global _STAGE_FILE
    _STAGE_FILE = pickle.load(sys.stdin.buffer)
    main = pickle.load(sys.stdin.buffer)
    if main:
        import importlib

        sys.modules["__main__"] = importlib.import_module(main)
    fn, args, kwargs = pickle.load(sys.stdin.buffer)
    try:
        result = (True, fn(*args, **kwargs))
    except BaseException as exc:  # (returned to the caller as it is)
        result = (False, exc)
    try:
        data = pickle.dumps(result)
    except Exception as exc:  # (an exception or value that does not pickle)
        data = pickle.dumps((False, RuntimeError(f"{type(result[1]).__name__}: {result[1]} ({exc})")))
    answer.write(data)
    answer.flush()


def _ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"ended by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"ended by signal {-returncode}"
    return f"ended with exit status {returncode} and no answer"


def run_isolated(fn: Callable[..., T], *args, crashed: Callable[[], Exception] | None,
                 timeout: float | None = None, **kwargs) -> T:
    """``fn(*args, **kwargs)`` in a process of its own (``fn``, its arguments and its result picklable); its
    exceptions are raised here as they are. When the process ends abnormally (killed by a signal: a native crash
    or abort) or runs past ``timeout`` seconds (then it is killed and waited for), ``crashed()`` is raised instead,
    or :class:`ReaderStopped` (how it ended and the last :func:`stage`) when ``crashed`` is None."""
    if not ISOLATE:
        return fn(*args, **kwargs)
    with tempfile.NamedTemporaryFile("w+", prefix="structrom-stage-", suffix=".txt") as stage_file:
        payload = (pickle.dumps(list(sys.path)) + pickle.dumps(stage_file.name) + pickle.dumps(_main_module())
                   + pickle.dumps((fn, args, kwargs)))
        offsets: dict[str, int] | None = None
        with subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
            try:
                answer, _ = proc.communicate(payload, timeout=timeout)
                stopped = None
            except subprocess.TimeoutExpired:  # (where its reads got to, then killed and waited for)
                offsets = _open_file_offsets(proc.pid)
                proc.kill()
                proc.communicate()
                stopped = f"did not finish within {timeout:g} s and was stopped"
            except BaseException:  # (Ctrl-C...: no orphan either)
                proc.kill()
                proc.wait()
                raise
        try:
            ok, value = pickle.loads(answer) if stopped is None else (None, None)
        except Exception:  # (no answer: ended by a signal or before it could answer)
            stopped = _ended(proc.returncode)
        if stopped is not None:
            if crashed is not None:
                raise crashed() from None
            with open(stage_file.name) as f:
                raise ReaderStopped(stopped, f.read().strip(), timed_out=offsets is not None, offsets=offsets) from None
    if ok:
        return value
    raise value
