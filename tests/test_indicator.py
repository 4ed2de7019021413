"""The calibrated error indicator: components, calibration fit, model-file round trip, detection of an
injected error on a small calibrated model."""
from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

import offline_fixtures as F
from structrom.rom import model_file
from structrom.rom.loading_dict import loading_from_dict
from structrom.rom.materials import law_from_config
from structrom.rom.offline.calibration import fit_factors, relative_errors, true_errors
from structrom.rom.online import ReducedModel
from structrom.rom.online.indicator import (COMPONENTS, QUANTITIES, Calibration, IndicatorError, family_distance,
                                           step_doubling)

NORTON = {"type": "norton_viscoplasticity",
          "elastic": {"young": 200000.0, "poisson": 0.3, "expansion": 0.0, "reference_temperature": 20.0},
          "hardening": {"type": "linear", "yield_stress": 100.0, "modulus": 1000.0}, "K": 1000.0, "n": 4.0}


def test_step_doubling_is_second_order_locally_and_first_order_accumulated():
    """Backward Euler has local error O(dt^2): halving the step divides the step-doubling estimate of one
    step by 4, and the estimate accumulated over a fixed interval by 2 (Norton creep, uniaxial strain ramp)."""
    law = law_from_config(NORTON)
    rate = np.array([[2e-3, -1e-3, -1e-3, 0.0, 0.0, 0.0]])  # strain per second, plus a prestrain
    eps0 = 1.5e-3 * rate / rate[0, 0]
    # bring the point onto the creep regime first (one converged history), then estimate one step
    state = law.initial_state(1)
    out = law.integrate(np.zeros((1, 6)), eps0, np.array([20.0]), np.array([20.0]), 1.0, state)
    local, total = [], []
    for dt in (0.02, 0.01, 0.005, 0.0025):
        d_p, _ = step_doubling(law, eps0, eps0 + dt * rate, np.array([20.0]), np.array([20.0]), dt, out.state)
        local.append(abs(float(d_p[0])))
        n = int(round(0.08 / dt))
        eps, st, acc = eps0.copy(), out.state, 0.0
        for _ in range(n):
            d_p, _ = step_doubling(law, eps, eps + dt * rate, np.array([20.0]), np.array([20.0]), dt, st)
            acc += abs(float(d_p[0]))
            st = law.integrate(eps, dt * rate, np.array([20.0]), np.array([20.0]), dt, st).state
            eps = eps + dt * rate
        total.append(acc)
    local_rates = np.log2(np.array(local[:-1]) / np.array(local[1:]))
    total_rates = np.log2(np.array(total[:-1]) / np.array(total[1:]))
    assert np.all(local[-1] > 0)
    assert np.all(np.abs(local_rates - 2.0) < 0.2), local_rates
    assert np.all(np.abs(total_rates - 1.0) < 0.2), total_rates


def test_fit_factors_bound_every_sample_with_the_margin():
    rng = np.random.default_rng(0)
    A = rng.uniform(0, 0.1, size=(60, len(COMPONENTS)))
    err = 0.3 * A[:, 0] + 2.0 * A[:, 3] * rng.uniform(0.5, 1.0, 60) + 1e-3
    a = fit_factors(A, err, margin=1.5, tolerance=0.05)
    bound = a[0] + A @ a[1:]
    assert np.all(a >= 0)
    assert np.all(bound >= 1.5 * err * (1 - 1e-9))
    # tight: the bound is not uniformly loose (some sample is at the constraint)
    assert np.min(bound / (1.5 * err)) < 1.0 + 1e-6


def test_relative_errors_use_the_largest_value_and_the_floor():
    e = relative_errors(np.array([1.0, 2.0, 1.0]), np.array([10.0, 2.0, 20.0]), floor=4.0)
    assert np.allclose(e, [0.05, 0.1, 0.05])
    assert np.allclose(relative_errors(np.array([1.0]), np.array([0.0]), floor=4.0), [0.25])


