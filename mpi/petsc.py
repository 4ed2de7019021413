"""PETSc for structrom processes: initialized once, with PETSc's signal handler left out.

``PetscInitialize`` installs by default a signal handler for SIGPIPE, SIGTERM, SIGSEGV, SIGFPE, SIGBUS ...
that prints through petsc4py's Python-level printer from inside the handler, then aborts. In a Python
process this turns an ordinary event into a crash: writing to a socket whose peer has closed it raises
SIGPIPE (Python ignores it and reports ``BrokenPipeError``); under PETSc's handler the process died with a
segmentation fault in the printer instead (seen in a test process that had run HF solves and then posted a
request a server refused early). ``terminate()`` of a worker printed PETSc's error banner in the same way.

Every structrom module takes PETSc from here::

    from structrom.mpi.petsc import PETSc

which initializes PETSc with ``-no_signal_handler`` (plus the options of :func:`initialize`) when nobody
initialized it before, and otherwise removes PETSc's handler and gives Python its own dispositions back.
"""
from __future__ import annotations

import faulthandler
import signal
import sys
import threading
from collections.abc import Sequence
from types import ModuleType

# the signals PETSc's handler takes over (PetscPushSignalHandler, src/sys/error/signal.c) and Python sets
# itself: SIGPIPE ignored, SIGINT -> KeyboardInterrupt, and whatever the program installed.
_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT",
                                                    "SIGALRM", "SIGURG", "SIGUSR1", "SIGUSR2", "SIGSYS")
                 if hasattr(signal, name))


def _give_signals_back() -> None:
    """Pop PETSc's signal handler (a no-op when none was pushed) and reinstall Python's dispositions, which
    ``PetscPopSignalHandler`` resets to the system default (SIGPIPE would then kill the process)."""
    from petsc4py import PETSc

    PETSc.Sys.popSignalHandler()
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal works in the main thread only; PETSc was initialized there in practice
    for sig in _SIGNALS:
        handler = signal.getsignal(sig)  # Python's record of its own disposition, untouched by PETSc
        if handler is not None:
            signal.signal(sig, handler)
    if faulthandler.is_enabled():
        faulthandler.enable()  # its SIGSEGV/SIGFPE/SIGBUS/SIGILL/SIGABRT handlers, which PETSc replaced


#: The option names (without the leading ``-``) given to :func:`initialize`: those a user typed on a command line.
GIVEN_OPTIONS: list[str] = []


def option_names(options: Sequence[str]) -> list[str]:
    """The option names of PETSc command-line ``options`` (``["-ksp_rtol", "1e-6", "-ksp_monitor"]`` ->
    ``["ksp_rtol", "ksp_monitor"]``; a negative number is a value, not an option)."""
    names = []
    for word in options:
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit() and word[1] != ".":
            names.append(word.lstrip("-"))
    return names


def _petsc_library():
    """The PETSc shared library this process loaded (ctypes), or None when it is not found."""
    import ctypes

    try:  # (the mapped files of this process: PETSc's library is among them once petsc4py is imported)
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/libpetsc" in line}
    except OSError:
        return None
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            lib = ctypes.CDLL(path)
            lib.PetscOptionsUsed  # (raises AttributeError when absent)
            return lib
        except (OSError, AttributeError):
            continue
    return None


def unused_options(names: Sequence[str]) -> list[str] | None:
    """Of the option ``names`` (without ``-``), those set in PETSc's options database that no PETSc object has read
    so far (``PetscOptionsUsed``: petsc4py 3.18 does not expose it, so it is called through ctypes); None when the
    check is not available. Call it after the objects are set up (a solver's first solve): an option never read
    is misspelt, or belongs to a type this run does not use."""
    import ctypes

    lib = _petsc_library()
    if lib is None:
        return None
    from petsc4py import PETSc

    present = set(PETSc.Options().getAll())  # (not Options.hasName: querying an option marks it used)
    used = lib.PetscOptionsUsed
    used.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    used.restype = ctypes.c_int
    out = []
    for name in dict.fromkeys(names):
        if name not in present:
            continue
        flag = ctypes.c_int(0)
        if used(None, name.encode(), ctypes.byref(flag)) != 0:
            return None
        if not flag.value:
            out.append(name)
    return out


def initialize(options: Sequence[str] = ()) -> ModuleType:
    """The ``petsc4py.PETSc`` module, initialized on the first call with ``options`` (PETSc command-line
    options such as ``["-ksp_monitor"]``) and ``-no_signal_handler``.

    Options given after PETSc was initialized (by an earlier call or an earlier ``from petsc4py import
    PETSc``) cannot take effect; they are inserted into PETSc's options database instead, which solvers
    read at set-up (``setFromOptions``)."""
    import petsc4py

    GIVEN_OPTIONS.extend(option_names(options))
    fresh = "petsc4py.PETSc" not in sys.modules
    if fresh:  # a no-op if petsc4py.init() was called before: the handler is then removed below
        petsc4py.init([sys.argv[0] if sys.argv and sys.argv[0] else "structrom", *options, "-no_signal_handler"])
    from petsc4py import PETSc

    _give_signals_back()
    if options and not fresh:
        PETSc.Options().insertString(" ".join(options))
    return PETSc


PETSc = initialize()
