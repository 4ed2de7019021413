"""Screening of the reduced model file (:mod:`structrom.rom.model_file`) before anything reads it.

:func:`screen_model` runs :func:`structrom.rom.h5_screening.screen` with :data:`MODEL_SCHEMA` (the groups,
datasets and attributes the format has: no links, external storage, virtual datasets or foreign filters,
bounded decompressed sizes), then the format's own rules: required datasets and their shapes, every
index array within the extent of what it indexes (mesh nodes and elements, temperature nodes, CSR
pointers, materials, integration points), every scalar attribute finite and in range (indicator
tolerance in (0, 1]), JSON attributes strict (no NaN), every float dataset finite. Failures raise
:class:`~structrom.rom.h5_screening.UnsafeFileError` naming the object.
"""
from __future__ import annotations

import math
import re

import h5py
import numpy as np

from structrom.rom.h5_screening import NAME, Inventory, Limits, Schema, UnsafeFileError, screen, strict_json

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


def _scalar(obj, name: str, where: str, *, lo: float = -math.inf, hi: float = math.inf, lo_open=False,
            integer: bool = False) -> float:
    if name not in obj.attrs:
        raise UnsafeFileError(f"{where}: missing attribute {name!r}")
    v = np.asarray(obj.attrs[name])
    if v.size != 1 or v.dtype.kind not in ("iu" if integer else "iuf"):
        raise UnsafeFileError(f"{where}: attribute {name!r} must be one {'integer' if integer else 'number'}")
    x = float(v.reshape(()))
    if not math.isfinite(x) or x < lo or x > hi or (lo_open and x <= lo):
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise UnsafeFileError(f"{where}: attribute {name!r} = {x!r} must be finite and in {rng}")
    return x


def _string(obj, name: str, where: str) -> str:
    if name not in obj.attrs:
        raise UnsafeFileError(f"{where}: missing attribute {name!r}")
    v = obj.attrs[name]
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not isinstance(v, str):
        raise UnsafeFileError(f"{where}: attribute {name!r} must be a string")
    return v


