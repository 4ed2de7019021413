"""Separated (EIM) models: offline from CalculiX exports on 1, 2, 3 ranks, model file, estimator, protocol.

Fixture: the plate of ``examples/separated_thermoelastic.py`` on a small C3D10 mesh (1,725 free dofs), ``E(T)``
table under a moving hot spot ``mu = (intensity, x_center)``; ccx exports ``K(mu_j)`` at a 3 x 4 grid and solves
the static problem at 3 held-out mu; 3 more exports validate the separation (they measure its operator error).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from kind_fixtures import matrix_market_problem
from mpi_helpers import ROOT, mpirun

sys.path.insert(0, str(ROOT / "examples"))

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")
DIVISIONS = (8, 3, 2)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import separated_thermoelastic as ex

    if shutil.which("ccx") is None:
        pytest.skip("CalculiX ccx not installed")
    work = tmp_path_factory.mktemp("separated")
    train = ex.training_grid(3, 4)
    tests = ex.test_parameters(3, seed=3)
    valid = ex.validation_parameters(3)
    data = ex.export(work, DIVISIONS, train, tests, log=lambda *a: None, valid=valid)
    cfg = ex.write_config(work, DIVISIONS, train, "model.h5", pod_tolerance=1e-4, max_terms=12, valid=valid)
    # a few inverse iterations suffice for alpha_LB here (safety factor 0.9); keeps the three mpirun runs short
    cfg.write_text(cfg.read_text().replace("reference = 0", "reference = 0\neig_iterations = 4"))
    return {"work": work, "config": cfg, "train": train, "tests": tests, **data}


def _offline(exported, P: int) -> Path:
    work = exported["work"]
    out = work / f"model_P{P}.h5"
    if not out.exists():
        toml = work / f"separated_P{P}.toml"
        toml.write_text(exported["config"].read_text().replace('file = "model.h5"', f'file = "{out.name}"'))
        mpirun(P, ["-m", "structrom.api.cli", "offline", str(toml)], timeout=600)
    return out


@pytest.fixture(scope="module")
def model_path(exported):
    return _offline(exported, 1)


@needs_ccx
@pytest.mark.mpi
def test_offline_is_rank_count_independent(exported, model_path):
    """Selected entries and parameters identical, reduced matrices and estimator within 1e-10 for P = 1, 2, 3."""
    ref = h5py.File(model_path, "r")
    for P in (2, 3):
        with h5py.File(_offline(exported, P), "r") as f:
            for key in ("entry_rows", "entry_cols", "param_indices"):
                assert np.array_equal(f[f"separation/matrix/{key}"][()], ref[f"separation/matrix/{key}"][()]), (P, key)
            assert np.array_equal(f["separation/matrix/F"][()], ref["separation/matrix/F"][()])
            for key in ("reduced/A_red", "reduced/b_red", "reduced/norm_gram"):
                a, b = ref[key][()], f[key][()]
                assert a.shape == b.shape, (P, key)
                assert np.abs(a - b).max() <= 1e-10 * np.abs(a).max(), (P, key, np.abs(a - b).max())
            # the estimator factor is unique up to row signs (zero rows: dependent residual directions)
            Ra, Rb = ref["estimator/R"][()], f["estimator/R"][()]
            assert np.abs(np.abs(Ra) - np.abs(Rb)).max() <= 1e-8 * np.abs(Ra).max(), P
            assert abs(f["estimator"].attrs["alpha_lb"] - ref["estimator"].attrs["alpha_lb"]) <= 1e-8
    ref.close()


@needs_ccx
def test_estimate_bounds_the_error_against_ccx(exported, model_path):
    """Held-out mu: the estimate is an upper bound of the energy-norm error against ccx's static solution,
    within a factor 20, and the displacement error is small."""
    from structrom.rom.offline.exported_operators import read_calculix_rows
    from structrom.rom.online import SeparatedModel, load_model

    model = load_model(model_path)
    assert isinstance(model, SeparatedModel) and model.data.entries["kind"] == "fe_kernel"
    n = len(model.dof_map)
    X = read_calculix_rows(exported["work"] / "train" / f"mu{model.data.reference:02d}" / "job", n, 0, n)
    for j, mu in enumerate(exported["tests"]):
        u = np.load(exported["work"] / "test" / f"mu{j:02d}" / "u.npy")
        res = model.solve(dict(zip(model.parameter_names, mu)))
        e = u.ravel()[model.dof_map] - res.vector()
        err = float(np.sqrt(e @ (X @ e)))
        assert 1.0 <= res.error_estimate / err <= 20.0, (mu, res.error_estimate, err)
        assert np.linalg.norm(e) <= 1e-2 * np.linalg.norm(u), mu
        assert np.array_equal(res.displacement().ravel()[model.dof_map], res.vector())
        assert model.estimate_error(mu) == pytest.approx(res.error_estimate, rel=1e-12)


@needs_ccx
def test_fe_kernel_entries_match_the_exported_matrix(exported, model_path):
    """The online entries (FE kernel on the elements touching the selected dofs) equal ccx's matrix entries."""
    from structrom.rom.offline.exported_operators import read_calculix_rows
    from structrom.rom.online import load_model

    model = load_model(model_path)
    s = model.data.matrix
    n = len(model.dof_map)
    j = int(s.param_indices[-1])
    A = read_calculix_rows(exported["work"] / "train" / f"mu{j:02d}" / "job", n, 0, n)
    got = model.matrix_entries.entries(exported["train"][j], s.entry_rows, s.entry_cols)
    want = np.asarray(A[s.entry_rows, s.entry_cols]).ravel()
    assert np.allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(A.data).max())
    assert np.allclose(s.training_values[:, j], want, rtol=0, atol=0)


