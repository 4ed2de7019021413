"""CalculiX (ccx 2.20) adapter: mesh decks, running ccx, and parsing its ``.dat`` and ``.frd`` results.

This module gathers the public names of the modules that do the work, one job each (import from either):

* :mod:`.inp_writer` - our mesh as input cards (:func:`write_mesh_inp`) within ccx's line and field limits;
* :mod:`.inp` - the mesh of an input deck and its file ids (:func:`read_inp`, :class:`InpIds`);
* :mod:`.calculix_runner` - running ccx (:func:`run_ccx`, :class:`CompletedRun`);
* :mod:`.dat` - ``*NODE PRINT``/``*EL PRINT`` results (:func:`read_dat`, :class:`DatBlock`);
* :mod:`.frd` - ``.frd`` results (:func:`read_frd`, :class:`FrdResult`; :func:`.frd.read_frd_file` in full);
* :mod:`.calculix_static_deck` - a complete quasi-static deck from our mesh, law and loading
  (:func:`write_static_deck`);
* :mod:`.calculix_matrices` - stiffness and mass matrices exported with ``*FREQUENCY, SOLVER=MATRIXSTORAGE``
  (:func:`write_matrix_deck`, :func:`read_matrix_storage`, :func:`matrix_dofs_to_ours`, :func:`expand_matrix`);
* :mod:`.calculix_error` - :class:`CalculixError`, raised by all of them.

Each module's docstring lists the facts about ccx 2.20's formats it relies on (checked against ccx 2.20 runs).

Our conventions: ids written to decks are 1-based (node ``i`` -> ``i + 1``, element ``e`` -> ``e + 1``);
results are returned in :mod:`structrom.rom.voigt` order (``xx yy zz xy yz zx``, engineering strain shears).
"""
from __future__ import annotations

from .calculix_error import CalculixError
from .calculix_matrices import expand_matrix, matrix_dofs_to_ours, read_matrix_storage, write_matrix_deck
from .calculix_runner import CompletedRun, run_ccx
from .calculix_static_deck import write_static_deck
from .dat import DatBlock, read_dat
from .frd import FrdResult, read_frd
from .inp import InpIds, read_inp
from .inp_writer import MAX_ENTRIES_PER_LINE, MAX_LINE_LENGTH, MAX_NUMBER_LENGTH, write_mesh_inp  # noqa: F401

__all__ = [
    "CalculixError",
    "InpIds",
    "CompletedRun",
    "DatBlock",
    "FrdResult",
    "write_mesh_inp",
    "read_inp",
    "run_ccx",
    "read_dat",
    "read_frd",
    "write_static_deck",
    "read_matrix_storage",
    "matrix_dofs_to_ours",
    "expand_matrix",
    "write_matrix_deck",
]
