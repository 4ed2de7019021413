"""Checks of a screened HDF5 file's attributes and datasets, shared by the model layouts' screenings
(:mod:`structrom.rom.model_screening`, :mod:`structrom.rom.separated_screening`,
:mod:`structrom.rom.dictionary_screening`): scalar and string attributes (:func:`_scalar`, :func:`_string`, the
root header :func:`header`), datasets read by blocks of whole chunks (:func:`_blocks`: finite floats of sane
magnitude :func:`_finite`, quadrature weights within the mesh's volume :func:`volume_weights`, index arrays within
an extent :func:`_index`) and shapes (:class:`ShapeChecker`: never a 0-d dataset where an array is expected,
lengths bounded before anything is read). Failures raise
:class:`~structrom.rom.h5_screening.UnsafeFileError` naming the object.
"""
from __future__ import annotations

import math

import h5py
import numpy as np

from structrom.rom.adapters.magnitudes import ABSURD, beyond
from structrom.rom.h5_screening import Limits, UnsafeFileError, check_attribute_size, echo


def _scalar(obj, name: str, where: str, *, lo: float = -math.inf, hi: float = math.inf, lo_open=False,
            integer: bool = False) -> float:
    if name not in obj.attrs:
        raise UnsafeFileError(f"{where}: missing attribute {name!r}")
    v = np.asarray(obj.attrs[name])
    if v.size != 1 or v.dtype.kind not in ("iu" if integer else "iuf"):
        raise UnsafeFileError(f"{where}: attribute {name!r} must be one {'integer' if integer else 'number'}, "
                              f"got {echo(v)}")
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
        raise UnsafeFileError(f"{where}: attribute {name!r} must be a string, got {echo(v)}")
    return v


def header(f: h5py.Group, limits: Limits | None = None) -> tuple[str | None, int | None, str | None]:
    """``(format, schema_version, kind)`` root attributes of a model file, each None when absent, read before
    any screening: each at most ``limits.max_attribute_bytes`` (the default limits when None), ``format`` and
    ``kind`` strings, ``schema_version`` one integer in [0, 2^31]; otherwise :class:`UnsafeFileError` naming
    the attribute."""
    from structrom.rom import h5_screening  # (its DEFAULT_LIMITS may be replaced after import)

    limits = limits or h5_screening.DEFAULT_LIMITS
    out = []
    for name in ("format", "schema_version", "kind"):
        if name not in f.attrs:
            out.append(None)
            continue
        check_attribute_size(f, name, f.name.lstrip("/"), limits)
        if name == "schema_version":
            out.append(int(_scalar(f, name, f.name, lo=0, hi=2**31, integer=True)))
        else:
            out.append(_string(f, name, f.name))
    return out[0], out[1], out[2]


