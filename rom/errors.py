"""The errors that mean bad input or a failed solve (reported as one line, never a traceback)."""
from __future__ import annotations

from structrom.rom.config import ConfigError
from structrom.rom.fem.mesh import MeshError
from structrom.rom.loading import LoadingError
from structrom.rom.materials.errors import MaterialError


def _solver_errors() -> tuple[type[Exception], ...]:
    try:
        from structrom.rom.hifi.solver import HifiSolverError
    except ImportError:  # PETSc not installed: the online path still works
        return ()
    return (HifiSolverError,)


def _rom_errors() -> tuple[type[Exception], ...]:
    from structrom.eim.errors import EIMError
    from structrom.rom.model_file import ModelFileError
    from structrom.rom.offline.exported_operators import ExportError
    from structrom.rom.offline.snapshots import SnapshotError
    from structrom.rom.pod import PODError
    from structrom.rom.reduced_quadrature import ECMError

    return (ModelFileError, SnapshotError, PODError, ECMError, ExportError, EIMError)


KNOWN_ERRORS: tuple[type[Exception], ...] = (ConfigError, MeshError, LoadingError, MaterialError,
                                             FileNotFoundError) + _solver_errors() + _rom_errors()