@needs_ccx
@needs_ccx
def test_answers_outside_the_training_box_are_never_trusted(exported, model_path):
    """The bound needs ``alpha_LB <= lambda_min(X^-1 A(mu))`` and the separation error ``eta``, both checked
    on the training box only. At intensity 1200 (training 300-700) the stiffness is softer than any training
    one and the estimate is below the true energy-norm error against ccx (0.79 x): with a tolerance between
    the two the answer was trusted. Outside the box nothing is trusted now, whatever the tolerance; inside
    it the flag is the indicator's."""
    import dataclasses

    import separated_thermoelastic as ex
    from structrom.rom.offline.exported_operators import read_calculix_rows
    from structrom.rom.online import SeparatedModel, load_model

    model = load_model(model_path)
    mu = np.array([1200.0, 50.0])
    tests = np.vstack([exported["tests"], mu])  # the earlier static runs are cached: one more ccx solve
    ex.export(exported["work"], DIVISIONS, exported["train"], tests, log=lambda *a: None)
    u = np.load(exported["work"] / "test" / f"mu{len(tests) - 1:02d}" / "u.npy").ravel()[model.dof_map]
    n = len(model.dof_map)
    X = read_calculix_rows(exported["work"] / "train" / f"mu{model.data.reference:02d}" / "job", n, 0, n)
    res = model.solve(mu, extrapolate=True)
    e = u - res.vector()
    rel = float(np.sqrt(e @ (X @ e)) / np.sqrt(res.vector() @ (X @ res.vector())))  # the indicator's measure
    assert res.warnings and not res.trusted
    assert res.indicator < rel  # the estimate is not a bound there (measured 0.79 x the error)
    loose = SeparatedModel(dataclasses.replace(model.data, tolerance=max(rel, res.indicator) * 1.01))
    assert not loose.solve(mu, extrapolate=True).trusted  # was trusted when the indicator is below the error
    inside = loose.solve([500.0, 50.0])
    assert not inside.warnings and inside.trusted


def test_parameter_api_and_bad_queries(model_path):
    from structrom.rom.online import OnlineError, load_model

    model = load_model(model_path)
    assert list(model.parameters) == ["intensity", "x_center"]
    assert model.parameters["intensity"] == (300.0, 700.0)
    mid = [500.0, 50.0]
    a, b = model.solve(mid), model.solve({"x_center": 50.0, "intensity": 500.0})
    assert np.array_equal(a.coordinates, b.coordinates)
    assert isinstance(a.trusted, bool) and a.summary()["kind"] == "separated"
    for bad, word in (({"intensity": 500.0}, "missing"), ({"intensity": 1, "x_center": 2, "z": 3}, "unknown"),
                      ([500.0, float("nan")], "finite"), ([1.0, 2.0, 3.0], "expected 2"),
                      ([900.0, 50.0], "outside the training range")):
        with pytest.raises(OnlineError, match=word):
            model.solve(bad)
    r = model.solve([720.0, 50.0], extrapolate=True)
    assert r.warnings and "intensity" in r.warnings[0]


