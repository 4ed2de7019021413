"""The errors that mean bad input or a failed solve (reported as one line, never a traceback)."""
from __future__ import annotations

from rom.config import ConfigError
from rom.fem.mesh import MeshError
from rom.loading import LoadingError
from rom.materials.errors import MaterialError


def _solver_errors() -> tuple[type[Exception], ...]:
    try:
        from rom.hifi.solver import HifiSolverError
    except ImportError:  # PETSc not installed: the online path still works
        return ()
    return (HifiSolverError,)


def _rom_errors() -> tuple[type[Exception], ...]:
    from rom.model_file import ModelFileError
    from rom.offline.snapshots import SnapshotError
    from rom.pod import PODError
    from rom.reduced_quadrature import ECMError

    return (ModelFileError, SnapshotError, PODError, ECMError)


KNOWN_ERRORS: tuple[type[Exception], ...] = (ConfigError, MeshError, LoadingError, MaterialError,
                                             FileNotFoundError) + _solver_errors() + _rom_errors()
