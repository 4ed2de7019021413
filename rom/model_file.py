"""The reduced model file: one versioned HDF5 file that the online stage and the server load.

Format ``structrom-reduced-model``, schema version 2 (version 1 files, without ``/validation`` and
``/indicator/calibration``, are still read); version 3 = version 2 with a ``/lifting`` group (prescribed
nonzero displacements, layout in :mod:`structrom.rom.lifting`), so that readers of version 2 refuse it. Shapes: ``N`` displacement modes, ``n_rp`` reduced
integration points (ECM points with positive weights, then the dual quantities' selected points with
zero weight), ``n_tn`` temperature nodes (nodes of the elements holding reduced points), ``m_q`` modes
of dual quantity ``q``, ``n_points`` integration points of the full mesh, ``n_dofs = 3 n_nodes``.

======================================  ===========================  =========================================
path                                    shape, type                  content
======================================  ===========================  =========================================
``/`` attrs ``format``,                 str, int, str                identification; ``provenance`` is JSON: code
``schema_version``, ``provenance``                                   version, configuration, snapshot hashes,
                                                                     tolerances, timings, number of ranks
``/`` attr ``units``                    JSON                         the units table
``/`` attr ``materials``                JSON list                    law configurations (``law_from_config``)
``/`` attr ``loading_schema``           JSON                         declared loading family and training ranges
``/`` attr ``dirichlet``                JSON list                    Dirichlet conditions of the first training
                                                                     case (node set, components, value); the
                                                                     nonzero ones are lifted (``/lifting``)
``/`` attr ``versions``                 JSON list                    version history, oldest first: ``version``,
                                                                     ``parent`` (or null), ``date``,
                                                                     ``loadings_added``, ``kept_as`` (the parent's
                                                                     file); absent or empty: version 1
``/mesh``                               group                        the full mesh (as in the snapshot files)
``/modes/full``                         (n_dofs, N) f8, chunked      displacement modes (orthonormal, mass)
``/modes/singular_values``              (N,) f8                      POD singular values
``/reduced/element``                    (n_rp,) i8                   element of each reduced point
``/reduced/point``                      (n_rp,) i8                   global integration point number
``/reduced/weights``                    (n_rp,) f8                   ECM weights (>= 0; 0 for dual-only points)
``/reduced/coordinates``                (n_rp, 3) f8                 physical coordinates
``/reduced/material``                   (n_rp,) i8                   index into ``materials``
``/reduced/integrator``                 (n_rp, 6, N) f8              strain of each mode at the point (B Phi)
``/reduced/temperature/nodes``          (n_tn,) i8                   mesh nodes needed for temperatures
``/reduced/temperature/coordinates``    (n_tn, 3) f8                 their coordinates
``/reduced/temperature/{data,indices,   CSR (n_rp, n_tn)             interpolation of nodal temperature to the
indptr}``                                                            reduced points
``/loads/pressure/<surface>``           (N,) f8                      Phi^T f for unit pressure on the surface set
``/loads/centrifugal``                  (N,) f8, attrs axis          Phi^T f for omega = 1
``/loads/gravity``                      (N, 3) f8                    Phi^T f for unit acceleration along x, y, z
``/loads/traction/<surface>``           (N, 3) f8                    Phi^T f for a unit traction along x, y, z
``/loads/force/<node set>``             (N, 3) f8                    Phi^T f for a unit force along x, y, z at
                                                                     each node of the set
``/dual/<q>/reduced_basis``             (n_rp * c, m_q) f8           Gappy basis at the reduced points (c = 1
                                                                     for scalars, 6 for stress, point-major)
``/dual/<q>/basis``                     (n_points * c, m_q) f8       full basis, chunked, for reconstruction
``/dual/<q>/singular_values``           (m_q,) f8
``/indicator`` attrs                    ``quantity``, ``tolerance``, error indicator: Gappy residual of this dual
                                        ``reference``                quantity, over max(its norm, reference:
                                                                     the largest training norm at the
                                                                     reduced points; 0 if absent); trust
                                                                     when below tolerance
``/indicator/calibration/factors``      (n_q, 1 + n_c) f8            calibrated factors of the error bound of
attrs ``components``, ``quantities``,   JSON, f8, str                each reported quantity (constant, then
``references``, ``margin``,                                          one per component), component scales,
``tolerance``, ``cases``,                                            left-out cases, training parameters and
``training``, ``scales``,                                            their scales, the guarantee; see
``statement``                                                        :mod:`structrom.rom.online.indicator`;
                                                                     optional (version 2)
``/validation/point``                   (n_val,) i8                  integration points kept out of the
``/validation/{weights,material}``      (n_val,) f8, i8              reduced set (validation cubature weights,
``/validation/integrator``              (n_val, 6, N) f8             materials, strain of each mode,
``/validation/temperature/{data,        CSR (n_val, n_tn)            temperature interpolation from
indices,indptr}``                                                    ``/reduced/temperature/nodes``, Gappy
``/validation/dual/<q>``                (n_val * c, m_q) f8          basis rows); optional (version 2)
======================================  ===========================  =========================================

Written atomically (``<name>.partial`` then ``os.replace``). :func:`load` checks format, version and
every shape, and names the first inconsistency.

Model kinds: the root attribute ``kind`` is ``"hyper_reduced"`` (this layout; files without the attribute
are of this kind) or ``"separated"`` (EIM-separated linear model, layout in
:mod:`structrom.rom.separated_model_file`). :func:`read_kind` tells them apart;
:func:`structrom.rom.online.load_model` returns the right online class.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from structrom.rom.atomic import atomic_h5
from structrom.rom import h5_screening, model_screening
from structrom.rom.lifting import Lifting
from structrom.mpi.errors import StructromError

FORMAT = "structrom-reduced-model"
SCHEMA_VERSION = 2
#: The version of files with a ``/lifting`` (prescribed displacements, :mod:`structrom.rom.lifting`): code that
#: reads version 2 only refuses them instead of solving without the prescribed motion.
LIFTING_SCHEMA_VERSION = 3
#: Versions :func:`load` reads (version 1: no validation set, no calibration; version 3: a lifting).
READABLE_VERSIONS = (1, 2, 3)
#: Values of the root attribute ``kind`` (absent: ``"hyper_reduced"``, files written before kinds existed).
KINDS = ("hyper_reduced", "separated")


class ModelFileError(StructromError, ValueError):
    """A reduced model file is missing, foreign, truncated or inconsistent."""


@dataclass
class DualBasis:
    """Gappy-POD basis of a dual quantity with ``components`` values per point (1 or 6)."""

    components: int
    reduced_basis: np.ndarray  # (n_rp * c, m)
    singular_values: np.ndarray  # (m,)
    basis: Any = None  # (n_points * c, m) array or lazily-read h5py dataset; None if not loaded


@dataclass
class ReducedModelData:
    """Everything in a reduced model file (full-size arrays may be lazy h5py datasets)."""

    units: dict
    materials: list[dict]
    loading_schema: dict
    dirichlet: list[dict]
    provenance: dict
    singular_values: np.ndarray
    element: np.ndarray
    point: np.ndarray
    weights: np.ndarray
    coordinates: np.ndarray
    material: np.ndarray
    integrator: np.ndarray
    temperature_nodes: np.ndarray
    temperature_coordinates: np.ndarray
    temperature_interpolation: sp.csr_matrix
    pressure: dict[str, np.ndarray]
    centrifugal: np.ndarray | None = None
    centrifugal_axis: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    gravity: np.ndarray | None = None
    traction: dict[str, np.ndarray] = field(default_factory=dict)  # surface -> (N, 3)
    force: dict[str, np.ndarray] = field(default_factory=dict)  # node set -> (N, 3)
    duals: dict[str, DualBasis] = field(default_factory=dict)
    indicator_quantity: str = "cumulated_plastic_strain"
    indicator_tolerance: float = 1e-2
    #: Largest norm of the indicator quantity at the reduced points over the training snapshots (0: none).
    indicator_reference: float = 0.0
    #: Version history (see the table above); ``[]`` for a model never enriched (version 1).
    versions: list[dict] = field(default_factory=list)
    modes: Any = None  # (n_dofs, N): array or h5py dataset
    mesh: Any = None  # structrom.rom.fem.mesh.Mesh when loaded with mesh=True
    #: structrom.rom.online.indicator.ValidationSet (points kept out of the reduced set) or None
    validation: Any = None
    #: structrom.rom.online.indicator.Calibration of the error indicator, or None (uncalibrated)
    calibration: Any = None
    #: structrom.rom.lifting.Lifting of the prescribed displacements, or None (homogeneous Dirichlet only)
    lifting: Any = None

    @property
    def n_modes(self) -> int:
        return self.integrator.shape[2]

    @property
    def n_reduced_points(self) -> int:
        return len(self.weights)

    @property
    def version(self) -> int:
        """The model's version number (1 for a model never enriched)."""
        return int(self.versions[-1]["version"]) if self.versions else 1