def test_gappy_residual_relative_to_the_largest_value_so_far():
    """With ``history`` the Gappy residual of increment i is relative to max_{j<=i} ||v_j|| (as the true
    errors are relative to the answer's largest value): an unloaded increment whose small residual value
    keeps the same absolute residual is not rated 20 x worse than the loaded one."""
    from structrom.rom.online.gappy import Gappy

    basis = np.eye(4)[:, :2]  # span of e0, e1; e2 is the part no fit can reproduce
    loaded = np.array([10.0, 0.0, 1.0, 0.0])  # residual 1, norm ~10
    unloaded = np.array([0.0, 0.0, 1.0, 0.0])  # residual 1, norm 1: residual stress after unloading
    v = np.stack([loaded, unloaded])
    g = Gappy(basis, 1)
    plain = g.indicators(v, reference=0.5)
    hist = g.indicators(v, reference=0.5, history=True)
    n_loaded = np.linalg.norm(loaded)
    assert np.allclose(plain, [1.0 / n_loaded, 1.0])
    assert np.allclose(hist, [1.0 / n_loaded, 1.0 / n_loaded])
    # the floor still applies before anything is loaded
    assert np.allclose(g.indicators(np.stack([0.1 * unloaded]), reference=0.5, history=True), [0.2])


def test_family_distance_is_zero_inside_and_grows_outside():
    schema = {"pressure": {"zmax": {"range": [0.0, 8.0]}},
              "temperature": {"type": "hot_spot", "ranges": {"intensity": [300.0, 450.0], "center": [[5, 5], [1, 1], [2, 2]],
                                                             "radius": [2.0, 2.0]}}}

    def loading(p, intensity, cx):
        return loading_from_dict({"times": [0, 0.5, 1, 1.5, 2],
                                  "pressure": {"zmax": [[0, 0], [1, p], [2, 0]]},
                                  "temperature": {"type": "hot_spot", "center": [cx, 1, 2], "radius": 2.0,
                                                  "intensity": intensity, "amplitude": [[0, 0], [1, 1], [2, 0]]}})

    assert np.all(family_distance(loading(6.0, 400.0, 5.0), schema) == 0.0)  # a ramp to an inside peak
    d = family_distance(loading(12.0, 400.0, 5.0), schema)
    assert d[0] < d[1] and np.isclose(d[1], 0.5) and np.isclose(d[-1], 0.5)  # counted from when it passes 8
    assert np.allclose(family_distance(loading(6.0, 400.0, 6.0), schema), 0.5)  # moved by a quarter radius x 2
    assert family_distance(loading(6.0, 400.0, 7.0), schema)[0] > family_distance(loading(6.0, 400.0, 6.0), schema)[0]


#: (hot-spot x, intensity, pressure) of the training loadings: one hot-spot position, a 2 x 2 grid and its centre
CASES = [(5.0, 300.0, 4.0), (5.0, 450.0, 4.0), (5.0, 300.0, 7.0), (5.0, 450.0, 7.0), (5.0, 375.0, 5.5)]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """The offline fixtures' bar (4 training loadings) built by the offline stage with its calibration."""
    from mpi4py import MPI

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    d = tmp_path_factory.mktemp("indicator")
    (d / "train").mkdir()
    F.write_mesh(d)
    F.run_training(d, cases=CASES)
    path = run_offline(load_offline_config(F.offline_config(d, pod_tol=1e-6, ecm_tol=1e-6)), MPI.COMM_SELF,
                       log=lambda *a: None)
    return d, path


def _errors(model, path, case):
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.hifi.config import load_config
    from structrom.rom.offline.replay import MaterialRegions, replay

    loading = load_config(path.parent / f"{case}.toml").build_loading()
    res = model.solve(loading, extrapolate=True)
    mesh = model_file.load(path, mesh=True).mesh
    disc = Discretization(mesh)
    with h5py.File(path.parent / "train" / f"{case}.h5") as f:  # HF snapshots of the case
        u = f["fields/displacement"][()]
    rep = replay(disc, MaterialRegions.build(mesh, disc, [(None, model.laws[0])]), loading, u, mesh.points)
    err = true_errors(res, u, rep.stress, rep.cumulated_plastic_strain, disc.mass_matrix(1.0).tocsr(),
                      disc.point_weights, model.data.calibration.references)
    return res, {k: float(v.max()) for k, v in err.items()}


