"""Model file of kind ``separated``: an EIM-separated linear model in the versioned reduced-model format.

Same container as :mod:`structrom.rom.model_file` (``format`` ``structrom-reduced-model``, ``schema_version``
1, atomic write, validation on load) with the root attribute ``kind = "separated"``. Shapes: ``n`` rows of the
exported matrices (the black box's free dofs), ``m`` training parameters of dimension ``p``, ``d`` matrix
terms, ``Q`` right-hand-side terms (1 for a fixed load), ``N`` reduced-basis vectors, ``P = Q + d N``
residual coefficients, ``r <= P`` rows of the estimator factor.

=====================================  ==============  =========================================================
path                                   shape, type     content
=====================================  ==============  =========================================================
``/`` attrs ``format``,                str, int, str   identification (``kind = "separated"``)
``schema_version``, ``kind``
``/`` attr ``provenance``              JSON            code version, configuration, training files, timings, ranks
``/`` attr ``parameters``              JSON list       ``[{"name": str, "range": [lo, hi]}, ...]`` (``p`` entries)
``/`` attr ``entries``                 JSON            how the online stage gets the ``d`` entries of ``A(mu)``:
                                                       ``{"kind": "fe_kernel", "material": law config,
                                                       "temperature": template, "time": t}`` or
                                                       ``{"kind": "interpolation"}`` (see
                                                       :mod:`structrom.rom.online.separated_entries`)
``/training/parameters``               (m, p) f8       training parameter values
``/separation/matrix/param_indices``   (d,) i8         selected training parameters ``J_k``
``/separation/matrix/entry_rows``,     (d,) i8         selected entries ``(i_l, j_l)`` (0-based rows/columns)
``entry_cols``
``/separation/matrix/F``               (d, d) f8       ``F[l, k] = A(mu_{J_k})[i_l, j_l]``
``/separation/matrix/training_values`` (d, m) f8       ``A(mu_j)[i_l, j_l]`` for every training parameter
``/separation/rhs/...``                as above (Q)    separated right-hand side; absent for a fixed load
``/reduced/A_red``                     (d, N, N) f8    ``V^T A(mu_{J_k}) V``
``/reduced/b_red``                     (Q, N) f8       ``V^T b_q``
``/reduced/norm_gram``                 (N, N) f8       ``V^T X V`` (``X``: the estimator's norm matrix)
``/estimator/R``                       (r, P) f8       stabilized residual factor: ``||r||_{X'} = ||R theta||``
``/estimator`` attrs ``alpha_lb``,     f8, f8, i8, f8  lower bound of ``lambda_min(X^-1 A(mu))``, trust tolerance
``tolerance``, ``reference``,                          of the relative estimate, training index of ``X = A(mu_ref)``,
``eim_error``                                          separation error ``eta`` measured on validation exports
``/estimator/alpha_training``          (m,) f8         ``lambda_min(X^-1 A(mu_j))`` at the training parameters
``/basis/V``                           (n, N) f8       reduced basis (rows in the exported numbering), chunked
``/basis/singular_values``             (N,) f8         POD singular values of the training solutions
``/dofs/map``                          (n,) i8         our dof ``3 node + c`` of each row (-1: unknown)
``/mesh``                              group           the mesh (``entries.kind = "fe_kernel"`` only)
=====================================  ==============  =========================================================
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from structrom.rom.atomic import atomic_h5
from structrom.rom.model_data import FORMAT, SCHEMA_VERSION, ModelFileError
from structrom.rom.model_reader import check_header, open_h5

KIND = "separated"
ENTRY_KINDS = ("fe_kernel", "interpolation")


@dataclass
class SeparationData:
    """One separated operator: ``param_indices``, ``entry_rows``, ``entry_cols`` ``(d,)``, ``F`` ``(d, d)``,
    ``training_values`` ``(d, m)``."""

    param_indices: np.ndarray
    entry_rows: np.ndarray
    entry_cols: np.ndarray
    F: np.ndarray
    training_values: np.ndarray

    @property
    def n_terms(self) -> int:
        return len(self.param_indices)


@dataclass
class SeparatedModelData:
    """Everything in a separated model file (``basis`` may be None: read on demand)."""

    parameters: list[dict]
    entries: dict
    training_parameters: np.ndarray
    matrix: SeparationData
    rhs: SeparationData | None
    A_red: np.ndarray
    b_red: np.ndarray
    norm_gram: np.ndarray
    R: np.ndarray
    alpha_lb: float
    tolerance: float
    reference: int
    alpha_training: np.ndarray
    singular_values: np.ndarray
    dof_map: np.ndarray
    n_rows: int
    #: separation's operator error relative to ``||V u_N||_X``, measured on validation exports (0: none)
    eim_error: float = 0.0
    provenance: dict = field(default_factory=dict)
    basis: Any = None
    mesh: Any = None

    @property
    def n_terms(self) -> int:
        return self.A_red.shape[0]

    @property
    def n_modes(self) -> int:
        return self.A_red.shape[1]


def _write_separation(g: h5py.Group, s: SeparationData) -> None:
    for key in ("param_indices", "entry_rows", "entry_cols", "F", "training_values"):
        g.create_dataset(key, data=getattr(s, key))


def write(path: str | Path, data: SeparatedModelData, basis: np.ndarray, mesh=None) -> Path:
    """Write ``data`` with the full ``basis`` ``(n, N)`` (and the ``mesh`` for an FE-kernel entry
    evaluator) atomically: ``<name>.partial``, then ``os.replace``."""
    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["kind"] = KIND
        f.attrs["provenance"] = json.dumps(data.provenance, default=str)
        f.attrs["parameters"] = json.dumps(data.parameters)
        f.attrs["entries"] = json.dumps(data.entries)
        f.create_dataset("training/parameters", data=data.training_parameters)
        _write_separation(f.create_group("separation/matrix"), data.matrix)
        if data.rhs is not None:
            _write_separation(f.create_group("separation/rhs"), data.rhs)
        for key in ("A_red", "b_red", "norm_gram"):
            f.create_dataset(f"reduced/{key}", data=getattr(data, key))
        e = f.create_group("estimator")
        e.create_dataset("R", data=data.R)
        e.create_dataset("alpha_training", data=data.alpha_training)
        e.attrs["alpha_lb"] = float(data.alpha_lb)
        e.attrs["tolerance"] = float(data.tolerance)
        e.attrs["reference"] = int(data.reference)
        e.attrs["eim_error"] = float(data.eim_error)
        basis = np.asarray(basis, dtype=float)
        f.create_dataset("basis/V", data=basis, chunks=(max(1, min(len(basis), 65536)), max(1, basis.shape[1])))
        f.create_dataset("basis/singular_values", data=data.singular_values)
        f.create_dataset("dofs/map", data=data.dof_map)
        if mesh is not None:
            from structrom.rom.hifi.output import write_mesh_group

            write_mesh_group(f.create_group("mesh"), mesh)
    return path


def _need(f, key: str, path: Path):
    if key not in f:
        full = f"{f.name.rstrip('/')}/{key}".lstrip("/")
        raise ModelFileError(f"{path}: missing {full!r}: the file is truncated or not a separated structrom model")
    return f[key]


def _read_separation(g, path: Path) -> SeparationData:
    return SeparationData(*(_need(g, k, path)[()] for k in ("param_indices", "entry_rows", "entry_cols", "F",
                                                             "training_values")))


def load(path: str | Path, *, basis: bool = False, mesh: bool = False, limits=None) -> SeparatedModelData:
    """Read and validate a separated model file, screened first by
    :func:`structrom.rom.separated_screening.screen_separated` within ``limits`` (default
    :data:`structrom.rom.h5_screening.DEFAULT_LIMITS`); ``basis``: read ``V`` too (else on demand); ``mesh``: read
    the mesh group (None when absent). Raises :class:`~structrom.rom.model_file.ModelFileError` naming the file and
    the first inconsistency."""
    from structrom.rom import h5_screening
    from structrom.rom.separated_screening import screen_separated

    path = Path(path)
    with open_h5(path) as f:
        kind = check_header(f, path)
        if kind != KIND:
            raise ModelFileError(f"{path}: a {kind!r} model, not a separated one")
        try:  # before anything reads data: no external files or links, bounded sizes, indices in range
            screen_separated(f, limits or h5_screening.DEFAULT_LIMITS)
        except h5_screening.UnsafeFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        try:
            meta = {k: json.loads(f.attrs[k]) for k in ("provenance", "parameters", "entries")}
        except (KeyError, json.JSONDecodeError, TypeError) as exc:
            raise ModelFileError(f"{path}: unreadable metadata ({exc})") from None
        e = _need(f, "estimator", path)
        try:
            est = {"alpha_lb": float(e.attrs["alpha_lb"]), "tolerance": float(e.attrs["tolerance"]),
                   "reference": int(e.attrs["reference"]), "eim_error": float(e.attrs.get("eim_error", 0.0))}
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: estimator attributes unreadable ({exc})") from None
        V = _need(f, "basis/V", path)
        data = SeparatedModelData(
            **meta, training_parameters=_need(f, "training/parameters", path)[()],
            matrix=_read_separation(_need(f, "separation/matrix", path), path),
            rhs=_read_separation(f["separation/rhs"], path) if "separation/rhs" in f else None,
            A_red=_need(f, "reduced/A_red", path)[()], b_red=_need(f, "reduced/b_red", path)[()],
            norm_gram=_need(f, "reduced/norm_gram", path)[()], R=_need(e, "R", path)[()],
            alpha_training=_need(e, "alpha_training", path)[()], **est,
            singular_values=_need(f, "basis/singular_values", path)[()], dof_map=_need(f, "dofs/map", path)[()],
            n_rows=int(V.shape[0]) if V.ndim == 2 else -1, basis=V[()] if basis else None)
        basis_shape = V.shape
        if mesh and "mesh" in f:
            from structrom.rom.hifi.output import read_mesh_group

            data.mesh = read_mesh_group(f["mesh"])
        has_mesh = "mesh" in f
    validate(path, data, basis_shape, has_mesh)
    return data


def validate(path: Path | str, d: SeparatedModelData, basis_shape: tuple, has_mesh: bool) -> None:
    """Shapes, index ranges, finiteness and metadata of a separated model (raises ModelFileError)."""

    def fail(msg: str) -> None:
        raise ModelFileError(f"{path}: {msg}")

    def check(name: str, arr, shape: tuple) -> None:
        if tuple(np.shape(arr)) != tuple(shape):
            fail(f"{name} has shape {tuple(np.shape(arr))}, expected {tuple(shape)}")

    if not isinstance(d.parameters, list) or not d.parameters or not all(
            isinstance(q, dict) and isinstance(q.get("name"), str) and len(q.get("range", ())) == 2
            for q in d.parameters):
        fail("attribute 'parameters' must be a non-empty list of {'name': str, 'range': [lo, hi]}")
    ranges = np.array([q["range"] for q in d.parameters], dtype=float)
    if not np.all(np.isfinite(ranges)) or np.any(ranges[:, 0] > ranges[:, 1]):
        fail(f"parameter ranges must be finite [lo, hi] with lo <= hi, got {ranges.tolist()}")
    names = [q["name"] for q in d.parameters]
    if len(set(names)) != len(names):
        fail(f"duplicate parameter names {names}")
    if not isinstance(d.entries, dict) or d.entries.get("kind") not in ENTRY_KINDS:
        fail(f"attribute 'entries' must have kind in {ENTRY_KINDS}, got {d.entries!r}")
    if len(basis_shape) != 2:
        fail(f"basis/V must be 2-D, got shape {tuple(basis_shape)}")
    n, N = basis_shape
    p = len(d.parameters)
    m = len(d.training_parameters)
    check("training/parameters", d.training_parameters, (m, p))
    dm = d.matrix.n_terms
    if dm < 1 or m < 1 or N < 1:
        fail(f"empty model: {dm} terms, {m} training parameters, {N} basis vectors")
    for name, s, cols in (("matrix", d.matrix, n), ("rhs", d.rhs, 1)):
        if s is None:
            continue
        k = s.n_terms
        for key in ("param_indices", "entry_rows", "entry_cols"):
            arr = getattr(s, key)
            check(f"separation/{name}/{key}", arr, (k,))
            if not np.issubdtype(np.asarray(arr).dtype, np.integer):
                fail(f"separation/{name}/{key} must hold integers")
        check(f"separation/{name}/F", s.F, (k, k))
        check(f"separation/{name}/training_values", s.training_values, (k, m))
        for key, hi in (("param_indices", m), ("entry_rows", n), ("entry_cols", cols)):
            arr = getattr(s, key)
            if arr.size and (arr.min() < 0 or arr.max() >= hi):
                fail(f"separation/{name}/{key} must lie in 0..{hi - 1}, got {int(arr.min())}..{int(arr.max())}")
        if len(np.unique(s.param_indices)) != k:
            fail(f"separation/{name}/param_indices has duplicates")
    Q = 1 if d.rhs is None else d.rhs.n_terms
    check("reduced/A_red", d.A_red, (dm, N, N))
    check("reduced/b_red", d.b_red, (Q, N))
    check("reduced/norm_gram", d.norm_gram, (N, N))
    P = Q + dm * N
    if d.R.ndim != 2 or d.R.shape[1] != P or d.R.shape[0] > P:
        fail(f"estimator/R has shape {d.R.shape}, expected (r <= {P}, {P})")
    check("estimator/alpha_training", d.alpha_training, (m,))
    check("basis/singular_values", d.singular_values, (N,))
    check("dofs/map", d.dof_map, (n,))
    for name in ("training_parameters", "A_red", "b_red", "norm_gram", "R", "alpha_training", "singular_values"):
        if not np.all(np.isfinite(getattr(d, name))):
            fail(f"{name} contains non-finite values")
    for name, s in (("matrix", d.matrix), ("rhs", d.rhs)):
        if s is not None and not (np.all(np.isfinite(s.F)) and np.all(np.isfinite(s.training_values))):
            fail(f"separation/{name} contains non-finite values")
    if not (np.isfinite(d.alpha_lb) and d.alpha_lb > 0):
        fail(f"estimator alpha_lb must be positive and finite, got {d.alpha_lb}")
    if not (np.isfinite(d.tolerance) and d.tolerance > 0):
        fail(f"estimator tolerance must be positive and finite, got {d.tolerance}")
    if not (np.isfinite(d.eim_error) and d.eim_error >= 0):
        fail(f"estimator eim_error must be finite and >= 0, got {d.eim_error}")
    if not 0 <= d.reference < m:
        fail(f"estimator reference {d.reference} is not a training index (0..{m - 1})")
    if d.basis is not None and not np.all(np.isfinite(d.basis)):
        fail("basis/V contains non-finite values")
    if d.entries["kind"] == "fe_kernel":
        if not has_mesh:
            fail("entries kind 'fe_kernel' needs the /mesh group")
        if np.any(d.dof_map < 0):
            fail("entries kind 'fe_kernel' needs every row mapped to a mesh dof (dofs/map has -1)")
        for key in ("material", "temperature"):
            if not isinstance(d.entries.get(key), dict):
                fail(f"entries kind 'fe_kernel' needs a {key!r} table")
        if d.mesh is not None and d.dof_map.size and d.dof_map.max() >= 3 * d.mesh.n_nodes:
            fail(f"dofs/map refers to dof {int(d.dof_map.max())}, the mesh has {3 * d.mesh.n_nodes}")