def _write_rows(group, name: str, rows) -> None:
    """A ``(n, m)`` float dataset chunked by rows (none for an empty one) from an array or from row blocks
    (an object with ``shape`` and ``blocks()`` yielding ``(start, (b, m) array)``, e.g.
    :class:`structrom.rom.offline.row_blocks.SpilledRows`: a distributed array written without holding it)."""
    n, m = rows.shape
    chunks = (min(n, 65536), m) if n * m else None
    if isinstance(rows, np.ndarray) or not n * m:
        group.create_dataset(name, data=np.asarray(rows) if isinstance(rows, np.ndarray) else np.zeros((n, m)),
                             chunks=chunks)
        return
    d = group.create_dataset(name, shape=(n, m), dtype="f8", chunks=chunks)
    for a, block in rows.blocks():
        d[a:a + len(block)] = block


def write(path: str | Path, data: ReducedModelData, mesh, modes,
          full_duals: dict) -> Path:
    """Write ``data`` (with the full ``modes`` ``(n_dofs, N)`` and full dual bases ``(n_points c, m_q)``,
    arrays or row blocks, see :func:`_write_rows`) atomically to ``path``."""
    from structrom.rom.hifi.output import write_mesh_group

    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION if data.lifting is None else LIFTING_SCHEMA_VERSION
        f.attrs["kind"] = "hyper_reduced"
        for key in ("provenance", "units", "materials", "loading_schema", "dirichlet"):
            f.attrs[key] = json.dumps(getattr(data, key))
        if data.versions:
            f.attrs["versions"] = json.dumps(data.versions)
        write_mesh_group(f.create_group("mesh"), mesh)
        _write_rows(f, "modes/full", modes)
        f.create_dataset("modes/singular_values", data=data.singular_values)
        r = f.create_group("reduced")
        for key in ("element", "point", "weights", "coordinates", "material", "integrator"):
            r.create_dataset(key, data=getattr(data, key))
        t = r.create_group("temperature")
        t.create_dataset("nodes", data=data.temperature_nodes)
        t.create_dataset("coordinates", data=data.temperature_coordinates)
        m = sp.csr_matrix(data.temperature_interpolation)
        for key in ("data", "indices", "indptr"):
            t.create_dataset(key, data=getattr(m, key))
        loads = f.create_group("loads")
        for name, vec in data.pressure.items():
            loads.create_dataset(f"pressure/{name}", data=vec)
        for kind in ("traction", "force"):
            for name, vec in getattr(data, kind).items():
                loads.create_dataset(f"{kind}/{name}", data=vec)
        if data.centrifugal is not None:
            d = loads.create_dataset("centrifugal", data=data.centrifugal)
            d.attrs["axis_point"], d.attrs["axis_direction"] = data.centrifugal_axis
        if data.gravity is not None:
            loads.create_dataset("gravity", data=data.gravity)
        for name, dual in data.duals.items():
            g = f.create_group(f"dual/{name}")
            g.attrs["components"] = dual.components
            g.create_dataset("reduced_basis", data=dual.reduced_basis)
            g.create_dataset("singular_values", data=dual.singular_values)
            _write_rows(g, "basis", full_duals[name])
        ind = f.create_group("indicator")
        ind.attrs["quantity"] = data.indicator_quantity
        ind.attrs["tolerance"] = data.indicator_tolerance
        ind.attrs["reference"] = float(data.indicator_reference)
        _write_indicator_data(f, data)
        if data.lifting is not None:
            data.lifting.write(f)
    return path