def test_calibration_is_stored_and_shown(calibrated):
    d, path = calibrated
    data = model_file.load(path)
    cal, val = data.calibration, data.validation
    assert cal is not None and val is not None
    assert cal.factors.shape == (len(QUANTITIES), 1 + len(COMPONENTS)) and np.all(cal.factors >= 0)
    # one left-out (fold) case and one in-sample answer of the model itself per training loading
    assert len(cal.cases) == 2 * len(CASES) and sum(bool(c.get("in_sample")) for c in cal.cases) == len(CASES)
    # the bound holds with the margin on every calibration case (its defining property)
    for case in cal.cases:
        for q in QUANTITIES:
            assert case["bounds"][q] >= cal.margin * case["errors"][q] * (1 - 1e-6)
    # validation points are outside the reduced set and carry a cubature of the same volume (to 1 %)
    assert not np.intersect1d(val.point, data.point).size
    assert val.weights.sum() == pytest.approx(data.weights.sum(), rel=1e-2)  # Tikhonov-regularized fit
    card = cal.card()
    assert "upper bound on the calibration set only" in card["guarantee"].lower()
    from structrom.api.registry import model_card  # the card the server publishes

    shown = model_card("bar", path)["indicator"]["calibration"]
    assert shown["guarantee"] == cal.statement and shown["margin"] == cal.margin
    assert set(shown["factors"]) == set(QUANTITIES) and len(shown["calibration_cases"]) == 2 * len(CASES)
    from structrom.api.service import indicator_kind  # what an answer says its indicator is
    from structrom.rom.online import ReducedModel

    assert indicator_kind(ReducedModel.load(path)) == "calibrated_error_bound"
    with h5py.File(path) as f:
        assert int(f.attrs["schema_version"]) == model_file.SCHEMA_VERSION == 2


def test_round_trip_and_version_1_files(calibrated, tmp_path):
    d, path = calibrated
    data = model_file.load(path, mesh=True, full=True)
    out = model_file.write(tmp_path / "copy.h5", data, data.mesh, np.asarray(data.modes),
                           {k: np.asarray(v.basis) for k, v in data.duals.items()})
    back = model_file.load(out)
    assert np.array_equal(back.calibration.factors, data.calibration.factors)
    assert back.calibration.references == data.calibration.references
    assert back.calibration.cases == data.calibration.cases
    for key in ("point", "weights", "material", "integrator"):
        assert np.array_equal(getattr(back.validation, key), getattr(data.validation, key))
    assert (back.validation.interpolation != data.validation.interpolation).nnz == 0
    # a version 1 file (no validation set, no calibration) still loads and solves with the Gappy residual
    old = dataclasses.replace(data, validation=None, calibration=None)
    v1 = model_file.write(tmp_path / "v1.h5", old, data.mesh, np.asarray(data.modes),
                          {k: np.asarray(v.basis) for k, v in data.duals.items()})
    with h5py.File(v1, "r+") as f:
        f.attrs["schema_version"] = 1
    model = ReducedModel.load(v1)
    res = model.solve(loading_from_dict(F_LOADING), extrapolate=True)
    assert res.error_bounds == {} and res.indicator.shape == (6,)
    assert np.allclose(res.indicator, model.gappy[model.indicator_quantity].indicators(
        res.dual_reduced[model.indicator_quantity], model.data.indicator_reference))


F_LOADING = {"times": [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0],
             "pressure": {"zmax": [[0.0, 0.0], [1.0, 6.0], [2.0, 0.0]]},
             "temperature": {"type": "hot_spot", "center": [5.0, 1.0, 2.0], "radius": 2.0, "intensity": 350.0,
                             "reference": 20.0, "amplitude": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]}}


