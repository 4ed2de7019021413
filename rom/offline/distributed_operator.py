"""Exported matrices distributed by rows as PETSc operators: products, factorized solves, and the smallest
eigenvalue of a symmetric pencil (used by the separated offline stage, :mod:`structrom.rom.offline.separated`)."""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from structrom.mpi.petsc import PETSc

from structrom.mpi import collectives as _dist

from .exported_operators import ExportError


class DistributedOperator:
    """One exported matrix: this rank's rows (CSR ``(hi - lo, n)``), its PETSc MPIAIJ twin and, on demand,
    a factorized KSP."""

    def __init__(self, comm, A_local: sp.csr_matrix, lo: int, solver) -> None:
        self.local = A_local
        it = PETSc.IntType
        n_local, n = A_local.shape
        self.mat = PETSc.Mat().createAIJ(size=((n_local, n), (n_local, n)),
                                         csr=(A_local.indptr.astype(it), A_local.indices.astype(it), A_local.data),
                                         comm=comm)
        self.mat.assemble()
        self.mat.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        self.solver = solver
        self.ksp = None
        self._x = self.mat.createVecRight()
        self._y = self.mat.createVecLeft()

    def _dense(self, X: np.ndarray | None, k: int) -> PETSc.Mat:
        n_local, n = self.local.shape
        D = PETSc.Mat().createDense(size=((n_local, n), (None, k)), comm=self.mat.comm,
                                    array=None if X is None else np.asfortranarray(X, dtype=float))
        D.setUp()
        D.assemble()
        return D

    def matmul(self, X: np.ndarray) -> np.ndarray:
        """``A X`` at this rank's rows for ``X`` ``(n_local, k)`` (this rank's rows); one PETSc MatMatMult."""
        B = self._dense(X, X.shape[1])
        C = self.mat.matMult(B)
        out = np.array(C.getDenseArray(), dtype=float, order="C")
        B.destroy()
        C.destroy()
        return out

    def _setup(self) -> None:
        cfg = self.solver
        self.mat.setOption(PETSc.Mat.Option.SPD, True)
        self.ksp = PETSc.KSP().create(comm=self.mat.comm)
        self.ksp.setType(cfg.ksp_type)
        pc = self.ksp.getPC()
        pc.setType(cfg.pc_type)
        if cfg.factor_solver and cfg.pc_type in ("cholesky", "lu"):
            pc.setFactorSolverType(cfg.factor_solver)
        self.ksp.setTolerances(rtol=cfg.rtol, max_it=cfg.max_it)
        self.ksp.setOperators(self.mat)
        self.ksp.setFromOptions()
        self.ksp.setUp()

    def solve(self, B: np.ndarray) -> np.ndarray:
        """``A^-1 B`` for ``B`` ``(n_local, k)``; the KSP is set up (factorized) on first use. A direct solve
        (``preonly`` + ``cholesky``/``lu``) solves all columns at once (MatMatSolve)."""
        if self.ksp is None:
            self._setup()
        pc = self.ksp.getPC()
        if self.ksp.getType() == "preonly" and pc.getType() in ("cholesky", "lu"):
            Bd, Xd = self._dense(B, B.shape[1]), self._dense(None, B.shape[1])
            pc.getFactorMatrix().matSolve(Bd, Xd)
            out = np.array(Xd.getDenseArray(), dtype=float, order="C")
            Bd.destroy()
            Xd.destroy()
            return out
        out = np.empty_like(B)
        for c in range(B.shape[1]):
            self._y.array[:] = B[:, c]
            self.ksp.solve(self._y, self._x)
            reason = self.ksp.getConvergedReason()
            if reason < 0:
                raise ExportError(f"the training solve did not converge (KSP reason {reason}); use a direct solver "
                                  "([separated.solver] ksp_type = 'preonly', pc_type = 'lu') or check the matrix")
            out[:, c] = self._x.array
        return out

    def destroy(self) -> None:
        for o in (self.ksp, self.mat, self._x, self._y):
            if o is not None:
                o.destroy()


def start_vectors(lo: int, n_local: int, k: int) -> np.ndarray:
    """Deterministic pseudo-random ``(n_local, k)`` start block from the global row ids (rank-count independent)."""
    g = (lo + np.arange(n_local, dtype=np.int64))[:, None]
    c = np.arange(k, dtype=np.int64)[None, :]
    return ((g * 2654435761 + (c + 1) * 40503) % 1000003) / 1000003.0 - 0.5


def smallest_generalized_eigenvalue(comm, A: DistributedOperator, X: DistributedOperator, start: np.ndarray,
                                    iterations: int, rtol: float) -> tuple[float, np.ndarray]:
    """``lambda_min(X^-1 A)`` (``A``, ``X`` SPD) by block inverse iteration ``V <- A^-1 X V`` with Rayleigh-Ritz;
    returns the smallest Ritz value (an upper bound converging from above) and the Ritz block (a warm start)."""
    Vb = start
    lam_old = np.inf
    lam = np.inf
    for _ in range(iterations):
        Vb = A.solve(X.matmul(Vb))
        AV, XV = A.matmul(Vb), X.matmul(Vb)
        Ah = _dist.allreduce(comm, Vb.T @ AV)
        Xh = _dist.allreduce(comm, Vb.T @ XV)
        w, U = sla.eigh(0.5 * (Ah + Ah.T), 0.5 * (Xh + Xh.T))
        Vb = Vb @ U
        lam = float(w[0])
        if abs(lam_old - lam) <= rtol * abs(lam):
            break
        lam_old = lam
    return lam, Vb
