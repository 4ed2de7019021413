"""The ECM's QR of the selected columns with its rows split over the ranks (``_ColumnQR``) against the same
operations on one rank: appends, deletions one and several at a time (both the in-place and the gathered path:
301 and 130 rows) and least squares; also the same columns appended by blocks (``project``, ``append_projected``:
the block rule's path), against one column at a time. Prints the factors' orthogonality and reconstruction errors
and the solution's difference."""
import json

import numpy as np
from mpi4py import MPI

from structrom.rom.column_qr import ColumnQR as _ColumnQR

comm = MPI.COMM_WORLD
out = {}
for n in (301, 130):
    rng = np.random.default_rng(3)
    cols = rng.standard_normal((n, 120))
    cols /= np.linalg.norm(cols, axis=0)
    b = rng.standard_normal(n)
    split, one = _ColumnQR(n, comm=comm, capacity=8), _ColumnQR(n, capacity=8)
    for qr in (split, one):
        for j in range(100):
            qr.append(cols[:, j])
        qr.delete_many([50, 5, 3])  # several at once (the positive least squares' removals)
        for j in (90, 94, 0):
            qr.delete(j)
        for j in range(100, 120):
            qr.append(cols[:, j])
    blocks = _ColumnQR(n, comm=comm, capacity=8)  # the same columns, appended 10 at a time from one projection
    dependent = []
    for a in range(0, 100, 10):
        V = cols[:, a:a + 10]
        H, M = blocks.project(V)
        dependent += [not ok for ok in blocks.append_projected(V, H, list(range(10)))]
    blocks.delete_many([50, 5, 3])
    for j in (90, 94, 0):
        blocks.delete(j)
    V = np.column_stack([cols[:, 100:120], cols[:, 100:101]])  # the last: a column appended already (dependent)
    H, M = blocks.project(V)
    Qb = np.stack([blocks._full(blocks.Q[:, c]) for c in range(blocks.k)], axis=1)
    Wf = V - Qb @ H  # the projected columns, explicitly
    dependent += [not ok for ok in blocks.append_projected(V, H, list(range(21)))]
    x, x1 = split.solve(b), one.solve(b)
    k = split.k
    Q = np.stack([split._full(split.Q[:, c]) for c in range(k)], axis=1)
    A = np.stack([split._full(split.A[:, c]) for c in range(k)], axis=1)
    out[n] = {"k": k, "rows_per_rank": int(split.hi - split.lo), "orthogonality": float(np.abs(Q.T @ Q - np.eye(k)).max()),
              "reconstruction": float(np.abs(Q @ split.R[:k, :k] - A).max()),
              "solution_difference": float(np.abs(x - x1).max() / np.abs(x1).max()),
              "R_difference": float(np.abs(split.R[:k, :k] - one.R[:k, :k]).max()),
              "combination": float(np.abs(split.combination(x) - one.combination(x)).max()),
              "blocks": {"k": blocks.k, "dependent": [i for i, d in enumerate(dependent) if d],
                         "R_difference": float(np.abs(blocks.R[:k, :k] - one.R[:k, :k]).max()),
                         "solution_difference": float(np.abs(blocks.solve(b) - x1).max() / np.abs(x1).max()),
                         "gram": float(np.abs(M - Wf.T @ Wf).max())}}
rows = comm.gather(out, root=0)
if comm.rank == 0:
    print("RESULT " + json.dumps({"n_ranks": comm.size, "runs": rows}))