def test_injected_error_is_detected(calibrated):
    """A training loading is trusted with small true errors; dropping modes from the same model (an
    injected error) makes the true errors exceed the tolerance, and the indicator rises above it."""
    d, path = calibrated
    model = ReducedModel.load(path)
    tol = model.indicator_tolerance
    res, err = _errors(model, path, "case_4")
    assert max(err.values()) <= tol
    assert bool(res.trusted.all())
    data = model_file.load(path, full=True)
    keep = 2
    data.integrator = np.ascontiguousarray(data.integrator[:, :, :keep])
    data.singular_values = data.singular_values[:keep]
    data.pressure = {k: v[:keep] for k, v in data.pressure.items()}
    data.validation.integrator = np.ascontiguousarray(data.validation.integrator[:, :, :keep])
    data.modes = np.asarray(data.modes)[:, :keep]
    truncated = ReducedModel(data)
    res2, err2 = _errors(truncated, path, "case_4")
    assert max(err2.values()) > tol
    assert res2.indicator.max() > tol and not bool(res2.trusted.all())
    assert res2.indicator.max() > res.indicator.max()


def test_five_cycle_history_beyond_the_training_is_flagged(calibrated):
    """The symptom that motivated the calibrated indicator: a 5-cycle load/unload/reload history of the
    temperature-dependent J2 bar, trained on single cycles, has a large cumulated-plastic-strain error
    that the Gappy residual of p alone misses; the calibrated indicator flags it."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi

    d, path = calibrated
    n = 5
    times = np.linspace(0.0, 2.0 * n, 4 * n + 1).round(6).tolist()
    press = [[0.0, 0.0]] + [pt for k in range(n) for pt in ([2 * k + 1.0, 6.5], [2 * k + 2.0, 0.0])]
    temp = [[0.0, 0.0]] + [pt for k in range(n) for pt in ([2 * k + 1.0, 1.0], [2 * k + 2.0, 0.0])]
    text = F.HIFI.format(cx=5.0, intensity=420.0, pressure=6.5, out="train/cycles.h5")
    text = text.replace("times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]", f"times = {times}")
    text = text.replace("amplitude = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]] }", f"amplitude = {temp} }}")
    text = text.replace("[[0.0, 0.0], [1.0, 6.5], [2.0, 0.0]]", str(press))
    (d / "cycles.toml").write_text(text)
    run_hifi(load_config(d / "cycles.toml"), log=lambda *a: None)
    model = ReducedModel.load(path)
    res, err = _errors(model, path, "cycles")
    tol = model.indicator_tolerance
    assert res.n_increments == 4 * n
    legacy = model.gappy[model.indicator_quantity].indicators(res.dual_reduced[model.indicator_quantity],
                                                             model.data.indicator_reference).max()
    # measured: p error 12 %, the Gappy residual of p alone 0.024 (below the tolerance: it said "trusted"),
    # the calibrated indicator 0.19
    assert err["cumulated_plastic_strain"] > tol and legacy < tol
    assert res.indicator.max() > tol and not bool(res.trusted.all())
    # the per-increment indicator is non-decreasing (running maxima of the components)
    assert np.all(np.diff(res.indicator) >= -1e-12)


# -- enrichment keeps a calibrated indicator ----------------------------------------------------------------
#: (hot-spot x, intensity, pressure) of the loading enrichment adds: the hot spot moved off the training's x = 5
ENRICH_CASE = (6.0, 400.0, 6.0)


@pytest.fixture(scope="module")
def enrichment_snapshot(calibrated):
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi

    d, _ = calibrated
    return run_hifi(load_config(F.hifi_config(d, "spot6", *ENRICH_CASE)), log=lambda *a: None)


def test_enrichment_refits_the_calibration(calibrated, enrichment_snapshot, tmp_path):
    """An enriched version keeps a calibrated indicator: the new loading's samples are those of the model
    before enrichment (which never saw it: measured here independently), the refitted bounds hold with the
    margin on every sample of every case, old and new, and the validation set follows the new bases."""
    import shutil

    from mpi4py import MPI

    from structrom.rom.offline.snapshots import read_training_case
    from structrom.rom.offline.update import update_model
    from structrom.rom.offline.versions import publish_version

    d, path = calibrated
    old = ReducedModel.load(path)
    _, err_old = _errors(old, path, "spot6")  # the model before enrichment against the new HF snapshots
    copy = tmp_path / "model.h5"
    shutil.copy2(path, copy)
    mesh = model_file.load(path, mesh=True).mesh
    upd = update_model(copy, [read_training_case(enrichment_snapshot, mesh)], MPI.COMM_SELF)
    publish_version(copy, upd.data, upd.mesh, upd.modes, upd.full_duals, [{"name": "spot6"}], note="test")
    new = model_file.load(copy)
    cal, val = new.calibration, new.validation
    assert cal is not None and val is not None and new.version == 2
    assert len(cal.cases) == 2 * len(CASES) + 1 and cal.cases[-1]["held_out_by"] == "version 1"
    for q in QUANTITIES:  # the held-out samples are the old model's true errors on the new loading
        assert cal.cases[-1]["errors"][q] == pytest.approx(err_old[q], rel=1e-6, abs=1e-12)
    assert max(err_old.values()) > cal.tolerance  # the old model was wrong there: a sample that matters
    for case in cal.cases:  # the refitted bound covers every sample with the margin
        b = cal.bounds(np.asarray(case["samples"]["components"]))
        for i, q in enumerate(QUANTITIES):
            assert np.all(b[:, i] >= cal.margin * np.asarray(case["samples"]["errors"][q]) * (1 - 1e-6))
    assert "refitted by enrichment" in cal.statement
    assert not np.intersect1d(val.point, new.point).size and len(val.point) > 0
    assert val.integrator.shape == (len(val.point), 6, len(new.singular_values))
    # component scales follow the grown point sets: the training loading of largest stress stays inside the
    # state envelope (measured 3e-4; with the old scales, the larger reduced set alone put it 3.1 % outside)
    enriched = ReducedModel.load(copy)
    res0, err0 = _errors(enriched, path, "case_3")
    assert res0.indicator_components["state_envelope"].max() < 0.01 and bool(res0.trusted.all())
    assert max(err0.values()) <= cal.tolerance
    # the enriched model answers the new loading with calibrated bounds that cover its true errors
    res, err = _errors(enriched, path, "spot6")
    assert res.error_bounds and max(err.values()) < max(err_old.values())
    for q in QUANTITIES:
        assert res.error_bounds[q].max() >= err[q]


@pytest.mark.mpi
def test_recalibration_is_the_same_on_1_and_2_ranks(calibrated, enrichment_snapshot):
    from mpi_helpers import run_program

    _, path = calibrated
    res = {n: run_program(n, "recalibrate_ranks.py", str(path), str(enrichment_snapshot)) for n in (1, 2)}
    assert res[1]["points"] == res[2]["points"] and res[1]["validation"] == res[2]["validation"]
    assert np.allclose(res[1]["validation_weights"], res[2]["validation_weights"], rtol=1e-6,
                       atol=1e-8 * max(res[1]["validation_weights"]))
    for a, b in zip(res[1]["cases"], res[2]["cases"]):
        for q in QUANTITIES:
            assert a["errors"][q] == pytest.approx(b["errors"][q], rel=1e-6, abs=1e-10)
            assert a["bounds"][q] == pytest.approx(b["bounds"][q], rel=1e-4, abs=1e-8)


def test_carry_calibration_refits_or_scales():
    """Refit on stored samples plus held-out ones bounds all of them with the margin; a calibration
    without stored samples (older files) is scaled until the new samples are covered."""
    from structrom.rom.offline.calibration_samples import case_record, fit_calibration
    from structrom.rom.offline.recalibrate import carry_calibration

    rng = np.random.default_rng(1)
    n_c = len(COMPONENTS)

    def case(name, scale):
        table = np.abs(rng.standard_normal((5, n_c))) * 0.01
        errors = {q: scale * table[:, :3].sum(axis=1) for q in QUANTITIES}  # errors grow with three components
        return case_record(name, table, errors)

    old = fit_calibration([case(f"c{i}", 1.0) for i in range(4)], {"relative_floor": 0.05}, 1.2, 0.05,
                          training=[], scales={})
    new = [case("new", 3.0)]  # a held-out loading the old bounds under-rate
    refit = carry_calibration(old, [dict(c) for c in new], [], {}, version=2)
    for c in refit.cases:
        b = refit.bounds(np.asarray(c["samples"]["components"]))
        for i, q in enumerate(QUANTITIES):
            assert np.all(b[:, i] >= 1.2 * np.asarray(c["samples"]["errors"][q]) * (1 - 1e-6))
    assert len(refit.cases) == 5 and "Version 2: refitted by enrichment" in refit.statement
    bare = dataclasses.replace(old, cases=[{k: v for k, v in c.items() if k != "samples"} for c in old.cases])
    scaled = carry_calibration(bare, [dict(c) for c in new], [], {}, version=2)
    ratio = scaled.factors[old.factors > 0] / old.factors[old.factors > 0]
    assert np.allclose(ratio, ratio[0]) and ratio[0] > 1.0
    b = scaled.bounds(np.asarray(new[0]["samples"]["components"]))
    for i, q in enumerate(QUANTITIES):
        assert np.all(b[:, i] >= 1.2 * np.asarray(new[0]["samples"]["errors"][q]) * (1 - 1e-6))


def test_training_that_never_yields_gives_a_model_whose_indicator_flags_plastic_flow(tmp_path):
    """Elastic training runs of a J2 material: the cumulated plastic strain is 0 in every snapshot, so its Gappy
    basis has 0 modes. The offline stage (with its calibration) still builds the model; an elastic query is then
    trusted, and a query that yields (p > 0 at the reduced points, which the basis cannot represent) is not."""
    from mpi4py import MPI

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    (tmp_path / "train").mkdir()
    F.write_mesh(tmp_path)
    # one hot-spot centre: elastic responses combine the thermal and the pressure field, so that a left-out case
    # lies in the others' span (thermal stress <= E alpha 60 K = 144 MPa, below the 300 MPa yield stress)
    elastic = [(5.0, 40.0, 0.5), (5.0, 60.0, 1.0), (5.0, 30.0, 0.8), (5.0, 50.0, 0.3)]
    F.run_training(tmp_path, cases=elastic)
    path = run_offline(load_offline_config(F.offline_config(tmp_path)), MPI.COMM_SELF, log=lambda *a: None)
    with h5py.File(path) as f:
        assert f["dual/cumulated_plastic_strain/reduced_basis"].shape[1] == 0
    model = ReducedModel.load(path)
    inside = model.solve(_query(5.0, 45.0, 0.7))
    assert inside.trusted.all()
    yielding = model.solve(_query(5.0, 450.0, 8.0), extrapolate=True)
    assert yielding.dual_field("cumulated_plastic_strain", None).max() == 0.0  # (0 modes: nothing reconstructed)
    flows = np.array([yielding.dual_reduced["cumulated_plastic_strain"][k].max() > 0 for k in range(6)])
    assert flows.any() and not flows[0]
    # not trusted from the first increment whose reduced points flow on (even where the stress bound is small)
    assert np.array_equal(yielding.trusted, ~np.logical_or.accumulate(flows))
    assert any("leaves the training regime" in w for w in yielding.warnings)


def _query(cx: float, intensity: float, pressure: float):
    d = F.query_loading(cx, intensity, pressure, "query")
    d.pop("name")
    return loading_from_dict(d)


# -- the onset of plastic flow: the model's own training loading -------------------------------------------
@pytest.fixture(scope="module")
def onset_bar(tmp_path_factory):
    """The ``j2`` model of ``examples/indicator_validation.py`` (3 x 3 training grid, two load/unload cycles;
    9 HF runs and the offline stage with its calibration, margin 1.2, ~20 s) and what replays HF fields on it."""
    import indicator_validation as IV

    from structrom.rom.adapters.calculix import write_mesh_inp
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.fem.structured import box
    from structrom.rom.offline.replay import MaterialRegions

    d = tmp_path_factory.mktemp("onset")
    write_mesh_inp(d / "bar.inp", box((10.0, 2.0, 2.0), (10, 2, 2), element="C3D20R"))
    path = IV.build_model(d, "j2", IV.J2_LAW, IV.J2_TRAIN, ("cyc", [0.0, 0.0]), 0.05, 1.2)
    model = ReducedModel.load(path, keep_full=True)
    mesh = model_file.load(path, mesh=True).mesh
    disc = Discretization(mesh)
    return d, model, mesh, disc, MaterialRegions.build(mesh, disc, [(None, model.laws[0])])


def _onset_errors(onset_bar, case: int):
    """Answer and largest true errors of training case ``case`` of :func:`onset_bar` (its HF snapshots)."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.offline.replay import replay

    d, model, mesh, disc, regions = onset_bar
    loading = load_config(d / f"train_j2_case_{case}.toml").build_loading()
    res = model.solve(loading)
    with h5py.File(d / "train_j2" / f"case_{case}.h5") as f:
        u = f["fields/displacement"][()]
    rep = replay(disc, regions, loading, u, mesh.points)
    err = true_errors(res, u, rep.stress, rep.cumulated_plastic_strain, disc.mass_matrix(1.0).tocsr(),
                      disc.point_weights, model.data.calibration.references)
    return res, {k: float(v.max()) for k, v in err.items()}


