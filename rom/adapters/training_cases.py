"""Pieces shared by the imports of third-party runs (CalculiX decks, Ansys results) into training cases.

* :func:`group_nodes_by_history`: nodes loaded by the same force history in every run form one node set
  (the loading family applies a set's force vector at each of its nodes);
* :func:`training_config`: the HifiConfig of one run (what a snapshot's metadata holds, what the HF solver
  solves for runs given without results);
* :func:`write_training_snapshot`: one run's displacements (and optional integration-point reference
  fields) as a snapshot file (``docs/hdf5_layout.md``) whose metadata holds the run's HifiConfig, as
  :func:`structrom.rom.offline.snapshots.read_training_case` reads it;
* :func:`temperature_envelope_violations`: the nodes whose temperature leaves an import's training envelope.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .calculix_error import CalculixError

__all__ = ["group_nodes_by_history", "temperature_envelope_violations", "training_config", "write_training_snapshot"]


def group_nodes_by_history(histories: list[np.ndarray | None], n_nodes: int) -> list[tuple[np.ndarray, list]]:
    """Group the loaded nodes: ``histories[r]`` ``(n_t_r, n_nodes, 3)`` nodal force vectors of run ``r``
    (None: no force). Returns ``[(nodes, [vectors_r (n_t_r, 3) or None per run])]``, one entry per group of
    nodes whose histories agree in every run (a node loaded in no run belongs to no group)."""
    active = np.zeros(n_nodes, bool)
    for h in histories:
        if h is not None:
            active |= np.any(h != 0.0, axis=(0, 2))
    nodes = np.flatnonzero(active)
    if not len(nodes):
        return []
    # per run (n_t * 3, n_active): the three components of every active node, one column per node
    cols = [np.zeros((0, len(nodes))) if h is None else h[:, nodes, :].transpose(0, 2, 1).reshape(-1, len(nodes))
            for h in histories]
    sig = np.concatenate(cols, axis=0).T
    _, first, inverse = np.unique(sig, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    out = []
    for g in range(len(first)):
        vectors = [None if h is None or not np.any(h[:, nodes[first[g]]] != 0.0) else h[:, nodes[first[g]], :].copy()
                   for h in histories]
        out.append((nodes[inverse == g], vectors))
    return out


def write_training_snapshot(path: Path, mesh, mesh_file: Path, disc, *, materials: list, boundary: list[dict],
                            loading, displacement: np.ndarray, temperature: np.ndarray, units: dict | None,
                            solver: dict, points: dict | None = None) -> Path:
    """Write one imported run: ``displacement`` ``(n_inc, n_nodes, 3)`` and ``temperature`` ``(n_inc,
    n_nodes)`` at ``loading.times[1:]``, optional integration-point ``points`` fields ``(n_inc, n_points[,
    6])``; metadata: the HifiConfig (mesh file, ``materials`` ``[(element set, law config)]``, ``boundary``,
    loading) and ``solver`` (where the run came from). Atomic (the snapshot writer's partial file)."""
    from ..hifi.output import SnapshotWriter

    path = Path(path).resolve()
    points = points or {}
    cfg = training_config(path, mesh_file, materials=materials, boundary=boundary, loading=loading, units=units)
    metadata = {"config": cfg.model_dump(mode="json"), "n_ranks": 1, "units": cfg.units.model_dump(), "solver": solver}
    writer = SnapshotWriter(path, mesh, metadata, disc.point_elements, disc.point_weights, disc.point_coordinates,
                            point_fields=bool(points), xdmf=False)
    ok = False
    try:
        for k, tk in enumerate(loading.times[1:]):
            writer.append(float(tk), 0, 0.0, 0, {"displacement": displacement[k], "temperature": temperature[k]},
                          {q: v[k] for q, v in points.items()})
        ok = True
    finally:
        writer.close(ok)
    return path


def training_config(path: Path, mesh_file: Path, *, materials: list, boundary: list[dict], loading,
                    units: dict | None, solver: dict | None = None):
    """The HifiConfig of one imported run whose snapshot file is ``path`` (``.h5``): mesh file, ``materials``
    ``[(element set, law config)]``, ``boundary``, ``loading`` (a nodal temperature is saved beside ``path``
    as ``<run>.temperature.npy``), ``solver``: the ``[solver]`` table (default: the HF solver's)."""
    from ..hifi.config import HifiConfig
    from ..hifi_protocol import loading_to_config

    path = Path(path).resolve()
    return HifiConfig.model_validate({
        "units": units or {}, "mesh": {"file": str(Path(mesh_file).resolve())},
        "material": [{"element_set": e, "law": law} for e, law in materials],
        "boundary": boundary, "loading": loading_to_config(loading, path.with_suffix(".temperature.npy")),
        "solver": solver or {}, "output": {"file": str(path), "xdmf": False}})


def imported_offline_config(plastic: bool) -> dict:
    """The ``offline.toml`` written beside imported training cases (``train/*.h5``, model ``model.h5``):
    moderate POD, Gappy and cubature tolerances; the indicator on p for plastic laws, on stress otherwise."""
    return {"snapshots": {"files": ["train/*.h5"]}, "pod": {"tolerance": 1e-5, "method": "gram"},
            "dual": {"quantities": ["cumulated_plastic_strain", "stress"] if plastic else ["stress"],
                     "tolerance": 1e-5},
            "ecm": {"tolerance": 1e-4},
            "indicator": {"quantity": "cumulated_plastic_strain" if plastic else "stress"},
            "output": {"file": "model.h5"}}


def temperature_envelope_violations(family: dict | str | os.PathLike, temperatures: np.ndarray,
                                    slack: float = 0.0) -> list[str]:
    """Messages for nodes whose temperature ``temperatures`` ``(n_times, n_nodes)`` leaves the training
    envelope (``family.npz`` of an import, or its loaded arrays ``{"min": (n,), "max": (n,)}``) by more
    than ``slack`` (temperature units); empty when inside."""
    if not isinstance(family, dict):
        with np.load(family) as z:
            family = {"min": z["temperature_min"], "max": z["temperature_max"]}
    lo, hi = np.asarray(family["min"]), np.asarray(family["max"])
    t = np.atleast_2d(np.asarray(temperatures, float))
    if t.shape[1] != len(lo):
        raise CalculixError(f"temperatures have {t.shape[1]} nodes, the training envelope {len(lo)}")
    below, above = t.min(0) < lo - slack, t.max(0) > hi + slack
    out = []
    for mask, what, ref, val in ((below, "below", lo, t.min(0)), (above, "above", hi, t.max(0))):
        if mask.any():
            i = int(np.argmax(np.abs(val - ref) * mask))
            out.append(f"temperature {what} the training envelope at {int(mask.sum())} nodes (worst node {i}: "
                       f"{val[i]:g} vs {ref[i]:g})")
    return out