@needs_ccx
def test_model_file_round_trip_and_corruption(model_path, tmp_path):
    from structrom.rom import separated_model_file as smf
    from structrom.rom.model_file import ModelFileError, load as load_hyper, read_kind
    from structrom.rom.online import load_model

    assert read_kind(model_path) == "separated"
    with pytest.raises(ModelFileError, match="load_model"):
        load_hyper(model_path)
    data = smf.load(model_path, basis=True, mesh=True)
    copy = smf.write(tmp_path / "copy.h5", data, data.basis, data.mesh)
    assert not (tmp_path / "copy.h5.partial").exists()
    a, b = load_model(model_path).solve([450.0, 40.0]), load_model(copy).solve([450.0, 40.0])
    assert np.array_equal(a.coordinates, b.coordinates) and a.error_estimate == b.error_estimate

    def corrupted(name: str, edit) -> Path:
        p = tmp_path / f"{name}.h5"
        shutil.copy(model_path, p)
        with h5py.File(p, "r+") as f:
            edit(f)
        return p

    def replace(key, fn):
        def edit(f):
            v = fn(f[key][()])
            del f[key]
            f[key] = v
        return edit

    cases = {
        "entry_out_of_range": (replace("separation/matrix/entry_rows", lambda v: v + 10**7), "entry_rows.*outside"),
        "nan_reduced": (replace("reduced/A_red", lambda v: np.where(np.arange(v.size).reshape(v.shape) == 0, np.nan, v)),
                        "A_red.*non-finite"),
        "bad_shape": (replace("reduced/b_red", lambda v: v[:, :-1]), "b_red: shape"),
        "missing": (lambda f: f.__delitem__("estimator/R"), "estimator/R: missing"),
        "kind": (lambda f: f.attrs.__setitem__("kind", "weird"), "unknown model kind"),
        "dof_map": (replace("dofs/map", lambda v: v + 10**6), "/dofs/map: dofs in .* outside"),
        "connectivity": (lambda f: f["mesh/blocks/0/connectivity"].__setitem__(Ellipsis, 10**6),
                         "/mesh/blocks/0/connectivity: indices .* outside"),
        "foreign": (lambda f: f.create_dataset("estimator/payload", data=np.zeros(2)), "not part of the file format"),
        "params_json": (lambda f: f.attrs.__setitem__("parameters", "[1, 2"), "'parameters'.*unreadable JSON"),
        "alpha": (lambda f: f["estimator"].attrs.__setitem__("alpha_lb", -1.0), "alpha_lb.*must be finite and in \\(0"),
        # an estimator that under-reports (every answer trusted, or errors halved): inconsistent with the reduced data
        "R_zero": (replace("estimator/R", np.zeros_like), "estimator/R under-reports the residual"),
        "R_half": (replace("estimator/R", lambda v: 0.5 * v), "estimator/R under-reports the residual"),
    }
    for name, (edit, message) in cases.items():
        with pytest.raises(ModelFileError, match=message):
            load_model(corrupted(name, edit))
    # over-reporting stays allowed (the safe side: fewer answers trusted)
    assert load_model(corrupted("R_double", replace("estimator/R", lambda v: 2.0 * v))).solve([450.0, 40.0]).residual \
        == pytest.approx(2.0 * a.residual, rel=1e-12)
    trunc = tmp_path / "truncated.h5"
    trunc.write_bytes(model_path.read_bytes()[:4096])
    with pytest.raises(ModelFileError, match="truncated|not a readable"):
        load_model(trunc)


def test_matrix_market_with_interpolated_entries(tmp_path):
    """Black box that only gives matrices: Matrix Market exports, a separated right-hand side, entries by
    interpolation; at the training parameters the model reproduces the exported solutions."""
    import scipy.io
    import scipy.sparse.linalg as spla

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.separated import run_separated_offline
    from structrom.rom.online import load_model

    cfg = load_offline_config(matrix_market_problem(tmp_path))
    out = run_separated_offline(cfg, log=lambda *a: None)
    model = load_model(out)
    assert model.data.entries["kind"] == "interpolation" and model.data.rhs is not None
    assert model.data.rhs.n_terms >= 2  # the loads differ per parameter
    for j in (0, 3, 5):
        mu = cfg.separated.training[j].mu
        K = scipy.io.mmread(str(tmp_path / f"A{j}.mtx")).tocsc()
        u = spla.spsolve(K, np.load(tmp_path / f"b{j}.npy"))
        res = model.solve(mu)
        assert np.linalg.norm(res.vector() - u) <= 1e-6 * np.linalg.norm(u), j
        assert res.trusted


