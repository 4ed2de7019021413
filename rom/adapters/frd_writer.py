"""Write CalculiX ``.frd`` result files (ASCII, the layout ccx 2.20 writes, see :mod:`.frd`), so that a
reduced model's answer opens in the user's post-processor (cgx, ParaView's CalculiX readers) and in our
own :func:`~.frd.read_frd_file`.

Blocks: the mesh (``2C`` nodes, ``3C`` elements, ids ``I10``: format 1), then per increment ``DISP``
(3 components and ccx's derived ``ALL``), ``NDTEMP``, ``STRESS`` (``SXX SYY SZZ SXY SYZ SZX``), ``PE``
(equivalent plastic strain) or any other nodal field given. Values are ``E12.5`` as ccx writes them
(6 significant digits); magnitudes below 1e-99 are written as 0 (a 3-digit exponent would break the
fixed-width columns), non-finite values are refused.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..fem.mesh import Mesh
from .calculix_error import CalculixError
from .frd import FRD_TO_INP

__all__ = ["write_frd", "extrapolate_to_nodes", "extrapolation_matrix"]

#: our element name -> frd element type code (see FRD_ELEMENT_TYPES in .frd)
FRD_TYPE = {"C3D8": 1, "C3D6": 2, "C3D4": 3, "C3D20": 4, "C3D20R": 4, "C3D15": 5, "C3D10": 6}
#: frd block name -> component names (ccx's), for the fields this writer knows
COMPONENTS = {"DISP": ["D1", "D2", "D3"], "NDTEMP": ["T"], "STRESS": ["SXX", "SYY", "SZZ", "SXY", "SYZ", "SZX"],
              "TOSTRAIN": ["EXX", "EYY", "EZZ", "EXY", "EYZ", "EZX"], "PE": ["PE"]}
_TENSOR_INDEX = [(1, 1), (2, 2), (3, 3), (1, 2), (2, 3), (3, 1)]


def _e12(values: np.ndarray) -> np.ndarray:
    """``E12.5`` strings of ``values`` (any shape) as a character array of the same shape."""
    v = np.where(np.abs(values) < 1e-99, 0.0, values)
    return np.char.mod("%12.5E", v)


def _rows(ids: np.ndarray, values: np.ndarray) -> list[str]:
    """`` -1<id I10><values E12.5...>`` lines, 6 values per line (``-2`` continuation lines beyond)."""
    text = _e12(values)
    head = np.char.mod(" -1%10d", ids)
    out = []
    for k in range(0, values.shape[1], 6):
        chunk = ["".join(r) for r in text[:, k:k + 6].tolist()]
        prefix = head if k == 0 else np.full(len(ids), " -2" + " " * 10)
        out.append(np.char.add(prefix, np.array(chunk)))
    return np.stack(out, axis=1).ravel().tolist() if len(ids) else []


def extrapolation_matrix(element: str) -> np.ndarray:
    """``(n_nodes, n_points)`` matrix taking an element's integration-point values to its nodes, as ccx
    does for its nodal output: the least-squares fit of the values by the lowest-order shape basis with
    at most as many terms as points (constant for 1 point, the 4-node tetrahedron's for 4, the 8-node
    hexahedron's for 8 (trilinear), the 20-node's for 27, the 6-node wedge's for the 9 points of C3D15), evaluated at
    the nodes. C3D6's 2 points give their mean (ccx writes other nodal values there, of no fit we found)."""
    from ..fem.elements import ELEMENTS, SHAPES

    et = ELEMENTS[element]
    xi_p, xi_n = et.rule.points, et.shape.reference_coordinates
    family = et.shape.name.rstrip("0123456789")  # tet, hex, wedge
    basis = {("tet", 4): "tet4", ("hex", 8): "hex8", ("hex", 27): "hex20", ("wedge", 9): "wedge6"}.get(
        (family, et.n_points))
    if basis is None:
        return np.full((et.n_nodes, et.n_points), 1.0 / et.n_points)
    shape = SHAPES[basis]
    return shape.shape(xi_n) @ np.linalg.pinv(shape.shape(xi_p))


def extrapolate_to_nodes(mesh: Mesh, values: np.ndarray) -> np.ndarray:
    """Integration-point ``values`` ``(n_points[, k])`` (points of an element contiguous, elements in mesh
    order) -> ``(n_nodes[, k])``: extrapolated to each element's nodes (:func:`extrapolation_matrix`) and
    averaged over the elements sharing a node, as ccx's ``.frd`` output."""
    from ..hifi.output import element_point_offsets

    values = np.asarray(values, float)
    flat = values.reshape(len(values), -1)
    if len(flat) != element_point_offsets(mesh)[-1]:
        raise CalculixError(f"extrapolate_to_nodes: {len(flat)} integration-point values, the mesh has "
                            f"{int(element_point_offsets(mesh)[-1])}")
    sums = np.zeros((mesh.n_nodes, flat.shape[1]))
    hits = np.zeros(mesh.n_nodes)
    start = 0
    for block in mesh.blocks:
        conn = block.connectivity
        E = extrapolation_matrix(block.element)
        q = E.shape[1]
        pts = flat[start:start + q * len(conn)].reshape(len(conn), q, -1)
        at_nodes = np.einsum("nq,eqk->enk", E, pts)
        np.add.at(sums, conn.ravel(), at_nodes.reshape(-1, flat.shape[1]))
        np.add.at(hits, conn.ravel(), 1.0)
        start += q * len(conn)
    out = sums / np.maximum(hits, 1.0)[:, None]
    return out.reshape((mesh.n_nodes,) + values.shape[1:])


def write_frd(path: str | os.PathLike, mesh: Mesh, times: np.ndarray, fields: dict[str, np.ndarray], *,
              node_ids: np.ndarray | None = None, element_ids: np.ndarray | None = None,
              title: str = "structrom reduced model") -> Path:
    """Write an ASCII ``.frd`` file: the mesh and, for each of ``times`` ``(n_t,)``, the nodal ``fields``
    (frd block name -> ``(n_t, n_nodes[, k])``, e.g. ``DISP`` ``(n_t, n, 3)``, ``STRESS`` ``(n_t, n, 6)`` in
    our Voigt order ``xx yy zz xy yz zx``, ``PE`` ``(n_t, n)``). ``node_ids``/``element_ids``: the ids to
    write (default 1..n in our order; pass the deck's ids so that results match the user's deck). The
    file is written to a temporary name and renamed."""
    path = Path(path)
    times = np.asarray(times, float)
    node_ids = np.arange(1, mesh.n_nodes + 1) if node_ids is None else np.asarray(node_ids, np.int64)
    element_ids = np.arange(1, mesh.n_elements + 1) if element_ids is None else np.asarray(element_ids, np.int64)
    for name, v in fields.items():
        v = np.asarray(v)
        if v.shape[:2] != (len(times), mesh.n_nodes):
            raise CalculixError(f"write_frd: field {name} has shape {v.shape}, expected ({len(times)}, "
                                f"{mesh.n_nodes}[, k])")
        if not np.all(np.isfinite(v)):
            raise CalculixError(f"write_frd: field {name} has {int((~np.isfinite(v)).sum())} non-finite values")
    lines = ["    1C" + path.stem[:60], "    1U" + title[:60], "    1UPGM               structrom"]
    lines.append(f"    2C{mesh.n_nodes:30d}{'':37s}1")
    lines += _rows(node_ids, mesh.points)
    lines.append(" -3")
    lines.append(f"    3C{mesh.n_elements:30d}{'':37s}1")
    start = 0
    for block in mesh.blocks:
        code = FRD_TYPE.get(block.element)
        if code is None:
            raise CalculixError(f"write_frd: element type {block.element} has no .frd code")
        perm = FRD_TO_INP.get(code)  # an involution: inp -> frd as well
        conn = block.connectivity if perm is None else block.connectivity[:, perm]
        ids = node_ids[conn]
        for k, row in enumerate(ids):
            lines.append(f" -1{element_ids[start + k]:10d}{code:5d}{0:5d}{1:5d}")
            for j in range(0, len(row), 10):
                lines.append(" -2" + "".join(f"{n:10d}" for n in row[j:j + 10]))
        start += len(conn)
    lines.append(" -3")
    block_no = 0
    for i, t in enumerate(times):
        for name, v in fields.items():
            v = np.asarray(v[i], float).reshape(mesh.n_nodes, -1)
            comps = COMPONENTS.get(name, [f"{name[:4]}{c + 1}" for c in range(v.shape[1])])
            if len(comps) != v.shape[1]:
                raise CalculixError(f"write_frd: {name} needs {len(comps)} components, got {v.shape[1]}")
            block_no += 1
            lines.append(f"    1PSTEP{block_no:26d}{i + 1:12d}{1:12d}")
            lines.append(f"  100CL  {100 + min(i + 1, 899):3d}{t:12.5E}{mesh.n_nodes:12d}{'':21s}0{i + 1:5d}"
                         f"{'':11s}1")
            ictype = 4 if name in ("STRESS", "TOSTRAIN") else (2 if name == "DISP" else 1)
            lines.append(f" -4  {name:<8s}{len(comps) + (name == 'DISP'):4d}    1")
            for c, comp in enumerate(comps):
                a, b = _TENSOR_INDEX[c] if ictype == 4 else ((c + 1, 0) if ictype == 2 else (0, 0))
                lines.append(f" -5  {comp:<8s}{1:4d}{ictype:5d}{a:5d}{b:5d}")
            if name == "DISP":
                lines.append(f" -5  {'ALL':<8s}{1:4d}{2:5d}{0:5d}{0:5d}    1ALL")
            if name == "TOSTRAIN":
                v = v.copy()
                v[:, 3:] *= 0.5  # engineering -> tensor shears, as ccx writes them
            lines += _rows(node_ids, v)
            lines.append(" -3")
    lines.append("9999")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
