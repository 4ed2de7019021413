"""Screening of a separated model file (:mod:`structrom.rom.separated_model_file`) before anything reads it.

:func:`screen_separated` runs :func:`structrom.rom.h5_screening.screen` with :data:`SEPARATED_SCHEMA` (only the
layout's groups, datasets and attributes; no links, external storage, virtual datasets or foreign filters;
bounded decompressed sizes), then the layout's rules, from the screened shapes before any array is read:
every dataset present with the shape the others imply (``n`` rows, ``N`` basis vectors, ``d`` / ``Q`` terms,
``m`` training parameters of dimension ``p``), index arrays integer and within what they index (rows, columns,
training parameters, mesh dofs), the JSON attributes strict (no NaN) and of the right type, the parameter
ranges finite with ``lo <= hi``, the estimator's scalars finite and in range, sizes bounded (parameters, terms,
basis vectors), arrays never 0-d where an array is expected, index arrays read by blocks, every float dataset
finite. Then the values that steer the answers, read once (:func:`_separated_values`): ``F`` the training values
at the selected training parameters (a file whose separation disagrees with itself would answer with a trusted
error estimate of another operator; its invertibility is checked where it is factored,
:class:`~structrom.rom.online.SeparatedModel`), ``alpha_lb`` at most the smallest ``alpha_training`` (it
is a safety factor times that, and that is 1 at the reference parameter, whose stiffness is the norm), the
indicator tolerance at most :data:`~structrom.rom.model_screening.MAX_INDICATOR_TOLERANCE`, singular values
``>= 0``, the norm Gram matrix symmetric positive definite, mapped dofs distinct and,
without a mesh, at most :data:`MAX_DOF` (a displacement answer allocates that many values). Failures raise
:class:`~structrom.rom.h5_screening.UnsafeFileError` naming the object.
"""
from __future__ import annotations

import math

import h5py
import numpy as np

from structrom.rom.h5_checks import index_range
from structrom.rom.h5_screening import Inventory, Limits, Schema, UnsafeFileError, echo, screen, strict_json
from structrom.rom.model_screening import (MAX_INDICATOR_TOLERANCE, MAX_MODES, MESH_ATTRIBUTES, MESH_DATASETS,
                                           MESH_GROUPS, _finite, _index, _scalar, _string, mesh_rules, shape_checkers)

SEPARATED_SCHEMA = Schema(
    groups=(*MESH_GROUPS, "training", "separation", "separation/(matrix|rhs)", "reduced", "estimator", "basis",
            "dofs"),
    datasets=(*MESH_DATASETS, "training/parameters",
              "separation/(matrix|rhs)/(param_indices|entry_rows|entry_cols|F|training_values)",
              "reduced/(A_red|b_red|norm_gram)", "estimator/(R|alpha_training)", "basis/(V|singular_values)",
              "dofs/map"),
    attributes={"": ("format", "schema_version", "kind", "provenance", "parameters", "entries", "versions"),
                "estimator": ("alpha_lb", "tolerance", "reference", "eim_error"), **MESH_ATTRIBUTES},
)
#: Bounds of the online work a file may ask for (the reduced system is dense: ``d N^2`` and ``N^3``);
#: ``MAX_MODES`` is the hyper-reduced layout's (:data:`structrom.rom.model_screening.MAX_MODES`).
MAX_PARAMETERS, MAX_TERMS = 64, 4096
#: Largest mesh dof of ``/dofs/map`` without a ``/mesh`` (answers allocate ``MAX_DOF + 1`` values)
MAX_DOF = 3 * 2**24
#: Relative tolerances: ``F`` against the training values it copies, symmetry of the norm Gram matrix
F_RTOL, GRAM_RTOL = 1e-12, 1e-8
#: ``alpha_training`` at the reference parameter is ``lambda_min(X^-1 X) = 1`` up to the eigensolver's accuracy
ALPHA_REF_TOL = 1e-6


def screen_separated(f: h5py.File, limits: Limits = Limits()) -> Inventory:
    """:func:`screen` with :data:`SEPARATED_SCHEMA`, then the separated layout's rules (module docstring)."""
    inv = screen(f, SEPARATED_SCHEMA, limits)
    try:
        _separated_rules(f, inv, limits)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(f"unreadable data ({exc}); the file is corrupt or truncated") from None
    return inv


