"""PETSc KSP wrapper for symmetric positive definite systems of 3D solids.

Defaults: CG preconditioned by GAMG with the six rigid-body modes as near-null space. Every PETSc
option is settable from the command line or from configuration (``-ksp_type preonly -pc_type lu
-pc_factor_mat_solver_type mumps`` for a direct solve, ``-pc_type hypre`` for BoomerAMG...).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from structrom.mpi.petsc import GIVEN_OPTIONS, PETSc, unused_options
from structrom.mpi.errors import StructromError


class LinearSolverError(StructromError, RuntimeError):
    """The Krylov solver did not converge; the message names the reason and what to try."""


@dataclass
class LinearSolverOptions:
    ksp_type: str = "cg"
    pc_type: str = "gamg"
    rtol: float = 1e-10
    atol: float = 1e-50
    max_it: int = 5000
    #: Keep the preconditioner built at an increment's first Newton iteration for its later iterations (the
    #: tangent changes little within an increment; the Krylov solver still reaches its tolerance).
    reuse_preconditioner: bool = True
    #: Inexact Newton: linear tolerance from the Eisenstat-Walker forcing terms (``rtol`` is then the
    #: tightest one), never tighter than the Newton tolerance needs.
    eisenstat_walker: bool = True
    #: Loosest linear tolerance of the forcing terms.
    eta_max: float = 1e-2
    #: Linear tolerance of an increment's first Newton iteration (then Eisenstat-Walker).
    eta_first: float = 1e-6
    #: Extra PETSc options, e.g. {"pc_gamg_threshold": "0.02"}; the command line overrides them.
    petsc_options: dict[str, str] = field(default_factory=dict)


def _petsc_reason(exc: Exception) -> str:
    """The last line of a PETSc error's trace (e.g. "Unable to find requested KSP type foo"), without its rank."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1].split("] ", 1)[-1] if lines else type(exc).__name__


