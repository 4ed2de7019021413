"""Lifting of nonzero prescribed displacements for the offline stage.

A training loading prescribes ``u_c = a_k(t)`` (``a_k = value x amplitude(t)``) on the dofs of its Dirichlet
specification ``k`` (node set, components). The reduced model writes

    u(t) = sum_j b_j(t) G_j + Phi q(t),

with one *unit field* ``G_j`` per prescribed (specification, component) ``j``: 1 on that component of the
specification's nodes, 0 on every other Dirichlet dof, and ``b_j = a_k`` of its specification. ``Phi``
spans the homogeneous part ``u - sum_j b_j G_j`` of the snapshots (zero on all Dirichlet dofs), so the
reduced Galerkin equations keep the form of the homogeneous case with the lifting's strain added at the
reduced points.

Choice of ``G_j``: the **discrete elastic extension** (free dofs solve ``K_ff G_f = -K_fd G_d``, ``K`` the
elastic stiffness of the training materials at the first case's initial temperature). Against the nodal
indicator of the set (the cheapest lifting), it

* reproduces a prescribed rigid motion exactly: a translation imposed on all Dirichlet sets is the
  elastic extension itself, stress-free to rounding, with ``q = 0``;
* is the elastic response to the prescribed motion: in the elastic range the homogeneous part only holds
  the response to the other loads, and the POD basis is spent on plasticity;
* has no strain concentrated in the first element layer next to the set (``a / h`` for the indicator),
  which the modes would have to cancel at the reduced points (cancellation) and the cubature would have
  to integrate.

Reactions: for any field ``G`` equal to 1 on the dofs of ``j`` and 0 on the other Dirichlet dofs, the
virtual work of the residual gives the reaction resultant ``R_j = G^T f_int - G^T f_ext =
int eps(G_j) : sigma dV - G_j^T f_ext``: with the smooth ``G_j`` the volume term is a smooth integrand, added
to the empirical cubature's training rows (so the reduced points integrate it within the cubature
tolerance on every snapshot) and evaluated online at the reduced points. The load term uses the same
unit loads as the reduced loads, with ``G_j`` in place of the modes.

The unit fields are computed by the distributed HF solver (:mod:`structrom.rom.hifi.solver`) on a frozen
elastic law, refined until the correction is below 1e-12 of the field: rank-count independent to round-off.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from structrom.rom.loading import ImposedDisplacement, Loading, UniformTemperature
from structrom.rom.materials.base import ConstitutiveLaw, MaterialResponse
from structrom.rom.offline.snapshots import SnapshotError, TrainingCase

AXES = "xyz"


@dataclass(frozen=True)
class UnitField:
    """One prescribed (specification, component): ``name`` is the loading key of its specification (its node
    set, or ``node_set.components`` when a node set has several nonzero specifications), ``spec`` its index
    in the loadings' displacement list."""

    name: str
    node_set: str
    components: tuple[int, ...]  # all components of the specification
    component: int
    spec: int

    @property
    def key(self) -> str:
        """``<name>.<axis>``: the name of its reaction."""
        return f"{self.name}.{AXES[self.component]}"

    def to_json(self) -> dict:
        return {"name": self.name, "node_set": self.node_set, "components": list(self.components),
                "component": self.component}


def _nonzero(d: ImposedDisplacement) -> bool:
    return bool(d.value != 0.0 and np.any(d.amplitude.values != 0.0))


def unit_fields(cases: list[TrainingCase]) -> list[UnitField]:
    """The prescribed (specification, component) pairs of the training cases: specifications with a nonzero
    value in at least one case. All cases must have the same specifications (node sets and components, in
    the same order); values and amplitudes may differ."""
    first = cases[0].loading.displacements
    layout = [(d.node_set, tuple(d.components)) for d in first]
    for c in cases[1:]:
        other = [(d.node_set, tuple(d.components)) for d in c.loading.displacements]
        if other != layout:
            raise SnapshotError(f"{c.path}: Dirichlet specifications {other} differ from {cases[0].path}'s {layout}: "
                                "one model needs the same prescribed node sets and components (values may differ)")
    lifted = [k for k in range(len(first)) if any(_nonzero(c.loading.displacements[k]) for c in cases)]
    sets = [first[k].node_set for k in lifted]
    out = []
    for k in lifted:
        d = first[k]
        name = d.node_set if sets.count(d.node_set) == 1 else f"{d.node_set}.{''.join(AXES[i] for i in d.components)}"
        out += [UnitField(name, d.node_set, tuple(d.components), int(c), k) for c in d.components]
    return out


