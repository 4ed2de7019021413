"""Third-party native readers in a process of their own.

``ansys-mapdl-reader`` parses binary result files in C/C++: on a damaged file (a corrupted record length, a
truncated table) it can abort (``std::bad_alloc``), crash (segmentation fault) or ask for an allocation the size of
the corrupted number: of 40 copies of the reader's example ``.rst`` damaged at random, 11 ended the Python process
by a signal (SIGABRT, SIGSEGV). :func:`run_isolated` runs such a reader in a spawned process, whose address
space is limited to the machine's physical memory: a crash ends that process, not the caller, and becomes the
caller's error naming the files.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

T = TypeVar("T")

__all__ = ["ISOLATE", "run_isolated"]

#: False: :func:`run_isolated` calls the function in this process (for tests that replace the reader in it).
ISOLATE = True


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


def run_isolated(fn: Callable[..., T], *args, crashed: Callable[[], Exception], **kwargs) -> T:
    """``fn(*args, **kwargs)`` in a spawned process (``fn``, its arguments and its result picklable); its
    exceptions are raised here as they are. When the process ends abnormally (killed by a signal: a native crash
    or abort), ``crashed()`` is raised instead."""
    if not ISOLATE:
        return fn(*args, **kwargs)
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_limit_memory) as pool:
        try:
            return pool.submit(fn, *args, **kwargs).result()
        except BrokenProcessPool:
            raise crashed() from None
