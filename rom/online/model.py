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

The model's loading-side methods (validation, temperatures, reduced forces) are in
:mod:`structrom.rom.online.reduced_loading`, its on-demand reads of full-size data in
:mod:`structrom.rom.online.full_data`, the dual quantities in :mod:`structrom.rom.online.duals` and the
errors in :mod:`structrom.rom.online.errors`; this module keeps the construction and the reduced Newton
solve, and re-exports those names.

No MPI or PETSc import on this path.
"""
from __future__ import annotations
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from structrom.rom import model_file
from structrom.rom.loading import Loading
from structrom.rom.materials import MaterialError, law_from_config
from structrom.rom.model_file import ModelFileError, ReducedModelData

from .duals import DUAL_QUANTITIES, dual_values
from .errors import OnlineError, OnlineSolverError
from .full_data import FullSizeData
from .gappy import Gappy
from .indicator import IndicatorTracker, ValidationRuntime, family_distance, rate_dependent, time_extrapolation
from .newton import ReducedSystem, Region, State, StepFailure, newton_step
from .radial_return import KinematicReturnSystem, RadialReturnSystem
from .reduced_loading import LoadingEvaluation
from .result import Result
from .schema import SchemaError, validate_schema


def _arrays(loads: dict) -> list[np.ndarray]:
    """The arrays of a nested dict of reduced loads (:func:`structrom.rom.lifting.load_vector`'s ``loads``)."""
    out = []
    for v in loads.values():
        out += _arrays(v) if isinstance(v, dict) else ([] if v is None else [np.asarray(v)])
    return out


class ReducedModel(LoadingEvaluation, FullSizeData):
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
                                       else family_distance(loading, d.loading_schema), time_step_estimate,
                                       time_extrapolation(times, d.loading_schema, [r.law for r in regions]))
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
        if bounds and np.any(tracker.time_factor > 1.0):
            k = int(np.argmax(tracker.time_factor > 1.0))
            warnings.append(f"from t = {times[k + 1]:g} the loading runs past the longest training history "
                            f"(t = {d.loading_schema['times']['end_range'][1]:g}) of a rate-dependent model: its "
                            "error bounds grow in proportion to time there "
                            f"(x {tracker.time_factor.max():.3g} at the end)")
        if tracker is not None:
            unseen = tracker.unseen
        else:
            unseen = np.zeros(n_inc, bool)
            for name, v in duals.items():
                if n_inc and self.gappy[name].n_modes == 0:
                    unseen |= np.any(v.reshape(n_inc, -1) != 0.0, axis=1)
            unseen = np.logical_or.accumulate(unseen)
        if unseen.any():  # (calibrated or not: nothing in the training measured such a state)
            indicator_values = np.where(unseen, np.inf, indicator_values)
            warnings.append(f"from t = {times[1:][np.argmax(unseen)]:g} a dual quantity that was zero in every "
                            "training snapshot (e.g. the cumulated plastic strain of elastic training runs) is not: "
                            "the loading leaves the training regime, and the answer is not trusted there")
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
