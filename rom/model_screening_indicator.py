"""Screening of the model file's attributes that steer its answers: the Dirichlet conditions (:func:`dirichlet_rules`)
and the error indicator's reference norms (:func:`reference_rules`), which a file could otherwise set so that the
indicator trusts any answer. Failures raise :class:`~structrom.rom.h5_screening.UnsafeFileError` naming the
attribute.
"""
from __future__ import annotations

import math

import h5py
import numpy as np

from structrom.rom.h5_checks import _blocks, _scalar, _string
from structrom.rom.h5_screening import Inventory, Limits, UnsafeFileError, echo, strict_json
from structrom.rom.loading import COMPONENT_NAMES

#: A reference norm of the indicator (``/indicator`` attribute ``reference``, calibration ``references``)
#: may be at most this many times the training scale its dual basis implies (:func:`reference_rules`).
REFERENCE_MARGIN = 2.0
#: The keys of a ``dirichlet`` entry: the node set, its fixed components, the prescribed value.
DIRICHLET_KEYS = ("node_set", "components", "value")


def dirichlet_rules(value, node_sets, where: str = "/") -> None:
    """The ``dirichlet`` root attribute (parsed JSON): a list of objects ``{"node_set": name, "components":
    [0-2 or "x"/"y"/"z"...], "value": number}`` (``components`` and ``value`` optional), ``name`` one of
    ``node_sets`` (the mesh's), ``value`` finite. Raises :class:`UnsafeFileError` naming the entry."""
    if not isinstance(value, list):
        raise UnsafeFileError(f"{where}: attribute 'dirichlet' must be a JSON list")
    for i, d in enumerate(value):
        what = f"{where}: attribute 'dirichlet' entry {i}"
        if not isinstance(d, dict):
            raise UnsafeFileError(f"{what} must be an object {{'node_set': name, 'components': [...], 'value': "
                                  f"number}}, got {echo(d)}")
        extra = sorted(set(d) - set(DIRICHLET_KEYS))
        if extra:
            raise UnsafeFileError(f"{what}: unknown key(s) {echo(extra)} (allowed: {', '.join(DIRICHLET_KEYS)})")
        name = d.get("node_set")
        if not isinstance(name, str) or name not in node_sets:
            raise UnsafeFileError(f"{what}: 'node_set' {echo(name)} is not a node set of the mesh (/mesh/node_sets: "
                                  f"{echo(sorted(node_sets))})")
        comps = d.get("components", [0, 1, 2])
        if not isinstance(comps, list) or not all(
                (isinstance(c, int) and not isinstance(c, bool) and c in COMPONENT_NAMES.values())
                or (isinstance(c, str) and c in COMPONENT_NAMES) for c in comps):
            raise UnsafeFileError(f"{what} ({name}): 'components' must be a list of 0, 1, 2 or 'x', 'y', 'z', got "
                                  f"{echo(comps)}")
        v = d.get("value", 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise UnsafeFileError(f"{what} ({name}): 'value' must be a finite number, got {echo(v)}")


def _training_scale(f: h5py.File, path: str, quantity: str, limits: Limits) -> float:
    """``||Psi diag(sigma)||_F`` of the rows ``Psi`` ``(n * c, m)`` at ``path`` of the dual basis of
    ``quantity`` (singular values ``sigma`` ``(m,)``), read by blocks: an upper bound of the Euclidean norm of
    every training value of the quantity at those rows up to the POD truncation (a snapshot is ``Psi diag(
    sigma) v`` with ``||v|| <= 1`` plus the truncated part)."""
    sigma = f[f"dual/{quantity}/singular_values"][()]
    total = 0.0
    for sel, block in _blocks(f[path], limits.block_bytes):
        total += float(np.sum((block * sigma[sel[1]]) ** 2))
    return math.sqrt(total)


def reference_rules(f: h5py.File, inv: Inventory, limits: Limits = Limits()) -> None:
    """The indicator's reference norms against the training scale the dual bases imply (float datasets
    already checked finite).

    ``/indicator`` attribute ``reference`` is the largest training norm of the indicator quantity at the
    reduced points; the Gappy indicator is ``residual / max(||v||, reference)``, so a too large reference
    makes every answer trusted. It must be at most :data:`REFERENCE_MARGIN` x :func:`_training_scale` of
    ``dual/<quantity>/reduced_basis`` (the margin covers the POD truncation; files written by structrom
    have at most 1x, usually 0.2-0.6x); 0 (a purely relative residual) is the conservative extreme. The
    calibration's ``references`` (a JSON object of finite numbers >= 0): ``<q>`` the same bound for every
    dual quantity ``q``; ``<q>_validation`` with ``validation/dual/<q>`` at the validation points;
    ``floor_<q>`` (``ERROR_FLOOR`` x the largest point-weighted L2 training norm, at most the basis's largest
    singular value) at most :data:`REFERENCE_MARGIN` x ``max(sigma_q)``; ``relative_floor`` (a fraction of
    the references) in [0, 1]; ``history_normalization`` and ``equilibrium_floor`` 0 or 1."""
    from structrom.rom.online.indicator import FORCE_FLOOR_KEY, HISTORY_KEY

    quantity = _string(f["indicator"], "quantity", "/indicator")
    scales: dict[str, float] = {}

    def bound(value: float, key: str, where: str, quantity: str, path: str) -> None:
        if key not in scales:
            scales[key] = _training_scale(f, path, quantity, limits)
        if not math.isfinite(scales[key]) or value > REFERENCE_MARGIN * scales[key]:
            raise UnsafeFileError(
                f"{where} = {value!r} is above {REFERENCE_MARGIN:g} x {scales[key]:.6g}, the largest training norm "
                f"the dual basis /dual/{quantity} implies at /{path} (||Psi diag(singular_values)||_F): a too large "
                "reference makes the error indicator trust any answer; write the largest training norm there")

    if "reference" in f["indicator"].attrs:
        ref = _scalar(f["indicator"], "reference", "/indicator", lo=0.0)
        bound(ref, quantity, "/indicator: attribute 'reference'", quantity, f"dual/{quantity}/reduced_basis")
    if "indicator/calibration" not in inv.groups or "references" not in f["indicator/calibration"].attrs:
        return
    where = "/indicator/calibration: attribute 'references'"
    refs = strict_json(f["indicator/calibration"].attrs["references"], where)
    if not isinstance(refs, dict):
        raise UnsafeFileError(f"{where} must be a JSON object of numbers (name: scale)")
    for key, value in refs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UnsafeFileError(f"{where}: {echo(key)} = {echo(value)} must be a finite number >= 0")
        value = float(value)
        if key == "relative_floor" and value > 1.0:
            raise UnsafeFileError(f"{where}: 'relative_floor' = {value!r} must be in [0, 1] (a fraction of the "
                                  "references)")
        if key in (HISTORY_KEY, FORCE_FLOOR_KEY) and value not in (0.0, 1.0):
            raise UnsafeFileError(f"{where}: {key!r} = {value!r} must be 0 or 1")
        if f"dual/{key}" in inv.groups:
            bound(value, key, f"{where}: {key!r}", key, f"dual/{key}/reduced_basis")
        elif key.endswith("_validation") and f"validation/dual/{key[:-11]}" in inv.datasets:
            q = key[:-len("_validation")]
            bound(value, key, f"{where}: {key!r}", q, f"validation/dual/{q}")
        elif key.startswith("floor_") and f"dual/{key[6:]}" in inv.groups:
            top = float(np.max(f[f"dual/{key[6:]}/singular_values"][()], initial=0.0))
            if value > REFERENCE_MARGIN * top:
                raise UnsafeFileError(f"{where}: {key!r} = {value!r} is above {REFERENCE_MARGIN:g} x {top:.6g}, the "
                                      f"largest singular value of /dual/{key[6:]} (the largest training norm)")
