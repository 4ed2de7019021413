"""Dictionary of local reduced models (ROM-net): clustering by Grassmann distance, efficiency criterion,
classifier, model file, online solves and the misclassification fallback, on a bar whose hot spot moves
from the clamped end to the free end."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpi_helpers import run_program


@pytest.fixture(scope="module")
def built(dictionary_built):
    return dictionary_built


def hf(d: Path, name: str) -> tuple:
    from structrom.rom.hifi.config import load_config

    with h5py.File(d / "train" / f"{name}.h5", "r") as f:
        u = f["fields/displacement"][()]
    return load_config(d / f"{name}.toml").build_loading(), u


def rel_error(res, u) -> float:
    return float(np.linalg.norm(res.displacement(increment=None) - u) / np.linalg.norm(u))


def test_grassmann_distance_of_known_principal_angles():
    from structrom.rom.offline.clustering import grassmann_distances

    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((40, 6)))[0]
    a, b = 0.3, 1.1
    V1 = Q[:, :2]
    V2 = np.column_stack([np.cos(a) * Q[:, 0] + np.sin(a) * Q[:, 2], np.cos(b) * Q[:, 1] + np.sin(b) * Q[:, 3]])
    V3 = Q[:, 4:5]  # a line orthogonal to both: one angle pi/2 plus one missing direction
    D = grassmann_distances(None, [V1, V2, V3], None, np.eye(40))
    assert D[0, 1] == pytest.approx(np.hypot(a, b), rel=1e-12)
    assert D[0, 2] == pytest.approx(np.pi / 2 * np.sqrt(2), rel=1e-12)
    assert np.allclose(D, D.T) and np.all(np.diag(D) == 0)


def test_k_medoids_on_two_obvious_groups():
    from structrom.rom.offline.clustering import k_medoids

    x = np.array([5.0, 5.2, 5.35, 0.0, 0.1, 0.25])  # medians 5.2 and 0.1: clusters numbered by medoid index
    medoids, labels = k_medoids(np.abs(x[:, None] - x[None, :]), 2)
    assert medoids.tolist() == [1, 4] and labels.tolist() == [0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="clusters"):
        k_medoids(np.zeros((2, 2)), 3)


def test_overlapping_members():
    from structrom.rom.offline.clustering import overlapping_members

    x = np.array([0.0, 1.0, 2.0, 2.9, 4.0, 5.0])  # medoids 1 and 4; point 3 (2.9) is near the boundary
    D = np.abs(x[:, None] - x[None, :])
    medoids, labels = np.array([1, 4]), np.array([0, 0, 0, 1, 1, 1])
    assert [m.tolist() for m in overlapping_members(D, medoids, labels, 0.0)] == [[0, 1, 2], [3, 4, 5]]
    # 2.9 is 1.9 from medoid 1.0 and 1.1 from 4.0: inside (1 + 0.8) x 1.1; 2.0 is 2.0 from 4.0 vs 1.0 from 1.0
    assert [m.tolist() for m in overlapping_members(D, medoids, labels, 0.8)] == [[0, 1, 2, 3], [3, 4, 5]]
    assert [m.tolist() for m in overlapping_members(D, medoids, labels, 1.0)] == [[0, 1, 2, 3], [2, 3, 4, 5]]


def test_clusters_follow_the_regimes_and_the_criterion_favours_the_dictionary(built):
    d, path = built
    with h5py.File(path, "r") as f:
        assert f.attrs["kind"] == "dictionary"
        labels = f["clustering/labels"][()]
        D = f["clustering/distances"][()]
        prov = json.loads(f.attrs["provenance"])
        # numbers only: every dataset is numeric, every attribute a string or a number (no pickled object)
        def numeric(name, obj):
            if isinstance(obj, h5py.Dataset):
                assert obj.dtype.kind in "fiub", name
            for v in obj.attrs.values():
                assert isinstance(v, (str, bytes, int, float, np.integer, np.floating, np.bool_)), (name, v)
        f.visititems(numeric)
    near, far = labels[:3], labels[3:]
    assert len(set(near)) == 1 and len(set(far)) == 1 and near[0] != far[0]
    assert np.allclose(D, D.T) and D.max() <= np.pi / 2 * np.sqrt(3) + 1e-12
    # neighbours along the bar are closer than the two ends
    assert D[0, 1] < D[0, 5] and D[4, 5] < D[0, 5]
    crit = prov["efficiency"]
    assert crit["beneficial"] and max(crit["local_modes"]) < crit["global_modes"]
    assert prov["classifier"]["training_accuracy"] == 1.0


def test_solve_names_the_local_model_and_matches_hf(built):
    from structrom.rom.online.dictionary import DictionaryModel, DictionaryResult

    d, path = built
    model = DictionaryModel.load(path)
    card = model.card()
    assert card["kind"] == "dictionary" and len(card["local_models"]) == 2
    with h5py.File(path, "r") as f:
        labels = f["clustering/labels"][()]
    near_cluster, far_cluster = model.names[labels[0]], model.names[labels[-1]]
    for i, expected in enumerate([near_cluster, far_cluster]):
        loading, u = hf(d, f"test_{i}")
        res = model.solve(loading, extrapolate=True)
        assert isinstance(res, DictionaryResult)
        # the classifier picks the regime of the unseen loading; the indicator trusts that answer
        assert res.local_model == expected and not res.fallback and res.trusted.all()
        assert res.indicator.shape == (len(res.times),)
        assert rel_error(res, u) < 2e-2
        s = res.summary()
        assert s["local_model"] == expected and s["attempts"][0]["model"] == expected


def test_misclassification_is_caught_by_the_indicator(built):
    """A classifier that prefers the free-end model for a hot spot at the clamp: the free-end model's
    indicator flags its answer and the clamp model answers."""
    from structrom.rom.online.dictionary import DictionaryModel

    d, path = built
    model = DictionaryModel.load(path)
    with h5py.File(path, "r") as f:
        labels = f["clustering/labels"][()]
    near, far = int(labels[0]), int(labels[-1])
    loading, u = hf(d, "test_0")  # hot spot at x = 2.5
    right = model.solve(loading, extrapolate=True)
    wrong = dataclasses.replace(model.classifier, intercept=model.classifier.intercept.copy())
    wrong.intercept[far] += 100.0
    model.classifier = wrong
    assert np.argmax(model.probabilities(loading)) == far
    res = model.solve(loading, extrapolate=True)
    assert [a["model"] for a in res.attempts] == [model.names[far], model.names[near]]
    assert not res.attempts[0]["trusted"] and res.attempts[1]["trusted"]
    assert res.fallback and res.local_model == model.names[near] and res.trusted.all()
    assert rel_error(res, u) == pytest.approx(rel_error(right, u), rel=1e-9)
    # the wrong model alone is flagged and far off
    only = model.solve(loading, extrapolate=True, max_candidates=1)
    assert only.local_model == model.names[far] and not only.trusted.all() and rel_error(only, u) > 5 * rel_error(res, u)


def test_bad_dictionary_files_are_named(built, tmp_path):
    from structrom.rom.model_file import ModelFileError
    from structrom.rom.online.dictionary import DictionaryModel

    d, path = built
    with pytest.raises(ModelFileError, match="not found"):
        DictionaryModel.load(tmp_path / "none.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(path.read_bytes())
    with h5py.File(bad, "r+") as f:
        del f["local/cluster_1"]
    with pytest.raises(ModelFileError, match="missing"):
        DictionaryModel.load(bad)
    with h5py.File(bad, "r+") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ModelFileError, match="not a structrom model dictionary"):
        DictionaryModel.load(bad)


def test_out_of_family_loading_needs_extrapolate(built):
    from structrom.rom.loading import LoadingError
    from structrom.rom.online.dictionary import DictionaryModel

    d, path = built
    model = DictionaryModel.load(path)
    loading, _ = hf(d, "test_0")
    loading = dataclasses.replace(loading, temperature=dataclasses.replace(loading.temperature, intensity=300.0))
    with pytest.raises(LoadingError, match="outside the dictionary's training family"):
        model.solve(loading)
    assert model.solve(loading, extrapolate=True).warnings


@pytest.mark.mpi
def test_same_dictionary_on_1_and_2_ranks(built):
    import importlib.util

    from mpi_helpers import PROGRAMS

    spec = importlib.util.spec_from_file_location("dictionary_ranks", PROGRAMS / "dictionary_ranks.py")
    summary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(summary)
    summary = summary.summary
    d, _ = built
    cfg = d / "dictionary.toml"
    res = {n: run_program(n, "dictionary_ranks.py", str(cfg), str(d / f"dictionary{n}.h5"), timeout=300) for n in (2,)}
    res[1] = summary(d / "dictionary.h5")  # the fixture's, built on one rank
    assert res[2]["labels"] == res[1]["labels"] and res[2]["medoids"] == res[1]["medoids"]
    assert np.allclose(res[2]["distances"], res[1]["distances"], atol=1e-8)
    assert res[2]["modes"] == res[1]["modes"] and res[2]["criterion"] == res[1]["criterion"]
    assert np.allclose(res[2]["coef"], res[1]["coef"], rtol=1e-6, atol=1e-8)


def test_online_dictionary_imports_neither_mpi_nor_scikit_learn(built):
    import subprocess
    import sys

    from mpi_helpers import ROOT

    d, path = built
    code = (
        "import sys\n"
        "from structrom.rom.online import DictionaryModel\n"
        "from structrom.rom.hifi.config import load_config\n"
        f"m = DictionaryModel.load({str(path)!r})\n"
        f"r = m.solve(load_config({str(d / 'test_1.toml')!r}).build_loading(), extrapolate=True)\n"
        "r.displacement(increment=None)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('mpi4py', 'petsc4py', 'sklearn', 'sklearn_extra'))\n"
        "assert not bad, bad\n"
        "print(r.local_model)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().startswith("cluster_"), out.stderr


def test_bad_dictionary_configs_are_named(built, tmp_path):
    from structrom.rom.config import ConfigError
    from structrom.rom.offline.dictionary import load_dictionary_config, main

    d, _ = built
    text = (d / "dictionary.toml").read_text()
    bad = d / "bad_dictionary.toml"
    bad.write_text(text.replace("clusters = 2", "clusters = 0"))
    with pytest.raises(ConfigError, match="dictionary.clusters"):
        load_dictionary_config(bad)
    bad.write_text(text.replace("clusters = 2", "clusters = 7"))
    assert main([str(bad)]) == 2  # 7 clusters for 6 training loadings: named on stderr, no traceback
    bad.write_text(text.replace("subspace_dim = 3", "subspace_dim = 3\nshape = 1"))
    with pytest.raises(ConfigError, match="shape"):
        load_dictionary_config(bad)


def test_structrom_dictionary_and_offline_kind_dictionary_commands(built, tmp_path, capsys):
    """``structrom dictionary config.toml`` and ``structrom offline`` with ``kind = "dictionary"`` reach the
    dictionary stage: 7 clusters for 6 training loadings is named on one line, exit code 2."""
    from structrom.api.cli import main
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.dictionary import DictionaryConfig

    d, _ = built
    text = (d / "dictionary.toml").read_text()
    bad = d / "cli_dictionary.toml"
    bad.write_text(text.replace("clusters = 2", "clusters = 7"))
    assert main(["dictionary", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "7" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    kind = d / "cli_offline.toml"
    kind.write_text('kind = "dictionary"\n' + text.replace("clusters = 2", "clusters = 7"))
    assert isinstance(load_offline_config(kind), DictionaryConfig)
    assert main(["offline", str(kind)]) == 2
    err = capsys.readouterr().err
    assert "7" in err and "Traceback" not in err