def test_offline_config_errors(tmp_path):
    from structrom.rom.config import ConfigError
    from structrom.rom.offline.config import load_offline_config

    base = ['kind = "separated"', "[separated]", 'format = "matrix_market"', 'parameter_names = ["a"]', 'rhs = "b.npy"']
    cases = {
        "mu_length": (base + ["[[separated.training]]", "mu = [1.0, 2.0]", 'matrix = "A.mtx"'] * 2, "training.*mu has 2"),
        "too_few": (base + ["[[separated.training]]", "mu = [1.0]", 'matrix = "A.mtx"'], "training"),
        "missing_file": (base + ["[[separated.training]]", "mu = [1.0]", 'matrix = "A.mtx"'] * 2, "not found"),
        "typo": (base + ["max_term = 3", "[[separated.training]]", "mu = [1.0]", 'matrix = "A.mtx"'] * 1, "max_term"),
    }
    for name, (lines, message) in cases.items():
        p = tmp_path / f"{name}.toml"
        p.write_text("\n".join(lines) + "\n")
        with pytest.raises(ConfigError, match=message):
            load_offline_config(p)


@needs_ccx
def test_protocol_is_satisfied_by_both_kinds(model_path, tmp_path):
    """One interface: both kinds load through load_model, solve, estimate, describe themselves; the REST
    registry describes both."""
    from rom_fixtures import build_exact_model, loading_dict

    from structrom.api.registry import model_card
    from structrom.rom.online import OnlineModel, ReducedModel, SeparatedModel, load_model

    hyper = build_exact_model(tmp_path, divisions=(4, 1, 1), name="hyper.h5")
    models = {"hyper": load_model(hyper.path), "sep": load_model(model_path)}
    assert isinstance(models["hyper"], ReducedModel) and isinstance(models["sep"], SeparatedModel)
    queries = {"hyper": loading_dict(0.04, 0.25), "sep": [500.0, 50.0]}
    for name, model in models.items():
        assert isinstance(model, OnlineModel), name
        assert model.parameters and all(lo <= hi for lo, hi in model.parameters.values())
        assert model.check(queries[name]) == []
        res = model.solve(queries[name])
        assert np.all(np.isfinite(res.indicator)) and np.asarray(res.trusted).dtype == bool
        assert np.allclose(model.estimate_error(queries[name]),
                           res.indicator if name == "hyper" else res.error_estimate)
        card = model.card()
        assert card["kind"] == model.kind and "guarantee" in card["indicator"]
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    shutil.copy(hyper.path, models_dir / "hyper.h5")
    shutil.copy(model_path, models_dir / "sep.h5")
    # the REST registry screens and describes both kinds
    assert model_card("hyper", models_dir / "hyper.h5")["kind"] == "hyper_reduced"
    card = model_card("sep", models_dir / "sep.h5")
    assert card["kind"] == "separated" and card["query"] == "parameters" and "guarantee" in card["indicator"]
    assert [q["name"] for q in card["parameters"]] == ["intensity", "x_center"]


@needs_ccx
def test_rest_answer_of_a_parameter_query(model_path):
    """The REST helper answers a parameter query with the indicator and maps bad input to 422 on 'parameters'."""
    from structrom.api.registry import RegistryError
    from structrom.api.separated_service import solve_parameters
    from structrom.rom.online import load_model

    model = load_model(model_path)
    out = solve_parameters(model, {"parameters": {"intensity": 500.0, "x_center": 50.0}})
    res = model.solve([500.0, 50.0])
    assert out["kind"] == "separated" and out["trusted"] == res.trusted
    assert out["error_estimate"] == pytest.approx(res.error_estimate) and out["max_displacement"] > 0
    for body, code in (({"parameters": [900.0, 50.0]}, "outside_training_family"), ({}, "invalid_parameters"),
                       ({"parameters": {"intensity": 1.0}}, "invalid_parameters")):
        with pytest.raises(RegistryError) as info:
            solve_parameters(model, body)
        assert info.value.status == 422 and info.value.code == code and info.value.field == "parameters"
    assert solve_parameters(model, {"parameters": [900.0, 50.0], "extrapolate": True})["warnings"]
    # node-set displacements of an FE-kernel model (mesh numbering): one row, as a loading answer's increments
    out = solve_parameters(model, {"parameters": [500.0, 50.0]}, node_sets=["xmax", "xmin"])
    u = res.displacement(model.data.mesh.node_set("xmax"))
    assert out["displacement"]["xmax"]["nodes"] == len(u)
    assert np.allclose(out["displacement"]["xmax"]["mean"][0], u.mean(axis=0), rtol=1e-12, atol=0)
    assert out["displacement"]["xmax"]["max_magnitude"][0] == pytest.approx(np.linalg.norm(u, axis=1).max(), rel=1e-12)
    assert out["displacement"]["xmin"]["max_magnitude"] == [0.0]  # clamped
    assert out["max_displacement"] == pytest.approx(np.linalg.norm(res.displacement(), axis=1).max(), rel=1e-12)
    with pytest.raises(RegistryError) as info:
        solve_parameters(model, {"parameters": [500.0, 50.0]}, node_sets=["xmax", "nowhere"])
    assert info.value.code == "unknown_node_set" and info.value.field == "node_sets.1"


