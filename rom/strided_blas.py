"""Triangular solves on the leading ``k x k`` block of a larger Fortran-ordered buffer, without copying it.

:class:`structrom.rom.column_qr.ColumnQR` keeps ``R`` in a preallocated buffer (capacity doubled on demand), so
``R[:k, :k]`` is a strided view; :func:`scipy.linalg.solve_triangular` would copy it (``8 k^2`` bytes read and
written, more than the solve itself reads) before every solve. BLAS's ``dtrsv`` takes the leading dimension as an
argument: it is called here through the function pointer that SciPy exports for Cython
(:mod:`scipy.linalg.cython_blas`), i.e. the very BLAS that SciPy links. Where that pointer is not available the
solve falls back to :func:`scipy.linalg.solve_triangular` on a copy (same results).
"""
from __future__ import annotations

import ctypes

import numpy as np
import scipy.linalg as sla


def _load_dtrsv():
    """``dtrsv(uplo, trans, diag, n, a, lda, x, incx)`` of SciPy's BLAS as a ctypes function (None if unavailable)."""
    try:
        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__["dtrsv"]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        pointer = get_pointer(capsule, get_name(capsule))
        int_p = ctypes.POINTER(ctypes.c_int)
        prototype = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, int_p, ctypes.c_void_p,
                                     int_p, ctypes.c_void_p, int_p)
        return prototype(pointer)
    except (ImportError, KeyError, AttributeError, TypeError, ValueError):  # pragma: no cover (other SciPy builds)
        return None


_DTRSV = _load_dtrsv()


def solve_upper(R: np.ndarray, k: int, rhs: np.ndarray, trans: bool = False) -> np.ndarray:
    """``x = R[:k, :k]^{-1} rhs`` (``trans``: ``R[:k, :k]^{-T} rhs``) for the upper-triangular leading block of the
    Fortran-ordered float64 buffer ``R`` ``(ld, capacity)``, ``ld >= k``; ``rhs`` ``(k,)``. Returns a new array;
    neither ``R`` nor ``rhs`` is modified. Bitwise the result of BLAS ``dtrsv`` on a copy of the block."""
    x = np.array(rhs, dtype=np.float64, copy=True)
    if k == 0:
        return x
    if R.dtype != np.float64 or not R.flags.f_contiguous or R.ndim != 2 or R.shape[0] < k or R.shape[1] < k:
        raise ValueError(f"R must be a Fortran-ordered float64 buffer of at least {k} x {k}, got {R.dtype} "
                         f"{R.shape}")
    if _DTRSV is None:  # pragma: no cover (other SciPy builds)
        return sla.solve_triangular(R[:k, :k], x, trans="T" if trans else "N", check_finite=False)
    n, lda, inc = ctypes.c_int(k), ctypes.c_int(R.shape[0]), ctypes.c_int(1)
    _DTRSV(b"U", b"T" if trans else b"N", b"N", ctypes.byref(n), R.ctypes.data, ctypes.byref(lda), x.ctypes.data,
           ctypes.byref(inc))
    return x