def model_unit_fields(fields: list[dict], dirichlet: list[dict], case: TrainingCase) -> list[UnitField]:
    """A model's unit fields (its ``/lifting`` ``fields``; ``dirichlet``: its Dirichlet specifications, the
    model file's ``dirichlet`` attribute) located in the specifications of a new training ``case`` (enrichment:
    the fields are kept, only their amplitudes are the case's). Raises :class:`SnapshotError` naming the case
    when its Dirichlet specifications (node sets and components, in order) differ from the model's, or when it
    prescribes a nonzero displacement on a (set, component) the model does not lift."""
    def layout(specs):
        return [(str(d["node_set"]), tuple(c if isinstance(c, int) else AXES.index(c) for c in d["components"]))
                for d in specs]

    ours = layout(dirichlet)
    theirs = [(d.node_set, tuple(int(c) for c in d.components)) for d in case.loading.displacements]
    if theirs != ours:
        raise SnapshotError(f"{case.path}: Dirichlet specifications {theirs} differ from the model's {ours}: "
                            "enrichment needs HF solves of the model's own problem (same prescribed and fixed sets)")
    out = []
    for f in fields:
        comps = tuple(int(c) for c in f["components"])
        out.append(UnitField(f["name"], f["node_set"], comps, int(f["component"]), ours.index((f["node_set"], comps))))
    lifted = {f.spec for f in out}
    for k, d in enumerate(case.loading.displacements):
        if k not in lifted and _nonzero(d):
            raise SnapshotError(
                f"{case.path}: prescribes a nonzero displacement on node set {d.node_set!r} (components "
                f"{[AXES[int(c)] for c in d.components]}), which the model does not lift (its prescribed sets: "
                f"{sorted({f.name for f in out}) or 'none'}); enrichment keeps the model's prescribed sets: rebuild "
                "with `structrom offline` to add one")
    return out


def amplitudes(fields: list[UnitField], loading: Loading, times: np.ndarray) -> np.ndarray:
    """``(len(times), n_fields)``: ``b_j(t) = value x amplitude(t)`` of each field's specification."""
    out = np.zeros((len(times), len(fields)))
    for j, f in enumerate(fields):
        d = loading.displacements[f.spec]
        out[:, j] = d.value * d.amplitude(np.asarray(times, float))
    return out


def displacement_schema(fields: list[UnitField], cases: list[TrainingCase]) -> dict:
    """``{"displacement": {name: {"range": [lo, hi]}}}``: the training range of each prescribed value over
    all times (0 included: the reference state), for :mod:`structrom.rom.online.schema`."""
    if not fields:
        return {}
    out: dict = {}
    for f in fields:
        if f.name in out:
            continue
        values = np.concatenate([amplitudes([f], c.loading, c.loading.times)[:, 0] for c in cases] + [[0.0]])
        out[f.name] = {"range": [float(values.min()), float(values.max())]}
    return {"displacement": out}


