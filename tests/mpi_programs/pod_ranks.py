"""Distributed POD of smooth displacement fields on a partitioned box mesh; prints the full modes.

Each rank holds the rows (dofs, original numbering) of its elements (interface dofs on several ranks)
and the consistent mass of its elements restricted to those rows. Rank 0 gathers every method's modes
into full vectors and checks them against the serial full mass matrix.
Usage: pod_ranks.py [element]   (C3D8 default, or C3D10)
"""
import json
import sys

import numpy as np
from mpi4py import MPI

from structrom.mpi.partition import recursive_bisection
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.structured import box
from structrom.rom.pod import IncrementalPOD, pod

comm = MPI.COMM_WORLD
element = sys.argv[1] if len(sys.argv) > 1 else "C3D8"
divisions = (8, 5, 4) if element == "C3D8" else (4, 3, 2)
mesh = box((2.0, 1.0, 0.8), divisions, element)
conn = mesh.blocks[0].connectivity
x = mesh.points
part = recursive_bisection(x[conn].mean(axis=1), comm.size)
mine = np.flatnonzero(part == comm.rank)
rows = np.unique((3 * conn[mine][:, :, None] + np.arange(3)).ravel())  # original dof numbering
weight = Discretization(mesh, mine).mass_matrix(1.0)[rows][:, rows]

# Smooth deterministic displacement fields with varying parameters: (n_dofs, n_s).
n_s = 16
cols = []
for k in range(n_s):
    a = 0.5 + 0.15 * k
    u = np.stack([np.sin(a * x[:, 0]) * (1 + 0.1 * k * x[:, 1]),
                  0.3 * np.cos(a * x[:, 1] + 0.2 * k) * x[:, 0] ** 2,
                  0.1 * (1 + x[:, 2]) ** (1 + 0.1 * k) * np.sin(x[:, 0] + 0.05 * k)], axis=1)
    cols.append(u.ravel())
S_full = np.array(cols).T
S_local = S_full[rows]

results = {}
for method in ("gram", "tsqr", "randomized", "incremental"):
    if method == "incremental":
        inc = IncrementalPOD(comm, weight, tolerance=1e-3, global_rows=rows)
        for j in range(0, n_s, 5):
            inc.update(S_local[:, j:j + 5])
        res = inc.result()
    else:
        res = pod(comm, S_local, weight, tolerance=1e-3, method=method, global_rows=rows,
                  max_modes=None)
    gathered = comm.gather((rows, res.modes_local), root=0)
    if comm.rank == 0:
        full = np.full((3 * mesh.n_nodes, res.n_modes), np.nan)
        shared_mismatch = 0.0
        for r, m in gathered:
            seen = ~np.isnan(full[r, 0]) if res.n_modes else np.zeros(len(r), bool)
            if np.any(seen):
                shared_mismatch = max(shared_mismatch, float(np.max(np.abs(full[r[seen]] - m[seen]))))
            full[r] = m
        M = Discretization(mesh).mass_matrix(1.0)
        gram = full.T @ (M @ full)
        results[method] = {
            "modes": full.tolist(),
            "singular_values": res.singular_values.tolist(),
            "eigenvalues": res.eigenvalues.tolist(),
            "energy_error": res.relative_energy_error(),
            "orthonormality": float(np.max(np.abs(gram - np.eye(res.n_modes)))),
            "shared_mismatch": shared_mismatch,
            "any_nan": bool(np.isnan(full).any()),
        }
if comm.rank == 0:
    print("RESULT " + json.dumps({"n_dofs": 3 * mesh.n_nodes, "results": results}))