def _blocks(d: h5py.Dataset, block_bytes: int):
    """``(selection, values)`` of dataset ``d`` in blocks of at most ``block_bytes`` bytes, each chunk of a
    chunked dataset decompressed once: row blocks of whole chunk rows (one band of chunks when a band is larger),
    chunk by chunk when one band of chunks spanning all columns would be larger. A 0-d dataset is one block
    (selection ``()``)."""
    if d.ndim == 0:
        yield (), d[()]
        return
    if d.shape[0] == 0:
        return
    row = d.dtype.itemsize * math.prod(d.shape[1:])
    rows = max(1, block_bytes // max(row, 1))
    chunks = d.chunks
    if chunks is not None:
        if chunks[0] * row > block_bytes and tuple(chunks[1:]) != tuple(d.shape[1:]):
            for sel in d.iter_chunks():
                yield sel, d[sel]
            return
        rows = max(chunks[0], rows // chunks[0] * chunks[0])
    for start in range(0, d.shape[0], rows):
        sel = (slice(start, min(start + rows, d.shape[0])),) + tuple(slice(0, n) for n in d.shape[1:])
        yield sel, d[sel]


def _finite(f: h5py.File, path: str, limits: Limits) -> None:
    """Refuse a float dataset ``path`` holding NaN, infinity or a finite entry above
    :data:`~structrom.rom.adapters.magnitudes.ABSURD` in magnitude (no model quantity reaches it: modes, weights,
    integrators, bases and factors that large overflow the online solve, which then diverges), naming the first
    such entry and its value."""
    d = f[path]
    if d.dtype.kind != "f" or d.size == 0:
        return
    for sel, block in _blocks(d, limits.block_bytes):
        bad = beyond(block)
        if not bad.any():
            continue
        where = np.unravel_index(int(np.flatnonzero(bad)[0]), np.shape(block))
        at = tuple(int(i) + (s.start if isinstance(s, slice) else 0) for i, s in zip(where, sel))
        value = float(np.asarray(block)[where])
        entry = f"entry {at if len(at) > 1 else at[0]}" if at else "the value"
        if not np.isfinite(value):
            raise UnsafeFileError(f"/{path}: contains non-finite values (NaN or infinity; {entry} = {value!r}); the "
                                  "file is damaged or the offline stage diverged: rebuild the model")
        raise UnsafeFileError(f"/{path}: {entry} = {value:.6g}, above {ABSURD:g} in magnitude (no model quantity "
                              "reaches it; the online solve would overflow); the file is damaged or the offline "
                              "stage diverged: rebuild the model")


#: A quadrature weight is a volume (FE weight times Jacobian determinant): the empirical cubature's non-negative
#: weights sum to the mesh's volume when they integrate the constant, so each is at most the volume of the mesh's
#: bounding box; the margin leaves room for rules fitted without the constant.
WEIGHT_MARGIN = 1e3


def volume_weights(f: h5py.File, paths, points: str, limits: Limits) -> None:
    """Refuse quadrature weights (the float datasets ``paths`` present in ``f``, finite already) that are negative
    or above :data:`WEIGHT_MARGIN` times the volume of the bounding box of the mesh points ``points``
    ``(n_nodes, 3)`` (read by blocks), naming the dataset, the entry and its value."""
    paths = [p for p in paths if p in f and f[p].size]
    if not paths:
        return
    lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
    for _, block in _blocks(f[points], limits.block_bytes):
        if np.size(block):
            lo, hi = np.minimum(lo, block.min(axis=0)), np.maximum(hi, block.max(axis=0))
    box = float(np.prod(hi - lo)) if np.all(hi >= lo) else 0.0
    bound = WEIGHT_MARGIN * box
    for p in paths:
        for sel, block in _blocks(f[p], limits.block_bytes):
            bad = np.flatnonzero((block < 0) | (block > bound))
            if bad.size:
                k = int(bad[0])
                at, value = k + (sel[0].start if sel else 0), float(block[k])
                raise UnsafeFileError(
                    f"/{p}: entry {at} = {value:.6g}; a quadrature weight is a volume, in [0, {bound:.6g}] "
                    f"({WEIGHT_MARGIN:g} times the {box:.6g} of the mesh's bounding box); the file is damaged or "
                    "the offline stage diverged: rebuild the model")


def index_range(f: h5py.File, path: str, column: int | None = None,
                limits: Limits = Limits()) -> tuple[int, int] | None:
    """``(min, max)`` of the integer dataset ``path`` (column ``column`` of a 2-D one), read by blocks
    (:func:`_blocks`); None when it is empty. :class:`UnsafeFileError` for a non-integer type."""
    d = f[path]
    if d.dtype.kind not in "iu":
        raise UnsafeFileError(f"/{path}: index array of type {d.dtype}; integers expected")
    lo = hi = None
    for sel, block in _blocks(d, limits.block_bytes):
        if column is not None:
            cols = sel[1] if len(sel) > 1 else slice(0, 0)
            if not cols.start <= column < cols.stop:
                continue
            block = block[:, column - cols.start]
        if block.size:
            bmin, bmax = int(block.min()), int(block.max())
            lo, hi = (bmin, bmax) if lo is None else (min(lo, bmin), max(hi, bmax))
    return None if lo is None else (lo, hi)


def _index(f: h5py.File, path: str, extent: int, what: str, column: int | None = None,
           limits: Limits = Limits()) -> None:
    """Check the integer dataset ``path`` (column ``column`` of a 2-D one) within ``[0, extent)``
    (:func:`index_range`)."""
    span = index_range(f, path, column, limits)
    if span is not None and (span[0] < 0 or span[1] >= extent):
        raise UnsafeFileError(f"/{path}: indices in [{span[0]}, {span[1]}] outside [0, {extent}) ({what})")


class ShapeChecker:
    """The screened shapes of a file's datasets (``ds``: path -> (shape, dtype)); ``where`` names the layout
    in messages. :meth:`shape` (missing: :class:`UnsafeFileError`), :meth:`expect` a pattern, :meth:`length`
    the first extent of an array."""

    def __init__(self, ds: dict, where: str = "a structrom model") -> None:
        self.ds, self.where = ds, where

    def shape(self, path: str) -> tuple[int, ...]:
        if path not in self.ds:
            raise UnsafeFileError(f"/{path}: missing; the file is truncated or not {self.where}")
        return self.ds[path][0]

    def expect(self, path: str, expected: tuple) -> None:
        """Refuse a shape other than ``expected`` (``None`` = any extent)."""
        got = self.shape(path)
        if len(got) != len(expected) or any(e is not None and g != e for g, e in zip(got, expected)):
            want = tuple("any" if e is None else e for e in expected)
            raise UnsafeFileError(f"/{path}: shape {got}, expected {want}")

    def length(self, path: str, at_most: int | None = None, what: str = "") -> int:
        """The first extent of the array at ``path``; refuses a 0-d (scalar) dataset and, with ``at_most``,
        more than ``at_most`` entries (``what``: what bounds them), before anything reads it."""
        got = self.shape(path)
        if len(got) == 0:
            raise UnsafeFileError(f"/{path}: a scalar (0-d dataset) where an array is expected; write it as an "
                                  "array (shape (n,) or (n, ...))")
        if at_most is not None and got[0] > at_most:
            raise UnsafeFileError(f"/{path}: {got[0]} entries, more than {at_most} ({what})")
        return got[0]


def shape_checkers(ds: dict, where: str = "a structrom model") -> ShapeChecker:
    """A :class:`ShapeChecker` of the screened datasets ``ds``."""
    return ShapeChecker(ds, where)