def check_header(f: h5py.File, path: Path) -> str:
    """Check format and schema version of an open model file; return its kind (one of :data:`KINDS`)."""
    if f.attrs.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a structrom reduced model (format {f.attrs.get('format')!r})")
    version = int(f.attrs.get("schema_version", -1))
    if version not in READABLE_VERSIONS:
        raise ModelFileError(f"{path}: schema version {version} is not supported (this code reads "
                             f"{list(READABLE_VERSIONS)}): rebuild the model with `structrom offline`")
    kind = f.attrs.get("kind", "hyper_reduced")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if kind not in KINDS:
        raise ModelFileError(f"{path}: unknown model kind {kind!r} (known: {', '.join(KINDS)})")
    return kind


def open_h5(path: Path, what: str = "model file") -> h5py.File:
    """``path`` opened read-only; a missing or unreadable file raises :class:`ModelFileError` naming it."""
    if not path.exists():
        raise ModelFileError(f"{path}: {what} not found")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(f"{path}: not a readable HDF5 file ({exc}); the file may be truncated") from None


def read_kind(path: str | Path) -> str:
    """The kind of the model file at ``path`` (format and version checked); raises :class:`ModelFileError`."""
    path = Path(path)
    with open_h5(path) as f:
        return check_header(f, path)


