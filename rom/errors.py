"""The errors that mean bad input or a failed solve (reported as one line, never a traceback): every
:class:`~structrom.mpi.errors.StructromError`, and a missing file."""
from __future__ import annotations

from structrom.mpi.errors import StructromError

KNOWN_ERRORS: tuple[type[Exception], ...] = (StructromError, FileNotFoundError)
