"""Assemble a random SPD system from overlapping 'element' contributions and solve it with PETSc."""
import json

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from mpi4py import MPI

from structrom.mpi.assembly import MatrixAssembler, gather_to_all, reduce_to_owners
from structrom.mpi.layout import DofLayout, node_owners
from structrom.mpi.linear_solver import LinearSolver, LinearSolverOptions
from structrom.mpi.partition import recursive_bisection

comm = MPI.COMM_WORLD
rng = np.random.default_rng(7)
n_nodes, n_el = 60, 90
coords = rng.random((n_nodes, 3))
conn = np.sort(np.array([rng.choice(n_nodes, 4, replace=False) for _ in range(n_el)]), axis=1)
blocks = rng.standard_normal((n_el, 12, 12))
ke = np.einsum("eij,ekj->eik", blocks, blocks) + 12 * np.eye(12)  # SPD element matrices
fe = rng.standard_normal((n_el, 12))
part = recursive_bisection(coords[conn].mean(axis=1), comm.size)
layout = DofLayout.from_owners(node_owners([conn], [part], n_nodes), comm.size)
mine = np.flatnonzero(part == comm.rank)
dofs = (3 * conn[:, :, None] + np.arange(3)).reshape(n_el, 12)
new = layout.dof_map()[dofs[mine]]
rows = np.repeat(new, 12, axis=1).ravel()
cols = np.tile(new, (1, 12)).ravel()
assembler = MatrixAssembler(comm, rows, cols, layout.dof_ranges, block_size=3)
mat = assembler.assemble(ke[mine].ravel())
f_full = np.zeros(layout.n_dofs)
np.add.at(f_full, new.ravel(), fe[mine].ravel())
b = reduce_to_owners(comm, f_full, layout.dof_ranges)
owned_nodes = layout.inverse[layout.node_ranges[comm.rank]:layout.node_ranges[comm.rank + 1]]
solver = LinearSolver(comm, LinearSolverOptions(rtol=1e-13), coordinates=coords[owned_nodes])
x, its = solver.solve(mat, b)
x_orig = layout.to_original(gather_to_all(comm, x, layout.dof_ranges))
# Serial reference with scipy on every rank.
r = np.repeat(dofs, 12, axis=1).ravel()
c = np.tile(dofs, (1, 12)).ravel()
K = sp.csr_matrix((ke.ravel(), (r, c)), shape=(3 * n_nodes,) * 2)
F = np.zeros(3 * n_nodes)
np.add.at(F, dofs.ravel(), fe.ravel())
ref = spla.spsolve(K.tocsc(), F)
if comm.rank == 0:
    print("RESULT " + json.dumps({"error": float(np.linalg.norm(x_orig - ref) / np.linalg.norm(ref)),
                                  "x": x_orig.tolist(), "its": its}))