def test_onset_of_plastic_flow_in_a_training_loading_is_not_trusted(onset_bar):
    """The model answers its own training loading 5.5 MPa / 450 degC (case 5: plastic flow just starts, at
    ten integration points) with a 5.8 % error of p: the reduced state's 0.6 % stress error, amplified by the
    law near the yield surface. Before, the Gappy and validation components of p (0.0037, 0.0034) measured
    only how well the bases represent the answer's own p, the leave-one-out folds (dominated by the
    out-of-sample representation error) never showed such a case, and the answer was trusted (bound 1.1 %)."""
    _, model, *_ = onset_bar
    cal = model.data.calibration
    res, err = _onset_errors(onset_bar, 5)
    assert err["cumulated_plastic_strain"] > cal.tolerance  # measured 0.058
    assert res.error_bounds["cumulated_plastic_strain"].max() >= err["cumulated_plastic_strain"]
    assert not bool(res.trusted.all())
    # the sensitivity of p to the reduced strain is what grows at the onset (0.06 against 0.015 fully plastic)
    full, err_full = _onset_errors(onset_bar, 8)  # 7 MPa / 450 degC: fully plastic, p error 0.4 %
    onset = res.indicator_components["plastic_sensitivity"].max()
    assert onset > 2.0 * full.indicator_components["plastic_sensitivity"].max() > 0
    assert max(err_full.values()) < cal.tolerance and bool(full.trusted.all())  # still trusted
    # the calibration holds on the model's own answers (in-sample cases) with the margin, as on the folds
    inside = [c for c in cal.cases if c.get("in_sample")]
    assert len(inside) == len(IV_TRAIN_J2) and len(cal.cases) == 2 * len(IV_TRAIN_J2)
    for case in inside:
        b = cal.bounds(np.asarray(case["samples"]["components"]))
        for i, q in enumerate(QUANTITIES):
            assert np.all(b[:, i] >= cal.margin * np.asarray(case["samples"]["errors"][q]) * (1 - 1e-6))


