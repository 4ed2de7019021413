"""Contiguous ownership of nodes and their degrees of freedom across MPI ranks.

Each node is owned by the lowest-numbered rank among the elements that touch it. Nodes are renumbered
so that every rank owns a contiguous range (PETSc's layout): ``new = perm[old]``. Degrees of freedom
stay interleaved, ``3 * node + component``, so PETSc block size 3 applies.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DofLayout:
    """``perm``: ``(n_nodes,)`` new node number of each original node; ``node_ranges``: ``(P + 1,)``."""

    perm: np.ndarray
    node_ranges: np.ndarray
    dofs_per_node: int = 3

    @classmethod
    def from_owners(cls, node_owner: np.ndarray, n_ranks: int, dofs_per_node: int = 3) -> "DofLayout":
        """Layout from ``(n_nodes,)`` owner ranks; original order is kept within each rank."""
        order = np.argsort(node_owner, kind="stable")
        perm = np.empty_like(order)
        perm[order] = np.arange(len(order))
        counts = np.bincount(node_owner, minlength=n_ranks)
        return cls(perm, np.concatenate([[0], np.cumsum(counts)]), dofs_per_node)

    @property
    def n_nodes(self) -> int:
        return len(self.perm)

    @property
    def n_dofs(self) -> int:
        return self.dofs_per_node * len(self.perm)

    @property
    def dof_ranges(self) -> np.ndarray:
        return self.dofs_per_node * self.node_ranges

    @property
    def inverse(self) -> np.ndarray:
        """``(n_nodes,)`` original node number of each new node."""
        inv = np.empty_like(self.perm)
        inv[self.perm] = np.arange(len(self.perm))
        return inv

    def dof_map(self) -> np.ndarray:
        """``(n_dofs,)`` new dof number of each original dof."""
        d = self.dofs_per_node
        return (d * self.perm[:, None] + np.arange(d)).ravel()

    def to_new(self, values: np.ndarray) -> np.ndarray:
        """Reorder a dof vector ``(n_dofs,)`` from original to new numbering."""
        out = np.empty_like(values)
        out[self.dof_map()] = values
        return out

    def to_original(self, values: np.ndarray) -> np.ndarray:
        """Reorder a dof vector ``(n_dofs,)`` from new to original numbering."""
        return values[self.dof_map()]


def node_owners(element_nodes: list[np.ndarray], element_part: list[np.ndarray], n_nodes: int) -> np.ndarray:
    """Owner rank of each node: the lowest part among the elements touching it.

    ``element_nodes``: per block ``(n_e, n_en)`` connectivity; ``element_part``: per block ``(n_e,)``.
    Nodes touched by no element get rank 0.
    """
    nodes = np.concatenate([c.ravel() for c in element_nodes]) if element_nodes else np.zeros(0, int)
    parts = np.concatenate([np.repeat(p, c.shape[1]) for c, p in zip(element_nodes, element_part)]) \
        if element_nodes else np.zeros(0, int)
    n_parts = int(parts.max()) + 1 if parts.size else 1
    keys = np.unique(nodes.astype(np.int64) * n_parts + parts)  # sorted: lowest part first per node
    first = np.concatenate([[True], np.diff(keys // n_parts) != 0]) if keys.size else keys.astype(bool)
    owner = np.zeros(n_nodes, dtype=np.int64)
    owner[keys[first] // n_parts] = keys[first] % n_parts
    return owner
