"""The largest magnitude a third-party result or load entry may have (:data:`ABSURD`), shared by the adapters.

A finite entry such as 1e308 passes a finiteness check but overflows when the offline stage squares it (POD Gram
matrices, norms): the readers refuse entries above :data:`ABSURD` at once, naming the file and the entry. No
converged run writes such values in any unit system (stresses in Pa reach 1e12, stiffness entries in N/m 1e15).
"""
from __future__ import annotations

import numpy as np

__all__ = ["ABSURD", "beyond"]

#: Entries of larger magnitude are a damaged record or a diverged solve written as a number.
ABSURD = 1e30


def beyond(values, nan_ok: bool = False) -> np.ndarray:
    """Boolean mask of the entries of ``values`` (any shape) that are infinite or above :data:`ABSURD` in magnitude,
    and NaN unless ``nan_ok`` (readers where NaN means "no value" treat it themselves)."""
    v = np.asarray(values, dtype=float)
    bad = ~(np.abs(v) <= ABSURD)
    return bad & ~np.isnan(v) if nan_ok else bad