def check_overlaps(mesh, cases: list[TrainingCase], fields: list[UnitField]) -> None:
    """Refuse, naming the case, Dirichlet specifications that prescribe a common node and component with
    different values in a training case (the HF solver refuses them; a snapshot from elsewhere kept one of
    them), and two lifted specifications that share a node and component: the reduced model could not keep
    apart two query values on it (the elastic extensions give the shared dofs to the later one), where the
    HF solver refuses them."""
    from structrom.rom.prescribed_overlap import displacement_overlap, prescribed_dofs

    for c in cases:
        overlap = displacement_overlap(c.loading.displacements, mesh.node_set, c.loading.times)
        if overlap is not None:
            specs = c.loading.displacements
            labels = tuple(f"boundary {specs[i].node_set!r} ({''.join(AXES[int(k)] for k in specs[i].components)})"
                           for i in (overlap.first, overlap.second))
            raise SnapshotError(f"{c.path}: {overlap.message(labels, mesh.points)}")
    specs = cases[0].loading.displacements
    lifted = sorted({f.spec for f in fields})
    for a, k in enumerate(lifted):
        for m in lifted[a + 1:]:
            shared = np.intersect1d(*(prescribed_dofs(specs[i], mesh.node_set) for i in (k, m)), assume_unique=True)
            if len(shared):
                node = int(shared[0] // 3)
                raise SnapshotError(
                    f"{cases[0].path}: the prescribed sets {specs[k].node_set!r} and {specs[m].node_set!r} both "
                    f"prescribe {AXES[int(shared[0] % 3)]} at node {node} {tuple(mesh.points[node].tolist())}: a "
                    "reduced model could not take two different query values there; prescribe the shared nodes "
                    "in one [[boundary]] (remove them from the other node set)")


class FrozenElastic(ConstitutiveLaw):
    """The elastic part of ``law`` at the fixed ``temperature``: ``sigma = C(T) eps`` (no thermal strain, no
    internal variables), the operator of the elastic extension."""

    name = "frozen_elastic"

    def __init__(self, law: ConstitutiveLaw, temperature: float) -> None:
        self.law, self.temperature, self.density = law, float(temperature), law.density

    def thermal_strain(self, temperature: np.ndarray) -> np.ndarray:
        return np.zeros((len(np.atleast_1d(temperature)), 6))

    def elastic_tangent(self, temperature: np.ndarray) -> np.ndarray:
        return self.law.elastic_tangent(np.full(len(np.atleast_1d(temperature)), self.temperature))

    def integrate(self, eps_old, deps, temp_old, temp_new, dt, state_old) -> MaterialResponse:
        C = self.elastic_tangent(np.zeros(len(eps_old)))
        return MaterialResponse(np.einsum("nij,nj->ni", C, eps_old + deps), C, np.zeros((len(eps_old), 0)))

    def cumulated_plastic_strain(self, state: np.ndarray) -> np.ndarray:
        return np.zeros(len(state))

    def to_config(self) -> dict:
        return {"type": self.name, "law": self.law.to_config(), "temperature": self.temperature}


def elastic_extensions(comm, mesh, materials: list[tuple[str | None, ConstitutiveLaw]], cases: list[TrainingCase],
                       fields: list[UnitField]) -> np.ndarray:
    """``(n_dofs, n_fields)``: the unit fields (module docstring), full on every rank (as the HF solver's
    displacement). One elastic HF solve per field."""
    from structrom.mpi.linear_solver import LinearSolverOptions
    from structrom.rom.hifi.solver import HifiSolver, NewtonSettings

    if not fields:
        return np.zeros((mesh.n_dofs, 0))
    t_ref = float(np.mean(cases[0].loading.nodal_temperature(float(cases[0].loading.times[0]), mesh.points)))
    laws = [(None if s is None else mesh.element_set(s), FrozenElastic(law, t_ref)) for s, law in materials]
    specs = cases[0].loading.displacements
    out = np.zeros((mesh.n_dofs, len(fields)))
    for j, f in enumerate(fields):
        disp: list[ImposedDisplacement] = []
        for k, d in enumerate(specs):  # the same order as the HF runs: the last definition of a dof wins
            if k != f.spec:
                disp.append(ImposedDisplacement(d.node_set, tuple(d.components), 0.0))
                continue
            rest = tuple(c for c in d.components if c != f.component)
            if rest:
                disp.append(ImposedDisplacement(d.node_set, rest, 0.0))
            disp.append(ImposedDisplacement(d.node_set, (f.component,), 1.0))
        loading = Loading(times=np.array([0.0, 1.0]), temperature=UniformTemperature(t_ref), displacements=tuple(disp))
        # Newton rtol below round-off: the solve is refined until its correction is below 1e-12 of the field
        # (the solver's second criterion), i.e. one or two refinement steps after the first solve; the field
        # is then the same to round-off on any number of ranks, not to the Krylov tolerance, which would shift
        # the trailing POD modes of the homogeneous snapshots (and the cubature's choice) with the partition
        solver = HifiSolver(mesh, laws, loading, newton=NewtonSettings(rtol=1e-15, max_iterations=5, max_cutbacks=0),
                            linear=LinearSolverOptions(rtol=1e-12, eisenstat_walker=False), comm=comm,
                            log=lambda *a, **k: None)
        solver.step(1.0)
        out[:, j] = solver.u
    return out


@dataclass
class OfflineLifting:
    """The lifting during the offline stage, on one rank: unit fields ``G`` ``(n_dofs, n_G)`` (full, the same
    on every rank; in enrichment only this rank's rows, :meth:`at_rows`) and their strains at this rank's
    integration points ``eps`` ``(n_loc_points, 6, n_G)``."""

    fields: list[UnitField]
    G: np.ndarray
    eps: np.ndarray
    dirichlet: np.ndarray  # (n_dofs,) bool: every Dirichlet dof (zero or prescribed)

    @classmethod
    def build(cls, comm, mesh, materials, cases: list[TrainingCase], disc) -> "OfflineLifting":
        fields = unit_fields(cases)
        check_overlaps(mesh, cases, fields)
        G = elastic_extensions(comm, mesh, materials, cases, fields)
        eps = (disc.strain_operator() @ G).reshape(disc.n_points, 6, len(fields)) if fields else \
            np.zeros((disc.n_points, 6, 0))
        dirichlet = np.zeros(mesh.n_dofs, dtype=bool)
        for d in cases[0].loading.displacements:
            dirichlet[(3 * mesh.node_set(d.node_set)[:, None] + np.asarray(d.components, int)).ravel()] = True
        return cls(fields, G, eps, dirichlet)

    @classmethod
    def at_rows(cls, fields: list[UnitField], G_rows: np.ndarray, disc, rows: np.ndarray, mesh,
                specs) -> "OfflineLifting":
        """The lifting on this rank's dofs ``rows`` only (enrichment: the unit fields ``G_rows`` ``(len(rows), n_G)``
        read from the model file): its arrays are indexed by positions in ``rows`` (pass
        ``np.arange(len(rows))`` as the methods' ``rows``). ``specs``: the Dirichlet specifications
        (``ImposedDisplacement``) of a case."""
        eps = (disc.strain_operator()[:, rows] @ G_rows).reshape(disc.n_points, 6, len(fields))
        fixed = [(3 * mesh.node_set(d.node_set)[:, None] + np.asarray(d.components, int)).ravel() for d in specs]
        return cls(fields, G_rows, eps, np.isin(rows, np.concatenate(fixed) if fixed else np.zeros(0, int)))

    def __bool__(self) -> bool:
        return bool(self.fields)

    def homogeneous(self, snapshots: np.ndarray, cases: list[TrainingCase], rows: np.ndarray) -> np.ndarray:
        """``u - sum_j b_j G_j`` of the snapshots ``(len(rows), n_s)`` (cases' increments in order), in place,
        set to zero on the Dirichlet dofs: it vanishes there up to the data's rounding (e.g. the 6 digits of
        a CalculiX .frd), which would otherwise enter the modes and move the prescribed dofs online."""
        if self:
            b = np.concatenate([amplitudes(self.fields, c.loading, c.times) for c in cases])  # (n_s, n_G)
            snapshots -= self.G[rows] @ b.T
        snapshots[self.dirichlet[rows]] = 0.0
        return snapshots

    def total(self, homogeneous: np.ndarray, case: TrainingCase, rows: np.ndarray) -> np.ndarray:
        """The displacements ``(len(rows), n_inc)`` of one case from its homogeneous part (:meth:`homogeneous`):
        ``h + sum_j b_j(t) G_j``, with the prescribed values exactly on the Dirichlet dofs (a new array)."""
        if not self:
            return homogeneous
        return homogeneous + self.G[rows] @ amplitudes(self.fields, case.loading, case.times).T

    def integrand_modes(self, eps_modes: np.ndarray) -> np.ndarray:
        """The modes' strains with the unit fields' appended ``(n_loc_points, 6, N + n_G)``: the cubature then
        also integrates the reactions' volume term ``eps(G_j) : sigma`` on every snapshot."""
        return np.concatenate([eps_modes, self.eps], axis=2) if self else eps_modes

    def reaction_loads(self, comm, unit_loads: dict, rows: np.ndarray) -> dict:
        """``G_j^T f`` of each unit load ``unit_loads`` (the values at this rank's dofs ``rows``, every dof's
        load held by one rank; the structure of :func:`structrom.rom.lifting.load_vector`'s ``loads``), summed
        over ranks; rows ``n_G``."""
        if not self:
            return {}
        G_rows = self.G[rows]

        def reduce(v):
            return None if v is None else comm.allreduce(G_rows.T @ v)

        out = {k: {s: reduce(v) for s, v in unit_loads.get(k, {}).items()} for k in ("pressure", "traction", "force")}
        out.update({k: reduce(unit_loads.get(k)) for k in ("centrifugal", "gravity")})
        return out

    def model_data(self, reduced: np.ndarray, validation: np.ndarray | None, loads: dict):
        """The :class:`structrom.rom.lifting.Lifting` of the model file (rank 0), or None without prescribed
        displacements."""
        from structrom.rom.lifting import Lifting

        if not self:
            return None
        return Lifting(fields=[f.to_json() for f in self.fields], reduced=reduced, loads=loads,
                       validation=validation, full=self.G)
