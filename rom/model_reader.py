"""Reading a reduced model file: :func:`load` returns a checked :class:`~structrom.rom.model_data.ReducedModelData`.

Layout in :mod:`structrom.rom.model_file`. A file is screened first (no external files or links, bounded
sizes, indices in range: :mod:`structrom.rom.model_screening`), then its format, schema version (1, 2 or 3)
and kind are checked (:func:`check_header`, also used for separated models), and after reading every shape
is checked against the number of modes ``N`` and of reduced points ``n_rp``; the first inconsistency raises
:class:`~structrom.rom.model_data.ModelFileError` naming the file and the dataset.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from structrom.rom import h5_screening, model_screening
from structrom.rom.lifting import Lifting
from structrom.rom.model_data import FORMAT, KINDS, READABLE_VERSIONS, DualBasis, ModelFileError, ReducedModelData

def check_header(f: h5py.File, path: Path) -> str:
    """Check format and schema version of an open model file; return its kind (one of :data:`KINDS`). The
    root attributes are read before any screening, each bounded and of its type
    (:func:`structrom.rom.model_screening.header`); values quoted in messages are shortened."""
    try:
        fmt, version, kind = model_screening.header(f)
    except h5_screening.UnsafeFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if fmt != FORMAT:
        raise ModelFileError(f"{path}: not a structrom reduced model (format {h5_screening.echo(fmt)})")
    version = -1 if version is None else version
    if version not in READABLE_VERSIONS:
        raise ModelFileError(f"{path}: schema version {version} is not supported (this code reads "
                             f"{list(READABLE_VERSIONS)}): rebuild the model with `structrom offline`")
    kind = "hyper_reduced" if kind is None else kind
    if kind not in KINDS:
        raise ModelFileError(f"{path}: unknown model kind {h5_screening.echo(kind)} (known: {', '.join(KINDS)})")
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