def _need(f: h5py.File, key: str, path: Path):
    if key not in f:
        raise ModelFileError(f"{path}: missing {key!r}: the file is truncated or not a structrom model")
    return f[key]


def load(path: str | Path, *, mesh: bool = False, full: bool = False, group: str = "/",
         limits: h5_screening.Limits | None = None) -> ReducedModelData:
    """Read and validate a model file, screened first by :func:`structrom.rom.model_screening.screen_model`
    within ``limits`` (default :data:`structrom.rom.h5_screening.DEFAULT_LIMITS`). ``full=True`` reads full modes
    and dual bases into memory (otherwise they are read on demand); ``mesh=True`` reads the mesh. ``group``: the
    HDF5 group holding the model (``"/"``; a dictionary file holds its local models in groups)."""
    path = Path(path)
    with open_h5(path) as fh:
        f = fh if group == "/" else _need(fh, group, path)
        kind = check_header(f, path)  # root attributes only
        if kind != "hyper_reduced":
            raise ModelFileError(f"{path}: a {kind!r} model, not a hyper-reduced one: load it with "
                                 "structrom.rom.online.load_model")
        try:  # before anything reads data: no external files or links, bounded sizes, indices in range
            model_screening.screen_model(f, limits or h5_screening.DEFAULT_LIMITS)
        except h5_screening.UnsafeFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        try:
            meta = {k: h5_screening.strict_json(f.attrs[k], k) for k in ("provenance", "units", "materials", "loading_schema",
                                                         "dirichlet")}
            versions = json.loads(f.attrs.get("versions", "[]"))
        except (KeyError, json.JSONDecodeError, h5_screening.UnsafeFileError) as exc:
            raise ModelFileError(f"{path}: unreadable metadata ({exc})") from None
        if not isinstance(versions, list) or not all(isinstance(v, dict) and "version" in v for v in versions):
            raise ModelFileError(f"{path}: attribute 'versions' must be a JSON list of objects with a 'version'")
        r = _need(f, "reduced", path)
        arrays = {k: _need(r, k, path)[()] for k in ("element", "point", "weights", "coordinates", "material",
                                                     "integrator")}
        t = _need(r, "temperature", path)
        tn = _need(t, "nodes", path)[()]
        interp = sp.csr_matrix((_need(t, "data", path)[()], _need(t, "indices", path)[()],
                                _need(t, "indptr", path)[()]), shape=(len(arrays["weights"]), len(tn)))
        loads = f.get("loads")
        pressure = {k: v[()] for k, v in loads["pressure"].items()} if loads is not None and "pressure" in loads else {}
        vectors = {kind: {k: v[()] for k, v in loads[kind].items()} if loads is not None and kind in loads else {}
                   for kind in ("traction", "force")}
        centrifugal = axis = gravity = None
        if loads is not None and "centrifugal" in loads:
            centrifugal = loads["centrifugal"][()]
            axis = (tuple(loads["centrifugal"].attrs["axis_point"]),
                    tuple(loads["centrifugal"].attrs["axis_direction"]))
        if loads is not None and "gravity" in loads:
            gravity = loads["gravity"][()]
        duals = {}
        for name, g in f.get("dual", {}).items():
            duals[name] = DualBasis(int(g.attrs["components"]), _need(g, "reduced_basis", path)[()],
                                    _need(g, "singular_values", path)[()],
                                    _need(g, "basis", path)[()] if full else None)
        ind = _need(f, "indicator", path)
        data = ReducedModelData(
            **meta, singular_values=_need(f, "modes/singular_values", path)[()], **arrays,
            temperature_nodes=tn, temperature_coordinates=_need(t, "coordinates", path)[()],
            temperature_interpolation=interp, pressure=pressure, centrifugal=centrifugal,
            centrifugal_axis=axis, gravity=gravity, **vectors, duals=duals,
            indicator_quantity=str(ind.attrs["quantity"]), indicator_tolerance=float(ind.attrs["tolerance"]),
            indicator_reference=float(ind.attrs.get("reference", 0.0)), versions=versions,
            modes=_need(f, "modes/full", path)[()] if full else None)
        data.validation, data.calibration = _read_indicator_data(f, path)
        data.lifting = Lifting.read(f, full)
        if mesh:
            from structrom.rom.hifi.output import read_mesh_group

            data.mesh = read_mesh_group(_need(f, "mesh", path))
        n_modes_full = _need(f, "modes/full", path).shape
    _validate(path, data, n_modes_full)
    return data


