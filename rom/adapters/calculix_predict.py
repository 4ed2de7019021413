"""A new deck of a model's family -> the loading the reduced model answers (no ccx run needed), and the
answer written for the user's post-processor.

:func:`loading_from_deck` reads a deck with :func:`~.calculix_deck.read_deck`, checks that it has the
model's mesh and constrained dofs (nonzero ``*BOUNDARY`` values only on the model's prescribed sets, the
sets of its lifting: they become ``loading.displacement``, one history per set) and expresses its loads on the model's loaded sets (a :class:`DeckTarget`): the pressure on every
surface of the model must be one history over the surface's faces (the import grouped the training faces
that way, ``PRESSURE_<k>``), and no other face may be loaded; likewise the ``*CLOAD`` forces on the
model's force node sets (``FORCE_<k>``: one force vector history at each node of a set). Times: the ends
of the deck's increments (``*STATIC``/``*VISCO`` initial increment; ccx's fixed increments with
``DIRECT``), mapped as the import maps result times (:meth:`~.calculix_deck.Deck.model_times`).

:func:`screen_deck_text` is what a service runs on an uploaded deck before parsing it: size and line
bounds, text only, no ``*INCLUDE`` (nothing outside the upload is read). :func:`predict_deck` solves a
deck with a reduced model and writes ``.frd`` (:mod:`.frd_writer`) and VTU files.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fem.mesh import Mesh
from .calculix_error import CalculixError
from .inp import read_inp
from .calculix_cards import DeckLimits, card_parameters, fortran_float, keyword_of
from .calculix_deck import Deck, not_supported, read_deck

__all__ = ["DeckTarget", "TooManySteps", "deck_times", "loading_from_deck", "deck_loading", "screen_deck_text",
           "predict_deck", "write_prediction"]

#: Largest number of increments a deck may ask for (ccx's fixed increments; a tiny initial increment would
#: otherwise make a huge time grid).
MAX_DECK_INCREMENTS = 10_000


@dataclass
class DeckTarget:
    """What a deck is mapped onto: the model's ``mesh`` (with its sets), its constrained dofs ``fixed``
    (sorted ``3 node + c``), the surfaces with a reduced pressure load and the node sets with a reduced
    force."""

    mesh: Mesh
    fixed: list[int]
    pressure_surfaces: list[str]
    force_sets: list[str]
    #: give temperatures as nodal fields even when uniform (a model trained on nodal temperature fields)
    nodal_temperature: bool = False
    #: prescribed sets of the model's lifting (keys of ``loading.displacement``) -> (node set, components)
    prescribed: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)

    @classmethod
    def from_import(cls, directory: str | os.PathLike) -> "DeckTarget":
        """The output directory of ``structrom import calculix`` (``mesh.inp`` with its ``FIXED_*``,
        ``PRESCRIBED_<k>_<C>``, ``PRESSURE_*`` and ``FORCE_*`` sets)."""
        mesh = read_inp(Path(directory) / "mesh.inp")[0]
        fixed = sorted(3 * n + "XYZ".index(c) for name, nodes in mesh.node_sets.items() if name.startswith("FIXED_")
                       for c in name[len("FIXED_"):] for n in nodes.tolist())
        prescribed = {name: (name, ("XYZ".index(name[-1]),)) for name in mesh.node_sets
                      if re.fullmatch(r"PRESCRIBED_\d+_[XYZ]", name)}
        fixed = sorted(set(fixed) | {3 * n + c[0] for s, c in prescribed.values() for n in mesh.node_sets[s].tolist()})
        return cls(mesh, fixed, [s for s in mesh.surface_sets if s.startswith("PRESSURE_")],
                   [s for s in mesh.node_sets if s.startswith("FORCE_")], prescribed=prescribed)

    @classmethod
    def from_model(cls, model, mesh: Mesh | None = None) -> "DeckTarget":
        """A reduced model (:class:`~structrom.rom.online.ReducedModel` or its file): its mesh, Dirichlet
        sets and reduced pressure/force loads."""
        from .. import model_file
        from ..online import ReducedModel

        if not isinstance(model, ReducedModel):
            model = ReducedModel.load(model)
        if mesh is None:
            mesh = model_file.load(model.path, mesh=True, group=model.group).mesh
        fixed = set()
        for d in model.data.dirichlet:
            nodes = mesh.node_sets.get(d.get("node_set"), np.zeros(0, np.int64))
            for c in d.get("components", (0, 1, 2)):
                c = "xyz".index(c) if isinstance(c, str) else int(c)
                fixed.update((3 * nodes + c).tolist())
        prescribed = {} if model.data.lifting is None else dict(model.data.lifting.sets)
        for node_set, comps in prescribed.values():
            nodes = mesh.node_sets.get(node_set, np.zeros(0, np.int64))
            fixed.update((3 * nodes[:, None] + np.asarray(comps, np.int64)).ravel().tolist())
        nodal = (model.loading_schema.get("temperature") or {}).get("type") == "nodal"
        return cls(mesh, sorted(fixed), sorted(model.data.pressure), sorted(model.data.force), nodal, prescribed)


def deck_times(deck: Deck, max_increments: int = MAX_DECK_INCREMENTS, *, linear: bool = False) -> np.ndarray:
    """``[0, increment ends...]`` in ccx total time: each step cut into increments of its initial increment
    (first number of the procedure's data line; the whole period when absent), the last one the rest of the period
    as ccx's fixed (``DIRECT``) increments are; ``linear``: each step in one increment, as ccx solves a static
    step of a linear problem (elastic materials, small strains) whatever its increment. Raises
    :class:`CalculixError` above ``max_increments`` increments in all."""
    times = [deck.steps[0].start]
    for step in deck.steps:
        period = step.end - step.start
        if linear:
            times.append(step.end)
            continue
        rows = step.procedure.rows() if step.procedure is not None else []
        try:
            dt = fortran_float(rows[0][0][0]) if rows and rows[0][0] and rows[0][0][0] else period
        except ValueError:
            raise CalculixError(f"{step.procedure.where}: initial time increment {rows[0][0][0]!r} is not a "
                                "number") from None
        if not np.isfinite(dt):
            raise CalculixError(f"{step.procedure.where}: initial time increment {rows[0][0][0]!r} is not finite; "
                                "give a positive number (or leave it out: the step in one increment)")
        if not dt > 0:  # (0 or negative: the whole period in one increment)
            dt = period
        n = int(np.ceil(min(period / dt, 1e12) - 1e-9))
        if len(times) - 1 + n > max_increments:
            raise CalculixError(f"{step.procedure.where if step.procedure is not None else deck.path}: the deck asks "
                                f"for more than {max_increments} increments (step {step.number}: period {period:g}, "
                                f"initial increment {dt:g}); use larger increments")
        if abs(n * dt - period) <= 1e-9 * period:
            times += np.linspace(step.start, step.end, max(n, 1) + 1)[1:].tolist()
        else:  # (a period that is no multiple of the increment: ccx's last increment is the rest)
            times += (step.start + np.minimum(np.arange(1, n + 1) * dt, period)).tolist()[:-1] + [step.end]
    return np.array(times)


def _forces(deck: Deck, deck_path: Path, target: DeckTarget, t: np.ndarray, model_t: np.ndarray) -> dict:
    """The deck's ``*CLOAD`` forces on the target's force node sets: one vector history per set (the same
    at each of its nodes), no force elsewhere."""
    from ..loading import Amplitude, VectorAmplitude

    mesh = target.mesh
    if not deck.cload.entries:
        return {}
    hist = deck.history("cload", t).reshape(len(t), mesh.n_nodes, 3)
    covered = np.zeros(mesh.n_nodes, bool)
    forces = {}
    for name in target.force_sets:
        nodes = mesh.node_sets[name]
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
                            f"sets {target.force_sets}: the model has no reduced load for them")
    return forces


def _displacements(deck: Deck, deck_path: Path, target: DeckTarget, t: np.ndarray, model_t: np.ndarray) -> tuple:
    """The deck's nonzero ``*BOUNDARY`` values as imposed displacements on the target's prescribed sets (one
    history for all the dofs of a set: the lifting has one amplitude per set); refuses, by node id and
    component, a nonzero value on a dof of no prescribed set, and, by set name, a set whose dofs move
    differently."""
    from ..loading import Amplitude, ImposedDisplacement

    if not deck.boundary.entries:
        return ()
    hist = deck.history("boundary", t)  # (n_t, 3 n_nodes)
    covered = np.zeros(hist.shape[1], bool)
    out = []
    for name, (node_set, comps) in sorted(target.prescribed.items()):
        nodes = target.mesh.node_sets.get(node_set, np.zeros(0, np.int64))
        dofs = (3 * nodes[:, None] + np.asarray(comps, np.int64)).ravel()
        if not len(dofs):
            continue
        values = hist[:, dofs]
        if np.any(values != values[:, :1]):
            raise CalculixError(f"{deck_path}: the *BOUNDARY values differ between the dofs of the model's prescribed "
                                f"set {name} (components {''.join('xyz'[c] for c in comps)}): the model imposes one "
                                "displacement history on all of them")
        covered[dofs] = True
        if np.any(values != 0.0):
            out.append(ImposedDisplacement(name, tuple(comps), 1.0, Amplitude(model_t, values[:, 0].copy())))
    stray = ~covered & np.any(hist != 0.0, axis=0)
    if stray.any():
        dof = int(np.argmax(stray))
        sets = {name: "".join("xyz"[c] for c in comps) for name, (_, comps) in sorted(target.prescribed.items())}
        raise not_supported(deck.first_card["BOUNDARY"], f"non-zero *BOUNDARY values on {int(stray.sum())} dofs (first: "
                            f"node {int(deck.ids.node_ids[dof // 3])}, component {'xyz'[dof % 3]}) outside the model's "
                            f"prescribed sets {sets or '(none: this model has zero Dirichlet conditions only)'}: a "
                            "reduced model imposes displacements only where it was trained to (its lifting)")
    return tuple(out)


def _pressures(deck: Deck, deck_path: Path, target: DeckTarget, t: np.ndarray, model_t: np.ndarray) -> dict:
    from ..loading import Amplitude

    hist = deck.history("pressure", t)
    pressures, covered = {}, np.zeros(hist.shape[1], bool)
    for name in target.pressure_surfaces:
        faces = target.mesh.surface_sets[name]
        cols = [deck.pressure.keys.get((int(e), int(f))) for e, f in faces.tolist()]
        values = np.column_stack([hist[:, j] if j is not None else np.zeros(len(t)) for j in cols])
        if np.any(values != values[:, :1]):
            raise CalculixError(f"{deck_path}: the pressure differs between the faces of the model's surface {name}: "
                                "the model was trained with one pressure history on all of them")
        covered[[j for j in cols if j is not None]] = True
        if np.any(values != 0.0):
            pressures[name] = Amplitude(model_t, values[:, 0].copy())
    stray = ~covered & np.any(hist != 0.0, axis=0)
    if stray.any():
        raise CalculixError(f"{deck_path}: {int(stray.sum())} loaded faces are on none of the model's pressure "
                            f"surfaces {target.pressure_surfaces}: the model has no reduced load for them")
    return pressures


def loading_from_deck(model: str | os.PathLike | DeckTarget, deck_path: str | os.PathLike,
                      max_increments: int = MAX_DECK_INCREMENTS):
    """The :class:`~structrom.rom.loading.Loading` of ``deck_path`` on ``model``: an import directory, a
    reduced model file or a :class:`DeckTarget` (module docstring). Raises :class:`CalculixError` naming the
    deck and what does not fit the model."""
    return deck_loading(model, deck_path, max_increments)[0]


def deck_loading(model, deck_path, max_increments: int, *, max_lines: int | None = None,
                 max_bytes: int | None = None):
    """:func:`loading_from_deck` and the parsed :class:`Deck` (its node and element ids for the output). A
    part/assembly deck is refused before its instances are expanded past the model's nodes and elements, or past
    ``max_lines`` data lines or ``max_bytes`` characters (an upload's limits, :class:`~.calculix_cards.DeckTooLarge`)."""
    from ..loading import Amplitude, Centrifugal, Loading, NodalTemperature, UniformTemperature

    deck_path = Path(deck_path)
    if isinstance(model, DeckTarget):
        target = model
    elif Path(model).is_dir():
        target = DeckTarget.from_import(model)
    else:
        target = DeckTarget.from_model(model)
    mesh = target.mesh
    deck = read_deck(deck_path, DeckLimits(max_lines, max_bytes, mesh.n_nodes, mesh.n_elements))
    if deck.mesh.points.shape != mesh.points.shape or not np.array_equal(deck.mesh.points, mesh.points) or \
            len(deck.mesh.blocks) != len(mesh.blocks) or any(
            not np.array_equal(a.connectivity, b.connectivity) for a, b in zip(deck.mesh.blocks, mesh.blocks)):
        raise CalculixError(f"{deck_path}: its mesh ({deck.mesh.n_nodes} nodes, {deck.mesh.n_elements} elements) "
                            f"differs from the model's ({mesh.n_nodes} nodes, {mesh.n_elements} elements): a reduced "
                            "model answers decks of its own mesh")
    if sorted(deck.boundary.keys) != target.fixed:
        raise CalculixError(f"{deck_path}: its *BOUNDARY constrains other dofs ({len(deck.boundary.keys)}) than the "
                            f"model's Dirichlet sets ({len(target.fixed)} dofs)")
    t = deck_times(deck, max_increments)
    model_t = deck.model_times(t)
    displacements = _displacements(deck, deck_path, target, t, model_t)
    pressures = _pressures(deck, deck_path, target, t, model_t)
    forces = _forces(deck, deck_path, target, t, model_t)
    if deck.gravity.entries and np.any(deck.history("gravity", t) != 0.0):
        raise not_supported(deck.first_card["DLOAD"], "GRAV in a deck answered by a reduced model")
    centrifugal = None
    if deck.centrifugal.entries:
        w2 = deck.history("centrifugal", t)[:, 0]
        if np.any(w2 != 0):
            ax = deck.centrifugal_axis
            centrifugal = Centrifugal(Amplitude(model_t, np.sqrt(np.maximum(w2, 0.0))), tuple(ax[:3]), tuple(ax[3:6]))
    temp = deck.history("temperature", t)
    uniform = np.all(temp == temp[:, :1]) and not target.nodal_temperature
    temperature = UniformTemperature(0.0, Amplitude(model_t, temp[:, 0].copy())) if uniform else \
        NodalTemperature(model_t, temp)
    return Loading(model_t, temperature, pressures, forces=forces, centrifugal=centrifugal,
                   displacements=displacements), deck


class TooManySteps(CalculixError):
    """An uploaded deck has more ``*STEP`` cards than the increments a service allows (:func:`screen_deck_text`)."""


#: The most lines of an uploaded deck (:func:`screen_deck_text`), and of the flat deck its instances expand to.
MAX_DECK_LINES = 2_000_000


def screen_deck_text(data: bytes, *, max_bytes: int, max_lines: int = MAX_DECK_LINES, name: str = "deck",
                     max_steps: int | None = None) -> str:
    """The text of an uploaded deck, refused (:class:`CalculixError`) when larger than ``max_bytes`` or
    ``max_lines``, binary (NUL bytes) or with an ``*INCLUDE`` card or an ``INPUT=`` parameter on any card (an upload
    is read alone: nothing on the server is opened, and no card's lines are left to another file), and
    (:class:`TooManySteps`) with more than ``max_steps`` ``*STEP`` cards (each step is at least one increment: refused
    before parsing, which thousands of steps would make slow). Decoded as UTF-8 (a byte-order mark dropped), else
    Latin-1."""
    if len(data) > max_bytes:
        raise CalculixError(f"{name}: {len(data)} bytes; at most {max_bytes} bytes per deck")
    if b"\x00" in data:
        raise CalculixError(f"{name}: binary data (NUL bytes): upload the deck as text (.inp)")
    try:
        text = data.decode("utf-8-sig")  # a leading byte-order mark (Windows editors) dropped
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    # every leading byte-order mark dropped: the parser drops one (read_cards), so a second one must not hide an
    # *INCLUDE from this screen
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if len(lines) > max_lines:
        raise CalculixError(f"{name}: {len(lines)} lines; at most {max_lines}")
    steps = 0
    for number, line in enumerate(lines, start=1):
        # (the keyword as the parser reads it: case, blanks and their Unicode spellings alike)
        keyword = keyword_of(line.strip())
        if keyword == "INCLUDE":
            raise CalculixError(f"not supported: *INCLUDE, {name}:{number}: an uploaded deck is read alone; paste the "
                                "included file's cards in place of the *INCLUDE line")
        if keyword is not None and "INPUT" in card_parameters(line.strip()):
            raise CalculixError(f"not supported: *{keyword}, INPUT=, {name}:{number}: an uploaded deck is read alone "
                                "(the file it names is not opened); give the card's data lines in the deck")
        steps += keyword == "STEP"
        if max_steps is not None and steps > max_steps:
            raise TooManySteps(f"{name}: more than {max_steps} *STEP cards; each step is at least one increment and "
                               f"this server allows at most {max_steps} increments per deck")
    return text


def write_prediction(out: str | os.PathLike, stem: str, mesh: Mesh, result, *, node_ids=None, element_ids=None,
                     temperatures: np.ndarray | None = None) -> list[Path]:
    """Write a reduced model's ``result`` (:class:`~structrom.rom.online.result.Result`) as ``<stem>.frd``
    (``DISP``, ``NDTEMP`` when ``temperatures`` ``(n_t, n_nodes)`` are given, nodal ``STRESS`` and ``PE``
    extrapolated from the reconstructed integration-point fields as ccx does) and one VTU per increment with a ParaView
    ``<stem>.pvd`` collection (``displacement`` and ``temperature`` at the nodes, element means of the dual
    fields). Returns the files."""
    from ..fem.io import write_mesh
    from ..fem.kernel import Discretization
    from .frd_writer import extrapolate_to_nodes, write_frd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    times = np.asarray(result.times, float)  # increment ends
    elements = Discretization(mesh).point_elements
    u = result.displacement(increment=None)
    fields = {"DISP": u}
    if temperatures is not None:
        fields["NDTEMP"] = np.asarray(temperatures, float)
    duals = {}
    for q, frd_name in (("stress", "STRESS"), ("cumulated_plastic_strain", "PE")):
        if q in result.dual_reduced:
            duals[q] = result.dual_field(q, None)
            fields[frd_name] = np.array([extrapolate_to_nodes(mesh, v) for v in duals[q]])
    files = [write_frd(out / f"{stem}.frd", mesh, times, fields, node_ids=node_ids, element_ids=element_ids)]
    counts = np.maximum(np.bincount(elements, minlength=mesh.n_elements), 1).astype(float)
    entries = []
    for k, t in enumerate(times):
        point = {"displacement": u[k]}
        if temperatures is not None:
            point["temperature"] = fields["NDTEMP"][k]
        cell = {}
        for q, v in duals.items():
            sums = np.zeros((mesh.n_elements,) + v.shape[2:])
            np.add.at(sums, elements, v[k])
            cell[f"{q}_element_mean"] = sums / counts.reshape((-1,) + (1,) * (v.ndim - 2))
        p = write_mesh(out / f"{stem}_{k:04d}.vtu", mesh, point, cell)
        files.append(p)
        entries.append(f'    <DataSet timestep="{t!r}" part="0" file="{p.name}"/>')
    pvd = out / f"{stem}.pvd"
    tmp = out / f".{stem}.pvd.tmp"
    tmp.write_text('<?xml version="1.0"?>\n<VTKFile type="Collection" version="0.1">\n  <Collection>\n'
                   + "\n".join(entries) + "\n  </Collection>\n</VTKFile>\n")
    os.replace(tmp, pvd)
    return files + [pvd]


def predict_deck(model, deck_path: str | os.PathLike, out: str | os.PathLike, *, extrapolate: bool = False,
                 max_increments: int = MAX_DECK_INCREMENTS):
    """Answer the deck ``deck_path`` with the reduced ``model`` (a file or a loaded ReducedModel) and write
    ``<deck stem>.frd``, VTUs and ``.pvd`` in ``out`` (:func:`write_prediction`; node and element ids of the
    deck). Returns ``(result, loading, files)``. A loading outside the model's training family raises
    :class:`~structrom.rom.loading.LoadingError` naming it, unless ``extrapolate``."""
    from ..online import ReducedModel

    if not isinstance(model, ReducedModel):
        model = ReducedModel.load(model)
    target = DeckTarget.from_model(model)
    loading, deck = deck_loading(target, deck_path, max_increments)
    result = model.solve(loading, extrapolate=extrapolate)
    ids = deck.ids
    temps = loading.nodal_temperatures(loading.times, target.mesh.points)[1:]
    files = write_prediction(out, Path(deck_path).stem, target.mesh, result, node_ids=ids.node_ids,
                             element_ids=ids.element_ids, temperatures=temps)
    return result, loading, files
