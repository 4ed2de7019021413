"""PETSc KSP wrapper for symmetric positive definite systems of 3D solids.

Defaults: CG preconditioned by GAMG with the six rigid-body modes as near-null space. Every PETSc
option is settable from the command line or from configuration (``-ksp_type preonly -pc_type lu
-pc_factor_mat_solver_type mumps`` for a direct solve, ``-pc_type hypre`` for BoomerAMG...).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from petsc4py import PETSc


class LinearSolverError(RuntimeError):
    """The Krylov solver did not converge; the message names the reason and what to try."""


@dataclass
class LinearSolverOptions:
    ksp_type: str = "cg"
    pc_type: str = "gamg"
    rtol: float = 1e-10
    atol: float = 1e-50
    max_it: int = 5000
    #: Extra PETSc options, e.g. {"pc_gamg_threshold": "0.02"}; the command line overrides them.
    petsc_options: dict[str, str] = field(default_factory=dict)


class LinearSolver:
    """Solves ``A x = b`` for PETSc matrices assembled by :class:`structrom.mpi.assembly.MatrixAssembler`.

    ``coordinates``: owned nodal coordinates ``(n_owned_nodes, 3)`` in PETSc order, used to build the
    rigid-body near-null space for GAMG.
    """

    def __init__(self, comm, options: LinearSolverOptions, coordinates: np.ndarray | None = None,
                 prefix: str = "") -> None:
        self.comm = comm
        self.options = options
        self.coordinates = coordinates
        db = PETSc.Options()
        for k, v in options.petsc_options.items():
            key = prefix + k.lstrip("-")
            if not db.hasName(key):
                db.setValue(key, v)
        self.ksp = PETSc.KSP().create(comm=comm)
        self.ksp.setOptionsPrefix(prefix)
        self.ksp.setType(options.ksp_type)
        self.ksp.getPC().setType(options.pc_type)
        self.ksp.setTolerances(rtol=options.rtol, atol=options.atol, max_it=options.max_it)
        self.ksp.setFromOptions()
        self._near_null: PETSc.NullSpace | None = None

    def _rigid_body_modes(self, mat: PETSc.Mat) -> PETSc.NullSpace | None:
        if self.coordinates is None:
            return None
        if self._near_null is None:
            vec = mat.createVecLeft()
            vec.setBlockSize(3)
            vec.getArray()[:] = np.ascontiguousarray(self.coordinates, dtype=float).ravel()
            self._near_null = PETSc.NullSpace().createRigidBody(vec)
        return self._near_null

    def solve(self, mat: PETSc.Mat, rhs: np.ndarray) -> tuple[np.ndarray, int]:
        """Solve with owned rhs slice ``(n_owned,)``; returns owned solution and iteration count."""
        ns = self._rigid_body_modes(mat)
        if ns is not None:
            mat.setNearNullSpace(ns)
        self.ksp.setOperators(mat)
        b = mat.createVecLeft()
        b.getArray()[:] = rhs
        x = mat.createVecRight()
        self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            names = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items() if isinstance(v, int)}
            raise LinearSolverError(
                f"linear solver {self.ksp.getType()}/{self.ksp.getPC().getType()} diverged "
                f"({names.get(reason, reason)}) after {self.ksp.getIterationNumber()} iterations: try a direct "
                "solver (-ksp_type preonly -pc_type lu -pc_factor_mat_solver_type mumps), or check "
                "that the Dirichlet conditions remove all rigid-body motions"
            )
        out = x.getArray().copy()
        its = self.ksp.getIterationNumber()
        b.destroy()
        x.destroy()
        return out, its