def _parameters(f: h5py.File) -> int:
    params = strict_json(f.attrs.get("parameters", ""), "/ attribute 'parameters'")
    if not isinstance(params, list) or not 1 <= len(params) <= MAX_PARAMETERS:
        raise UnsafeFileError(f"/: attribute 'parameters' must be a JSON list of 1 to {MAX_PARAMETERS} "
                              "{'name': str, 'range': [lo, hi]}")
    names = set()
    for i, q in enumerate(params):
        name = q.get("name") if isinstance(q, dict) else None
        rng = q.get("range") if isinstance(q, dict) else None
        if not (isinstance(name, str) and len(name) <= 128 and name) or name in names:
            raise UnsafeFileError(f"/: attribute 'parameters' entry {i}: 'name' must be a new non-empty string")
        names.add(name)
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                 and math.isfinite(v) for v in rng) and rng[0] <= rng[1]):
            raise UnsafeFileError(f"/: attribute 'parameters' entry {i} ({name}): 'range' must be [lo, hi], finite, "
                                  "lo <= hi")
    return len(params)


def _separated_rules(f: h5py.File, inv: Inventory, limits: Limits) -> None:
    ds = inv.datasets
    sc = shape_checkers(ds, "a separated structrom model")
    shape, expect, length = sc.shape, sc.expect, sc.length
    if _string(f, "kind", "/") != "separated":
        raise UnsafeFileError(f"/: model kind {echo(_string(f, 'kind', '/'))} is not the separated layout")
    _string(f, "format", "/")
    _scalar(f, "schema_version", "/", lo=0, hi=2**31, integer=True)
    strict_json(f.attrs.get("provenance", ""), "/ attribute 'provenance'")
    if "versions" in f.attrs and not isinstance(strict_json(f.attrs["versions"], "/ attribute 'versions'"), list):
        raise UnsafeFileError("/: attribute 'versions' must be a JSON list")
    entries = strict_json(f.attrs.get("entries", ""), "/ attribute 'entries'")
    if not isinstance(entries, dict) or entries.get("kind") not in ("fe_kernel", "interpolation"):
        raise UnsafeFileError("/: attribute 'entries' must be a JSON object with kind 'fe_kernel' or 'interpolation'")
    p = _parameters(f)
    # sizes from the screened shapes
    if len(shape("basis/V")) != 2:
        raise UnsafeFileError(f"/basis/V: shape {shape('basis/V')}, expected (rows, basis vectors)")
    n, N = shape("basis/V")
    m = length("training/parameters")
    expect("training/parameters", (m, p))
    d = length("separation/matrix/param_indices")
    if not (1 <= d <= MAX_TERMS and 1 <= N <= MAX_MODES and m >= 1 and n >= 1):
        raise UnsafeFileError(f"/: {d} matrix terms (1..{MAX_TERMS}), {N} basis vectors (1..{MAX_MODES}), {m} "
                              f"training parameters and {n} rows (>= 1 each)")
    Q = 1
    for name, cols in (("matrix", n), ("rhs", 1)):
        g = f"separation/{name}"
        if g not in inv.groups:
            if name == "matrix":
                raise UnsafeFileError(f"/{g}: missing; the file is truncated or not a separated structrom model")
            continue
        k = length(f"{g}/param_indices")
        if not 1 <= k <= MAX_TERMS:
            raise UnsafeFileError(f"/{g}: {k} terms (1..{MAX_TERMS} allowed)")
        Q = k if name == "rhs" else Q
        for key in ("param_indices", "entry_rows", "entry_cols"):
            expect(f"{g}/{key}", (k,))
        expect(f"{g}/F", (k, k))
        expect(f"{g}/training_values", (k, m))
        _index(f, f"{g}/param_indices", m, "training parameters", limits=limits)
        _index(f, f"{g}/entry_rows", n, "rows of the exported operator", limits=limits)
        _index(f, f"{g}/entry_cols", cols, "columns of the exported operator" if name == "matrix" else
               "the single column of a load vector", limits=limits)
    expect("reduced/A_red", (d, N, N))
    expect("reduced/b_red", (Q, N))
    expect("reduced/norm_gram", (N, N))
    P = Q + d * N
    r = shape("estimator/R")
    if len(r) != 2 or r[1] != P or not 1 <= r[0] <= P:
        raise UnsafeFileError(f"/estimator/R: shape {r}, expected (1..{P}, {P})")
    expect("estimator/alpha_training", (m,))
    expect("basis/singular_values", (N,))
    expect("dofs/map", (n,))
    if "estimator" not in inv.groups:
        raise UnsafeFileError("/estimator: missing; the file is truncated or not a separated structrom model")
    est = f["estimator"]
    _scalar(est, "alpha_lb", "/estimator", lo=0.0, lo_open=True)
    _scalar(est, "tolerance", "/estimator", lo=0.0, lo_open=True, hi=MAX_INDICATOR_TOLERANCE)
    _scalar(est, "reference", "/estimator", lo=0, hi=m - 1, integer=True)
    if "eim_error" in est.attrs:
        _scalar(est, "eim_error", "/estimator", lo=0.0)
    lo, hi = index_range(f, "dofs/map", limits=limits) or (None, None)
    if "mesh" in inv.groups:
        n_nodes, _, _ = mesh_rules(f, ds, sc, limits=limits)
        if lo is not None and (lo < -1 or hi >= 3 * n_nodes):
            raise UnsafeFileError(f"/dofs/map: dofs in [{lo}, {hi}] outside [-1, {3 * n_nodes}) "
                                  "(mesh dofs, -1 = unknown)")
    elif entries["kind"] == "fe_kernel":
        raise UnsafeFileError("/mesh: missing; entries of kind 'fe_kernel' evaluate the stiffness on the mesh")
    elif lo is not None and (lo < -1 or hi >= MAX_DOF):
        raise UnsafeFileError(f"/dofs/map: dofs in [{lo}, {hi}] outside [-1, {MAX_DOF}) (-1 = unknown; a larger "
                              "mesh needs the /mesh group)")
    for path in sorted(ds):
        _finite(f, path, limits)
    _separated_values(f, inv)


