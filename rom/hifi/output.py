"""HF output: one HDF5 file of snapshots per run, plus an XDMF file for ParaView.

The HDF5 layout (version 1) is documented in ``docs/hdf5_layout.md`` and is what the offline stage reads.
Integration points are numbered globally by element (global element index order), then by the
CalculiX point order inside the element, whatever the number of MPI ranks that computed them.

Writes are atomic: the file is written as ``<name>.partial`` and renamed at the end of a successful run.
A failed run leaves the ``.partial`` file (the converged increments, for diagnosis), never the final name.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from structrom.rom.fem.elements import ELEMENTS
from structrom.rom.fem.mesh import Mesh
from structrom.rom.voigt import von_mises

FORMAT = "structrom-snapshots"
VERSION = 1

#: XDMF topology names of our element types.
XDMF_TOPOLOGY = {"C3D4": "Tetrahedron", "C3D10": "Tetrahedron_10", "C3D8": "Hexahedron",
                 "C3D20": "Hexahedron_20", "C3D20R": "Hexahedron_20", "C3D6": "Wedge", "C3D15": "Wedge_15"}


def points_per_element(mesh: Mesh) -> np.ndarray:
    """``(n_elements,)`` number of integration points of each element."""
    return np.concatenate([np.full(len(b), ELEMENTS[b.element].n_points) for b in mesh.blocks])


def element_point_offsets(mesh: Mesh) -> np.ndarray:
    """``(n_elements + 1,)`` global index of each element's first integration point."""
    return np.concatenate([[0], np.cumsum(points_per_element(mesh))]).astype(np.int64)


