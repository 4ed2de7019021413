"""Recalibration of the error indicator after the training set of a model has grown.

One function, :func:`recalibrate_indicator`, called by enrichment and greedy training once the new
model is assembled: the place where an indicator with its own calibration plugs in. Today's indicator
(Gappy residual of ``data.indicator_quantity`` at the reduced points over ``max(||v||, reference)``)
has one calibrated number, the reference norm: the largest training norm of the quantity at the
reduced points. The old training snapshots are not kept, so the new reference is the larger of the
old one and the new snapshots' largest norm at the new reduced points (the new point set contains the
old one, so the old snapshots' norms there are at least the old reference).
"""
from __future__ import annotations

import numpy as np

from structrom.rom.model_file import ReducedModelData


def recalibrate_indicator(data: ReducedModelData, new_values: np.ndarray) -> dict:
    """Update ``data``'s indicator calibration in place from the new training snapshots.

    ``new_values``: ``(n_snapshots, n_rp * c)`` the indicator quantity of the new snapshots at the
    model's reduced points (point-major, ``c`` components). Returns what changed (for the provenance)."""
    v = np.asarray(new_values, dtype=float).reshape(len(new_values), -1)
    old = float(data.indicator_reference)
    new = float(np.linalg.norm(v, axis=1).max(initial=0.0))
    data.indicator_reference = max(old, new)
    return {"reference": data.indicator_reference, "previous_reference": old}