def _separated_values(f: h5py.File, inv: Inventory) -> None:
    """The value rules of the module docstring, on the screened (shapes, ranges, finite) file."""
    for name in ("matrix", "rhs"):
        g = f"separation/{name}"
        if g not in inv.groups:
            continue
        F, values = f[f"{g}/F"][()].astype(float), f[f"{g}/training_values"][()].astype(float)
        J = f[f"{g}/param_indices"][()].astype(np.int64)
        if len(np.unique(J)) != len(J):
            raise UnsafeFileError(f"/{g}/param_indices: repeated training parameters; the separation selects "
                                  "distinct ones")
        scale = float(np.abs(values).max(initial=0.0))
        gap = float(np.abs(F - values[:, J]).max(initial=0.0))
        if not gap <= F_RTOL * scale:
            raise UnsafeFileError(f"/{g}/F: differs from training_values at the selected training parameters "
                                  f"(param_indices) by {gap:.3g} (values up to {scale:.3g}); F[l, k] must be "
                                  "training_values[l, param_indices[k]]")
    est = f["estimator"]
    alpha_lb = float(np.asarray(est.attrs["alpha_lb"]).reshape(()))
    alpha = f["estimator/alpha_training"][()].astype(float)
    ref = int(np.asarray(est.attrs["reference"]).reshape(()))
    if not abs(alpha[ref] - 1.0) <= ALPHA_REF_TOL:
        raise UnsafeFileError(f"/estimator/alpha_training: {float(alpha[ref])!r} at the reference training parameter "
                              f"{ref}, expected 1 (lambda_min(X^-1 X) with X the stiffness there)")
    if not (alpha.min() > 0 and alpha_lb <= alpha.min() * (1 + 1e-12)):
        raise UnsafeFileError(f"/estimator: attribute 'alpha_lb' = {alpha_lb!r} must be at most the smallest "
                              f"positive /estimator/alpha_training ({float(alpha.min())!r}): it is a safety factor "
                              "times it")
    sigma = f["basis/singular_values"][()]
    if sigma.size and sigma.min() < 0:
        raise UnsafeFileError(f"/basis/singular_values: {float(sigma.min())!r} is negative; singular values are >= 0")
    G = f["reduced/norm_gram"][()].astype(float)
    gmax = float(np.abs(G).max(initial=0.0))
    spd = gmax > 0 and float(np.abs(G - G.T).max()) <= GRAM_RTOL * gmax
    if spd:
        try:
            np.linalg.cholesky(0.5 * (G + G.T))
        except np.linalg.LinAlgError:
            spd = False
    if not spd:
        raise UnsafeFileError("/reduced/norm_gram: not symmetric positive definite; it is V^T X V of a basis in "
                              "an energy norm")
    dofs = f["dofs/map"][()]
    mapped = dofs[dofs >= 0]
    if len(np.unique(mapped)) != len(mapped):
        raise UnsafeFileError("/dofs/map: two rows map to the same mesh dof; each row is a distinct dof "
                              "(-1 = unknown)")