def _validate(path: Path, d: ReducedModelData, modes_shape: tuple[int, ...]) -> None:
    n_rp, N = len(d.weights), len(d.singular_values)

    def check(name: str, shape: tuple, expected: tuple) -> None:
        if tuple(shape) != tuple(expected):
            raise ModelFileError(f"{path}: {name} has shape {tuple(shape)}, expected {tuple(expected)}")

    for key in ("element", "point", "material"):
        check(f"reduced/{key}", getattr(d, key).shape, (n_rp,))
    check("reduced/coordinates", d.coordinates.shape, (n_rp, 3))
    check("reduced/integrator", d.integrator.shape, (n_rp, 6, N))
    check("modes/full", modes_shape[1:], (N,))
    for name, vec in d.pressure.items():
        check(f"loads/pressure/{name}", vec.shape, (N,))
    if d.centrifugal is not None:
        check("loads/centrifugal", d.centrifugal.shape, (N,))
    if d.gravity is not None:
        check("loads/gravity", d.gravity.shape, (N, 3))
    for kind in ("traction", "force"):
        for name, vec in getattr(d, kind).items():
            check(f"loads/{kind}/{name}", vec.shape, (N, 3))
    for name, dual in d.duals.items():
        check(f"dual/{name}/reduced_basis", dual.reduced_basis.shape[:1], (n_rp * dual.components,))
    if np.any(d.weights < 0) or not np.all(np.isfinite(d.weights)):
        raise ModelFileError(f"{path}: reduced/weights must be finite and non-negative")
    if d.material.size and (d.material.min() < 0 or d.material.max() >= len(d.materials)):
        raise ModelFileError(f"{path}: reduced/material indexes {len(d.materials)} materials")
    if d.indicator_quantity not in d.duals:
        raise ModelFileError(f"{path}: indicator quantity {d.indicator_quantity!r} has no dual basis")
    lift = d.lifting
    if lift is not None:
        n_g = lift.n_fields
        check("lifting/reduced", lift.reduced.shape, (n_rp, 6, n_g))
        if (lift.validation is None) != (d.validation is None):
            raise ModelFileError(f"{path}: lifting/validation must be present exactly when /validation is")
        if lift.validation is not None:
            check("lifting/validation", lift.validation.shape, (len(d.validation.weights), 6, n_g))
    v = d.validation
    if v is not None:
        n_val = len(v.weights)
        for key in ("point", "material"):
            check(f"validation/{key}", getattr(v, key).shape, (n_val,))
        check("validation/integrator", v.integrator.shape, (n_val, 6, N))
        check("validation/temperature", v.interpolation.shape, (n_val, len(d.temperature_nodes)))
        for name, rows in v.duals.items():
            if name not in d.duals:
                raise ModelFileError(f"{path}: validation/dual/{name} has no dual/{name}")
            dual = d.duals[name]
            check(f"validation/dual/{name}", rows.shape, (n_val * dual.components, dual.reduced_basis.shape[1]))
        if not (np.all(np.isfinite(v.weights)) and np.all(v.weights >= 0) and np.all(np.isfinite(v.integrator))):
            raise ModelFileError(f"{path}: validation/weights and validation/integrator must be finite, weights >= 0")
        if v.material.size and (v.material.min() < 0 or v.material.max() >= len(d.materials)):
            raise ModelFileError(f"{path}: validation/material indexes {len(d.materials)} materials")


