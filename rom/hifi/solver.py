"""Quasi-static small-strain incremental Newton solver, distributed with MPI and PETSc.

Each rank owns the elements of one part of a recursive coordinate bisection of the element centroids
(:mod:`structrom.mpi.partition`), integrates the constitutive laws at their integration points and contributes
element matrices and forces; PETSc owns contiguous ranges of degrees of freedom (:mod:`structrom.mpi.layout`).
The result does not depend on the number of ranks beyond the linear solver's tolerance.

Per increment ``t_n -> t_{n+1}`` (Newton-Raphson with the consistent tangent):

1. the first iteration imposes the Dirichlet increment through ``MatZeroRowsColumns`` (so the
   linearized response to the boundary motion is the first guess), later ones impose zero;
2. residual ``r = f_ext(t_{n+1}) - f_int(u)``, with ``f_int = sum_k B_k^T sigma_k w_k`` and stresses from the
   law integrated from the converged state at ``t_n``;
3. converged when ``||r_free|| <= newton_rtol * f_ref`` (``f_ref``: largest of ``||f_ext||``, the reaction
   norm and the references of earlier increments) or when the correction is below ``1e-12 ||du||``;
4. failure (no convergence, a law that fails at a point, non-finite values) on any rank cuts the increment
   in half, at most ``max_cutbacks`` times, then stops with an error naming increment and cause.
"""
from __future__ import annotations

import dataclasses
import time as _time
from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI
from structrom.mpi.petsc import PETSc

from structrom.mpi.assembly import MatrixAssembler, gather_to_all, norm, reduce_to_owners
from structrom.mpi.collectives import raise_collectively
from structrom.mpi.layout import DofLayout, node_owners
from structrom.mpi.linear_solver import LinearSolver, LinearSolverError, LinearSolverOptions
from structrom.mpi.partition import recursive_bisection
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import Mesh, MeshError
from structrom.rom.loading import Loading, LoadingError
from structrom.rom.prescribed_overlap import displacement_overlap
from structrom.rom.materials import ConstitutiveLaw
from structrom.mpi.errors import StructromError


class HifiSolverError(StructromError, RuntimeError):
    """The HF solve failed; the message says what diverged, at which increment and what to try."""


class _StepFailure(Exception):
    pass


@dataclass
class NewtonSettings:
    rtol: float = 1e-8
    max_iterations: int = 25
    max_cutbacks: int = 5


@dataclass
class Region:
    """A constitutive law on a set of integration points of this rank."""

    law: ConstitutiveLaw
    points: np.ndarray  # (n,) local integration point indices
    state: np.ndarray  # (n, n_state) converged state


@dataclass
class IncrementResult:
    """What one converged (user-requested) increment produced on this rank."""

    time: float
    newton_iterations: int
    residual: float
    reference: float
    cutbacks: int
    seconds: float
    linear_iterations: list[int] = field(default_factory=list)


