"""The error of the CalculiX adapters: a deck, run or result file that cannot be used.

Every CalculiX module raises it (:mod:`.inp`, :mod:`.inp_writer`, :mod:`.dat`, :mod:`.frd`, :mod:`.calculix_deck`...);
it is also importable from :mod:`structrom.rom.adapters.calculix`.
"""
from __future__ import annotations

from structrom.mpi.errors import StructromError

__all__ = ["CalculixError"]


class CalculixError(StructromError, ValueError):
    """A CalculiX deck, run or result file is invalid; the message names the file, line and fix."""
