"""REST answers of a model with prescribed displacements (a real server on 127.0.0.1): the model card lists
the prescribed sets with their components and training ranges, a query imposes the displacement through
``loading.displacement`` and gets the reaction resultant on the set (against the HF internal forces) and, with
``cycles``, the per-cycle strain range, stress amplitude, mean stress and ratcheting (against the same
quantities of the HF fields at the reduced points); bad cycle bounds and prescribed sets are named."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import api_fixtures as af
from test_lifting import TIMES, _hifi, _loading, _offline, _rel, hf_reaction

from structrom.api.client import ApiError, Client
from structrom.rom.adapters.calculix import write_mesh_inp
from structrom.rom.fem.structured import box

TRAINING = [(0.08, -1.0), (0.14, 0.0)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    d = tmp_path_factory.mktemp("api_lifting")
    write_mesh_inp(d / "bar.inp", box((10.0, 2.0, 2.0), (8, 2, 2), element="C3D8"))
    files = [str(_hifi(d, f"train_{i}", *p)) for i, p in enumerate(TRAINING)]
    model = _offline(d, files, 1e-12, 1e-8, "lifted.h5")
    models = d / "models"
    models.mkdir()
    shutil.copy(model, models / "lifted.h5")
    with af.ServerProcess(models) as srv, Client(srv.url) as c:
        yield c, files, model


def test_card_lists_prescribed_sets(served):
    c, _, _ = served
    card = c.model("lifted")
    assert card["prescribed_displacements"] == {"xmax": {"node_set": "xmax", "components": ["z"],
                                                         "range": [-0.08, 0.14]}}  # min, max of the training values
    schema = c.http.get("/openapi.json").json()["components"]["schemas"]
    assert "prescribed_displacements" in schema["HyperReducedCard"]["properties"]
    assert {"reactions", "cycles"} <= set(schema["SolveResult"]["properties"])
    assert "displacement" in schema["LoadingSpec"]["properties"] and "cycles" in schema["SolveRequest"]["properties"]


def test_reactions_and_cycles_over_rest(served):
    from structrom.rom.online import ReducedModel
    from structrom.rom.online.cycles import cycle_quantities

    c, files, path = served
    value, ratio = TRAINING[0]
    bounds = [0.0, 2.0, 4.0]
    out = c.solve("lifted", _loading(value, ratio), cycles=bounds)
    r_hf = hf_reaction(files[0], "xmax", 2)
    assert np.abs(r_hf).max() > 0
    assert _rel(np.array(out["reactions"]["xmax.z"]), r_hf) < 1e-6  # exact model: HF up to the solver tolerance
    pts = ReducedModel.load(path).data.point
    with h5py.File(files[0]) as f:
        hf = cycle_quantities(f["increments/time"][()], f["fields/strain"][()][:, pts], f["fields/stress"][()][:, pts],
                              bounds)
    cyc = out["cycles"]
    assert cyc["bounds"] == [[0.0, 2.0], [2.0, 4.0]]
    for key in ("strain_range", "stress_amplitude", "mean_stress"):
        np.testing.assert_allclose(cyc[key]["max"], hf[key].max(axis=1), rtol=1e-5, err_msg=key)
        assert set(cyc[key]["point"]) <= set(pts.tolist())
    assert min(cyc["strain_range"]["max"]) > 1e-3  # a plastic cycle
    # the same loading given with its components, components of another axis named
    out2 = c.solve("lifted", {"times": TIMES, "displacement": {
        "xmax": {"components": ["z"], "amplitude": _loading(value, ratio)["displacement"]["xmax"]}}})
    np.testing.assert_allclose(out2["reactions"]["xmax.z"], out["reactions"]["xmax.z"], rtol=1e-12)
    assert "cycles" not in out2 or out2["cycles"] is None


def test_bad_cycles_and_sets_are_named(served):
    c, _, _ = served
    with pytest.raises(ApiError) as e:  # below the training minimum -0.08
        c.solve("lifted", _loading(0.1, -1.0))
    assert e.value.code == "outside_training_family" and e.value.field == "loading.displacement.xmax"
    with pytest.raises(ApiError) as e:
        c.solve("lifted", _loading(0.1, -0.5), cycles=[0.0, 1.7])
    assert e.value.status == 422 and e.value.field == "cycles" and "1.7" in e.value.message
    with pytest.raises(ApiError) as e:
        c.solve("lifted", _loading(0.1, -0.5), cycles=[2.0, 1.0])
    assert e.value.status == 422 and e.value.field == "cycles"
    with pytest.raises(ApiError) as e:
        c.solve("lifted", {"times": TIMES, "displacement": {"xmin": 0.05}})
    assert e.value.status == 422 and "xmin" in e.value.message and e.value.field.startswith("loading.displacement")
