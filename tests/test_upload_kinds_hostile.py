"""Hostile uploads of the separated and dictionary model kinds against a real ``structrom serve`` process on
127.0.0.1 (what a fuzz campaign over every dataset and attribute of both layouts found): files whose data
disagree with themselves or hold values of absurd magnitude are refused at upload with 422 naming the dataset and
the rule, never a 500, a dropped connection or a ``null`` error estimate; the server keeps answering the good models
afterwards."""
from __future__ import annotations

import shutil

import httpx
import numpy as np
import pytest

import api_fixtures as af
from kind_fixtures import DICTIONARY_TESTS, build_separated

SEP_QUERY = {"parameters": {"intensity": 450.0, "x_center": 40.0}}


@pytest.fixture(scope="module")
def files(tmp_path_factory, dictionary_built):
    root = tmp_path_factory.mktemp("hostile_kinds")
    return {"sep": build_separated(root), "dict": dictionary_built[1], "root": root}


@pytest.fixture(scope="module")
def server(files):
    models = files["root"] / "models"
    models.mkdir()
    shutil.copy(files["sep"], models / "sep.h5")
    shutil.copy(files["dict"], models / "dict.h5")
    with af.ServerProcess(models, keys=[af.new_key()]) as srv:
        yield srv


def put(server, model_id, path):
    return httpx.put(f"{server.url}/v1/models/{model_id}", content=path.read_bytes(), timeout=60,
                     headers={"X-API-Key": server.key, "Content-Type": "application/octet-stream"})


def solve(server, model_id, body):
    return httpx.post(f"{server.url}/v1/models/{model_id}/solve", json=body, timeout=60,
                      headers={"X-API-Key": server.key})


def dictionary_query(i: int = 0) -> dict:
    from offline_fixtures import query_loading

    q = query_loading(*DICTIONARY_TESTS[i], "x")
    q.pop("name")
    return {"loading": q, "extrapolate": True}


def refused(server, src, tmp_path, mutate, *words):
    """Upload ``src`` changed by ``mutate``: 422 ``invalid_model_file`` whose message holds every one of
    ``words``; nothing is published."""
    r = put(server, "hostile", af.mutated(src, tmp_path / "hostile.h5", mutate))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_model_file" and err["field"] == "body", err
    for w in words:
        assert w in err["message"], (w, err["message"])
    card = httpx.get(f"{server.url}/v1/models/hostile", timeout=10, headers={"X-API-Key": server.key})
    assert card.status_code == 404, card.text
    return err["message"]


def setter(path, fn):
    def mutate(f):
        f[path][...] = fn(f[path][()])
    return mutate


def set_attr(path, name, value):
    return lambda f: f[path].attrs.__setitem__(name, value)


def assert_serving(server):
    r = solve(server, "sep", SEP_QUERY)
    assert r.status_code == 200 and np.isfinite(r.json()["error_estimate"]), r.text


def test_separated_files_that_disagree_with_themselves_are_refused(server, files, tmp_path):
    sep = files["sep"]

    def singular_separation(f):  # two selected entries with the same training values: F consistent but singular
        g = f["separation/matrix"]
        values = g["training_values"][()]
        values[1] = values[0]
        g["training_values"][...] = values
        g["F"][...] = values[:, g["param_indices"][()]]

    cases = [
        (singular_separation, "/separation/matrix/F", "singular", "reciprocal condition number"),
        # the separation's F copies the training values at the selected parameters: a scaled F (or scaled training
        # values) would make every answer 1000x off while the estimator, blind to it, trusts it
        (setter("separation/matrix/F", lambda a: 1e3 * a), "/separation/matrix/F", "differs from training_values"),
        (setter("separation/rhs/training_values", lambda a: 0 * a), "/separation/rhs/F", "param_indices"),
        (setter("separation/rhs/F", lambda a: 0 * a), "/separation/rhs/F", "differs"),
        (set_attr("estimator", "alpha_lb", 1e308), "/estimator", "'alpha_lb'", "alpha_training"),
        (setter("reduced/norm_gram", lambda a: -a), "/reduced/norm_gram", "not symmetric positive definite"),
        (setter("dofs/map", lambda a: 0 * a), "/dofs/map", "same mesh dof"),
        (setter("dofs/map", lambda a: 0 * a + 10**9), "/dofs/map", "outside [-1, "),  # a 24 GB answer array
        (setter("training/parameters", lambda a: 0 * a), "/training/parameters", "distinct points"),
        (setter("reduced/A_red", lambda a: 0 * a), "/reduced", "at training parameter", "singular"),
        (setter("reduced/b_red", lambda a: 0 * a), "/estimator", "at training parameter", "indicator inf"),
        (setter("estimator/R", lambda a: 0 * a + 1e308), "/estimator/R", "= 1e+308, above 1e+30 in magnitude"),
        # an estimator of zeros (or scaled down) would mark every answer trusted: R^T R must dominate the reduced
        # data's own residual Gram matrix
        (setter("estimator/R", lambda a: 0 * a), "/estimator/R", "under-reports the residual"),
        (setter("estimator/R", lambda a: 0.9 * a), "/estimator/R", "under-reports the residual"),
        (set_attr("estimator", "eim_error", 1e308), "/estimator", "error estimate is inf"),
    ]
    for mutate, *words in cases:
        refused(server, sep, tmp_path, mutate, "hostile.h5", *words)
    assert_serving(server)


