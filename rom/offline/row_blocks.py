"""Row-distributed arrays written to one file without gathering them: spilled rows read back by blocks.

The model file holds arrays whose rows are spread over the ranks (displacement modes ``(n_dofs, N)``, the
dual bases ``(n_points c, m)``). No rank may hold all their rows, and the HDF5 library here is serial, so
the file is written by rank 0 from row blocks of bounded size:

1. :func:`spill_rows` (collective): every rank writes its rows, sorted by global row, to two raw files in a
   scratch directory on the output's file system (``<name>.<rank>.rows``: int64 global rows,
   ``<name>.<rank>.f8``: the values, row-major);
2. :meth:`SpilledRows.blocks` (any one rank, no communication): global row blocks ``[a, a + block)``
   assembled from every rank's files by positioned reads (``numpy.fromfile`` with an offset: no memory
   map, so the pages read do not stay in the reader's resident set), ``(block, n_cols)`` floats at a time.

Rows held by several ranks (interface dofs) carry the same values on each; the last one read wins.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Bytes of one row block read back (the writer's peak for an array, whatever its size).
BLOCK_BYTES = 64 * 2**20


@dataclass
class SpilledRows:
    """A ``shape`` ``(n_rows, n_cols)`` float64 array whose rows sit in per-rank files (see module docstring)."""

    shape: tuple[int, int]
    parts: list[tuple[Path, Path]]  # per rank: (global rows file, values file)

    @property
    def size(self) -> int:
        return int(self.shape[0] * self.shape[1])

    def __len__(self) -> int:
        return int(self.shape[0])

    def block_rows(self, block_bytes: int = BLOCK_BYTES) -> int:
        return max(1, min(self.shape[0], block_bytes // max(8 * self.shape[1], 1)))

    def blocks(self, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, values (b, n_cols))`` for consecutive global row blocks covering all rows."""
        n, m = self.shape
        rows = [np.fromfile(r, dtype=np.int64) for r, _ in self.parts]
        step = self.block_rows(block_bytes)
        for a in range(0, n, step):
            b = min(n, a + step)
            out = np.zeros((b - a, m))
            for rws, (_, values) in zip(rows, self.parts):
                lo, hi = np.searchsorted(rws, [a, b])
                if hi > lo and m:
                    part = np.fromfile(values, dtype=np.float64, count=(hi - lo) * m, offset=8 * m * int(lo))
                    out[rws[lo:hi] - a] = part.reshape(hi - lo, m)
            yield a, out

    def to_array(self) -> np.ndarray:
        """All rows at once (tests and small arrays only)."""
        out = np.zeros(self.shape)
        for a, blk in self.blocks():
            out[a:a + len(blk)] = blk
        return out


def spill_rows(comm, directory: Path, name: str, global_rows: np.ndarray, values: np.ndarray,
               n_rows: int) -> SpilledRows:
    """Write this rank's ``values`` ``(n_local, n_cols)`` at ``global_rows`` ``(n_local,)`` (collective).

    ``directory`` must be on a file system every rank sees (the model's output directory); it is created
    by rank 0. Returns the same :class:`SpilledRows` on every rank. Values are written in row blocks in
    global row order (no sorted copy of the whole local array)."""
    from structrom.mpi.collectives import raise_collectively

    directory = Path(directory)
    rank = comm.Get_rank()
    message = None
    if rank == 0:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            message = f"{directory}: cannot create the scratch directory of the model's rows ({exc})"
    raise_collectively(comm, message, OSError)
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(global_rows, kind="stable")
    rows_path, values_path = directory / f"{name}.{rank}.rows", directory / f"{name}.{rank}.f8"
    try:
        np.asarray(global_rows, dtype=np.int64)[order].tofile(rows_path)
        step = max(1, BLOCK_BYTES // max(8 * values.shape[1], 1))
        with open(values_path, "wb") as f:
            for a in range(0, len(order), step):
                np.ascontiguousarray(values[order[a:a + step]]).tofile(f)
    except OSError as exc:
        message = f"{values_path}: cannot write this rank's rows of {name} ({exc}); free space next to the output"
    raise_collectively(comm, message, OSError)
    parts = comm.allgather((str(rows_path), str(values_path)))
    return SpilledRows((int(n_rows), int(values.shape[1])), [(Path(r), Path(v)) for r, v in parts])


def remove_spill(directory: Path) -> None:
    """Remove a scratch directory of :func:`spill_rows` (one rank, after the reads)."""
    shutil.rmtree(directory, ignore_errors=True)