class HifiSolver:
    """Distributed HF solver for one mesh, material assignment and loading.

    ``materials``: list of ``(element indices or None, law)``; None means all elements not otherwise
    assigned. Call :meth:`run` with a callback receiving each converged increment.
    """

    def __init__(self, mesh: Mesh, materials: list[tuple[np.ndarray | None, ConstitutiveLaw]],
                 loading: Loading, newton: NewtonSettings | None = None,
                 linear: LinearSolverOptions | None = None, comm: MPI.Comm | None = None,
                 log=print) -> None:
        self.comm = comm or MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.mesh, self.loading = mesh, loading
        self.newton = newton or NewtonSettings()
        self.log = log if self.rank == 0 else (lambda *a, **k: None)
        t0 = _time.perf_counter()

        # Partition elements, number dofs by owner.
        centroids = np.concatenate([mesh.points[b.connectivity].mean(axis=1) for b in mesh.blocks])
        part = recursive_bisection(centroids, self.size)
        offsets = mesh.block_offsets
        owners = node_owners([b.connectivity for b in mesh.blocks],
                             [part[offsets[i]:offsets[i + 1]] for i in range(len(mesh.blocks))], mesh.n_nodes)
        self.layout = DofLayout.from_owners(owners, self.size)
        self.dof_map = self.layout.dof_map()
        self.ranges = self.layout.dof_ranges
        self.rstart, self.rend = int(self.ranges[self.rank]), int(self.ranges[self.rank + 1])
        message = None
        try:  # a bad element is found by the rank that owns it: raised on every rank (none left waiting)
            self.disc = Discretization(mesh, np.flatnonzero(part == self.rank))
        except MeshError as exc:
            message = str(exc)
        raise_collectively(self.comm, message, MeshError)
        n_pts = self.disc.n_points

        # Materials on integration points.
        self.regions: list[Region] = []
        assigned = np.zeros(n_pts, dtype=bool)
        default = None
        for elements, law in materials:
            if elements is None:
                default = law
                continue
            pts = np.flatnonzero(np.isin(self.disc.point_elements, elements) & ~assigned)
            assigned[pts] = True
            self.regions.append(Region(law, pts, law.initial_state(len(pts))))
        if default is not None:
            pts = np.flatnonzero(~assigned)
            assigned[pts] = True
            self.regions.append(Region(default, pts, default.initial_state(len(pts))))
        missing = self.comm.allreduce(int((~assigned).sum()))
        if missing:
            bad = np.unique(self.disc.point_elements[~assigned])[:5]
            raise MeshError(f"{missing} integration points have no material (elements {bad.tolist()}...): "
                            "add a [[material]] without element_set, or cover every element set")

        # Matrix pattern, once (indices only: no element matrices needed; int32 copies freed early).
        rows, cols = self.disc.stiffness_coo_pattern()
        rows = self.dof_map[rows]
        cols = self.dof_map[cols]
        self.assembler = MatrixAssembler(self.comm, rows, cols, self.ranges, block_size=3)
        del rows, cols
        owned_nodes = self.layout.inverse[self.layout.node_ranges[self.rank]:self.layout.node_ranges[self.rank + 1]]
        linear = linear or LinearSolverOptions()
        unsymmetric = [law for _, law in materials
                       if getattr(law, "kinematic", None) is not None and not law.kinematic.linear]
        if unsymmetric and linear.ksp_type == "cg":
            # the Armstrong-Frederick tangent is unsymmetric: CG does not apply
            linear = dataclasses.replace(linear, ksp_type="gmres")
            self.log("hifi: Armstrong-Frederick kinematic hardening has an unsymmetric tangent: "
                     "linear solver cg -> gmres")
        self.linear = LinearSolver(self.comm, linear, coordinates=mesh.points[owned_nodes], warn=self.log)
        self._matrix = None  # the tangent matrix, values overwritten at each assembly

        # Unit external loads (owned slices, PETSc numbering).
        self.unit_pressure = {
            name: self._owned(self.disc.pressure_force(mesh.surface_set(name), 1.0))
            for name in loading.pressures
        }
        # tractions and forces: one unit load per set and component (x, y, z)
        self.unit_traction = {name: [self._owned(self.disc.traction_force(mesh.surface_set(name), e))
                                     for e in np.eye(3)] for name in loading.tractions}
        self.unit_force = {name: [self._owned(self._nodal_unit(mesh.node_set(name), c)) for c in range(3)]
                           for name in loading.forces}
        self.unit_centrifugal = None
        if loading.centrifugal is not None:
            c = loading.centrifugal
            self.unit_centrifugal = self._owned(self.disc.centrifugal_force(
                self._point_density(), 1.0, np.asarray(c.axis_point, float), np.asarray(c.axis_direction, float)))
        self.gravity = None
        if loading.gravity is not None:
            self.gravity = self._owned(self.disc.body_force(np.asarray(loading.gravity, float), self._point_density()))

        # Dirichlet dofs (PETSc numbering, owned by this rank); a dof prescribed twice has one value (checked),
        # the last definition is kept. Nodes of no element have no stiffness: they are held at zero displacement
        # (spec index len(displacements): value 0), as CalculiX reports them.
        overlap = displacement_overlap(loading.displacements, mesh.node_set, loading.times)
        if overlap is not None:
            raise LoadingError(overlap.message(tuple(
                f"loading.displacements[{i}] (node set {loading.displacements[i].node_set!r})"
                for i in (overlap.first, overlap.second)), mesh.points))
        bc_dofs, bc_spec = [], []
        orphans = mesh.unused_nodes()
        if len(orphans):
            dofs = self.dof_map[(3 * orphans[:, None] + np.arange(3)).ravel()]
            bc_dofs.append(dofs)
            bc_spec.append(np.full(len(dofs), len(loading.displacements)))
        for i, d in enumerate(loading.displacements):
            nodes = mesh.node_set(d.node_set)
            dofs = self.dof_map[(3 * nodes[:, None] + np.asarray(d.components)).ravel()]
            bc_dofs.append(dofs)
            bc_spec.append(np.full(len(dofs), i))
        if bc_dofs:
            all_dofs, all_spec = np.concatenate(bc_dofs), np.concatenate(bc_spec)
            last = len(all_dofs) - 1 - np.unique(all_dofs[::-1], return_index=True)[1]
            keep = last[(all_dofs[last] >= self.rstart) & (all_dofs[last] < self.rend)]
            self.bc_dofs, self.bc_spec = all_dofs[keep], all_spec[keep]
        else:
            self.bc_dofs, self.bc_spec = np.zeros(0, np.int64), np.zeros(0, np.int64)
        n_bc = self.comm.allreduce(int(np.count_nonzero(self.bc_spec < len(loading.displacements))))
        if n_bc == 0:
            self.log("warning: no imposed displacements; rigid-body motions must be balanced by the loads")

        # Converged state at the current time.
        self.time = float(loading.times[0])
        self.u = np.zeros(mesh.n_dofs)  # full, original numbering, on every rank
        self.temperature = loading.nodal_temperature(self.time, mesh.points)
        self.strain = np.zeros((n_pts, 6))
        self.stress = np.zeros((n_pts, 6))
        self.f_ref = 0.0
        self.setup_seconds = _time.perf_counter() - t0
        n_el = self.comm.allreduce(len(self.disc.elements))
        self.log(f"hifi: {mesh.n_dofs} dofs, {n_el} elements, {self.comm.allreduce(n_pts)} integration points, "
                 f"{self.size} ranks, set-up {self.setup_seconds:.2f} s")

    # -- helpers ---------------------------------------------------------------------------------
    def _owned(self, full_original: np.ndarray) -> np.ndarray:
        """Sum per-rank full vectors in original numbering; return the owned PETSc slice."""
        return reduce_to_owners(self.comm, self.layout.to_new(full_original), self.ranges)

    def _nodal_unit(self, nodes: np.ndarray, component: int) -> np.ndarray:
        """Full vector (original numbering) with 1 at ``component`` of ``nodes`` on rank 0, zero elsewhere
        (the ranks' vectors are summed by :meth:`_owned`)."""
        f = np.zeros(self.mesh.n_dofs)
        if self.rank == 0:
            f[3 * np.asarray(nodes, dtype=np.int64) + component] = 1.0
        return f

    def _point_density(self) -> np.ndarray:
        rho = np.zeros(self.disc.n_points)
        for reg in self.regions:
            rho[reg.points] = reg.law.density
        return rho

    def external_force(self, t: float) -> np.ndarray:
        f = np.zeros(self.rend - self.rstart)
        for name, amp in self.loading.pressures.items():
            f += float(amp(t)) * self.unit_pressure[name]
        for loads, units in ((self.loading.tractions, self.unit_traction), (self.loading.forces, self.unit_force)):
            for name, vec in loads.items():
                for value, unit in zip(vec(t), units[name]):
                    f += value * unit
        if self.unit_centrifugal is not None:
            f += float(self.loading.centrifugal.omega(t)) ** 2 * self.unit_centrifugal
        if self.gravity is not None:
            f += self.gravity
        return f

    def imposed_values(self, t: float) -> np.ndarray:
        specs = self.loading.displacements
        vals = np.array([d.value * float(d.amplitude(t)) for d in specs] + [0.0])  # (+ the nodes of no element)
        return vals[self.bc_spec] if len(self.bc_spec) else np.zeros(0)

    def _all_ok(self, ok: bool) -> bool:
        return bool(self.comm.allreduce(int(ok), op=MPI.MIN))

    def _integrate(self, strain: np.ndarray, temp_old, temp_new, dt: float):
        """Stress, tangent and new states at this rank's points; a failure anywhere fails everywhere."""
        n = self.disc.n_points
        stress, tangent, states, ok, message = np.zeros((n, 6)), np.zeros((n, 6, 6)), [], True, ""
        try:
            for reg in self.regions:
                p = reg.points
                resp = reg.law.integrate(self.strain[p], strain[p] - self.strain[p], temp_old[p], temp_new[p],
                                         dt, reg.state)
                stress[p], tangent[p] = resp.stress, resp.tangent
                states.append(resp.state)
            ok = bool(np.all(np.isfinite(stress)) and np.all(np.isfinite(tangent)))
            message = "" if ok else "non-finite stress or tangent"
        except (ValueError, ArithmeticError) as exc:  # MaterialError is a ValueError
            ok, message = False, str(exc)
        if not self._all_ok(ok):
            messages = [m for m in self.comm.allgather(message) if m]
            raise _StepFailure(f"constitutive law failed: {messages[0] if messages else 'on another rank'}")
        return stress, tangent, states

    # -- one increment -------------------------------------------------------------------------------
    def _try_step(self, t_new: float) -> tuple[int, float, list[int], tuple]:
        """One Newton solve from the converged state to ``t_new``: iterations, relative residual, linear
        iterations and the candidate state ``(u, nodal temperature, strain, stress, law states, f_ref)``."""
        dt = t_new - self.time
        temp_old = self.disc.interpolate_temperature(self.temperature)
        temp_nodes = self.loading.nodal_temperature(t_new, self.mesh.points)
        temp_new = self.disc.interpolate_temperature(temp_nodes)
        f_ext = self.external_force(t_new)
        local_bc = self.bc_dofs - self.rstart
        imposed = self.imposed_values(t_new)
        du_bc = imposed - self.layout.to_new(self.u)[self.rstart:self.rend][local_bc]
        u = self.u.copy()
        lin_its: list[int] = []
        residual, ref = np.inf, self.f_ref
        du_norm, u_norm = np.inf, 1.0  # last correction and increment norms (set after the first solve)
        res_prev = eta = None  # previous residual and linear tolerance (inexact Newton)
        for it in range(self.newton.max_iterations + 1):
            strain = self.disc.strain(u)
            stress, tangent, states = self._integrate(strain, temp_old, temp_new, dt)
            f_int = self._owned(self.disc.internal_force(stress))
            r = f_ext - f_int
            reactions = norm(self.comm, f_int[local_bc])
            r[local_bc] = 0.0
            residual = norm(self.comm, r)
            ref = max(self.f_ref, norm(self.comm, f_ext), reactions)
            if not np.isfinite(residual):
                raise _StepFailure("residual is not finite")
            first = it == 0 and self.comm.allreduce(float(np.abs(du_bc).sum())) > 0
            if not first and (residual <= self.newton.rtol * ref or du_norm <= 1e-12 * u_norm):
                return it, residual / max(ref, 1e-300), lin_its, (u, temp_nodes, strain, stress, states, ref)
            if it == self.newton.max_iterations:
                break
            mat = self._matrix = self.assembler.assemble(self.disc.stiffness_values(tangent), into=self._matrix)
            if first:
                # this solve carries the increment's prescribed displacements: the residual before it (that of
                # the converged state) says nothing of its size, so neither the forcing terms nor the
                # no-oversolving bound apply; a loose solve here left a residual of the size of the load step
                eta = self.linear.first_forcing_term()
            else:
                eta = self.linear.forcing_term(residual, res_prev, eta, self.newton.rtol * ref)
            diag = mat.getDiagonal()
            scale = diag.sum() / diag.getSize()
            b = mat.createVecLeft()
            b.getArray()[:] = r
            x = mat.createVecRight()
            x.set(0.0)
            if it > 0:  # what the prescribed values still miss (an inexact solve meets them only roughly)
                du_bc = imposed - self.layout.to_new(u)[self.rstart:self.rend][local_bc]
            x.getArray()[local_bc] = du_bc
            # Rows and columns of Dirichlet dofs -> scale * identity; b[bc] = scale * du_bc, b -= K[:, bc] du_bc.
            mat.zeroRowsColumns(self.bc_dofs.astype(PETSc.IntType), diag=scale, x=x, b=b)
            try:
                du, its = self.linear.solve(mat, b.getArray(), rtol=eta, reuse=it > 0)
            except LinearSolverError as exc:
                raise _StepFailure(str(exc)) from None
            finally:
                for obj in (diag, b, x):
                    obj.destroy()
            res_prev = None if first else residual  # after a prescribed step: start the forcing terms afresh
            lin_its.append(its)
            du[local_bc] = du_bc  # Dirichlet values exactly, whatever the linear tolerance
            du_full = self.layout.to_original(gather_to_all(self.comm, du, self.ranges))
            u += du_full
            du_norm = float(np.linalg.norm(du_full))
            u_norm = float(np.linalg.norm(u - self.u)) + 1e-300
        raise _StepFailure(f"Newton did not converge in {self.newton.max_iterations} iterations "
                           f"(residual {residual:.3e}, reference force {ref:.3e})")

    def step(self, t_new: float) -> IncrementResult:
        """Advance the converged state to ``t_new``, cutting the increment back on failure."""
        start = _time.perf_counter()
        targets, cutbacks, total_its, lin_its, last_res = [t_new], 0, 0, [], 0.0
        while targets:
            target = targets[-1]
            try:
                its, res, lits, candidate = self._try_step(target)
            except _StepFailure as exc:
                cutbacks += 1
                if cutbacks > self.newton.max_cutbacks:
                    raise HifiSolverError(
                        f"increment ending at t={t_new:g} failed after {self.newton.max_cutbacks} cutbacks "
                        f"(last attempt t={self.time:g} -> {target:g}): {exc}. Try smaller time increments "
                        "(more loading.times), check that the loads are below the limit load, or raise "
                        "solver.newton_max_iterations / solver.max_cutbacks") from None
                targets.append(0.5 * (self.time + target))
                continue
            u, temp_nodes, strain, stress, states, ref = candidate
            self.u, self.temperature, self.strain, self.stress = u, temp_nodes, strain, stress
            for reg, st in zip(self.regions, states):
                reg.state = st
            self.time = target
            self.f_ref = max(self.f_ref, ref)
            targets.pop()
            total_its += its
            lin_its += lits
            last_res = res
        return IncrementResult(t_new, total_its, last_res, self.f_ref, cutbacks, _time.perf_counter() - start, lin_its)

    # -- fields of the converged state on this rank ---------------------------------------------------
    def point_fields(self) -> dict[str, np.ndarray]:
        """Integration-point fields of the converged state: strain, stress, plastic strain, p, and the back
        stress ``(n, 6)`` when a law has kinematic hardening (same keys on every rank: all ranks hold every law)."""
        n = self.disc.n_points
        blocks = {"plastic_strain": "eps_p_xx"}
        if any("X_xx" in reg.law.state_names for reg in self.regions):
            blocks["back_stress"] = "X_xx"
        out = {"strain": self.strain, "stress": self.stress}
        for field_name, first in blocks.items():
            out[field_name] = np.zeros((n, 6))
            for reg in self.regions:
                if first in reg.law.state_names:
                    i = reg.law.state_names.index(first)
                    out[field_name][reg.points] = reg.state[:, i:i + 6]
        p = np.zeros(n)
        for reg in self.regions:
            p[reg.points] = reg.law.cumulated_plastic_strain(reg.state)
        out["cumulated_plastic_strain"] = p
        return out

    def run(self, on_increment=None) -> list[IncrementResult]:
        """Solve every increment of the loading; ``on_increment(solver, result)`` after each."""
        from structrom.rom.progress import bar

        results = []
        times = self.loading.times
        with bar(len(times) - 1, "HF increments", "inc", enabled=self.rank == 0) as progress:
            for k, t in enumerate(times[1:], start=1):
                res = self.step(float(t))
                results.append(res)
                self.log(f"increment {k}/{len(times) - 1} t={t:g}: newton {res.newton_iterations} it, "
                         f"residual {res.residual:.2e}, linear its {res.linear_iterations}, "
                         f"cutbacks {res.cutbacks}, {res.seconds:.2f} s")
                if on_increment is not None:
                    on_increment(self, res)
                progress.update(1)
        return results
