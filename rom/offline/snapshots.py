"""Training cases: displacement snapshots with the loading and material that produced them.

A training case is a HF snapshot file (``docs/hdf5_layout.md``): its metadata holds the HF configuration,
hence the loading and the constitutive laws needed to replay the strains into stresses and internal
variables (nonintrusive: only displacements are read as data).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from structrom.rom.fem.mesh import Mesh
from structrom.rom.loading import Loading
from structrom.mpi.errors import StructromError


#: Nodes (file rows) read at a time from a displacement history: n_inc x 16384 x 3 doubles.
NODE_BLOCK = 16384


class SnapshotError(StructromError, ValueError):
    """Snapshots are unreadable or inconsistent with the mesh; the message names the file."""


@dataclass
class TrainingCase:
    path: Path
    loading: Loading
    materials: list[tuple[str | None, dict]]  # (element set or None, law config)
    dirichlet: list[dict]  # {"node_set", "components", "value"}
    times: np.ndarray  # (n_inc,) increment end times stored in the file
    sha256: str
    units: dict  # the HF run's units table

    def displacements(self, nodes: np.ndarray | None = None) -> np.ndarray:
        """``(n_inc, n_nodes or len(nodes), 3)`` displacement snapshots.

        With ``nodes`` only the blocks of :data:`NODE_BLOCK` file rows that hold some of them are read, one
        block at a time: a rank reading its nodes never holds the whole history."""
        with h5py.File(self.path, "r") as f:
            d = f["fields/displacement"]
            if nodes is None:
                return d[()]
            nodes = np.asarray(nodes, dtype=np.int64)
            out = np.empty((d.shape[0], len(nodes), 3))
            block = nodes // NODE_BLOCK
            for b in np.unique(block):
                pos = np.flatnonzero(block == b)
                a = int(b) * NODE_BLOCK
                out[:, pos] = d[:, a:min(a + NODE_BLOCK, d.shape[1])][:, nodes[pos] - a]
            return out


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mesh_fingerprint(mesh: Mesh) -> str:
    h = hashlib.sha256(np.ascontiguousarray(mesh.points).tobytes())
    for b in mesh.blocks:
        h.update(b.element.encode())
        h.update(b.connectivity.tobytes())
    return h.hexdigest()


def read_training_case(path: str | Path, mesh: Mesh) -> TrainingCase:
    """Open a HF snapshot file and check it belongs to ``mesh``."""
    from structrom.rom.hifi.config import HifiConfig
    from structrom.rom.hifi.output import FORMAT, read_mesh_group

    path = Path(path)
    if not path.exists():
        raise SnapshotError(f"{path}: snapshot file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise SnapshotError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        if f.attrs.get("format") != FORMAT:
            raise SnapshotError(f"{path}: not a structrom snapshot file (format {f.attrs.get('format')!r})")
        if "fields/displacement" not in f:
            raise SnapshotError(f"{path}: no fields/displacement dataset")
        shape = f["fields/displacement"].shape
        if shape[1:] != (mesh.n_nodes, 3):
            raise SnapshotError(f"{path}: displacement snapshots have shape {shape[1:]} per increment but the "
                                f"mesh has ({mesh.n_nodes}, 3): snapshots do not match the mesh")
        if mesh_fingerprint(read_mesh_group(f["mesh"])) != mesh_fingerprint(mesh):
            raise SnapshotError(f"{path}: the snapshot's mesh differs from the offline mesh (node coordinates "
                                "or connectivity): recompute the snapshots on the same mesh")
        disp = f["fields/displacement"]
        bad = sum(int(np.count_nonzero(~np.isfinite(disp[k]))) for k in range(shape[0]))  # one increment at a time
        if bad:
            raise SnapshotError(f"{path}: displacement snapshots contain {bad} non-finite values")
        meta = json.loads(f.attrs["metadata"])
        times = f["increments/time"][()]
    cfg = HifiConfig.model_validate(meta["config"])
    loading = cfg.build_loading()
    if not np.allclose(loading.times[1:], times):
        raise SnapshotError(f"{path}: stored increment times {times.tolist()} differ from the configured loading "
                            f"times {loading.times[1:].tolist()} (an incomplete run?)")
    materials = [(m.element_set, m.law) for m in cfg.material]
    dirichlet = [{"node_set": b.node_set, "components": b.components, "value": b.value} for b in cfg.boundary]
    return TrainingCase(path, loading, materials, dirichlet, times, file_hash(path), meta.get("units", {}))
