"""One REST service and one Python client for the three model kinds, on a real ``structrom serve`` process:
a hyper-reduced model (loadings), a separated model (parameter values; answers identical to the in-process
``model.solve(mu)``) and a dictionary of local models (loadings; the answer names the local model, and a
misclassifying classifier is caught by the indicator through REST). Bad parameters are named; endpoints that
do not apply to a kind answer 422 ``unsupported_for_kind``; corrupted separated and dictionary files are
refused at upload by the screening, before any array is read."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import api_fixtures as af
import offline_fixtures as F
from kind_fixtures import DICTIONARY_TESTS, build_separated
from structrom.api.client import ApiError, Client


@pytest.fixture(scope="module")
def server(tmp_path_factory, dictionary_built):
    root = tmp_path_factory.mktemp("api_kinds")
    models = root / "models"
    models.mkdir()
    hyper = af.build_small_model(root)
    sep = build_separated(root)
    _, dictionary = dictionary_built
    shutil.copy(hyper.path, models / "small.h5")
    shutil.copy(sep, models / "sep.h5")
    shutil.copy(dictionary, models / "dict.h5")
    with af.ServerProcess(models, keys=[af.new_key()]) as srv:
        srv.files = {"small": hyper.path, "sep": sep, "dict": dictionary}
        srv.root = root
        yield srv


@pytest.fixture()
def client(server):
    with Client(server.url, api_key=server.key) as c:
        yield c


def dictionary_loading(i: int) -> dict:
    cx, it, pr = DICTIONARY_TESTS[i]
    q = F.query_loading(cx, it, pr, "x")
    q.pop("name")
    return q


def in_process_answers(path, mus) -> list[dict]:
    """``SeparatedModel.solve(mu)`` for each ``mu`` in a Python process with one BLAS thread, like the server's
    solver processes (JSON carries floats exactly)."""
    import json
    import os
    import subprocess
    import sys

    code = ("import json, sys, numpy as np\nfrom structrom.rom.online import load_model\n"
            f"m = load_model({str(path)!r})\nout = []\n"
            f"for mu in {json.dumps([list(m) for m in mus])}:\n"
            "    r = m.solve(mu)\n"
            "    out.append(dict(coordinates=r.coordinates.tolist(), error_estimate=r.error_estimate, "
            "indicator=r.indicator, trusted=r.trusted, max_abs=float(np.abs(r.vector()).max())))\n"
            "print(json.dumps(out))\n")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_one_client_answers_every_kind(server, client):
    from rom_fixtures import loading_dict

    from structrom.rom.online import OnlineModel, load_model

    listed = {m["id"]: m for m in client.models()}
    assert {k: listed[k]["kind"] for k in ("small", "sep", "dict")} == {
        "small": "hyper_reduced", "sep": "separated", "dict": "dictionary"}
    cards = {k: client.model(k) for k in ("small", "sep", "dict")}
    assert [c["query"] for c in cards.values()] == ["loading", "parameters", "loading"]
    for c in cards.values():
        assert c["indicator"]["guarantee"] and c["versions"][0]["version"] >= 1
    assert "upper bound" in cards["sep"]["indicator"]["guarantee"]
    assert "next most probable" in cards["dict"]["indicator"]["guarantee"]
    assert [q["name"] for q in cards["sep"]["parameters"]] == ["intensity", "x_center"]
    assert len(cards["dict"]["local_models"]) == 2 and "enrich" not in cards["sep"]["features"]

    r = client.solve("small", loading_dict(0.04, 0.25))
    assert r["kind"] == "hyper_reduced" and len(r["indicator"]) == len(r["times"])

    # separated: the REST answer is the in-process answer, to the last bit (both with one BLAS thread: OpenBLAS
    # started with more threads sums in another order, 1e-16 apart)
    model = load_model(server.files["sep"])
    mus = ([450.0, 40.0], [612.5, 61.0])
    local = in_process_answers(server.files["sep"], mus)
    for mu, res in zip(mus, local):
        r = client.solve("sep", parameters=dict(zip(model.parameter_names, mu)))
        assert r["kind"] == "separated" and r["model"] == "sep"
        assert r["coordinates"] == res["coordinates"]
        assert r["error_estimate"] == res["error_estimate"] and r["indicator"] == res["indicator"]
        assert r["trusted"] == res["trusted"] and r["parameters"] == dict(zip(model.parameter_names, mu))
        assert r["max_displacement"] == res["max_abs"]
    assert client.solve("sep", parameters=[450.0, 40.0])["coordinates"] == local[0]["coordinates"]

    # dictionary: the answer names the local model, as in process
    dmodel = load_model(server.files["dict"])
    assert isinstance(dmodel, OnlineModel) and dmodel.kind == "dictionary"
    assert "temperature.center.x" in dmodel.parameters  # the family's ranges, as for the hyper-reduced kind
    for i in range(len(DICTIONARY_TESTS)):
        q = dictionary_loading(i)
        r = client.solve("dict", q, extrapolate=True)
        res = dmodel.solve(q, extrapolate=True)
        assert r["kind"] == "dictionary" and r["local_model"] == res.local_model
        assert r["attempts"][0]["model"] == res.attempts[0]["model"] and r["fallback"] is False
        assert r["indicator"] == pytest.approx(res.indicator.tolist(), rel=1e-9)
        assert r["trusted_all"] == bool(res.trusted.all())
        if i == 0:  # cycle quantities of the local model that answered: those of its own result
            bounds = [q["times"][0], q["times"][-1]] if "times" in q else [0.0, q["end_time"]]
            cyc = client.solve("dict", q, extrapolate=True, cycles=bounds)["cycles"]
            ref = res.cycles(bounds)
            assert cyc["strain_range"]["max"] == pytest.approx(ref["strain_range"].max(axis=1).tolist(), rel=1e-9)

    b = client.batch("sep", parameters=[[450.0, 40.0], [999.0, 40.0], {"intensity": 500.0, "x_center": 50.0}])
    assert b["ok"] == 2 and b["failed"] == 1
    assert b["results"][1]["error"]["field"] == "parameters.1"
    assert b["results"][0]["coordinates"] == local[0]["coordinates"]


def test_bad_parameters_and_wrong_queries_are_named(client):
    from rom_fixtures import loading_dict

    def refused(call, status=422):
        with pytest.raises(ApiError) as info:
            call()
        assert info.value.status == status, info.value
        return info.value

    e = refused(lambda: client.solve("sep", parameters={"intensity": 900.0, "x_center": 50.0}))
    assert e.code == "outside_training_family" and e.field == "parameters" and "intensity" in e.message
    r = client.solve("sep", parameters={"intensity": 900.0, "x_center": 50.0}, extrapolate=True)
    assert r["warnings"] and "intensity" in r["warnings"][0]
    e = refused(lambda: client.solve("sep", parameters={"intensity": 500.0}))
    assert e.code == "invalid_parameters" and e.field == "parameters" and "x_center" in e.message
    e = refused(lambda: client.solve("sep", parameters={"intensity": 500.0, "x_center": 50.0, "radius": 3.0}))
    assert e.field == "parameters" and "radius" in e.message
    e = refused(lambda: client.solve("sep", parameters=[500.0]))
    assert e.field == "parameters"
    e = refused(lambda: client.solve("sep", loading_dict(0.04, 0.25)))
    assert e.code == "wrong_query_kind" and e.field == "loading" and "parameters" in e.message
    e = refused(lambda: client.solve("small", parameters=[1.0, 2.0]))
    assert e.code == "wrong_query_kind" and e.field == "parameters"
    e = refused(lambda: client._json("POST", "/v1/models/sep/solve", json={"parameters": {"intensity": "hot"}}))
    assert e.code == "validation_error" and e.field.startswith("parameters")
    e = refused(lambda: client._json("POST", "/v1/models/sep/solve", json={}))
    assert e.code == "validation_error" and e.field == "loading"  # a body without 'parameters' is a loading query
    e = refused(lambda: client._json("POST", "/v1/models/sep/solve", json={"parameters": [1.0, 2.0], "loading": {}}))
    assert e.code == "validation_error" and e.field == "loading"  # one form per body
    e = refused(lambda: client.solve("sep", parameters=[500.0, 50.0], node_sets=["tip"]))
    assert e.code == "unknown_node_set" and e.field == "node_sets.0"


def test_features_that_do_not_apply_are_refused(server, client, tmp_path):
    import httpx

    headers = {"X-API-Key": server.key}
    r = httpx.post(f"{server.url}/v1/models/sep/enrich", json={"loadings": [{"times": [0, 1]}]}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_for_kind"
    with pytest.raises(ApiError) as info:
        client.fields("sep", {"times": [0.0, 1.0]}, tmp_path / "x.vtu")
    assert info.value.code == "unsupported_for_kind" and info.value.status == 422
    with pytest.raises(ApiError) as info:
        client.solve_nodal("sep", {"times": [0.0, 1.0]}, np.zeros((2, 4)))
    assert info.value.code == "unsupported_for_kind"
    with pytest.raises(ApiError) as info:  # no strain/stress history at reduced points: no cycle quantities
        client.solve("sep", parameters=[500.0, 50.0], cycles=[0.0, 1.0])
    assert info.value.code == "unsupported_for_kind" and info.value.field == "cycles"
    for value in (True, False):  # no reduced points nor dual bases: an explicit 'reconstruct' would do nothing
        with pytest.raises(ApiError) as info:
            client.solve("sep", parameters=[500.0, 50.0], reconstruct=value)
        assert info.value.code == "unsupported_for_kind" and info.value.field == "reconstruct", info.value
        with pytest.raises(ApiError) as info:
            client.batch("sep", parameters=[[500.0, 50.0]], reconstruct=value)
        assert info.value.field == "reconstruct", info.value
    for mid in ("sep", "dict"):  # a deck is mapped onto a hyper-reduced model's sets and surfaces only
        with pytest.raises(ApiError) as info:
            client.solve_deck(mid, b"*NODE\n1, 0, 0, 0\n")
        assert info.value.code == "unsupported_for_kind" and info.value.status == 422
    for mid, word in (("sep", "separated"), ("dict", "cluster_0")):
        page = httpx.get(f"{server.url}/v1/models/{mid}/page", timeout=60)
        assert page.status_code == 200 and word in page.text
    out = client.fields("dict", dictionary_loading(1), tmp_path / "d.vtu", extrapolate=True)
    assert out.stat().st_size > 1000


def test_misclassification_caught_through_rest(server, client):
    """A dictionary whose classifier prefers the far local model: the far model's indicator flags its answer
    and the right one answers; the REST answer lists both attempts."""
    wrong = server.root / "dict_wrong.h5"
    shutil.copy(server.files["dict"], wrong)
    with h5py.File(wrong, "r+") as f:
        labels = f["clustering/labels"][()]
        far, near = int(labels[-1]), int(labels[0])
        f["classifier/intercept"][far] += 100.0
    client.publish("dict_wrong", wrong)
    r = client.solve("dict_wrong", dictionary_loading(0), extrapolate=True)  # hot spot at the clamp
    names = [m["name"] for m in client.model("dict_wrong")["local_models"]]
    assert [a["model"] for a in r["attempts"]] == [names[far], names[near]]
    assert r["fallback"] is True and r["local_model"] == names[near] and r["trusted_all"]
    assert r["attempts"][0]["trusted"] is False


def test_corrupted_files_are_refused_at_upload(server, client, tmp_path):
    def refused(name, src, mutate, words):
        bad = af.mutated(src, tmp_path / f"{name}.h5", mutate)
        with pytest.raises(ApiError) as info:
            client.publish(name, bad)
        e = info.value
        assert e.status == 422 and e.code == "invalid_model_file" and e.field == "body", e
        assert all(w in e.message for w in words), e.message
        assert name not in {m["id"] for m in client.models()}

    sep, dictionary = server.files["sep"], server.files["dict"]

    def nan_at(path):
        def mutate(f):
            v = f[path][()]
            v.flat[0] = np.nan
            f[path][...] = v
        return mutate

    def shifted(path, by):
        def mutate(f):
            f[path][...] = f[path][()] + by
        return mutate

    refused("sep_nan", sep, nan_at("reduced/A_red"), ["/reduced/A_red", "non-finite"])
    refused("sep_rows", sep, shifted("separation/matrix/entry_rows", 10**7), ["/separation/matrix/entry_rows", "outside"])
    refused("sep_link", sep, lambda f: f.__setitem__("basis/extra", h5py.ExternalLink("/etc/passwd", "/x")),
            ["/basis/extra", "external link"])
    refused("sep_params", sep, lambda f: f.attrs.__setitem__("parameters", '[{"name": "a", "range": [1, NaN]}]'),
            ["parameters", "NaN"])
    refused("sep_shape", sep, lambda f: (f.__delitem__("reduced/norm_gram"), f.create_dataset("reduced/norm_gram",
                                                                                             data=np.eye(2))),
            ["/reduced/norm_gram", "shape"])
    refused("dict_sensors", dictionary, shifted("classifier/sensor_nodes", 10**6), ["/classifier/sensor_nodes", "outside"])
    refused("dict_local", dictionary, nan_at("local/cluster_1/reduced/weights"), ["/local/cluster_1", "non-finite"])
    refused("dict_extra", dictionary, lambda f: f.create_dataset("local/cluster_0/payload", data=np.zeros(3)),
            ["/local/cluster_0/payload", "not part of the file format"])
    refused("dict_gone", dictionary, lambda f: f.__delitem__("local/cluster_1"), ["/local/cluster_1", "missing"])
    # the intact files publish (a new id) and answer
    assert client.publish("sep2", sep)["kind"] == "separated"
    assert client.solve("sep2", parameters=[500.0, 50.0])["kind"] == "separated"


def test_separated_page_queries_parameters(server):
    """The model page of a separated model (headless Chromium): one input per parameter, the request built by
    the page is a parameter query, and the rendered answer is the REST answer."""
    import re

    from test_model_page import _script_json, run_chromium

    url = f"{server.url}/v1/models/sep/page?param.intensity=512&param.x_center=41&submit=1"
    proc = run_chromium(["--virtual-time-budget=30000", "--dump-dom", url])
    dom = proc.stdout
    assert 'id="status">done<' in dom, f"the page did not finish the query:\n{proc.stderr[-3000:]}\n{dom[-3000:]}"
    request, shown = _script_json(dom, "request"), _script_json(dom, "answer")
    assert request == {"parameters": {"intensity": 512, "x_center": 41}, "extrapolate": False}
    with Client(server.url) as c:
        rest = c.solve("sep", parameters=request["parameters"])
    assert shown["coordinates"] == rest["coordinates"] and shown["trusted"] == rest["trusted"]
    trust = re.search(r'<span id="trust" class="(ok|no)">', dom)
    assert trust and (trust.group(1) == "ok") == rest["trusted"]
