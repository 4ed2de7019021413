"""Progress bars of long stages (tqdm): HF increments, offline stages, ECM selections, greedy rounds.

A bar is drawn on stderr only when stderr is a terminal, on MPI rank 0 only (callers pass ``enabled``),
and never when the environment variable ``STRUCTROM_QUIET`` is set (``structrom --quiet`` sets it).
Under ``mpirun`` the ranks' stderr is a pipe to ``mpirun`` even when ``mpirun`` writes to a terminal:
``STRUCTROM_PROGRESS=1`` (inherited by the ranks) draws the bars anyway. Logs keep their one line per
stage: bars are transient (``leave=False``) and the stages print their own summary line.
"""
from __future__ import annotations

import os
import sys
from typing import Any

QUIET_ENV = "STRUCTROM_QUIET"
PROGRESS_ENV = "STRUCTROM_PROGRESS"


def quiet() -> bool:
    """True when progress bars are off: ``STRUCTROM_QUIET`` set (non-empty, not ``0``), or stderr not a TTY
    unless ``STRUCTROM_PROGRESS`` is set."""
    if os.environ.get(QUIET_ENV, "") not in ("", "0"):
        return True
    if os.environ.get(PROGRESS_ENV, "") not in ("", "0"):
        return False
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return True


class _Null:
    """Stand-in when bars are off: accepts the calls a tqdm bar accepts and does nothing."""

    n = 0

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def set_description_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_Null":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def bar(total: float | None = None, desc: str = "", unit: str = "it", enabled: bool = True) -> Any:
    """A transient tqdm bar on stderr (or a no-op object when :func:`quiet` or not ``enabled``).

    Use as a context manager; ``update(n)``, ``set_postfix_str(text)``."""
    if not enabled or quiet():
        return _Null()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5)