def _write_indicator_data(f: h5py.File, data: ReducedModelData) -> None:
    """``/validation`` and ``/indicator/calibration`` (when present)."""
    v = data.validation
    if v is not None:
        g = f.create_group("validation")
        for key in ("point", "integrator", "weights", "material"):
            g.create_dataset(key, data=getattr(v, key))
        m = sp.csr_matrix(v.interpolation)
        for key in ("data", "indices", "indptr"):
            g.create_dataset(f"temperature/{key}", data=getattr(m, key))
        for name, rows in v.duals.items():
            g.create_dataset(f"dual/{name}", data=rows)
    c = data.calibration
    if c is not None:
        g = f["indicator"].create_group("calibration")
        g.create_dataset("factors", data=c.factors)
        for key, value in c.to_attrs().items():
            g.attrs[key] = value


def _read_indicator_data(f: h5py.File, path: Path):
    """``(ValidationSet | None, Calibration | None)`` of an open model file."""
    from structrom.rom.online.indicator import Calibration, IndicatorError, ValidationSet

    validation = calibration = None
    g = f.get("validation")
    if g is not None:
        t = _need(g, "temperature", path)
        n_val = len(_need(g, "weights", path))
        n_tn = len(_need(f, "reduced/temperature/nodes", path))
        try:
            interp = sp.csr_matrix((t["data"][()], t["indices"][()], t["indptr"][()]), shape=(n_val, n_tn))
        except (KeyError, ValueError) as exc:
            raise ModelFileError(f"{path}: validation/temperature is inconsistent ({exc})") from None
        validation = ValidationSet(point=_need(g, "point", path)[()], integrator=_need(g, "integrator", path)[()],
                                   weights=g["weights"][()], material=_need(g, "material", path)[()],
                                   interpolation=interp,
                                   duals={k: v[()] for k, v in g["dual"].items()} if "dual" in g else {})
    c = f.get("indicator/calibration")
    if c is not None:
        try:
            calibration = Calibration.from_attrs(c.attrs, _need(c, "factors", path)[()])
        except IndicatorError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
    return validation, calibration
