"""The online stage: load a reduced model file and solve loadings in the reduced space.

Usage::

    from structrom.rom.online import ReducedModel
    model = ReducedModel.load("model.h5")
    result = model.solve({"times": [0, 0.5, 1], "pressure": {"holes": [[0, 0], [1, 20]]}})
    result.displacement(nodes="tip")            # (n_nodes, 3) at the last increment
    result.indicator, result.trusted            # error indicator per increment

Cost: :meth:`ReducedModel.load` reads only reduced-size arrays (``n_rp`` reduced points, ``N`` modes,
``n_tn`` temperature nodes) unless ``keep_full``; :meth:`ReducedModel.solve` touches nothing of the
mesh size (no mesh, no full modes, no full dual bases): a loading's temperature field is evaluated at
the stored temperature-node coordinates only. Only the reconstruction methods of
:class:`~structrom.rom.online.result.Result` read full-size data, lazily, from the file.

No MPI or PETSc import on this path.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path

import numpy as np

from structrom.rom import model_file
from structrom.rom.lifting import load_vector
from structrom.rom.loading import Loading, LoadingError, NodalTemperature
from structrom.rom.materials import MaterialError, law_from_config
from structrom.rom.model_file import ModelFileError, ReducedModelData
from structrom.rom.voigt import STRESS_WEIGHTS, von_mises

from .gappy import Gappy
from .indicator import IndicatorTracker, ValidationRuntime, family_distance, rate_dependent
from .newton import ReducedSystem, Region, State, StepFailure, newton_step
from .radial_return import KinematicReturnSystem, RadialReturnSystem
from .result import Result
from .schema import SchemaError, as_loading, check_family, check_structure, validate_schema
from structrom.mpi.errors import StructromError


class OnlineError(StructromError, ValueError):
    """A bad request to a reduced model or a result (unknown quantity, node set, increment...)."""


class OnlineSolverError(StructromError, RuntimeError):
    """The reduced Newton solve failed after all cutbacks; the message names increment and cause."""


#: Dual quantities the online solver can evaluate at the reduced points, with their components.
DUAL_QUANTITIES = {"cumulated_plastic_strain": 1, "plastic_strain": 6, "stress": 6, "strain": 6,
                   "von_mises": 1, "temperature": 1, "back_stress": 6}


def dual_values(name: str, regions: list[Region], state: State) -> np.ndarray:
    """Quantity ``name`` at the reduced points of a converged state: ``(n_rp,)`` or ``(n_rp, 6)``."""
    if name == "stress":
        return state.stress.copy()
    if name == "strain":
        return state.strain.copy()
    if name == "von_mises":
        return von_mises(state.stress)
    if name == "temperature":
        return state.temperature.copy()
    n = len(state.stress)
    if name == "cumulated_plastic_strain":
        out = np.zeros(n)
        for reg, st in zip(regions, state.law_states):
            out[reg.points] = reg.law.cumulated_plastic_strain(st)
        return out
    if name in ("plastic_strain", "back_stress"):
        first = "eps_p_xx" if name == "plastic_strain" else "X_xx"
        out = np.zeros((n, 6))
        for reg, st in zip(regions, state.law_states):
            names = reg.law.state_names
            if first in names:
                i = names.index(first)
                out[reg.points] = st[:, i:i + 6]
        return out
    raise OnlineError(f"unknown dual quantity {name!r}; known: {sorted(DUAL_QUANTITIES)}")


def _arrays(loads: dict) -> list[np.ndarray]:
    """The arrays of a nested dict of reduced loads (:func:`structrom.rom.lifting.load_vector`'s ``loads``)."""
    out = []
    for v in loads.values():
        out += _arrays(v) if isinstance(v, dict) else ([] if v is None else [np.asarray(v)])
    return out


class ReducedModel:
    """A reduced model ready to solve loadings (see the module docstring).

    Build with :meth:`load` (from a file) or ``ReducedModel(data)`` (from a
    :class:`~structrom.rom.model_file.ReducedModelData` in memory; reconstruction then needs ``data.modes`` and
    the full dual bases in ``data.duals[q].basis``).
    """

    def __init__(self, data: ReducedModelData, path: str | Path | None = None,
                 n_mesh_nodes: int | None = None, group: str = "/") -> None:
        self.data = data
        self.path = Path(path) if path is not None else None
        self.group = group  # the HDF5 group of the model in its file ("/"; a local model of a dictionary file)
        self.n_mesh_nodes = n_mesh_nodes
        where = str(self.path) if self.path else "reduced model"
        try:
            validate_schema(data.loading_schema)
        except SchemaError as exc:
            raise ModelFileError(f"{where}: {exc}") from None
        try:
            self.laws = [law_from_config(m) for m in data.materials]
        except MaterialError as exc:
            raise ModelFileError(f"{where}: material configuration: {exc}") from None
        for name in ("integrator", "weights", "coordinates"):
            if not np.all(np.isfinite(getattr(data, name))):
                raise ModelFileError(f"{where}: reduced/{name} contains non-finite values")
        loads = (list(data.pressure.values()) + list(data.traction.values()) + list(data.force.values())
                 + [v for v in (data.centrifugal, data.gravity) if v is not None])
        if not all(np.all(np.isfinite(v)) for v in loads):
            raise ModelFileError(f"{where}: a reduced load contains non-finite values")
        lift = data.lifting
        if lift is not None and not (np.all(np.isfinite(lift.reduced)) and all(
                np.all(np.isfinite(v)) for v in _arrays(lift.loads))):
            raise ModelFileError(f"{where}: lifting/reduced or lifting/loads contains non-finite values")
        self.regions = [Region(law, np.flatnonzero(data.material == i)) for i, law in enumerate(self.laws)]
        self.regions = [r for r in self.regions if len(r.points)]
        fast = [s for s in (RadialReturnSystem, KinematicReturnSystem) if s.applies(self.regions, len(data.weights))]
        system = fast[0] if fast else ReducedSystem
        self.system = system(data.integrator, data.weights, self.regions)
        if lift is not None:
            self.system.set_lifting(lift.reduced)
        self.gappy: dict[str, Gappy] = {}
        for name, dual in data.duals.items():
            if name in DUAL_QUANTITIES and DUAL_QUANTITIES[name] != dual.components:
                raise ModelFileError(f"{where}: dual/{name} has {dual.components} components per point, "
                                     f"expected {DUAL_QUANTITIES[name]}")
            if name in DUAL_QUANTITIES:
                self.gappy[name] = Gappy(dual.reduced_basis, dual.components)
        if data.indicator_quantity not in self.gappy:
            raise ModelFileError(f"{where}: indicator quantity {data.indicator_quantity!r} cannot be evaluated "
                                 f"online (known: {sorted(DUAL_QUANTITIES)})")
        self._interp = data.temperature_interpolation.tocsr()
        self.validation = ValidationRuntime(data.validation, self.laws) if data.validation is not None else None
        if self.validation is not None and lift is not None:
            self.validation.system.set_lifting(lift.validation)
        if data.calibration is not None:
            self.references = dict(data.calibration.references)
        else:  # uncalibrated (e.g. version 1 files): the scale of the indicator quantity only
            self.references = {data.indicator_quantity: float(data.indicator_reference)}
        self._cache: dict = {}

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, keep_full: bool = False, group: str = "/") -> "ReducedModel":
        """Read and validate a model file (:func:`structrom.rom.model_file.load`); builds the laws and the
        per-material point index arrays. ``keep_full``: also read the full modes and dual bases into
        memory (otherwise the reconstruction methods read them on demand); ``group``: the model's HDF5
        group in the file. Raises :class:`~structrom.rom.model_file.ModelFileError`."""
        import h5py

        data = model_file.load(path, mesh=False, full=keep_full, group=group)
        try:
            with h5py.File(path, "r") as f:
                n_nodes = int(f[group]["mesh/points"].shape[0])
        except (OSError, KeyError) as exc:
            raise ModelFileError(f"{path}: cannot read mesh/points ({exc}); the file may be truncated") from None
        model = cls(data, path, n_nodes, group)
        if keep_full:
            model._cache["modes"] = np.asarray(data.modes)
        return model

    # -- properties -----------------------------------------------------------------------------------------
    @property
    def n_modes(self) -> int:
        return self.data.n_modes

    @property
    def n_reduced_points(self) -> int:
        return self.data.n_reduced_points

    @property
    def indicator_quantity(self) -> str:
        return self.data.indicator_quantity

    @property
    def indicator_tolerance(self) -> float:
        return self.data.indicator_tolerance

    @property
    def loading_schema(self) -> dict:
        return self.data.loading_schema

    # -- the online-model interface (structrom.rom.online.protocol) -------------------------------------------
    kind = "hyper_reduced"

    @property
    def parameters(self) -> dict[str, tuple[float, float]]:
        """Training ranges of the loading family: ``loading_schema`` flattened (``temperature.intensity``...)."""
        from .protocol import schema_parameters

        return schema_parameters(self.loading_schema)

    def check(self, loading: Loading | dict, *, extrapolate: bool = False) -> list[str]:
        """:meth:`check_loading`'s list of accepted family violations (raises for the others)."""
        return self.check_loading(loading, extrapolate=extrapolate)[1]

    def estimate_error(self, loading: Loading | dict, *, extrapolate: bool = False) -> np.ndarray:
        """``(n_inc,)`` error indicator of the solve of ``loading`` (see :class:`Result`)."""
        return self.solve(loading, extrapolate=extrapolate).indicator

    def card(self) -> dict:
        """Short JSON description (the registry's card adds file and mesh data)."""
        d = self.data
        return {"kind": self.kind, "sizes": {"modes": self.n_modes, "reduced_points": self.n_reduced_points},
                "parameters": [{"name": n, "range": list(r)} for n, r in self.parameters.items()],
                "loading_schema": d.loading_schema, "surfaces": sorted(d.pressure),
                # prescribed sets (loading.displacement keys) -> components; their reactions: result.reactions
                "prescribed_displacements": {} if d.lifting is None else
                {name: ["xyz"[c] for c in comps] for name, (_, comps) in d.lifting.sets.items()},
                "indicator": {"quantity": d.indicator_quantity, "tolerance": d.indicator_tolerance,
                              "reference": d.indicator_reference,
                              "calibration": d.calibration.card() if d.calibration is not None else None,
                              "guarantee": d.calibration.statement if d.calibration is not None else
                              "Gappy residual of the indicator quantity at the reduced points, relative; "
                              "a heuristic (no bound), trusted when below the tolerance"}}

    def __repr__(self) -> str:
        return (f"ReducedModel({str(self.path) if self.path else '<memory>'}: {self.n_modes} modes, "
                f"{self.n_reduced_points} reduced points, surfaces {sorted(self.data.pressure)})")

    # -- loadings -------------------------------------------------------------------------------------------
    def _restricted(self, loading: Loading) -> Loading:
        """The loading with a nodal temperature field restricted to the model's temperature nodes."""
        temp = loading.temperature
        if isinstance(temp, NodalTemperature) and temp.values.shape[1] == self.n_mesh_nodes:
            temp = NodalTemperature(np.asarray(temp.times, float), temp.values[:, self.data.temperature_nodes])
            return dataclasses.replace(loading, temperature=temp)
        return loading

    def _temperature_nodes(self, loading: Loading, t: float) -> np.ndarray:
        return loading.nodal_temperature(t, self.data.temperature_coordinates)

    def temperature(self, loading: Loading, t: float) -> np.ndarray:
        """``(n_rp,)`` temperatures at the reduced points at time ``t`` (loading already restricted)."""
        return self._interp @ self._temperature_nodes(loading, t)

    def external_force(self, loading: Loading, t: float) -> np.ndarray:
        """``f_ext(t)`` ``(N,)``: pressures x amplitudes, tractions and forces (vector(t) per set),
        omega(t)^2 x centrifugal, gravity."""
        d = self.data
        return load_vector(loading, t, {"pressure": d.pressure, "traction": d.traction, "force": d.force,
                                        "centrifugal": d.centrifugal, "gravity": d.gravity}, self.n_modes)

    def check_loading(self, loading: Loading | dict, *, extrapolate: bool = False) -> tuple[Loading, list[str]]:
        """Validate ``loading`` for this model (see :mod:`structrom.rom.online.schema`).

        Returns the loading (temperature restricted to the model's temperature nodes) and the list of
        family violations (non-empty only with ``extrapolate=True``). Raises
        :class:`~structrom.rom.loading.LoadingError`.
        """
        loading, violations, _, _ = self._check(loading, extrapolate)
        return loading, violations

    def _check(self, loading: Loading | dict, extrapolate: bool) -> tuple[Loading, list[str], dict, dict]:
        """:meth:`check_loading`, also returning the temperatures at the reduced points and at the
        validation points for each of ``loading.times`` (computed once here for the checks, reused by the
        solve)."""
        d = self.data
        loading = as_loading(loading)
        check_structure(loading, pressure=d.pressure, centrifugal=d.centrifugal,
                        centrifugal_axis=d.centrifugal_axis, gravity=d.gravity, dirichlet=d.dirichlet,
                        n_mesh_nodes=self.n_mesh_nodes, n_temperature_nodes=len(d.temperature_nodes),
                        traction=d.traction, force=d.force, lifting=d.lifting)
        loading = self._restricted(loading)
        # temperatures at every time of the loading (raises LoadingError on non-finite values)
        nodal = loading.nodal_temperatures(loading.times, d.temperature_coordinates)
        violations = check_family(loading, d.loading_schema, lambda: nodal)
        if violations and not extrapolate:
            raise LoadingError("; ".join(violations) + ". This loading is outside the model's training family: "
                               "pass extrapolate=True to solve it anyway (check result.indicator)")
        at_points = np.ascontiguousarray((self._interp @ nodal.T).T)  # (n_times, n_rp): contiguous rows
        at_val = {}
        if self.validation is not None:
            val = np.ascontiguousarray((self.validation.interp @ nodal.T).T)
            at_val = {float(t): val[i] for i, t in enumerate(loading.times)}
        return loading, violations, {float(t): at_points[i] for i, t in enumerate(loading.times)}, at_val

    def _validation_temperature(self, loading: Loading, t: float, at_val: dict) -> np.ndarray | None:
        if self.validation is None:
            return None
        if t in at_val:
            return at_val[t]
        return self.validation.interp @ self._temperature_nodes(loading, t)

    # -- solve ------------------------------------------------------------------------------------------------
    def solve(self, loading: Loading | dict, *, extrapolate: bool = False, rtol: float = 1e-8,
              max_iterations: int = 25, max_cutbacks: int = 4, initial_guess: str = "linear",
              indicator: bool = True, time_step_estimate: bool | None = None) -> Result:
        """Solve every increment of ``loading`` (a :class:`~structrom.rom.loading.Loading` or its dict form).

        One reduced Newton solve per increment ``times[i-1] -> times[i]`` (:mod:`structrom.rom.online.newton`);
        a failed attempt (no convergence in ``max_iterations``, a law failing at a point, a singular
        reduced tangent, non-finite values) halves the increment, at most ``max_cutbacks`` times per
        requested increment, then raises :class:`OnlineSolverError`. Newton starts from the linear
        extrapolation of the last two converged states (``initial_guess="linear"``, Abaqus's default; exact
        for a response linear in time, so elastic increments converge at the first evaluation) or from the
        last converged state (``"previous"``); when an extrapolated start fails (e.g. at a load reversal),
        the increment is retried from the converged state before it is cut back.

        Validation (:meth:`check_loading`, :mod:`structrom.rom.online.schema`): non-finite values, pressures on
        surfaces without a reduced load, centrifugal / gravity loads the model lacks always raise
        :class:`~structrom.rom.loading.LoadingError`; a loading outside the model's ``loading_schema`` raises it
        unless ``extrapolate`` (the violations are then in ``result.warnings``). Schema example::

            {"temperature": {"type": "hot_spot", "ranges": {"intensity": [lo, hi],
                             "center": [[lo, hi], [lo, hi], [lo, hi]], "radius": [lo, hi]}},
             "pressure": {"holes": {"range": [lo, hi]}},     # peak of the amplitude
             "centrifugal": {"omega_range": [lo, hi]}, "times": {"end_range": [lo, hi]}}

        Temperatures are evaluated at the model's temperature nodes only (a
        :class:`~structrom.rom.loading.NodalTemperature` on the whole mesh is restricted to them).

        Error indicator (:mod:`structrom.rom.online.indicator`): with ``indicator`` (default) every
        component is computed per increment (``result.indicator_components``); a calibrated model turns
        them into bounds of the relative errors of displacement, stress and cumulated plastic strain
        (``result.error_bounds``), ``result.indicator`` being their largest. ``indicator=False`` (or an
        uncalibrated model) keeps the Gappy residual of the model's indicator quantity only.
        ``time_step_estimate``: compute the step-doubling component (two extra law evaluations at the
        reduced points per increment; default: only when a law is rate-dependent, e.g. Norton creep;
        otherwise the component is 0). Always computed when the model's calibration gives it a non-zero
        factor (the bounds then depend on it).
        """
        if initial_guess not in ("linear", "previous"):
            raise OnlineError(f"initial_guess must be 'linear' or 'previous', got {initial_guess!r}")
        if not (rtol > 0 and max_iterations >= 1 and max_cutbacks >= 0):
            raise OnlineError(f"need rtol > 0, max_iterations >= 1, max_cutbacks >= 0; got {rtol}, "
                              f"{max_iterations}, {max_cutbacks}")
        start = time.perf_counter()
        loading, warnings, temperatures, val_temperatures = self._check(loading, extrapolate)
        t_check = time.perf_counter() - start
        system, regions, d = self.system, self.regions, self.data
        times = loading.times
        n_inc = len(times) - 1
        stats: dict = {"law": 0.0, "law_calls": 0, "linear": 0.0}
        tangent_cache: dict = {}
        state = system.initial_state(float(times[0]), temperatures[float(times[0])])
        lift = d.lifting
        matched = lift.match(loading) if lift is not None else {}
        if lift is not None:  # the reference state has zero displacement, as in the HF solver
            state.lift = np.zeros(lift.n_fields)

        def lift_at(t: float) -> np.ndarray | None:
            return None if lift is None else lift.amplitudes(loading, [t], matched)[0]
        q = np.zeros((n_inc, self.n_modes))
        iterations, cutbacks = np.zeros(n_inc, np.int64), np.zeros(n_inc, np.int64)
        residuals, per_inc = np.zeros(n_inc), np.zeros(n_inc)
        converged: list[State] = []
        gappy = self.gappy[d.indicator_quantity]
        prev = None
        tracker = None
        ind_stats: dict = {"indicator": 0.0}  # seconds in the indicator's components (laws included)
        dual_rows: dict[str, list] = {name: [] for name in self.gappy if name != "stress"}
        if indicator:
            t_ind = time.perf_counter()
            if time_step_estimate is None:
                time_step_estimate = any(rate_dependent(r.law) for r in regions)
            if d.calibration is not None and "time_step" in d.calibration.components and np.any(
                    d.calibration.factors[:, 1 + d.calibration.components.index("time_step")] > 0):
                time_step_estimate = True  # part of the calibrated bounds
            tracker = IndicatorTracker(regions, system, self.gappy, self.validation, self.references, n_inc,
                                       d.calibration.envelope(loading, d.loading_schema) if d.calibration is not None
                                       else family_distance(loading, d.loading_schema), time_step_estimate)
            tracker.start(state, self._validation_temperature(loading, float(times[0]), val_temperatures))
            ind_stats["indicator"] += time.perf_counter() - t_ind
        for i in range(n_inc):
            t_inc = time.perf_counter()
            t_new = float(times[i + 1])
            targets, cuts, its = [t_new], 0, 0
            extrapolate_q = initial_guess == "linear"
            while targets:
                target = targets[-1]
                guess = None  # linear extrapolation of the last two converged states (also to a cut-back target)
                if extrapolate_q and prev is not None:
                    guess = state.q + (target - state.time) / (state.time - prev.time) * (state.q - prev.q)
                f_target = self.external_force(loading, target)
                try:
                    out = newton_step(system, state, target, f_target,
                                      temperatures[target] if target in temperatures else
                                      self.temperature(loading, target), rtol, max_iterations, stats,
                                      tangent_cache, guess=guess, lift=lift_at(target))
                except StepFailure as exc:
                    if guess is not None:  # e.g. a load reversal: the extrapolation points the wrong way;
                        extrapolate_q = False  # retry this target from the converged state before cutting back
                        continue
                    extrapolate_q = initial_guess == "linear"  # a cut-back target starts extrapolated again
                    cuts += 1
                    if cuts > max_cutbacks:
                        raise OnlineSolverError(
                            f"increment {i + 1}/{n_inc} ending at t={t_new:g} failed after {max_cutbacks} "
                            f"cutbacks (last attempt t={state.time:g} -> {target:g}): {exc}. Try smaller time "
                            "increments (more loading.times), check that the loading is inside the model's "
                            "training family, or raise max_iterations / max_cutbacks") from None
                    targets.append(0.5 * (state.time + target))
                    continue
                prev, state = state, out.state
                if tracker is not None:
                    t_ind = time.perf_counter()
                    tracker.substep(prev, state, self._validation_temperature(loading, target, val_temperatures),
                                    ind_stats)
                    ind_stats["indicator"] += time.perf_counter() - t_ind
                its += out.iterations
                targets.pop()
            q[i], iterations[i], cutbacks[i], residuals[i] = state.q, its, cuts, out.residual
            converged.append(state)
            for name in dual_rows:
                dual_rows[name].append(dual_values(name, regions, state))
            if tracker is not None:
                t_ind = time.perf_counter()
                tracker.finish(i, state, f_target,  # the last target is t_new
                               {"stress": state.stress, **{k: v[-1] for k, v in dual_rows.items()}})
                ind_stats["indicator"] += time.perf_counter() - t_ind
            per_inc[i] = time.perf_counter() - t_inc
        stress = np.array([st.stress for st in converged]).reshape(n_inc, self.n_reduced_points, 6)
        duals = {name: stress if name == "stress" else np.array(dual_rows[name]) for name in self.gappy}
        # the Gappy residual of the indicator quantity at every increment in one product
        legacy = gappy.indicators(duals[d.indicator_quantity], d.indicator_reference) if n_inc else np.zeros(0)
        components: dict[str, np.ndarray] = {}
        bounds: dict[str, np.ndarray] = {}
        indicator_values = legacy
        if tracker is not None:
            t_ind = time.perf_counter()
            components, bounds = tracker.summary(d.calibration)
            if bounds:
                indicator_values = np.max(list(bounds.values()), axis=0)
            ind_stats["indicator"] += time.perf_counter() - t_ind
        lift_b = lift.amplitudes(loading, times[1:], matched) if lift is not None else np.zeros((n_inc, 0))
        reactions = {}
        if lift is not None and n_inc:
            r = lift.reactions(stress, d.weights, lift.load_terms(loading, times[1:]))
            reactions = {key: r[:, j] for j, key in enumerate(lift.keys)}
        timings = {"total": time.perf_counter() - start, "check": t_check, "per_increment": per_inc,
                   "law": stats["law"], "law_calls": stats["law_calls"], "linear": stats["linear"],
                   "indicator": ind_stats["indicator"]}
        return Result(model=self, loading=loading, times=times[1:].copy(), coordinates=q,
                      newton_iterations=iterations, cutbacks=cutbacks, residuals=residuals,
                      indicator=indicator_values, trusted=indicator_values <= d.indicator_tolerance,
                      indicator_components=components, error_bounds=bounds,
                      dual_reduced=duals, stress_reduced=stress,
                      timings=timings, warnings=warnings, lift=lift_b, reactions=reactions,
                      strain_reduced=np.array([st.strain for st in converged]).reshape(n_inc, self.n_reduced_points, 6))

    # -- full-size data, read on demand (reconstruction only) -----------------------------------------------
    @contextlib.contextmanager
    def _h5(self):
        """The model's HDF5 group, open for reading (a context manager)."""
        import h5py

        if self.path is None:
            raise OnlineError("this model lives in memory and has no full modes / dual bases: "
                              "load it from a file or give data.modes and the dual bases")
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            raise ModelFileError(f"{self.path}: cannot reopen the model file ({exc})") from None
        with f:
            yield f[self.group]

    def modes(self, dofs: np.ndarray | None = None) -> np.ndarray:
        """Rows ``dofs`` of the full displacement modes ``(len(dofs), N)`` (all ``(n_dofs, N)`` if None).
        Small selections are read from the file; the whole matrix is read (and kept) otherwise."""
        return self._full_rows("modes", "modes/full", self.data.modes, dofs)

    def lifting_fields(self, dofs: np.ndarray | None = None) -> np.ndarray:
        """Rows ``dofs`` of the unit fields of the prescribed displacements ``(len(dofs), n_G)`` (as
        :meth:`modes`); ``(.., 0)`` for a model without them."""
        lift = self.data.lifting
        if lift is None:
            return np.zeros((3 * (self.n_mesh_nodes or 0) if dofs is None else len(dofs), 0))
        return self._full_rows("lifting", "lifting/full", lift.full, dofs)

    def _full_rows(self, key: str, dataset: str, in_memory, dofs: np.ndarray | None) -> np.ndarray:
        full = self._cache.get(key)
        if full is None and in_memory is not None:
            full = self._cache[key] = np.asarray(in_memory)
        if full is not None:
            return full if dofs is None else full[dofs]
        with self._h5() as f:
            ds = f[dataset]
            if dofs is None or len(dofs) > 0.05 * ds.shape[0] or len(dofs) > 4096:
                full = self._cache[key] = ds[()]
                return full if dofs is None else full[dofs]
            uniq, inv = np.unique(dofs, return_inverse=True)
            return ds[uniq.tolist(), :][inv] if len(uniq) else np.zeros((0, ds.shape[1]))

    def dual_basis(self, quantity: str) -> np.ndarray:
        """The full Gappy basis ``(n_points * c, m)`` of a dual quantity (read once, then kept)."""
        if quantity not in self.data.duals:
            raise OnlineError(f"this model has no dual basis for {quantity!r}; it has {sorted(self.data.duals)}")
        key = ("dual", quantity)
        if key not in self._cache:
            basis = self.data.duals[quantity].basis
            if basis is None:
                with self._h5() as f:
                    basis = f[f"dual/{quantity}/basis"][()]
            self._cache[key] = np.asarray(basis)
        return self._cache[key]

    def von_mises_basis(self) -> np.ndarray:
        """The stress basis mapped so that von Mises is a norm: ``(n_points * 6, m)`` rows ``V Psi_k`` with
        ``V = diag(sqrt(1.5 W)) P_dev`` (``W``: :data:`structrom.rom.voigt.STRESS_WEIGHTS`), hence
        ``von_mises(Psi_k beta) = ||V Psi_k beta||`` (read once, then kept)."""
        key = ("von_mises_basis",)
        if key not in self._cache:
            basis = self.dual_basis("stress")  # (n_points * 6, m), point-major rows
            m = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
            V = np.sqrt(1.5 * STRESS_WEIGHTS)[:, None] * (np.eye(6) - np.outer(m, m) / 3.0)
            self._cache[key] = np.einsum("ij,pjm->pim", V, basis.reshape(-1, 6, basis.shape[1])).reshape(basis.shape)
        return self._cache[key]

    def node_set(self, name: str) -> np.ndarray:
        """Node indices of a node set of the model's mesh (read from the file)."""
        key = ("node_set", name)
        if key not in self._cache:
            if self.data.mesh is not None:
                self._cache[key] = self.data.mesh.node_set(name)
            else:
                with self._h5() as f:
                    sets = f.get("mesh/node_sets")
                    if sets is None or name not in sets:
                        known = sorted(sets) if sets is not None else []
                        raise OnlineError(f"node set {name!r} is not in the model's mesh; known: {known}")
                    self._cache[key] = sets[name][()]
        return self._cache[key]