def global_point_index(point_elements: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Global point numbers of a rank's points, given their elements ``(n,)``; an element's points are
    contiguous and in element order on the rank."""
    n = len(point_elements)
    if n == 0:
        return np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], point_elements[1:] != point_elements[:-1]]))
    first = np.repeat(starts, np.diff(np.concatenate([starts, [n]])))
    return offsets[point_elements] + (np.arange(n) - first)


def write_mesh_group(group: h5py.Group, mesh: Mesh) -> None:
    group.create_dataset("points", data=mesh.points)
    for i, block in enumerate(mesh.blocks):
        d = group.create_dataset(f"blocks/{i}/connectivity", data=block.connectivity)
        d.attrs["element"] = block.element
    for kind in ("node_sets", "element_sets", "surface_sets"):
        sets = getattr(mesh, kind)
        g = group.create_group(kind)
        for name, values in sets.items():
            g.create_dataset(name, data=values)


def read_mesh_group(group: h5py.Group) -> Mesh:
    from structrom.rom.fem.mesh import CellBlock

    blocks = [CellBlock(group[f"blocks/{i}/connectivity"].attrs["element"], group[f"blocks/{i}/connectivity"][()])
              for i in range(len(group["blocks"]))]
    sets = {k: {n: v[()] for n, v in group[k].items()} for k in ("node_sets", "element_sets", "surface_sets")}
    return Mesh(group["points"][()], blocks, **sets)


class SnapshotWriter:
    """Writes converged increments to ``path`` (on one rank only). Use as a context manager."""

    def __init__(self, path: str | Path, mesh: Mesh, metadata: dict, point_elements: np.ndarray,
                 point_weights: np.ndarray, point_coordinates: np.ndarray, point_fields: bool = True,
                 xdmf: bool = True) -> None:
        self.xdmf = xdmf
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.mesh = mesh
        self.point_fields = point_fields
        self.f = h5py.File(self.partial, "w")
        self.f.attrs["format"] = FORMAT
        self.f.attrs["version"] = VERSION
        self.f.attrs["metadata"] = json.dumps(metadata)
        write_mesh_group(self.f.create_group("mesh"), mesh)
        ip = self.f.create_group("integration_points")
        ip.create_dataset("element", data=point_elements)
        ip.create_dataset("weights", data=point_weights)
        ip.create_dataset("coordinates", data=point_coordinates)
        self.n_points = len(point_elements)
        self.n = 0
        inc = self.f.create_group("increments")
        for name in ("time", "residual"):
            inc.create_dataset(name, shape=(0,), maxshape=(None,), dtype=float)
        for name in ("newton_iterations", "cutbacks"):
            inc.create_dataset(name, shape=(0,), maxshape=(None,), dtype=np.int64)
        self.fields = self.f.create_group("fields")

    def _append(self, name: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        if name not in self.fields:
            self.fields.create_dataset(name, shape=(0,) + value.shape, maxshape=(None,) + value.shape,
                                       dtype=value.dtype, chunks=(1,) + value.shape)
        d = self.fields[name]
        d.resize(self.n + 1, axis=0)
        d[self.n] = value

    def append(self, time: float, newton_iterations: int, residual: float, cutbacks: int,
               nodal: dict[str, np.ndarray], points: dict[str, np.ndarray]) -> None:
        """One converged increment. ``nodal``: ``(n_nodes, ...)`` arrays; ``points``: ``(n_points, ...)``."""
        inc = self.f["increments"]
        for name, v in (("time", time), ("newton_iterations", newton_iterations), ("residual", residual),
                        ("cutbacks", cutbacks)):
            inc[name].resize(self.n + 1, axis=0)
            inc[name][self.n] = v
        for name, v in nodal.items():
            self._append(name, v)
        if self.point_fields:
            for name, v in points.items():
                self._append(name, v)
        # Element averages for visualization (XDMF cell data).
        w = self.f["integration_points/weights"][()]
        el = self.f["integration_points/element"][()]
        vol = np.bincount(el, weights=w, minlength=self.mesh.n_elements)
        for name, v in points.items():
            v2 = v.reshape(len(v), -1)
            avg = np.stack([np.bincount(el, weights=w * v2[:, j], minlength=self.mesh.n_elements)
                            for j in range(v2.shape[1])], axis=1) / vol[:, None]
            if v2.shape[1] == 6:  # XDMF Tensor6 order: xx xy xz yy yz zz
                avg = avg[:, [0, 3, 5, 1, 4, 2]]
            self._append(f"element_average/{name}", avg.reshape((-1,) + v.shape[1:]))
            if name == "stress":
                vm = np.bincount(el, weights=w * von_mises(v), minlength=self.mesh.n_elements) / vol
                self._append("element_average/von_mises", vm)
        self.n += 1
        self.f.flush()

    def close(self, success: bool) -> None:
        if success and self.xdmf:
            add_xdmf_views(self.f)
        self.f.close()
        if success:
            os.replace(self.partial, self.path)
            if self.xdmf:
                write_xdmf(self.path)

    def __enter__(self) -> "SnapshotWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc_type is None)


#: XDMF ``Mixed`` topology codes of our element types (one topology for meshes of several blocks).
XDMF_MIXED_CODE = {"C3D4": 6, "C3D10": 38, "C3D8": 9, "C3D20": 48, "C3D20R": 48, "C3D6": 8, "C3D15": 40}
#: Group of per-increment views (HDF5 virtual datasets onto ``/fields``, no data copied) that the XDMF
#: file points to: XDMF readers without hyperslab support (meshio) read them like plain datasets.
XDMF_GROUP = "xdmf"


def add_xdmf_views(f: h5py.File) -> None:
    """Create ``/xdmf/<field>/<k>`` virtual datasets (increment ``k`` of ``/fields/<field>``, nodal fields
    and element averages) and, for several element blocks, ``/xdmf/topology``: their connectivities
    stacked (one element type) or the ``Mixed`` connectivity (per element its XDMF code then its nodes;
    meshio 5.3 cannot read ``Mixed`` with 20-node hexahedra, VTK can). Existing views are kept."""
    g = f.require_group(XDMF_GROUP)
    names = [n for n in ("displacement", "temperature") if n in f["fields"]]
    if "element_average" in f["fields"]:
        names += [f"element_average/{n}" for n in f["fields/element_average"]]
    for name in names:
        d = f["fields"][name]
        for k in range(d.shape[0]):
            key = f"{name}/{k}"
            if key in g:
                continue
            layout = h5py.VirtualLayout(shape=d.shape[1:], dtype=d.dtype)
            layout[...] = h5py.VirtualSource(".", d.name, shape=d.shape)[k]
            g.create_virtual_dataset(key, layout)
    blocks = [f["mesh/blocks"][str(i)]["connectivity"] for i in range(len(f["mesh/blocks"]))]
    if len(blocks) > 1 and "topology" not in g:
        if len({XDMF_TOPOLOGY[b.attrs["element"]] for b in blocks}) == 1:
            # one element type in several blocks: the connectivities stacked (a virtual dataset)
            rows = sum(b.shape[0] for b in blocks)
            layout = h5py.VirtualLayout(shape=(rows, blocks[0].shape[1]), dtype=blocks[0].dtype)
            start = 0
            for b in blocks:
                layout[start:start + b.shape[0]] = h5py.VirtualSource(".", b.name, shape=b.shape)
                start += b.shape[0]
            g.create_virtual_dataset("topology", layout)
        else:
            parts = [np.column_stack([np.full(b.shape[0], XDMF_MIXED_CODE[b.attrs["element"]]), b[()]]).ravel()
                     for b in blocks]
            g.create_dataset("topology", data=np.concatenate(parts).astype(np.int64))


def _item(h5name: str, dataset: h5py.Dataset) -> str:
    dims = " ".join(str(s) for s in dataset.shape)
    number = "Float" if dataset.dtype.kind == "f" else "Int"
    return (f'<DataItem Dimensions="{dims}" NumberType="{number}" Precision="{dataset.dtype.itemsize}" '
            f'Format="HDF">{h5name}:{dataset.name}</DataItem>')


def write_xdmf(h5_path: str | Path) -> Path:
    """Write ``<name>.xdmf`` next to a snapshot file: a temporal collection of the increments, each a uniform
    grid (one topology; ``Mixed`` for several element blocks) with nodal displacement and temperature and
    element-averaged point fields. Read by ParaView/VTK (``vtkXdmfReader``) and by meshio
    (``meshio.xdmf.TimeSeriesReader``); the data items are the ``/xdmf`` views of :func:`add_xdmf_views`
    (added to the file when missing)."""
    h5_path = Path(h5_path)
    out = h5_path.with_suffix(".xdmf")
    name = h5_path.name
    with h5py.File(h5_path, "r") as f:
        complete = XDMF_GROUP in f and all(
            f"{n}/{k}" in f[XDMF_GROUP] for n in ("displacement",) if n in f["fields"]
            for k in range(f["fields"][n].shape[0]))
    if not complete:
        with h5py.File(h5_path, "r+") as f:
            add_xdmf_views(f)
    with h5py.File(h5_path, "r") as f:
        times = f["increments/time"][()]
        blocks = f["mesh/blocks"]
        n_elements = sum(blocks[str(i)]["connectivity"].shape[0] for i in range(len(blocks)))
        if len(blocks) == 1:
            conn = blocks["0"]["connectivity"]
            topology = (f'<Topology TopologyType="{XDMF_TOPOLOGY[conn.attrs["element"]]}" '
                        f'NumberOfElements="{n_elements}">{_item(name, conn)}</Topology>')
        else:
            kinds = {XDMF_TOPOLOGY[blocks[str(i)]["connectivity"].attrs["element"]] for i in range(len(blocks))}
            kind = kinds.pop() if len(kinds) == 1 else "Mixed"
            topology = (f'<Topology TopologyType="{kind}" NumberOfElements="{n_elements}">'
                        f'{_item(name, f[XDMF_GROUP]["topology"])}</Topology>')
        geometry = f'<Geometry GeometryType="XYZ">{_item(name, f["mesh/points"])}</Geometry>'
        views = f[XDMF_GROUP]
        parts = ['<?xml version="1.0"?>', '<Xdmf Version="3.0"><Domain>',
                 '<Grid Name="increments" GridType="Collection" CollectionType="Temporal">']
        for k, t in enumerate(times):
            parts.append(f'<Grid Name="t{k}" GridType="Uniform">{topology}{geometry}<Time Value="{t!r}"/>')
            for field_name in ("displacement", "temperature"):
                if field_name in views:
                    d = views[field_name][str(k)]
                    kind = "Vector" if d.ndim == 2 else "Scalar"
                    parts.append(f'<Attribute Name="{field_name}" AttributeType="{kind}" Center="Node">'
                                 f"{_item(name, d)}</Attribute>")
            if "element_average" in views:
                for field_name, g in views["element_average"].items():
                    d = g[str(k)]
                    kind = "Scalar" if d.ndim == 1 else ("Vector" if d.shape[1] == 3 else "Tensor6")
                    parts.append(f'<Attribute Name="{field_name}" AttributeType="{kind}" Center="Cell">'
                                 f"{_item(name, d)}</Attribute>")
            parts.append("</Grid>")
        parts.append("</Grid></Domain></Xdmf>")
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text("\n".join(parts))
    os.replace(tmp, out)
    return out
