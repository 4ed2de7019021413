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
from pydantic import ValidationError

from structrom.rom.config import format_validation_error
from structrom.rom.fem.mesh import Mesh
from structrom.rom.loading import Loading
from structrom.mpi.errors import StructromError


#: Largest displacement magnitude accepted in a snapshot, in mesh bounding-box diagonals: far above any
#: small-strain solution, far below where the squares of the POD and the replayed stresses overflow.
MAX_DISPLACEMENT_RATIO = 1e6

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


def open_snapshot_file(path: Path) -> h5py.File:
    """``path`` opened for reading, or :class:`SnapshotError` naming it (missing, a directory, not HDF5)."""
    if not path.exists():
        raise SnapshotError(f"{path}: snapshot file not found")
    if path.is_dir():
        raise SnapshotError(f"{path}: is a directory, not a snapshot file (snapshots.files takes files or globs "
                            "such as 'train/*.h5')")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SnapshotError(f"{path}: not a readable HDF5 file ({reason})") from None


def read_training_case(path: str | Path, mesh: Mesh) -> TrainingCase:
    """Open a HF snapshot file and check it belongs to ``mesh``."""
    from structrom.rom.hifi.config import HifiConfig
    from structrom.rom.hifi.output import FORMAT, read_mesh_group

    path = Path(path)
    f = open_snapshot_file(path)
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
        size = float(np.linalg.norm(np.ptp(mesh.points, axis=0)))  # the mesh's bounding-box diagonal [length]
        largest = max((float(np.abs(disp[k]).max(initial=0.0)) for k in range(shape[0])), default=0.0)
        if largest > MAX_DISPLACEMENT_RATIO * size:
            raise SnapshotError(f"{path}: a displacement of {largest:.3g} for a mesh of size {size:.3g}: not a "
                                "small-strain solution (a damaged file, or displacements in other units than the "
                                "mesh)")
        if "increments/time" not in f:
            raise SnapshotError(f"{path}: no increments/time dataset: not a complete structrom snapshot file")
        times = f["increments/time"][()]
        if len(times) != shape[0]:
            raise SnapshotError(f"{path}: {len(times)} increment times for {shape[0]} displacement snapshots")
        try:
            meta = json.loads(f.attrs["metadata"])
            config = meta["config"]
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"{path}: no readable metadata attribute with the HF configuration "
                                f"({type(exc).__name__}: {exc}): not a structrom snapshot file") from None
    try:
        cfg = HifiConfig.model_validate(config)
    except ValidationError as exc:
        raise SnapshotError(format_validation_error(f"{path}: metadata config", exc)) from None
    loading = cfg.build_loading()
    if len(times) != len(loading.times) - 1 or not np.allclose(loading.times[1:], times):
        raise SnapshotError(f"{path}: stored increment times {times.tolist()} differ from the configured loading "
                            f"times {loading.times[1:].tolist()} (an incomplete run?)")
    materials = [(m.element_set, m.law) for m in cfg.material]
    dirichlet = [{"node_set": b.node_set, "components": b.components, "value": b.value} for b in cfg.boundary]
    # the units table with its defaults filled in (files that omit time or temperature compare equal)
    units = {**cfg.units.model_dump(), **meta.get("units", {})}
    return TrainingCase(path, loading, materials, dirichlet, times, file_hash(path), units)
