"""Errors and warnings of the ``eim`` package."""
from __future__ import annotations

from typing import TYPE_CHECKING

from structrom.mpi import collectives
from structrom.mpi.errors import StructromError

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI


class EIMError(StructromError, ValueError):
    """Bad input to an EIM / separation routine; the message names the cause and the fix."""


class EIMWarning(UserWarning):
    """A requested accuracy cannot be met by the data (round-off level, too few samples...)."""


def raise_collectively(comm: MPI.Comm | None, message: str | None) -> None:
    """Raise :class:`EIMError` on every rank if any rank has a message (see
    :func:`structrom.mpi.collectives.raise_collectively`)."""
    collectives.raise_collectively(comm, message, EIMError)