IV_TRAIN_J2 = [(p, i) for p in (4.0, 5.5, 7.0) for i in (300.0, 375.0, 450.0)]


def test_zero_loading_is_trusted_and_a_tiny_one_by_its_true_error(onset_bar):
    """A zero loading (no pressure, no hot spot) is answered exactly (u = 0) and must be trusted. Its
    equilibrium residual is round-off, and so was the force reference it was measured against (the answer's
    own internal-force scale): the component was 0.16 and the ``j2`` model's bound 2.2, a false alarm. The
    reference is now raised as the stress is floored (``FORCE_FLOOR_KEY``). A loading of 1e-6 of a training
    one (HF solved here) is trusted only because its true relative errors, floored as the calibration's, are
    within the tolerance, and its bounds stay above them."""
    import indicator_validation as IV

    from structrom.rom.hifi.config import load_config
    from structrom.rom.offline.replay import replay
    from structrom.rom.online.indicator import FORCE_FLOOR_KEY

    d, model, mesh, disc, regions = onset_bar
    cal = model.data.calibration
    assert cal.references[FORCE_FLOOR_KEY] == 1.0
    assert cal.factors[:, 1 + COMPONENTS.index("equilibrium")].any()  # the component counts in this model

    def answer(name, spec, intensity, data=None):
        cfg = IV.hf_config(d, "test_j2", name, IV.J2_LAW, spec, IV.CX, intensity)
        IV.run_hf(cfg)
        loading = load_config(cfg).build_loading()
        res = (model if data is None else ReducedModel(data)).solve(loading, extrapolate=True)
        with h5py.File(d / "test_j2" / f"{name}.h5") as f:
            u = f["fields/displacement"][()]
        rep = replay(disc, regions, loading, u, mesh.points)
        err = true_errors(res, u, rep.stress, rep.cumulated_plastic_strain, disc.mass_matrix(1.0).tocsr(),
                          disc.point_weights, cal.references)
        return res, {k: float(v.max()) for k, v in err.items()}

    zero, err = answer("zero", ("cyc", [0.0, 0.0]), 0.0)
    assert np.abs(zero.displacement(increment=None)).max() < 1e-12 and max(err.values()) < 1e-10
    assert zero.indicator_components["equilibrium"].max() < 1e-8  # 0.16 against the round-off reference
    assert bool(zero.trusted.all())
    tiny, err = answer("tiny", ("cyc", [5.5e-6, 5.5e-6]), 375e-6)
    assert max(err.values()) <= cal.tolerance and bool(tiny.trusted.all())
    for q in QUANTITIES:
        assert tiny.error_bounds[q].max() >= err[q]
    # files calibrated before keep the bare reference (their factors were fitted with it): the former flag
    data = model_file.load(model.path, full=True)
    data.calibration = dataclasses.replace(
        cal, references={k: v for k, v in cal.references.items() if k != FORCE_FLOOR_KEY})
    before, _ = answer("zero", ("cyc", [0.0, 0.0]), 0.0, data)
    assert before.indicator_components["equilibrium"].max() > 1e-3 and not bool(before.trusted.all())