def test_separated_absurd_basis_is_refused_at_upload(server, files, tmp_path):
    """A basis of finite values of absurd magnitude (1e308: each answer's displacements overflowed, a 422
    non_finite_answer at every solve) is refused at upload naming the dataset, the entry and its value."""
    path = af.mutated(files["sep"], tmp_path / "big.h5", setter("basis/V", lambda a: 0 * a + 1e308))
    r = put(server, "bigbasis", path)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_model_file", r.text
    assert "/basis/V: entry (0, 0) = 1e+308, above 1e+30 in magnitude" in r.text, r.text
    assert_serving(server)


def test_separated_parameters_far_outside_the_ranges_are_named(server):
    """``intensity = 1e308`` with ``extrapolate``: the interpolated matrix entries overflow; the 422 said 'the entry
    evaluator returned (6,) values (finite: False)', neither the parameters nor the fix."""
    r = solve(server, "sep", {"parameters": {"intensity": 1e308, "x_center": 40.0}, "extrapolate": True})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["field"] == "parameters" and "intensity = 1e+308, x_center = 40" in err["message"], err
    assert "nearer the training ranges" in err["message"], err
    assert_serving(server)


def test_dictionary_absurd_classifier_is_refused_at_upload(server, files, tmp_path):
    """Classifier coefficients of 1e308 (finite in the file, infinite logits for any loading: every solve was a
    422 non_finite_answer) are refused at upload naming the dataset and the value; the good model keeps answering."""
    path = af.mutated(files["dict"], tmp_path / "cls.h5", setter("classifier/coef", lambda a: 0 * a + 1e308))
    r = put(server, "badcls", path)
    assert r.status_code == 422 and "/classifier/coef: entry (0, 0) = 1e+308, above 1e+30" in r.text, r.text
    r = solve(server, "dict", dictionary_query(0))
    assert r.status_code == 200 and r.json()["local_model"] == "cluster_0", r.text
    assert_serving(server)


def test_dictionary_files_that_disagree_with_themselves_are_refused(server, files, tmp_path):
    import json

    def points_moved(f):
        p = f["local/cluster_1/mesh/points"]
        p[...] = 2.0 * p[()]

    cases = [
        # a nested surface name made every solve a 500 (TypeError in the classifier's features)
        (set_attr("classifier", "surfaces", '[["zmax"]]'), "/classifier", "'surfaces'", "strings"),
        (set_attr("classifier", "feature_names", json.dumps([1] * 17)), "/classifier", "'feature_names'"),
        # the card read provenance members by index: a bare Python error in the message
        (set_attr("/", "provenance", '{"members": 5}'), "'provenance'", "'members'", "each of the 2 local models"),
        (set_attr("/", "provenance", '{"classifier": [1]}'), "'provenance'", "'classifier'", "JSON object"),
        # local models on different meshes: node sets answered from the first, solved on another
        (points_moved, "/local/cluster_1/mesh/points", "share one mesh"),
    ]
    for mutate, *words in cases:
        refused(server, files["dict"], tmp_path, mutate, "hostile.h5", *words)


def test_dictionary_without_temperature_family_serves_its_page(server, files, tmp_path):
    """``loading_schema.temperature = null`` is a valid family (no temperature ranges): its HTML page was a 500."""
    import json

    def no_temperature(f):
        schema = json.loads(f.attrs["loading_schema"])
        schema["temperature"] = None
        f.attrs["loading_schema"] = json.dumps(schema)

    assert put(server, "notemp", af.mutated(files["dict"], tmp_path / "nt.h5", no_temperature)).status_code == 201
    r = httpx.get(f"{server.url}/v1/models/notemp/page", timeout=30, headers={"X-API-Key": server.key})
    assert r.status_code == 200 and "notemp" in r.text, r.text[:500]
    r = solve(server, "notemp", dictionary_query(0))
    assert r.status_code == 200 and all(np.isfinite(r.json()["max_von_mises"])), r.text
