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


def initialize(options: Sequence[str] = ()) -> ModuleType:
    """The ``petsc4py.PETSc`` module, initialized on the first call with ``options`` (PETSc command-line
    options such as ``["-ksp_monitor"]``) and ``-no_signal_handler``.

    Options given after PETSc was initialized (by an earlier call or an earlier ``from petsc4py import
    PETSc``) cannot take effect; they are inserted into PETSc's options database instead, which solvers
    read at set-up (``setFromOptions``)."""
    import petsc4py

    fresh = "petsc4py.PETSc" not in sys.modules
    if fresh:  # a no-op if petsc4py.init() was called before: the handler is then removed below
        petsc4py.init([sys.argv[0] if sys.argv and sys.argv[0] else "structrom", *options, "-no_signal_handler"])
    from petsc4py import PETSc

    _give_signals_back()
    if options and not fresh:
        PETSc.Options().insertString(" ".join(options))
    return PETSc


PETSc = initialize()
