"""Errors and warnings of the ``eim`` package."""
from __future__ import annotations

from mpi4py import MPI


class EIMError(ValueError):
    """Bad input to an EIM / separation routine; the message names the cause and the fix."""


class EIMWarning(UserWarning):
    """A requested accuracy cannot be met by the data (round-off level, too few samples...)."""


def raise_collectively(comm: MPI.Comm | None, message: str | None) -> None:
    """Raise :class:`EIMError` on every rank if any rank has a message (the first rank's wins).

    Keeps all ranks in step: a rank raising alone would leave the others blocked in a collective.
    """
    if comm is None or comm.Get_size() == 1:
        if message:
            raise EIMError(message)
        return
    messages = comm.allgather(message)
    for m in messages:
        if m:
            raise EIMError(m)