def _finite(f: h5py.File, path: str, limits: Limits) -> None:
    d = f[path]
    if d.dtype.kind != "f" or d.size == 0:
        return
    rows = max(1, limits.block_bytes // max(1, d.dtype.itemsize * (d.size // max(d.shape[0], 1))))
    for start in range(0, d.shape[0] if d.ndim else 1, rows):
        block = d[()] if d.ndim == 0 else d[start:start + rows]
        if not np.all(np.isfinite(block)):
            raise UnsafeFileError(f"/{path}: contains non-finite values (NaN or infinity)")


def _index(f: h5py.File, path: str, extent: int, what: str, column: int | None = None) -> np.ndarray:
    a = f[path][()]
    if a.dtype.kind not in "iu":
        raise UnsafeFileError(f"/{path}: index array of type {a.dtype}; integers expected")
    v = a if column is None else a[:, column]
    if v.size and (v.min() < 0 or v.max() >= extent):
        raise UnsafeFileError(f"/{path}: indices in [{v.min()}, {v.max()}] outside [0, {extent}) ({what})")
    return a


def shape_checkers(ds: dict, where: str = "a structrom model"):
    """``(shape, expect)``: the screened shape of a dataset path (missing: :class:`UnsafeFileError`), and a
    check of it against a pattern (``None`` = any extent)."""

    def shape(path: str) -> tuple[int, ...]:
        if path not in ds:
            raise UnsafeFileError(f"/{path}: missing; the file is truncated or not {where}")
        return ds[path][0]

    def expect(path: str, expected: tuple) -> None:
        got = shape(path)
        if len(got) != len(expected) or any(e is not None and g != e for g, e in zip(got, expected)):
            want = tuple("any" if e is None else e for e in expected)
            raise UnsafeFileError(f"/{path}: shape {got}, expected {want}")

    return shape, expect


def mesh_rules(f: h5py.File, ds: dict, shape, expect, prefix: str = "mesh") -> tuple[int, int]:
    """The rules of a mesh group (:func:`structrom.rom.hifi.output.write_mesh_group`) at ``prefix``: points
    ``(n_nodes, 3)``, element blocks numbered without gaps, connectivities and sets within the node / element
    extents. Returns ``(n_nodes, n_elements)``."""
    n_nodes = shape(f"{prefix}/points")[0]
    expect(f"{prefix}/points", (n_nodes, 3))
    blocks = [p for p in ds if re.fullmatch(re.escape(prefix) + r"/blocks/\d+/connectivity", p)]
    depth = prefix.count("/") + 2
    if not blocks or {p.split("/")[depth] for p in blocks} != {str(i) for i in range(len(blocks))}:
        raise UnsafeFileError(f"/{prefix}/blocks: element blocks must be numbered 0, 1, ... without gaps")
    n_elements = 0
    for p in blocks:
        if len(shape(p)) != 2:
            raise UnsafeFileError(f"/{p}: shape {shape(p)}, expected (n_elements, nodes per element)")
        _string(f[p], "element", "/" + p)
        _index(f, p, n_nodes, "mesh nodes")
        n_elements += shape(p)[0]
    for p in ds:
        if p.startswith(f"{prefix}/node_sets/"):
            _index(f, p, n_nodes, "mesh nodes")
        elif p.startswith(f"{prefix}/element_sets/"):
            _index(f, p, n_elements, "mesh elements")
        elif p.startswith(f"{prefix}/surface_sets/"):
            if len(shape(p)) != 2 or shape(p)[1] != 2:
                raise UnsafeFileError(f"/{p}: shape {shape(p)}, expected (n_faces, 2): element, face")
            _index(f, p, n_elements, "mesh elements", column=0)
            _index(f, p, 6, "element faces", column=1)
    return n_nodes, n_elements


def _csr(f, group: str, n_rows: int, n_cols: int, expect, shape) -> None:
    """The temperature interpolation ``group/{data,indices,indptr}``: a CSR matrix ``(n_rows, n_cols)`` of
    consistent lengths, column indices below ``n_cols``, ``indptr`` from 0, non-decreasing, ending at nnz."""
    nnz = shape(f"{group}/indices")[0]
    expect(f"{group}/indices", (nnz,))
    expect(f"{group}/data", (nnz,))
    expect(f"{group}/indptr", (n_rows + 1,))
    _index(f, f"{group}/indices", n_cols, "temperature nodes")
    indptr = _index(f, f"{group}/indptr", nnz + 1, "entries of indices")
    if indptr.size and (indptr[0] != 0 or indptr[-1] != nnz or np.any(np.diff(indptr) < 0)):
        raise UnsafeFileError(f"/{group}/indptr: must start at 0, not decrease and end at len(indices) = {nnz}")


def screen_model(f: h5py.File, limits: Limits = Limits()) -> Inventory:
    """:func:`screen` with :data:`MODEL_SCHEMA`, then the model file's own rules: required datasets and
    shapes, index arrays within the extent they index, scalar attributes finite and in range, JSON
    attributes strict, float datasets finite."""
    inv = screen(f, MODEL_SCHEMA, limits)
    try:
        _model_rules(f, inv, limits)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(f"unreadable data ({exc}); the file is corrupt or truncated") from None
    return inv


def _model_rules(f: h5py.File, inv: Inventory, limits: Limits) -> None:
    ds = inv.datasets
    shape, expect = shape_checkers(ds)

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
        raise UnsafeFileError(f"/: model kind {_string(f, 'kind', '/')!r} is not the hyper-reduced layout this "
                              "screening knows")
    _scalar(f, "schema_version", "/", lo=0, hi=2**31, integer=True)
    _string(f, "format", "/")
    n_nodes, n_elements = mesh_rules(f, ds, shape, expect)
    # modes and reduced integration
    n_dofs, n_modes = (shape("modes/full") + (0, 0))[:2]
    expect("modes/full", (3 * n_nodes, None))
    expect("modes/singular_values", (n_modes,))
    n_rp = shape("reduced/weights")[0]
    expect("reduced/weights", (n_rp,))
    for key in ("element", "point", "material"):
        expect(f"reduced/{key}", (n_rp,))
    expect("reduced/coordinates", (n_rp, 3))
    expect("reduced/integrator", (n_rp, 6, n_modes))
    _index(f, "reduced/element", n_elements, "mesh elements")
    _index(f, "reduced/material", len(materials), "materials of the 'materials' attribute")
    n_tn = shape("reduced/temperature/nodes")[0]
    expect("reduced/temperature/nodes", (n_tn,))
    expect("reduced/temperature/coordinates", (n_tn, 3))
    _index(f, "reduced/temperature/nodes", n_nodes, "mesh nodes")
    _csr(f, "reduced/temperature", n_rp, n_tn, expect, shape)
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
        m = shape(f"{g}/singular_values")[0]
        expect(f"{g}/singular_values", (m,))
        expect(f"{g}/reduced_basis", (n_rp * c, m))
        rows = shape(f"{g}/basis")[0]
        expect(f"{g}/basis", (rows, m))
        if rows % c:
            raise UnsafeFileError(f"/{g}/basis: {rows} rows is not a multiple of {c} components")
        if n_points is not None and rows // c != n_points:
            raise UnsafeFileError(f"/{g}/basis: {rows // c} integration points; another dual basis has {n_points}")
        n_points = rows // c
    if n_points is not None:
        _index(f, "reduced/point", n_points, "integration points of the dual bases")
    if "indicator" not in inv.groups:
        raise UnsafeFileError("/indicator: missing; the file is truncated or not a structrom model")
    quantity = _string(f["indicator"], "quantity", "/indicator")
    if f"dual/{quantity}" not in inv.groups:
        raise UnsafeFileError(f"/indicator: quantity {quantity!r} has no dual basis (/dual/{quantity})")
    _scalar(f["indicator"], "tolerance", "/indicator", lo=0.0, hi=MAX_INDICATOR_TOLERANCE, lo_open=True)
    if "reference" in f["indicator"].attrs:
        _scalar(f["indicator"], "reference", "/indicator", lo=0.0)
    _calibrated_indicator_rules(f, inv, shape, expect, n_modes, n_tn, n_points, materials)
    _lifting_rules(f, inv, shape, expect, n_nodes, n_rp)
    for p in sorted(ds):
        _finite(f, p, limits)


def _calibrated_indicator_rules(f: h5py.File, inv: Inventory, shape, expect, n_modes: int, n_tn: int,
                                n_points: int | None, materials: list) -> None:
    """``/validation`` (integration points kept out of the cubature) and ``/indicator/calibration``: shapes,
    indices within what they index, strict JSON attributes, factors finite (checked with every float)."""
    ds = inv.datasets
    if "validation" in inv.groups:
        n_val = shape("validation/point")[0]
        expect("validation/point", (n_val,))
        expect("validation/weights", (n_val,))
        expect("validation/material", (n_val,))
        expect("validation/integrator", (n_val, 6, n_modes))
        if n_points is not None:
            _index(f, "validation/point", n_points, "integration points of the dual bases")
        _index(f, "validation/material", len(materials), "materials of the 'materials' attribute")
        _csr(f, "validation/temperature", n_val, n_tn, expect, shape)
        for p in ds:
            if p.startswith("validation/dual/"):
                name = p.rsplit("/", 1)[1]
                if f"dual/{name}" not in inv.groups:
                    raise UnsafeFileError(f"/{p}: no dual basis /dual/{name}")
                c = int(f[f"dual/{name}"].attrs["components"])
                expect(p, (n_val * c, shape(f"dual/{name}/singular_values")[0]))
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


def _lifting_rules(f: h5py.File, inv: Inventory, shape, expect, n_nodes: int, n_rp: int) -> None:
    """``/lifting`` (prescribed displacements, :mod:`structrom.rom.lifting`): only in schema version 3 or
    later, its ``fields`` attribute well formed with node sets of the mesh, every array shaped by the number
    of unit fields ``n_G``."""
    from structrom.rom.lifting import check_fields

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
        raise UnsafeFileError(f"/lifting: {exc}") from None
    for entry in fields:
        if f"mesh/node_sets/{entry['node_set']}" not in inv.datasets:
            raise UnsafeFileError(f"/lifting: node set {entry['node_set']!r} is not in /mesh/node_sets")
    n_g = len(fields)
    expect("lifting/full", (3 * n_nodes, n_g))
    expect("lifting/reduced", (n_rp, 6, n_g))
    if "lifting/validation" in inv.datasets:
        if "validation/point" not in inv.datasets:
            raise UnsafeFileError("/lifting/validation: no /validation")
        expect("lifting/validation", (shape("validation/point")[0], 6, n_g))
    for p in inv.datasets:
        if p.startswith("lifting/loads/"):
            kind = p.split("/")[2]
            expect(p, (n_g,) if kind in ("pressure", "centrifugal") else (n_g, 3))
