"""A new deck of an imported family -> the loading the reduced model answers (no ccx run needed).

:func:`loading_from_deck` reads a deck with :func:`~.calculix_deck.read_deck`, checks that it has the
import's mesh (``<model dir>/mesh.inp``) and constrained dofs, and expresses its loads on the model's
surfaces: the pressure on every ``PRESSURE_<k>`` surface must be one history over the surface's faces
(the import grouped the training faces that way), and no other face may be loaded; likewise the
``*CLOAD`` forces on the ``FORCE_<k>`` node sets (one force vector history at each node of a set). Times: the ends of the
deck's increments (``*STATIC``/``*VISCO`` initial increment; ccx's fixed increments with ``DIRECT``),
mapped as the import maps result times (:meth:`~.calculix_deck.Deck.model_times`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .calculix import CalculixError, read_inp
from .calculix_deck import Deck, not_supported, read_deck

__all__ = ["deck_times", "loading_from_deck"]


def deck_times(deck: Deck) -> np.ndarray:
    """``[0, increment ends...]`` in ccx total time: each step cut into increments of its initial increment
    (first number of the procedure's data line; the whole period when absent)."""
    times = [deck.steps[0].start]
    for step in deck.steps:
        period = step.end - step.start
        rows = step.procedure.rows() if step.procedure is not None else []
        dt = float(rows[0][0][0]) if rows and rows[0][0] and rows[0][0][0] else period
        n = max(1, int(np.ceil(period / dt - 1e-9))) if dt > 0 else 1
        times += np.linspace(step.start, step.end, n + 1)[1:].tolist()
    return np.array(times)


def _forces(deck: Deck, deck_path: Path, mesh, t: np.ndarray, model_t: np.ndarray) -> dict:
    """The deck's ``*CLOAD`` forces on the model's ``FORCE_<k>`` node sets: one vector history per set (the
    same at each of its nodes), no force elsewhere."""
    from ..loading import Amplitude, VectorAmplitude

    if not deck.cload.entries:
        return {}
    hist = deck.history("cload", t).reshape(len(t), mesh.n_nodes, 3)
    covered = np.zeros(mesh.n_nodes, bool)
    forces = {}
    for name, nodes in mesh.node_sets.items():
        if not name.startswith("FORCE_"):
            continue
        values = hist[:, nodes, :]
        if np.any(values != values[:, :1, :]):
            raise CalculixError(f"{deck_path}: the *CLOAD forces differ between the nodes of the model's node set "
                                f"{name}: the model was trained with one force history at each of its nodes")
        covered[nodes] = True
        if np.any(values != 0.0):
            forces[name] = VectorAmplitude(tuple(Amplitude(model_t, values[:, 0, c].copy()) for c in range(3)))
    stray = ~covered & np.any(hist != 0.0, axis=(0, 2))
    if stray.any():
        raise CalculixError(f"{deck_path}: *CLOAD forces on {int(stray.sum())} nodes (first id "
                            f"{int(deck.ids.node_ids[np.argmax(stray)])}) that are in none of the model's force node "
                            "sets FORCE_*: the model has no reduced load for them")
    return forces


def loading_from_deck(model_dir: str | os.PathLike, deck_path: str | os.PathLike):
    """The :class:`~structrom.rom.loading.Loading` of ``deck_path`` on the mesh of the import in ``model_dir``
    (module docstring). Raises :class:`CalculixError` naming the deck and what does not fit the model."""
    from ..loading import Amplitude, Centrifugal, Loading, NodalTemperature, UniformTemperature

    model_dir, deck_path = Path(model_dir), Path(deck_path)
    mesh = read_inp(model_dir / "mesh.inp")[0]
    deck = read_deck(deck_path)
    if deck.mesh.points.shape != mesh.points.shape or not np.array_equal(deck.mesh.points, mesh.points) or any(
            not np.array_equal(a.connectivity, b.connectivity) for a, b in zip(deck.mesh.blocks, mesh.blocks)):
        raise CalculixError(f"{deck_path}: its mesh differs from the model's ({model_dir / 'mesh.inp'})")
    fixed = sorted(3 * n + "XYZ".index(c) for name, nodes in mesh.node_sets.items() if name.startswith("FIXED_")
                   for c in name[len("FIXED_"):] for n in nodes.tolist())
    if sorted(deck.boundary.keys) != fixed:
        raise CalculixError(f"{deck_path}: its *BOUNDARY constrains other dofs than the model's (node sets FIXED_*)")
    t = deck_times(deck)
    model_t = deck.model_times(t)
    hist = deck.history("pressure", t)
    pressures, covered = {}, np.zeros(hist.shape[1], bool)
    for name, faces in mesh.surface_sets.items():
        if not name.startswith("PRESSURE_"):
            continue
        cols = [deck.pressure.keys.get((int(e), int(f))) for e, f in faces.tolist()]
        values = np.column_stack([hist[:, j] if j is not None else np.zeros(len(t)) for j in cols])
        if np.any(values != values[:, :1]):
            raise CalculixError(f"{deck_path}: the pressure differs between the faces of the model's surface {name}: "
                                "the model was trained with one pressure history on all of them")
        covered[[j for j in cols if j is not None]] = True
        pressures[name] = Amplitude(model_t, values[:, 0].copy())
    stray = ~covered & np.any(hist != 0.0, axis=0)
    if stray.any():
        raise CalculixError(f"{deck_path}: {int(stray.sum())} loaded faces are on none of the model's pressure "
                            "surfaces: the model has no reduced load for them")
    forces = _forces(deck, deck_path, mesh, t, model_t)
    if deck.gravity.entries and np.any(deck.history("gravity", t) != 0.0):
        raise not_supported(deck.first_card["DLOAD"], "GRAV in a deck answered by a reduced model")
    centrifugal = None
    if deck.centrifugal.entries:
        w2 = deck.history("centrifugal", t)[:, 0]
        if np.any(w2 != 0):
            ax = deck.centrifugal_axis
            centrifugal = Centrifugal(Amplitude(model_t, np.sqrt(np.maximum(w2, 0.0))), tuple(ax[:3]), tuple(ax[3:6]))
    temp = deck.history("temperature", t)
    temperature = (UniformTemperature(0.0, Amplitude(model_t, temp[:, 0].copy())) if np.all(temp == temp[:, :1])
                   else NodalTemperature(model_t, temp))
    return Loading(model_t, temperature, pressures, forces=forces, centrifugal=centrifugal)
