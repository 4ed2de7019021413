"""EIM greedy, DEIM / Q-DEIM and matrix separation with rows spread over the ranks.

Rows are dealt to ranks in a scrambled (non-contiguous) order; global ids are the original row
numbers. Rank 0 prints every selection and error so that runs on 1, 2, 3 ranks can be compared
exactly. Usage: eim_ranks.py
"""
import json

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as spla
from mpi4py import MPI
from structrom.mpi.petsc import PETSc

from structrom.eim.deim import deim, qdeim
from structrom.eim.greedy import eim_greedy
from structrom.eim.reduced_solve import ReducedSystem
from structrom.eim.separation import AssembledEntries, separate_matrices
from structrom.eim.synthetic import Diffusion2DEntries, nonaffine_2d

comm = MPI.COMM_WORLD
P, rank = comm.size, comm.rank


def datasets():
    x = np.linspace(0.0, 1.0, 300)
    y = np.linspace(0.5, 6.0, 40)
    smooth = np.exp(-np.outer(x, y)) / (1.0 + np.outer(x * x, y)) + 0.1 * np.cos(np.add.outer(3 * x, y))
    integers = np.random.default_rng(5).integers(-4, 5, size=(200, 30)).astype(float)
    return {"smooth": smooth, "integers": integers}


def mine(n):
    owner = np.random.default_rng(11).permutation(n) % P
    return np.flatnonzero(owner == rank)


out = {"greedy": {}, "deim": {}}
for name, data in datasets().items():
    rows = mine(data.shape[0])
    for norm in ("max", "l2", "weighted_l2"):
        w = (1.0 + 0.5 * np.sin(rows)) if norm == "weighted_l2" else None
        res = eim_greedy(data[rows], comm=comm, ids=rows, norm=norm, weights=w, max_terms=25)
        out["greedy"][f"{name}/{norm}"] = {
            "points": res.point_ids.tolist(), "params": res.param_indices.tolist(),
            "errors": res.errors.tolist(), "pivots": res.pivots.tolist(), "lebesgue": res.lebesgue.tolist(),
            "cond_B": res.cond_B.tolist(), "stop": res.stop_reason}
    U = np.linalg.svd(data, full_matrices=False)[0][:, :10]
    for fn in (deim, qdeim):
        r = fn(U[rows], comm=comm, ids=rows)
        out["deim"][f"{name}/{fn.__name__}"] = r.point_ids.tolist()

# The banded Q-DEIM (tie_rtol: the dual points' rule) on more rows than it evaluates at a time, and LAPACK's pivots
x = np.linspace(0.0, 1.0, 3000)
y = np.linspace(0.5, 8.0, 30)
U = np.linalg.svd(np.exp(-np.outer(x, y)) + 0.1 * np.cos(np.add.outer(7 * x, y)) * np.sin(np.outer(x + 0.3, y)),
                  full_matrices=False)[0][:, :25]
rows = mine(U.shape[0])
out["deim"]["lazy/qdeim_banded"] = qdeim(U[rows], comm=comm, ids=rows, tie_rtol=1e-8).point_ids.tolist()
out["deim"]["lazy/lapack"] = sla.qr(U.T, mode="r", pivoting=True)[1][:25].tolist()

# Matrix separation: each rank holds a contiguous row block of every training matrix (scipy), and the
# same as PETSc MPIAIJ matrices.
m = 16
n = m * m
train = np.linspace(0.0, 20.0, 25)
ranges = np.linspace(0, n, P + 1).astype(int)
lo, hi = ranges[rank], ranges[rank + 1]
full = [nonaffine_2d(m, mu) for mu in train]
sep = separate_matrices([A[lo:hi] for A in full], train, comm=comm, row_offset=lo, max_terms=12)
petsc = []
for A in full:
    B = A[lo:hi].tocsr()
    M = PETSc.Mat().createAIJ(size=((hi - lo, n), (hi - lo, n)), csr=(B.indptr, B.indices, B.data), comm=comm)
    M.assemble()
    petsc.append(M)
sep_petsc = separate_matrices(petsc, train, comm=comm, max_terms=12)
b = np.ones(n)
snaps = np.array([spla.spsolve(A.tocsc(), b) for A in full[::3]]).T
V = np.linalg.svd(snaps, full_matrices=False)[0][:, :6]
system = ReducedSystem.build(sep, V[lo:hi], b[lo:hi], comm=comm)
mu = 4.4
u_N = system.solve_mu(mu, Diffusion2DEntries(m))
assembled = AssembledEntries(lambda p: petsc[3]).entries(None, sep.entry_rows, sep.entry_cols)
out["separation"] = {
    "rows": sep.entry_rows.tolist(), "cols": sep.entry_cols.tolist(), "params": sep.param_indices.tolist(),
    "errors": sep.greedy.errors.tolist(), "F": sep.interpolation_matrix.tolist(),
    "petsc_same": bool(np.array_equal(sep_petsc.entry_rows, sep.entry_rows)
                       and np.array_equal(sep_petsc.entry_cols, sep.entry_cols)
                       and np.array_equal(sep_petsc.greedy.errors, sep.greedy.errors)),
    "petsc_entries_ok": bool(np.array_equal(assembled, np.asarray(full[3][sep.entry_rows, sep.entry_cols]).ravel())),
    "u_N": u_N.tolist()}
if rank == 0:
    print("RESULT " + json.dumps(out))
