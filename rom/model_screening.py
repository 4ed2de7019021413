"""Screening of the reduced model file (:mod:`structrom.rom.model_file`) before anything reads it.

:func:`screen_model` runs :func:`structrom.rom.h5_screening.screen` with :data:`MODEL_SCHEMA` (the groups,
datasets and attributes the format has: no links, external storage, virtual datasets or foreign filters,
bounded decompressed sizes), then the format's own rules: required datasets and their shapes (an array where one is expected, never a
0-d scalar), every index array no longer than what the model implies (a node set at most ``n_nodes``
entries...) before it is read, then read by blocks of whole chunks and within the extent of what it indexes
(mesh nodes and elements, temperature nodes, CSR pointers, materials, integration points), the online work
bounded (:data:`MAX_MODES` modes, :data:`MAX_REDUCED_POINTS` reduced points and at most the mesh's
integration points, :data:`MAX_ONLINE_WORK`), every scalar attribute finite and in range (indicator tolerance
in (0, 1], the indicator's reference norms within ``REFERENCE_MARGIN`` times the training scale the dual
bases imply: :func:`structrom.rom.model_screening_indicator.reference_rules`), JSON attributes strict (no NaN, no number beyond the float range) and
the ``dirichlet`` conditions on node sets of the mesh, every float dataset finite and below ``ABSURD`` in magnitude,
the cubature weights volumes within the mesh's bounding box (:func:`~structrom.rom.h5_checks.volume_weights`).
Failures raise
:class:`~structrom.rom.h5_screening.UnsafeFileError` naming the object.
"""
from __future__ import annotations

import re

import h5py
import numpy as np

from structrom.rom.fem.faces import FACES, missing_faces
from structrom.rom.h5_checks import (ShapeChecker, _blocks, _finite, _index, _scalar, _string,  # noqa: F401
                                     header, shape_checkers, volume_weights)
from structrom.rom.h5_screening import NAME, Inventory, Limits, Schema, UnsafeFileError, echo, screen, strict_json
from structrom.rom.model_screening_indicator import (DIRICHLET_KEYS, REFERENCE_MARGIN, dirichlet_rules,  # noqa: F401
                                                     reference_rules)

#: The mesh group (:func:`structrom.rom.hifi.output.write_mesh_group`), shared by every model layout.
MESH_GROUPS = ("mesh", "mesh/blocks", r"mesh/blocks/\d{1,6}", "mesh/(node_sets|element_sets|surface_sets)")
MESH_DATASETS = ("mesh/points", r"mesh/blocks/\d{1,6}/connectivity", f"mesh/(node_sets|element_sets|surface_sets)/{NAME}")
MESH_ATTRIBUTES = {r"mesh/blocks/\d{1,6}/connectivity": ("element",)}

MODEL_SCHEMA = Schema(
    groups=(*MESH_GROUPS, "modes",
            "reduced", "reduced/temperature", "loads", "loads/(pressure|traction|force)", "dual", f"dual/{NAME}",
            "indicator", "indicator/calibration", "validation", "validation/temperature", "validation/dual",
            "lifting", "lifting/loads", "lifting/loads/(pressure|traction|force)"),
    datasets=(*MESH_DATASETS, "modes/(full|singular_values)", "reduced/(element|point|weights|coordinates|material|integrator)",
              "reduced/temperature/(nodes|coordinates|data|indices|indptr)", f"loads/(pressure|traction|force)/{NAME}",
              "loads/(centrifugal|gravity)", f"dual/{NAME}/(reduced_basis|basis|singular_values)",
              "indicator/calibration/factors", "validation/(point|integrator|weights|material)",
              "validation/temperature/(data|indices|indptr)", f"validation/dual/{NAME}",
              "lifting/(full|reduced|validation)", f"lifting/loads/(pressure|traction|force)/{NAME}",
              "lifting/loads/(centrifugal|gravity)"),
    attributes={"": ("format", "schema_version", "kind", "versions", "provenance", "units", "materials",
                     "loading_schema", "dirichlet"),
                **MESH_ATTRIBUTES,
                "loads/centrifugal": ("axis_point", "axis_direction"),
                f"dual/{NAME}": ("components",), "indicator": ("quantity", "tolerance", "reference"),
                "lifting": ("fields",),
                "indicator/calibration": ("components", "quantities", "references", "margin", "tolerance", "cases",
                                          "statement", "training", "scales")},
)
#: The largest accepted indicator tolerance (a relative Gappy residual; above 1 it trusts anything).
MAX_INDICATOR_TOLERANCE = 1.0
JSON_ATTRIBUTES = {"provenance": object, "units": dict, "materials": list, "loading_schema": dict, "dirichlet": list}
#: Bounds of the online work a hyper-reduced file may ask for: displacement modes and dual basis vectors
#: ``N`` (as the separated layout's), reduced points ``n_rp`` (also at most the mesh's integration points),
#: and ``N^2 (n_rp + n_val + N)``, the order of the flops of one Newton iteration (reduced tangent
#: ``sum_p B_p^T C_p B_p`` at the reduced and validation points, dense ``N x N`` solve); the largest models
#: built so far need ~1e6.
MAX_MODES, MAX_REDUCED_POINTS, MAX_ONLINE_WORK = 2048, 2**20, 2**28