def test_ansys_full_rows_are_the_symmetric_stiffness(tmp_path):
    """Ansys .full (ansys-mapdl-reader's example file): row blocks of any rank count assemble the symmetric
    stiffness; the offline configuration accepts the format (with interpolated entries only)."""
    reader = pytest.importorskip("ansys.mapdl.reader")
    import scipy.sparse as sp

    from structrom.rom.config import ConfigError
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.ansys_full import ansys_full_dofs, read_ansys_full_rows
    from structrom.rom.offline.exported_operators import row_range

    path = reader.examples.fullfile
    dofs = ansys_full_dofs(path)
    n = len(dofs)
    dof_ref, k, _ = reader.read_binary(path).load_km(sort=True, as_sparse=True)
    free = np.flatnonzero(k.diagonal() != 0)  # (the constrained dofs: empty rows of the reader's matrix)
    K = (k + k.T - sp.diags(k.diagonal())).tocsr()[free][:, free]
    assert set(dofs[:, 1].tolist()) == {1, 2, 3} and np.array_equal(dofs[:, 0], dof_ref[free, 0])
    for P in (1, 2, 3):
        blocks = [read_ansys_full_rows(path, n, *row_range(n, r, P), ) for r in range(P)]
        assert abs(sp.vstack(blocks).tocsr() - K).max() == 0.0, P
    shutil.copy(path, tmp_path / "a.full")
    np.save(tmp_path / "b.npy", np.ones(n))
    base = ['kind = "separated"', "[separated]", 'format = "ansys_full"', 'parameter_names = ["a"]', 'rhs = "b.npy"',
            "[[separated.training]]", "mu = [1.0]", 'matrix = "a.full"', "[[separated.training]]", "mu = [2.0]",
            'matrix = "a.full"']
    (tmp_path / "ok.toml").write_text("\n".join(base) + "\n")
    assert load_offline_config(tmp_path / "ok.toml").separated.format == "ansys_full"
    (tmp_path / "fe.toml").write_text("\n".join(base + ["[separated.online]", 'entries = "fe_kernel"', 'mesh = "m.inp"',
                                                        "material = {}", "temperature = {}"]) + "\n")
    with pytest.raises(ConfigError, match="fe_kernel.*calculix"):
        load_offline_config(tmp_path / "fe.toml")


def test_ansys_full_exports_give_a_separated_model(tmp_path):
    """A separated model from Ansys .full exports (the reader's example, whose 63 constrained dofs Ansys keeps as
    empty rows) and a load on every dof of the file: the model's solution is the stiffness's on the free dofs, and
    zero at the constrained ones is what the solve imposed. (Every real .full has constrained dofs: they were
    refused.)"""
    reader = pytest.importorskip("ansys.mapdl.reader")
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.separated import run_separated_offline
    from structrom.rom.online import load_model

    dof_ref, k, _ = reader.read_binary(reader.examples.fullfile).load_km(sort=True, as_sparse=True)
    free = np.flatnonzero(k.diagonal() != 0)
    K = (k + k.T - sp.diags(k.diagonal())).tocsc()[free][:, free]
    b = np.zeros(len(dof_ref))
    b[2::3] = -1.0  # a z load at every node, constrained ones included (their entries are reactions: not used)
    shutil.copy(reader.examples.fullfile, tmp_path / "a.full")
    np.save(tmp_path / "b.npy", b)
    lines = ['kind = "separated"', "[separated]", 'format = "ansys_full"', 'parameter_names = ["a"]', 'rhs = "b.npy"',
             "[separated.basis]", "tolerance = 1e-8"]
    for mu in (1.0, 2.0):
        lines += ["[[separated.training]]", f"mu = [{mu}]", 'matrix = "a.full"']
    (tmp_path / "ansys.toml").write_text("\n".join(lines + ["[output]", 'file = "ansys.h5"']) + "\n")
    model = load_model(run_separated_offline(load_offline_config(tmp_path / "ansys.toml"), log=lambda *a: None))
    u = spla.spsolve(K, b[free])
    res = model.solve([1.5])
    # one matrix for every mu: the separation is exact, the basis holds u (POD tolerance 1e-8)
    assert np.linalg.norm(res.vector() - u) <= 1e-6 * np.linalg.norm(u)
    assert res.trusted

