"""The indicator past the training's duration: the bounds of rate-dependent models grow in proportion to time
(``structrom.rom.online.indicator.time_extrapolation``), checked on the creep bar of
``examples/indicator_validation.py`` against the HF solver."""
from __future__ import annotations

import tomllib

import h5py
import numpy as np
import pytest

import indicator_validation as IV
from structrom.rom import model_file
from structrom.rom.materials import law_from_config
from structrom.rom.offline.calibration import true_errors
from structrom.rom.online import ReducedModel
from structrom.rom.online.indicator import QUANTITIES, time_extrapolation


def test_time_extrapolation_only_for_rate_dependent_laws_past_the_training():
    """``tau_i = max(1, (t_i - t_0) / T)``, ``T`` the training's last time, for rate-dependent laws only."""
    norton = law_from_config(tomllib.loads("law = " + IV.NORTON_LAW)["law"])
    j2 = law_from_config(tomllib.loads("law = " + IV.J2_LAW)["law"])
    schema = {"times": {"end_range": [4.0, 8.0]}}
    times = np.array([0.0, 4.0, 8.0, 12.0, 16.0])
    assert np.allclose(time_extrapolation(times, schema, [norton]), [1.0, 1.0, 1.5, 2.0])
    assert np.allclose(time_extrapolation(times + 3.0, schema, [j2, norton]), [1.0, 1.0, 1.5, 2.0])  # from t_0
    assert np.array_equal(time_extrapolation(times, schema, [j2]), np.ones(4))  # time is a load parameter
    assert np.array_equal(time_extrapolation(times, {}, [norton]), np.ones(4))


@pytest.fixture(scope="module")
def creep_bar(tmp_path_factory):
    """The ``norton`` model of ``examples/indicator_validation.py`` (3 x 3 training grid, holds of 2-6 s, last
    time 8 s; 9 HF runs and the offline stage with its calibration, margin 1.2, ~10 s) and what replays HF
    fields on it."""
    from structrom.rom.adapters.calculix import write_mesh_inp
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.fem.structured import box
    from structrom.rom.offline.replay import MaterialRegions

    d = tmp_path_factory.mktemp("creep")
    write_mesh_inp(d / "bar.inp", box((10.0, 2.0, 2.0), (10, 2, 2), element="C3D20R"))
    path = IV.build_model(d, "norton", IV.NORTON_LAW, IV.NORTON_TRAIN, ("hold", 0.0, 3.0), 0.05, 1.2)
    model = ReducedModel.load(path, keep_full=True)
    mesh = model_file.load(path, mesh=True).mesh
    disc = Discretization(mesh)
    return d, model, mesh, disc, MaterialRegions.build(mesh, disc, [(None, model.laws[0])])


def test_a_creep_hold_far_beyond_the_training_widens_every_bound(creep_bar):
    """A 45 s hold (training: 2-6 s, last time 8 s) at 3.9 MPa / 440 degC: the drift of the reduced answer
    grows along the hold, and the calibrated bounds of u and stress (fitted on histories up to 8 s) were 3.5
    and 1.4 x below their true errors (1.5 % and 6.2 %), the flag kept only by the p bound. Past the
    training's last time the bounds grow in proportion to time (x 47 / 8 at the end): each is above its error."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.offline.replay import replay

    d, model, mesh, disc, regions = creep_bar
    cfg = IV.hf_config(d, "test_norton", "hold_45", IV.NORTON_LAW, ("hold", 3.9, 45.0), IV.CX, 440.0)
    IV.run_hf(cfg)
    loading = load_config(cfg).build_loading()
    res = model.solve(loading, extrapolate=True)
    with h5py.File(d / "test_norton" / "hold_45.h5") as f:
        u = f["fields/displacement"][()]
    rep = replay(disc, regions, loading, u, mesh.points)
    err = true_errors(res, u, rep.stress, rep.cumulated_plastic_strain, disc.mass_matrix(1.0).tocsr(),
                      disc.point_weights, model.data.calibration.references)
    tau = max(1.0, (loading.times[-1] - loading.times[0]) / model.data.loading_schema["times"]["end_range"][1])
    assert tau == pytest.approx(47.0 / 8.0)
    assert any("past the longest training history" in w for w in res.warnings)
    for q in QUANTITIES:
        assert res.error_bounds[q].max() >= err[q].max(), q
    # the bound as fitted (without the time factor) missed the displacement error
    assert res.error_bounds["displacement"][-1] / tau < err["displacement"].max()
    assert not bool(res.trusted.all())
