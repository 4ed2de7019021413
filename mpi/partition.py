"""Deterministic partitions of point clouds (element centroids) by recursive coordinate bisection.

The partition depends only on the coordinates and the number of parts, never on the MPI layout, so
every rank computes the same answer without communication.
"""
from __future__ import annotations

import numpy as np

from structrom.mpi.errors import StructromError


class PartitionError(StructromError, ValueError):
    """More parts (MPI ranks) than elements to share."""


def recursive_bisection(points: np.ndarray, n_parts: int) -> np.ndarray:
    """Split ``points`` ``(n, d)`` into ``n_parts`` parts of near-equal size.

    Each step cuts the current set across its longest bounding-box edge at the weighted median, in
    proportion to the number of parts on each side (so odd part counts are balanced too). Ties in
    coordinates are broken by the point index, which makes the result deterministic.

    Returns ``(n,)`` int part numbers in ``0 .. n_parts - 1``.
    """
    points = np.asarray(points, dtype=float)
    n = len(points)
    if n_parts < 1:
        raise ValueError(f"n_parts must be >= 1, got {n_parts}")
    if n_parts > max(n, 1):
        raise PartitionError(f"cannot split {n} elements into {n_parts} parts: use fewer MPI ranks")
    part = np.zeros(n, dtype=np.int64)
    # A stack of (indices, first part, number of parts); at most n_parts - 1 cuts in total.
    stack = [(np.arange(n), 0, n_parts)]
    while stack:
        idx, first, count = stack.pop()
        if count == 1:
            part[idx] = first
            continue
        sub = points[idx]
        axis = int(np.argmax(sub.max(axis=0) - sub.min(axis=0)))
        order = np.lexsort((idx, sub[:, axis]))
        left = count // 2
        cut = (len(idx) * left) // count
        stack.append((idx[order[:cut]], first, left))
        stack.append((idx[order[cut:]], first + left, count - left))
    return part