def test_calibration_of_an_earlier_version_applies_to_its_components():
    """A model file calibrated before ``plastic_sensitivity`` existed names 8 components: its factors apply to
    those columns of this version's table, and its stored samples join a refit with 0 for the new one."""
    from structrom.rom.offline.calibration_samples import case_record, fit_calibration

    old_names = COMPONENTS[:-1]
    rng = np.random.default_rng(2)
    factors = np.abs(rng.standard_normal((len(QUANTITIES), 1 + len(old_names))))
    old = Calibration(factors, {}, 1.2, 0.05, components=old_names)
    table = np.abs(rng.standard_normal((4, len(COMPONENTS))))
    assert np.allclose(old.bounds(table), old.bounds(table[:, :-1]))
    with pytest.raises(IndicatorError, match="does not compute"):
        Calibration(factors, {}, 1.2, 0.05, components=old_names[:-1] + ("from_the_future",))
    old_case = case_record("old", table[:, :-1], {q: 0.01 * table[:, 0] for q in QUANTITIES})
    old_case["samples"]["components"] = table[:, :-1].tolist()  # as stored by the earlier version
    new_case = case_record("new", table, {q: 0.01 * table[:, -1] for q in QUANTITIES})
    cal = fit_calibration([old_case, new_case], {}, 1.2, 0.05, training=[], scales={})
    assert cal.components == COMPONENTS
    for c in cal.cases:
        b = cal.bounds(np.pad(np.asarray(c["samples"]["components"]), ((0, 0), (0, len(COMPONENTS) - len(
            c["samples"]["components"][0])))))
        for i, q in enumerate(QUANTITIES):
            assert np.all(b[:, i] >= 1.2 * np.asarray(c["samples"]["errors"][q]) * (1 - 1e-6))