def _element_table() -> tuple[dict[str, tuple[int, int]], int, int]:
    """``({CalculiX name: (nodes, integration points)}, most nodes, most points)`` of the known elements."""
    from structrom.rom.fem.elements import ELEMENTS

    table = {name: (e.n_nodes, e.n_points) for name, e in ELEMENTS.items()}
    return table, max(n for n, _ in table.values()), max(p for _, p in table.values())


def _faces_within(f: h5py.File, path: str, starts: np.ndarray, faces: np.ndarray, names: list[str],
                  limits: Limits) -> None:
    """Each ``(element, face)`` row of the surface set ``path`` names a face its element has: element ``e`` of the
    block ``b`` (``starts[b] <= e < starts[b + 1]``) has ``faces[b]`` faces (``names[b]``: its type). Read by
    blocks; the elements are already known to lie within the mesh."""
    d = f[path]
    for sel, block in _blocks(d, limits.block_bytes):
        rows, cols = sel if len(sel) == 2 else (None, slice(0, 0))
        if not cols.start <= 1 < cols.stop:
            continue
        pairs = np.column_stack([block[:, 0] if cols.start == 0 else d[rows, 0], block[:, 1 - cols.start]])
        bad, b = missing_faces(starts, faces, pairs)
        if len(bad):
            i = int(bad[0])
            raise UnsafeFileError(f"/{path}: row {rows.start + i} names face S{int(pairs[i, 1]) + 1} of element "
                                  f"{int(pairs[i, 0])}, a {echo(names[int(b[i])])} element with "
                                  f"{int(faces[b[i]])} faces (S1-S{int(faces[b[i]])})")