class LinearSolver:
    """Solves ``A x = b`` for PETSc matrices assembled by :class:`structrom.mpi.assembly.MatrixAssembler`.

    ``coordinates``: owned nodal coordinates ``(n_owned_nodes, 3)`` in PETSc order, used to build the
    rigid-body near-null space for GAMG.
    """

    def __init__(self, comm, options: LinearSolverOptions, coordinates: np.ndarray | None = None,
                 prefix: str = "", warn: Callable[[str], None] | None = None) -> None:
        self.comm = comm
        self.options = options
        self.coordinates = coordinates
        #: After the first solve, the options the user gave (``petsc_options``, command line) that PETSc never read
        #: are reported through ``warn`` (a misspelt option was otherwise ignored without a word).
        self.warn = warn
        self.unchecked_options = [prefix + k.lstrip("-") for k in options.petsc_options] + list(GIVEN_OPTIONS)
        db = PETSc.Options()
        defaults = dict(options.petsc_options)
        if options.pc_type == "gamg":
            # a rebuilt GAMG keeps its interpolation (same pattern): only the Galerkin products are redone
            defaults.setdefault("pc_gamg_reuse_interpolation", "true")
        for k, v in defaults.items():
            key = prefix + k.lstrip("-")
            if not db.hasName(key):
                db.setValue(key, v)
        self.ksp = PETSc.KSP().create(comm=comm)
        self.ksp.setOptionsPrefix(prefix)
        for what, name, set_type in (("ksp_type", options.ksp_type, self.ksp.setType),
                                     ("pc_type", options.pc_type, self.ksp.getPC().setType)):
            try:
                set_type(name)
            except PETSc.Error as exc:  # (PETSc's error code only: 86 is an unknown type)
                raise LinearSolverError(f"solver.linear.{what} {name!r}: {_petsc_reason(exc)}: not a PETSc "
                                        f"{'KSP' if what == 'ksp_type' else 'PC'} type of this build") from None
        self.ksp.setTolerances(rtol=options.rtol, atol=options.atol, max_it=options.max_it)
        if options.eisenstat_walker and options.ksp_type in ("cg", "gmres", "fgmres", "bcgs"):
            # forcing terms bound the true residual ||b - A x|| / ||b||, not a preconditioned one
            self.ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
            if options.ksp_type == "gmres":
                self.ksp.setPCSide(PETSc.PC.Side.RIGHT)
        try:
            self.ksp.setFromOptions()
        except PETSc.Error as exc:
            raise LinearSolverError(f"PETSc options of the linear solver (command line or solver.linear.petsc_options): "
                                    f"{_petsc_reason(exc)}") from None
        self._near_null: PETSc.NullSpace | None = None
        #: Solves whose kept preconditioner failed and was rebuilt (:meth:`solve`).
        self.n_rebuilt = 0

    def _rigid_body_modes(self, mat: PETSc.Mat) -> PETSc.NullSpace | None:
        if self.coordinates is None:
            return None
        if self._near_null is None:
            vec = mat.createVecLeft()
            vec.setBlockSize(3)
            vec.getArray()[:] = np.ascontiguousarray(self.coordinates, dtype=float).ravel()
            self._near_null = PETSc.NullSpace().createRigidBody(vec)
        return self._near_null

    def first_forcing_term(self) -> float:
        """Linear relative tolerance of a solve whose right-hand side is driven by prescribed values (an
        increment's first Newton iteration with nonzero prescribed displacement increments): ``eta_first``
        (``rtol`` without Eisenstat-Walker)."""
        o = self.options
        return float(max(o.eta_first, o.rtol)) if o.eisenstat_walker else o.rtol

    def forcing_term(self, residual: float, previous_residual: float | None, previous_eta: float | None,
                     target: float) -> float:
        """Linear relative tolerance of one Newton iteration: Eisenstat and Walker (SIAM J. Sci. Comput. 17,
        1996), choice 2 with ``gamma = 0.9``, ``alpha = 2``: ``eta = gamma (|F_k| / |F_k-1|)^2`` (``eta_first`` at an
        increment's first iteration), safeguarded
        by ``gamma eta_k-1^2`` when that exceeds 0.1, capped by ``eta_max``, at least ``rtol``, and never
        below ``0.5 target / |F_k|`` (no oversolving: ``target`` is the residual Newton must reach)."""
        o = self.options
        if not o.eisenstat_walker:
            return o.rtol
        if previous_residual is None or previous_eta is None or not previous_residual > 0:
            # first iteration: tight enough that a linear (elastic) increment is done in two Newton steps
            eta = max(o.eta_first, 0.5 * target / residual) if residual > 0 else o.eta_max
        else:
            eta = 0.9 * (residual / previous_residual) ** 2
            guard = 0.9 * previous_eta ** 2
            if guard > 0.1:
                eta = max(eta, guard)
        eta = min(eta, o.eta_max)
        if residual > 0:
            eta = max(eta, 0.5 * target / residual)
        return float(min(max(eta, o.rtol), o.eta_max))

    def solve(self, mat: PETSc.Mat, rhs: np.ndarray, *, rtol: float | None = None,
              reuse: bool = False) -> tuple[np.ndarray, int]:
        """Solve with owned rhs slice ``(n_owned,)``; returns owned solution and iteration count.

        ``rtol``: this solve's relative tolerance (default ``options.rtol``); ``reuse``: keep the
        preconditioner of the previous solve (``mat`` being the same matrix with new values). When the Krylov
        solver fails with a kept preconditioner (e.g. CG's DIVERGED_INDEFINITE_PC once plastic flow has changed the
        tangent), the preconditioner is rebuilt from ``mat`` and the solve done again, once; the iteration count
        returned is then the sum of both."""
        ns = self._rigid_body_modes(mat)
        if ns is not None:
            mat.setNearNullSpace(ns)
        self.ksp.setTolerances(rtol=self.options.rtol if rtol is None else rtol)
        # only an iterative method reaches its tolerance with an older preconditioner (not preonly + LU)
        kept = bool(reuse and self.options.reuse_preconditioner and self.ksp.getType() != "preonly")
        self.ksp.getPC().setReusePreconditioner(kept)
        self.ksp.setOperators(mat)
        b = mat.createVecLeft()
        b.getArray()[:] = rhs
        x = mat.createVecRight()
        self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        its = self.ksp.getIterationNumber()
        if reason < 0 and kept:  # the kept preconditioner no longer fits the matrix: rebuild it, once
            self.ksp.getPC().setReusePreconditioner(False)
            self.ksp.setOperators(mat)
            x.set(0.0)
            self.ksp.solve(b, x)
            reason = self.ksp.getConvergedReason()
            its += self.ksp.getIterationNumber()
            self.n_rebuilt += 1
        if reason < 0:
            names = {v: k for k, v in vars(PETSc.KSP.ConvergedReason).items() if isinstance(v, int)}
            raise LinearSolverError(
                f"linear solver {self.ksp.getType()}/{self.ksp.getPC().getType()} diverged "
                f"({names.get(reason, reason)}) after {self.ksp.getIterationNumber()} iterations: try a direct "
                "solver (-ksp_type preonly -pc_type lu -pc_factor_mat_solver_type mumps), or check "
                "that the Dirichlet conditions remove all rigid-body motions"
            )
        out = x.getArray().copy()
        b.destroy()
        x.destroy()
        if self.unchecked_options:
            self._report_unused()
        return out, its

    def _report_unused(self) -> None:
        """Warn once of the given options that the set-up and the first solve did not read."""
        names, self.unchecked_options = self.unchecked_options, []
        unused = unused_options(names)
        if unused and self.warn is not None:
            self.warn(f"warning: PETSc options never read by the linear solver: {', '.join('-' + n for n in unused)} "
                      f"(misspelt, or options of a type this run does not use: ksp_type {self.ksp.getType()}, pc_type "
                      f"{self.ksp.getPC().getType()}); they have no effect (PETSc's -help lists the options each type "
                      "reads)")