def _positive_jacobians(f: h5py.File, path: str, element: str, X: np.ndarray, limits: Limits) -> None:
    """Every element of the connectivity ``path`` (a known ``element`` type, node indices already within the mesh
    points ``X`` ``(n_nodes, 3)``) has a positive Jacobian determinant at each integration point, as the mesh's
    integration (:class:`structrom.rom.fem.kernel.Discretization`: fields, deck answers) requires; read by blocks
    of elements. Skipped when the points are not finite (their own rule names them)."""
    from structrom.rom.fem.integration import MAX_CHUNK_ELEMENTS, _det_inv3
    from structrom.rom.fem.kernel import collapsed, jacobians

    if not np.all(np.isfinite(X)):
        return
    d = f[path]
    step = max(1, MAX_CHUNK_ELEMENTS // 16)  # (step, points, 3, 3) Jacobians at a time
    for sel, conn in _blocks(d, limits.block_bytes):
        if conn.shape[1:] != d.shape[1:]:
            raise UnsafeFileError(f"/{path}: chunks {d.chunks} split the rows (an element's nodes); rechunk with "
                                  f"whole rows (e.g. h5repack -l {path}:CHUNK={min(d.shape[0], 65536)}x{d.shape[1]})")
        for start in range(0, len(conn), step):
            det, _ = _det_inv3(jacobians(element, X[conn[start:start + step].astype(np.int64)]))
            bad = np.argwhere(~(det > 0.0))
            if len(bad):
                e, q = bad[0]
                row = sel[0].start + start + int(e)
                raise UnsafeFileError(f"/{path}: row {row} (a {element}) has {collapsed(det[e, q], q)}")


def mesh_rules(f: h5py.File, ds: dict, sc: ShapeChecker, prefix: str = "mesh",
               limits: Limits = Limits()) -> tuple[int, int, int]:
    """The rules of a mesh group (:func:`structrom.rom.hifi.output.write_mesh_group`) at ``prefix``: points
    ``(n_nodes, 3)``, element blocks numbered without gaps of ``(n_elements_b, nodes per element)`` (the
    element type's node count when it is a known one), node sets ``(<= n_nodes,)``, element sets
    ``(<= n_elements,)``, surface sets ``(<= 6 n_elements, 2)`` (bounded before they are read), connectivities
    and sets within the node / element / face extents. Returns ``(n_nodes, n_elements, n_ip)``, ``n_ip`` the
    mesh's integration points (unknown element types counted with the most points of any type)."""
    table, most_nodes, most_points = _element_table()
    n_nodes = sc.length(f"{prefix}/points")
    sc.expect(f"{prefix}/points", (n_nodes, 3))
    blocks = [p for p in ds if re.fullmatch(re.escape(prefix) + r"/blocks/\d+/connectivity", p)]
    depth = prefix.count("/") + 2
    if not blocks or {p.split("/")[depth] for p in blocks} != {str(i) for i in range(len(blocks))}:
        raise UnsafeFileError(f"/{prefix}/blocks: element blocks must be numbered 0, 1, ... without gaps")
    n_elements = n_ip = 0
    starts, faces, names = [], [], []  # per block: first element, faces of its type, its type
    X = None
    for p in sorted(blocks, key=lambda q: int(q.split("/")[depth])):
        if len(sc.shape(p)) != 2:
            raise UnsafeFileError(f"/{p}: shape {sc.shape(p)}, expected (n_elements, nodes per element)")
        element = _string(f[p], "element", "/" + p)
        nodes, points = table.get(element, (None, most_points))
        if sc.shape(p)[1] != (nodes or sc.shape(p)[1]) or sc.shape(p)[1] > most_nodes:
            raise UnsafeFileError(f"/{p}: {sc.shape(p)[1]} nodes per element; a {echo(element)} element has "
                                  f"{nodes or f'at most {most_nodes}'}")
        _index(f, p, n_nodes, "mesh nodes", limits=limits)
        if nodes is not None:
            if X is None:  # the points, read once for all blocks
                X = f[f"{prefix}/points"][()]
            _positive_jacobians(f, p, element, X, limits)
        starts.append(n_elements)
        faces.append(len(FACES[element]) if element in FACES else 6)
        names.append(element)
        n_elements += sc.shape(p)[0]
        n_ip += sc.shape(p)[0] * points
    for p in ds:
        if p.startswith(f"{prefix}/node_sets/"):
            sc.expect(p, (sc.length(p, n_nodes, "the mesh's nodes"),))
            _index(f, p, n_nodes, "mesh nodes", limits=limits)
        elif p.startswith(f"{prefix}/element_sets/"):
            sc.expect(p, (sc.length(p, n_elements, "the mesh's elements"),))
            _index(f, p, n_elements, "mesh elements", limits=limits)
        elif p.startswith(f"{prefix}/surface_sets/"):
            if len(sc.shape(p)) != 2 or sc.shape(p)[1] != 2:
                raise UnsafeFileError(f"/{p}: shape {sc.shape(p)}, expected (n_faces, 2): element, face")
            sc.length(p, 6 * n_elements, "6 faces of each of the mesh's elements")
            _index(f, p, n_elements, "mesh elements", column=0, limits=limits)
            _index(f, p, 6, "element faces", column=1, limits=limits)
            if min(faces) < 6:  # (tetrahedra and wedges have fewer faces)
                _faces_within(f, p, np.array(starts), np.array(faces), names, limits)
    return n_nodes, n_elements, n_ip


def _csr(f, group: str, n_rows: int, n_cols: int, sc: ShapeChecker, limits: Limits) -> None:
    """The temperature interpolation ``group/{data,indices,indptr}``: a CSR matrix ``(n_rows, n_cols)`` of
    consistent lengths, at most the nodes of an element per row (bounded before anything is read), column
    indices below ``n_cols``, ``indptr`` from 0, non-decreasing, ending at nnz (read by blocks)."""
    _, most_nodes, _ = _element_table()
    nnz = sc.length(f"{group}/indices", n_rows * min(n_cols, most_nodes),
                    f"{n_rows} rows of at most {min(n_cols, most_nodes)} temperature nodes (the nodes of an element)")
    sc.expect(f"{group}/indices", (nnz,))
    sc.expect(f"{group}/data", (nnz,))
    sc.expect(f"{group}/indptr", (n_rows + 1,))
    _index(f, f"{group}/indices", n_cols, "temperature nodes", limits=limits)
    _index(f, f"{group}/indptr", nnz + 1, "entries of indices", limits=limits)
    previous = None
    for _, block in _blocks(f[f"{group}/indptr"], limits.block_bytes):
        if block.size and ((previous is None and block[0] != 0) or (previous is not None and block[0] < previous)
                           or np.any(np.diff(block) < 0)):
            previous = -1
            break
        previous = block[-1] if block.size else previous
    if previous is not None and previous != nnz:
        raise UnsafeFileError(f"/{group}/indptr: must start at 0, not decrease and end at len(indices) = {nnz}")


def screen_model(f: h5py.File, limits: Limits = Limits()) -> Inventory:
    """:func:`screen` with :data:`MODEL_SCHEMA`, then the model file's own rules: required datasets and
    shapes, index arrays bounded and within the extent they index, the online work bounded, scalar attributes
    finite and in range, JSON attributes strict, the Dirichlet conditions on the mesh's node sets, float
    datasets finite, the indicator's reference norms bounded by the model's training scales."""
    inv = screen(f, MODEL_SCHEMA, limits)
    try:
        _model_rules(f, inv, limits)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(f"unreadable data ({exc}); the file is corrupt or truncated") from None
    return inv


def _model_rules(f: h5py.File, inv: Inventory, limits: Limits) -> None:
    ds = inv.datasets
    sc = shape_checkers(ds)
    shape, expect, length = sc.shape, sc.expect, sc.length

    for g in ("mesh", "mesh/blocks", "mesh/node_sets", "mesh/element_sets", "mesh/surface_sets", "modes", "reduced",
              "reduced/temperature"):
        if g not in inv.groups:
            raise UnsafeFileError(f"/{g}: missing; the file is truncated or not a structrom model")
    for key, kind in JSON_ATTRIBUTES.items():
        if key not in f.attrs:
            raise UnsafeFileError(f"/: missing attribute {key!r}")
        value = strict_json(f.attrs[key], f"/ attribute {key!r}")
        if kind is not object and not isinstance(value, kind):
            raise UnsafeFileError(f"/: attribute {key!r} must be a JSON {kind.__name__}")
    materials = strict_json(f.attrs["materials"], "/ attribute 'materials'")
    if "versions" in f.attrs and not isinstance(strict_json(f.attrs["versions"], "/ attribute 'versions'"), list):
        raise UnsafeFileError("/: attribute 'versions' must be a JSON list")
    if "kind" in f.attrs and _string(f, "kind", "/") != "hyper_reduced":
        raise UnsafeFileError(f"/: model kind {echo(_string(f, 'kind', '/'))} is not the hyper-reduced layout this "
                              "screening knows")
    _scalar(f, "schema_version", "/", lo=0, hi=2**31, integer=True)
    _string(f, "format", "/")
    n_nodes, n_elements, n_ip = mesh_rules(f, ds, sc, limits=limits)
    node_sets = {p.rsplit("/", 1)[1] for p in ds if p.startswith("mesh/node_sets/")}
    dirichlet_rules(strict_json(f.attrs["dirichlet"], "/ attribute 'dirichlet'"), node_sets)
    # modes and reduced integration
    if len(shape("modes/full")) != 2:
        raise UnsafeFileError(f"/modes/full: shape {shape('modes/full')}, expected ({3 * n_nodes}, N)")
    n_modes = shape("modes/full")[1]
    expect("modes/full", (3 * n_nodes, None))
    if n_modes > MAX_MODES:
        raise UnsafeFileError(f"/modes/full: {n_modes} modes, more than {MAX_MODES} (the online solve is dense in "
                              "the modes); truncate the POD (pod.max_modes)")
    expect("modes/singular_values", (n_modes,))
    n_rp = length("reduced/weights", min(n_ip, MAX_REDUCED_POINTS),
                  f"the mesh's {n_ip} integration points and at most {MAX_REDUCED_POINTS} reduced points")
    expect("reduced/weights", (n_rp,))
    for key in ("element", "point", "material"):
        expect(f"reduced/{key}", (n_rp,))
    expect("reduced/coordinates", (n_rp, 3))
    expect("reduced/integrator", (n_rp, 6, n_modes))
    n_val = length("validation/point", n_ip, f"the mesh's {n_ip} integration points") \
        if "validation" in inv.groups else 0
    work = n_modes * n_modes * (n_rp + n_val + n_modes)
    if work > MAX_ONLINE_WORK:
        raise UnsafeFileError(f"/reduced/integrator: {n_modes} modes at {n_rp} reduced and {n_val} validation points "
                              f"ask N^2 (n_rp + n_val + N) = {work} operations per Newton iteration, above "
                              f"{MAX_ONLINE_WORK}; use fewer modes or reduced points")
    _index(f, "reduced/element", n_elements, "mesh elements", limits=limits)
    _index(f, "reduced/material", len(materials), "materials of the 'materials' attribute", limits=limits)
    n_tn = length("reduced/temperature/nodes", n_nodes, "the mesh's nodes")
    expect("reduced/temperature/nodes", (n_tn,))
    expect("reduced/temperature/coordinates", (n_tn, 3))
    _index(f, "reduced/temperature/nodes", n_nodes, "mesh nodes", limits=limits)
    _csr(f, "reduced/temperature", n_rp, n_tn, sc, limits)
    # loads
    for p in ds:
        if p.startswith("loads/pressure/"):
            expect(p, (n_modes,))
    if "loads/centrifugal" in ds:
        expect("loads/centrifugal", (n_modes,))
        for name in ("axis_point", "axis_direction"):
            v = np.asarray(f["loads/centrifugal"].attrs.get(name, []), dtype=float) \
                if np.asarray(f["loads/centrifugal"].attrs.get(name, [])).dtype.kind in "iuf" else np.zeros(0)
            if v.shape != (3,) or not np.all(np.isfinite(v)):
                raise UnsafeFileError(f"/loads/centrifugal: attribute {name!r} must be 3 finite numbers")
    if "loads/gravity" in ds:
        expect("loads/gravity", (n_modes, 3))
    for p in ds:
        if p.startswith(("loads/traction/", "loads/force/")):
            expect(p, (n_modes, 3))
    # dual bases and the indicator
    n_points = None
    for g in sorted(p for p in inv.groups if re.fullmatch(f"dual/{NAME}", p)):
        c = int(_scalar(f[g], "components", "/" + g, lo=1, hi=6, integer=True))
        if c not in (1, 6):
            raise UnsafeFileError(f"/{g}: attribute 'components' = {c}; expected 1 (scalar) or 6 (Voigt tensor)")
        m = length(f"{g}/singular_values", MAX_MODES, "dual basis vectors")
        expect(f"{g}/singular_values", (m,))
        expect(f"{g}/reduced_basis", (n_rp * c, m))
        rows = length(f"{g}/basis", n_ip * c, f"{c} components at each of the mesh's {n_ip} integration points")
        expect(f"{g}/basis", (rows, m))
        if rows % c:
            raise UnsafeFileError(f"/{g}/basis: {rows} rows is not a multiple of {c} components")
        if n_points is not None and rows // c != n_points:
            raise UnsafeFileError(f"/{g}/basis: {rows // c} integration points; another dual basis has {n_points}")
        n_points = rows // c
    if n_points is not None:
        _index(f, "reduced/point", n_points, "integration points of the dual bases", limits=limits)
    if "indicator" not in inv.groups:
        raise UnsafeFileError("/indicator: missing; the file is truncated or not a structrom model")
    quantity = _string(f["indicator"], "quantity", "/indicator")
    if f"dual/{quantity}" not in inv.groups:
        raise UnsafeFileError(f"/indicator: quantity {echo(quantity)} has no dual basis (/dual/{quantity})")
    _scalar(f["indicator"], "tolerance", "/indicator", lo=0.0, hi=MAX_INDICATOR_TOLERANCE, lo_open=True)
    if "reference" in f["indicator"].attrs:
        _scalar(f["indicator"], "reference", "/indicator", lo=0.0)
    _calibrated_indicator_rules(f, inv, sc, n_modes, n_tn, n_points, materials, limits)
    _lifting_rules(f, inv, sc, n_nodes, n_rp)
    for p in sorted(ds):
        _finite(f, p, limits)
    volume_weights(f, ("reduced/weights", "validation/weights"), "mesh/points", limits)
    reference_rules(f, inv, limits)


def _calibrated_indicator_rules(f: h5py.File, inv: Inventory, sc: ShapeChecker, n_modes: int, n_tn: int,
                                n_points: int | None, materials: list, limits: Limits) -> None:
    """``/validation`` (integration points kept out of the cubature) and ``/indicator/calibration``: shapes,
    indices within what they index, strict JSON attributes, factors finite (checked with every float)."""
    ds = inv.datasets
    shape, expect, length = sc.shape, sc.expect, sc.length
    if "validation" in inv.groups:
        n_val = length("validation/point")
        expect("validation/point", (n_val,))
        expect("validation/weights", (n_val,))
        expect("validation/material", (n_val,))
        expect("validation/integrator", (n_val, 6, n_modes))
        if n_points is not None:
            _index(f, "validation/point", n_points, "integration points of the dual bases", limits=limits)
        _index(f, "validation/material", len(materials), "materials of the 'materials' attribute", limits=limits)
        _csr(f, "validation/temperature", n_val, n_tn, sc, limits)
        for p in ds:
            if p.startswith("validation/dual/"):
                name = p.rsplit("/", 1)[1]
                if f"dual/{name}" not in inv.groups:
                    raise UnsafeFileError(f"/{p}: no dual basis /dual/{name}")
                c = int(f[f"dual/{name}"].attrs["components"])
                expect(p, (n_val * c, length(f"dual/{name}/singular_values")))
    if "indicator/calibration" in inv.groups:
        g = f["indicator/calibration"]
        if len(shape("indicator/calibration/factors")) != 2:
            raise UnsafeFileError("/indicator/calibration/factors: 2-D (quantities, 1 + components) expected")
        for key in ("components", "quantities", "references", "cases", "training", "scales"):
            if key in g.attrs:
                strict_json(g.attrs[key], f"/indicator/calibration attribute {key!r}")
        for key in ("margin", "tolerance"):
            if key in g.attrs:
                _scalar(g, key, "/indicator/calibration", lo=0.0, lo_open=True)


def _lifting_rules(f: h5py.File, inv: Inventory, sc: ShapeChecker, n_nodes: int, n_rp: int) -> None:
    """``/lifting`` (prescribed displacements, :mod:`structrom.rom.lifting`): only in schema version 3 or
    later, its ``fields`` attribute well formed with node sets of the mesh, every array shaped by the number
    of unit fields ``n_G``."""
    from structrom.rom.lifting import check_fields

    expect = sc.expect
    if "lifting" not in inv.groups:
        if any(p.startswith("lifting/") for p in inv.datasets):
            raise UnsafeFileError("/lifting: datasets without the group")
        return
    version = int(_scalar(f, "schema_version", "/", lo=0, hi=2**31, integer=True))
    if version < 3:
        raise UnsafeFileError(f"/lifting: prescribed displacements need schema version 3, the file says {version}")
    if "fields" not in f["lifting"].attrs:
        raise UnsafeFileError("/lifting: missing attribute 'fields'")
    try:
        fields = check_fields(strict_json(f["lifting"].attrs["fields"], "/lifting attribute 'fields'"))
    except ValueError as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(f"/lifting: {str(exc)[:300]}") from None
    for entry in fields:
        if f"mesh/node_sets/{entry['node_set']}" not in inv.datasets:
            raise UnsafeFileError(f"/lifting: node set {echo(entry['node_set'])} is not in /mesh/node_sets")
    n_g = len(fields)
    expect("lifting/full", (3 * n_nodes, n_g))
    expect("lifting/reduced", (n_rp, 6, n_g))
    if "lifting/validation" in inv.datasets:
        if "validation/point" not in inv.datasets:
            raise UnsafeFileError("/lifting/validation: no /validation")
        expect("lifting/validation", (sc.length("validation/point"), 6, n_g))
    for p in inv.datasets:
        if p.startswith("lifting/loads/"):
            kind = p.split("/")[2]
            expect(p, (n_g,) if kind in ("pressure", "centrifugal") else (n_g, 3))
