"""REST service against a real ``structrom serve`` process on 127.0.0.1 (tests/api_fixtures.py): every
endpoint through the Python client, bad inputs (4xx JSON naming the field, server still healthy),
security (keys, ids, size limits, corrupt uploads never published), model cache, jobs, and no MPI or
PETSc library in the server process."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import zipfile

import h5py
import httpx
import numpy as np
import pytest

import api_fixtures as af
import rom_fixtures as fx
from structrom.api.client import ApiError, Client
from structrom.rom.online import ReducedModel

GOOD = fx.loading_dict(0.04, 0.25)
OUT_OF_RANGE = fx.loading_dict(0.08, 0.25)  # pressure peak above the training range [0.03, 0.05]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api_models")
    return af.build_small_model(tmp)


@pytest.fixture(scope="module")
def server(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("api_server")
    models = root / "models"
    models.mkdir()
    (models / "small.h5").write_bytes(built.path.read_bytes())
    (models / "broken.h5").write_bytes(built.path.read_bytes()[:5000])  # truncated: rejected at scan
    config = root / "server.toml"
    config.write_text("max_request_bytes = 262144\nmax_model_bytes = 4194304\nsync_batch_max = 3\n"
                      "cache_models = 1\nmax_increments = 200\nport = 1\n")  # port overridden by the flag
    with af.ServerProcess(models, keys=[af.new_key()], config=config) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with Client(server.url, api_key=server.key) as c:
        yield c


@pytest.fixture(scope="module")
def anon(server):
    with Client(server.url) as c:
        yield c


@pytest.fixture(scope="module")
def local(built):
    return ReducedModel.load(built.path)


def assert_healthy(server):
    r = httpx.get(server.url + "/health", timeout=5)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def expect_error(server, fn, status, field=None, code=None):
    """``fn()`` raises ApiError with this status (and field prefix / code); the server stays healthy."""
    with pytest.raises(ApiError) as info:
        fn()
    e = info.value
    assert e.status == status, (e.status, e.code, e.field, e.message)
    assert isinstance(e.body, dict) and "error" in e.body and e.message
    if field is not None:
        assert e.field is not None and e.field.startswith(field), (e.field, e.message)
    if code is not None:
        assert e.code == code, (e.code, e.message)
    assert_healthy(server)
    return e


# -- service endpoints ---------------------------------------------------------------------------------------------------
def test_health_ready_metrics_openapi(server, client):
    assert client.health()["status"] == "ok"
    assert client.ready() == {"status": "ready", "models": 1}
    text = client.metrics()
    assert "# TYPE structrom_http_requests_total counter" in text
    assert 'structrom_http_requests_total{method="GET",route="/ready",status="200"}' in text
    assert "structrom_models_published 1" in text
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/health", "/ready", "/metrics", "/v1/models", "/v1/models/{model_id}", "/v1/models/{model_id}/solve",
            "/v1/models/{model_id}/solve/nodal", "/v1/models/{model_id}/batch", "/v1/models/{model_id}/fields",
            "/v1/jobs/{job_id}", "/v1/queries"} <= paths


def test_docs_page_needs_no_external_resource(server):
    """GET /docs (Swagger UI) refers to scripts and styles the server serves itself: it works without internet."""
    page = httpx.get(server.url + "/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text
    refs = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*["']([^"']+)["']""", page.text)
    urls = [a or b for a, b in refs]
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    for url in urls:
        r = httpx.get(server.url + url)
        assert r.status_code == 200 and len(r.content) > 0, (url, r.status_code)
    js = httpx.get(server.url + "/docs/static/swagger-ui-bundle.js")
    assert "javascript" in js.headers["content-type"] and b"SwaggerUIBundle" in js.content
    for escape in (b"/docs/static/../../../../etc/passwd", b"/docs/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                   b"/docs/static/..%2f..%2f..%2fetc%2fpasswd"):  # (raw: a client would normalize the dots)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET " + escape + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.split(b" ", 2)[1] in (b"400", b"404") and b"root:" not in answer, answer[:300]


def test_list_and_card(client, built, local):
    models = client.models()
    assert [m["id"] for m in models] == ["small"]
    assert models[0]["modes"] == local.n_modes
    assert httpx.get(client.http.base_url.join("/v1/models")).json()["rejected"] == ["broken"]
    card = client.model("small")
    assert card["sizes"]["modes"] == local.n_modes and card["sizes"]["reduced_points"] == local.n_reduced_points
    assert card["sizes"]["mesh_nodes"] == built.mesh.n_nodes
    assert card["loading_schema"] == local.loading_schema
    assert card["loading_schema"]["pressure"]["zmax"]["range"] == [0.03, 0.05]
    assert card["indicator"] == {"quantity": "cumulated_plastic_strain", "tolerance": local.indicator_tolerance,
                                 "reference": local.data.indicator_reference,
                                 "calibration": None,  # the fixture model is not calibrated
                                 "guarantee": local.card()["indicator"]["guarantee"]}
    assert card["kind"] == "hyper_reduced"
    assert card["training"] == [list(t) for t in af.SMALL_TRAINING]
    assert card["surfaces"] == ["zmax"] and "xmax" in card["node_sets"]
    assert "units" in card and card["provenance"]["builder"].startswith("tests/")
    assert len(card["sha256"]) == 64


# -- solves ----------------------------------------------------------------------------------------------------------------
def test_solve_matches_in_process(client, local):
    r = client.solve("small", GOOD, node_sets=["xmax", "zmax"])
    ref = local.solve(GOOD)
    assert r["times"] == ref.times.tolist()
    assert np.allclose(r["indicator"], ref.indicator, rtol=1e-12, atol=0)
    assert r["trusted"] == ref.trusted.tolist() and r["trusted_all"] == bool(ref.trusted.all())
    assert r["indicator_kind"] == "gappy_residual"  # the fixture model is not calibrated
    assert np.allclose(r["max_von_mises"], ref.max_von_mises(), rtol=1e-12)
    assert r["max_von_mises_over"] == "reconstructed_field"
    p = ref.dual_field("cumulated_plastic_strain", None).max(axis=1)
    assert np.allclose(r["max_cumulated_plastic_strain"], p, rtol=1e-12, atol=1e-300)
    u = ref.displacement("xmax", increment=None)
    assert np.allclose(r["displacement"]["xmax"]["mean"], u.mean(axis=1), rtol=1e-12, atol=1e-300)
    assert np.allclose(r["displacement"]["xmax"]["max_magnitude"], np.linalg.norm(u, axis=2).max(axis=1))
    assert r["displacement"]["zmax"]["nodes"] == len(local.node_set("zmax"))
    assert r["indicator_tolerance"] == local.indicator_tolerance and not r["extrapolated"]
    fast = client.solve("small", GOOD, reconstruct=False)
    assert fast["max_von_mises_over"] == "reduced_points"
    assert np.allclose(fast["max_von_mises"], ref.max_von_mises(reconstruct=False))


def test_out_of_range_needs_extrapolate(server, client):
    e = expect_error(server, lambda: client.solve("small", OUT_OF_RANGE), 422, "loading.pressure.zmax",
                     "outside_training_family")
    assert "training range" in e.message and "extrapolate" in e.message
    r = client.solve("small", OUT_OF_RANGE, extrapolate=True)
    assert r["extrapolated"] and any("pressure.zmax" in w for w in r["warnings"])


def nodal_values(mesh, loading: dict) -> tuple[np.ndarray, np.ndarray]:
    """The hot spot of ``loading`` evaluated at every mesh node at the loading's times."""
    from structrom.rom.loading_dict import loading_from_dict

    ld = loading_from_dict(loading)
    return ld.times, np.array([ld.temperature(t, mesh.points) for t in ld.times])


def test_solve_nodal_upload_npy_and_hdf5(server, client, built, local, tmp_path):
    times, T = nodal_values(built.mesh, GOOD)
    ref = client.solve("small", GOOD)
    loading = {k: v for k, v in GOOD.items() if k != "temperature"}
    # a nodal field is outside a hot-spot family: extrapolate; same temperatures -> same answer
    r = client.solve_nodal("small", loading, T, extrapolate=True)
    assert np.allclose(r["max_von_mises"], ref["max_von_mises"], rtol=1e-9)
    assert np.allclose(r["indicator"], ref["indicator"], rtol=1e-7, atol=1e-12)
    h5 = tmp_path / "temperature.h5"
    with h5py.File(h5, "w") as f:
        f["temperature"] = T
        f["times"] = times
    r2 = client.solve_nodal("small", loading, h5, extrapolate=True)
    assert np.allclose(r2["max_von_mises"], ref["max_von_mises"], rtol=1e-9)
    # bad uploads: wrong shapes, NaN, not an array file, pickles refused
    expect_error(server, lambda: client.solve_nodal("small", loading, T[:, :-1], extrapolate=True), 422,
                 "loading.temperature")
    expect_error(server, lambda: client.solve_nodal("small", loading, T[:-1], extrapolate=True), 422, "temperature",
                 "invalid_shape")
    bad = T.copy()
    bad[1, 3] = np.nan
    expect_error(server, lambda: client.solve_nodal("small", loading, bad, extrapolate=True), 422, "temperature",
                 "non_finite")
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"hello world")
    expect_error(server, lambda: client.solve_nodal("small", loading, junk, extrapolate=True), 422, "temperature")
    pick = tmp_path / "pickle.npy"
    np.save(pick, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    expect_error(server, lambda: client.solve_nodal("small", loading, pick, extrapolate=True), 422, "temperature")
    r = httpx.post(server.url + "/v1/models/small/solve/nodal", data={"request": "{not json"},
                   files={"temperature": ("t.npy", b"x")})
    assert r.status_code == 422 and r.json()["error"]["field"].startswith("request")


def test_batch_sync_and_as_job(server, client, local):
    loadings = [GOOD, OUT_OF_RANGE, fx.loading_dict(0.035, 0.1)]
    r = client.batch("small", loadings)
    assert r["ok"] == 2 and r["failed"] == 1
    assert r["results"][1]["error"]["field"] == "loadings.1.loading.pressure.zmax"
    assert np.allclose(r["results"][0]["max_von_mises"], local.solve(GOOD).max_von_mises())
    # above sync_batch_max (3): 202 + Location, polled by the client
    raw = client.http.post("/v1/models/small/batch", json={"loadings": loadings + [GOOD]})
    assert raw.status_code == 202 and raw.headers["location"] == f"/v1/jobs/{raw.json()['job']}"
    done = client.wait(raw.json()["job"], timeout=60)
    assert done["ok"] == 3 and done["failed"] == 1
    assert client.batch("small", loadings + [GOOD])["ok"] == 3  # the client waits for the job itself
    job = client.submit("small", GOOD)
    assert np.allclose(client.wait(job, timeout=60)["max_von_mises"], local.solve(GOOD).max_von_mises())
    failed = client.submit("small", OUT_OF_RANGE)
    e = pytest.raises(ApiError, client.wait, failed, timeout=60).value
    assert e.status == 422 and e.field == "loading.pressure.zmax"
    expect_error(server, lambda: client.job("nope"), 404, "job_id")


def test_fields_vtu_xdmf_hdf5(client, built, local, tmp_path):
    import meshio

    ref = local.solve(GOOD)
    vtu = client.fields("small", GOOD, tmp_path / "f.vtu", format="vtu")
    m = meshio.read(vtu)
    assert np.allclose(m.point_data["displacement"], ref.displacement(), rtol=1e-10, atol=1e-14)
    assert "stress_element_mean" in m.cell_data and "cumulated_plastic_strain_element_mean" in m.cell_data
    z = client.fields("small", GOOD, tmp_path / "f.zip", format="xdmf", increment=1,
                      quantities=["cumulated_plastic_strain"])
    with zipfile.ZipFile(z) as zf:
        names = sorted(zf.namelist())
        assert names == ["small.h5", "small.xdmf"]
        zf.extractall(tmp_path / "x")
    mx = meshio.read(tmp_path / "x" / "small.xdmf")
    assert np.allclose(mx.point_data["displacement"], ref.displacement(increment=1), rtol=1e-10, atol=1e-14)
    h5 = client.fields("small", GOOD, tmp_path / "f.h5", format="hdf5")
    with h5py.File(h5) as f:
        assert f["displacement"].shape == (4, built.mesh.n_nodes, 3)
        assert np.allclose(f["displacement"][()], ref.displacement(increment=None), rtol=1e-10, atol=1e-14)
        assert np.allclose(f["dual/stress"][()], ref.dual_field("stress", None), rtol=1e-10, atol=1e-12)
        assert f["trusted"][()].tolist() == ref.trusted.tolist()
    with pytest.raises(ApiError) as e:
        client.fields("small", GOOD, tmp_path / "g.vtu", quantities=["nope"])
    assert e.value.status == 422 and e.value.field == "quantities.0"
    with pytest.raises(ApiError) as e:  # (ignored before: the file held every increment)
        client.fields("small", GOOD, tmp_path / "g.h5", format="hdf5", increment=1)
    assert e.value.status == 422 and e.value.field == "increment" and "writes every increment" in e.value.message


# -- bad inputs ----------------------------------------------------------------------------------------------------------
BAD_BODIES = [
    ({"loading": {"times": [0, 1], "pressure": {"zmax": [[0, 0], [1, float("nan")]]}}}, "loading.pressure.zmax"),
    ({"loading": {"times": [0, float("inf")]}}, "loading.times.1"),
    ({"loading": {"times": [0]}}, "loading.times"),
    ({"loading": {"times": [0, 1, 0.5]}}, "loading"),  # not increasing
    ({"loading": {"times": [0, 1], "gravity": [0, 0]}}, "loading.gravity"),
    ({"loading": {"times": [0, 1], "pressure": {"zmax": [[0, 0, 1]]}}}, "loading.pressure.zmax"),
    ({"loading": {"times": [0, 1], "pressure": {"nope": 0.04}}}, "loading.pressure"),
    ({"loading": {"times": [0, 1], "temperature": {"type": "hot_spot", "radius": 1}}}, "loading.temperature"),
    ({"loading": {"times": [0, 1], "temperature": {"type": "hot_spot", "center": [0, 0, 0], "radius": -1,
                                                     "intensity": 1}}}, "loading.temperature.radius"),
    ({"loading": {"times": [0, 1], "temperature": {"type": "nodal", "times": [0, 1], "values": [[1, 2], [3, 4]]}},
      "extrapolate": True}, "loading.temperature"),  # 2 nodes, the mesh has more
    ({"loading": {"times": [0, 1], "temperature": {"type": "nodal", "file": "/etc/passwd", "times": [0]}}},
     "loading.temperature"),  # no server-side files
    ({"loading": {"times": [0, 1], "centrifugal": {"omega": 10}}}, "loading.centrifugal"),  # model has none
    ({"loading": {"end_time": 1, "increments": 10**5}}, "loading.times"),  # above max_increments
    ({"loading": GOOD, "node_sets": ["xmax", "nope"]}, "node_sets.1"),
    ({"loading": {"times": [0, 1]}, "unknown": 1}, "unknown"),
    ({"loadin": {"times": [0, 1]}}, "loading"),
]


@pytest.mark.parametrize("body,field", BAD_BODIES, ids=[f[1] for f in BAD_BODIES])
def test_bad_inputs_get_4xx_naming_the_field(server, body, field):
    text = json.dumps(body)  # NaN / Infinity as Python's json writes them (accepted by the parser, rejected)
    r = httpx.post(server.url + "/v1/models/small/solve", content=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["field"] is not None and err["field"].startswith(field), (err, field)
    assert_healthy(server)


@pytest.mark.parametrize("body,field,close", [
    ({"loading": {**GOOD, "presure": {}}}, "loading.presure", "pressure"),
    ({"loading": GOOD, "node_set": ["xmax"]}, "node_set", "node_sets"),
    ({"loading": {**GOOD, "temperature": {"type": "hot_spot", "centre": [0, 0, 0], "radius": 1, "intensity": 1}}},
     "loading.temperature.centre", "center")])
def test_a_misspelt_body_key_names_the_allowed_one(server, body, field, close):
    r = httpx.post(server.url + "/v1/models/small/solve", json=body)
    err = r.json()["error"]
    assert r.status_code == 422 and err["field"] == field, r.text
    assert f"unknown key; did you mean '{close}'? (allowed keys here: " in err["message"], err


def test_serve_on_a_port_in_use_says_so_before_starting(tmp_path):
    """A second server on a taken port: exit code 2 and one line naming the address and the --port fix (uvicorn
    started the service, its solver processes included, then stopped with an errno and exit code 3)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "structrom.api.cli", "serve", "--models", str(tmp_path),
                              "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "--port" in out.stderr, out.stderr
    assert "Started server process" not in out.stderr


def test_other_bad_requests(server, client, anon):
    expect_error(server, lambda: client.solve("missing", GOOD), 404, "model_id", "unknown_model")
    expect_error(server, lambda: client.model("missing"), 404, "model_id")
    expect_error(server, lambda: client.solve("a.b", GOOD), 422, "model_id")
    expect_error(server, lambda: client.model("x" * 65), 422, "model_id")
    expect_error(server, lambda: client.solve("broken", GOOD), 409, "model_id", "invalid_model_file")
    for path in ["/v1/models/..%2F..%2Fetc%2Fpasswd", "/v1/models/%2e%2e", "/v1/models/..", "/v1/models/.%00"]:
        r = httpx.get(server.url + path)
        assert r.status_code in (404, 422) and "error" in r.json(), (path, r.status_code, r.text)
    r = httpx.post(server.url + "/v1/models/small/solve", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = httpx.post(server.url + "/v1/models/small/batch", json={"loadings": [GOOD] * 300})  # max_batch 256
    assert r.status_code == 422 and r.json()["error"]["field"] == "loadings"
    expect_error(server, lambda: client.fields("small", GOOD, "/dev/null", increment=99), 422, "increment")
    assert_healthy(server)


def test_request_size_limits(server):
    limit = 262144
    big = {"loading": {"times": [0.0, 1.0], "pressure": {"zmax": [[float(i), 0.04] for i in range(20000)]}}}
    r = httpx.post(server.url + "/v1/models/small/solve", json=big)
    assert r.status_code == 413 and r.json()["error"]["field"] == "body" and r.json()["error"]["limit"] == limit
    assert_healthy(server)

    def chunks():  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b" " * 16384

    r = httpx.post(server.url + "/v1/models/small/solve", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    assert_healthy(server)
    # a declared size is rejected before any byte of the body is read (raw socket: only headers sent)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"PUT /v1/models/huge HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: 10000000000\r\nX-API-Key: " + server.key.encode() + b"\r\n\r\n")
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413"), head
    assert_healthy(server)


# -- security and publishing -----------------------------------------------------------------------------------------------
def test_keys_required_for_writes(server, built, anon):
    models_dir = server.models_dir
    expect_error(server, lambda: anon.publish("new", built.path), 401, "headers.x-api-key", "missing_api_key")
    with Client(server.url, api_key="wrong-key-0123456789") as bad:
        expect_error(server, lambda: bad.publish("new", built.path), 401, code="invalid_api_key")
        expect_error(server, lambda: bad.delete("small"), 401)
        expect_error(server, lambda: bad.queries(), 401)
    r = httpx.put(server.url + "/v1/models/new", content=built.path.read_bytes(),
                  headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert not (models_dir / "new.h5").exists()
    assert anon.models()  # reads are open by default


def test_publish_validate_replace_delete(server, client, built, tmp_path):
    models_dir = server.models_dir
    data = built.path.read_bytes()
    # corrupt / foreign / empty files are never published, and no temp file is left behind
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(data[: len(data) // 2])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    text = tmp_path / "text.h5"
    text.write_text("not a model")
    for bad in (trunc, foreign, text):
        e = expect_error(server, lambda: client.publish("other", bad), 422, "body", "invalid_model_file")
        assert str(models_dir) not in e.message  # no server paths leak
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    expect_error(server, lambda: client.publish("other", empty), 422, "body")
    expect_error(server, lambda: client.publish("bad.id", built.path), 422, "model_id")
    assert sorted(p.name for p in models_dir.iterdir() if not p.name.startswith("index.sqlite")
                  and p.name != ".pinned") == ["broken.h5", "small.h5"]  # .pinned: versions in use (api/worker.py)
    # publish, use, replace, delete
    card = client.publish("other", built.path)
    assert card["id"] == "other" and card["sizes"]["modes"] == built.n_modes
    assert sorted(m["id"] for m in client.models()) == ["other", "small"]
    a = client.solve("other", GOOD)
    b = client.solve("small", GOOD)  # cache_models = 1: alternating evicts
    assert a["max_von_mises"] == b["max_von_mises"]
    # each solver process has its own cache and takes every other request: two more reach both models
    assert client.solve("small", GOOD)["max_von_mises"] == client.solve("other", GOOD)["max_von_mises"]
    r = client.http.put("/v1/models/other", content=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200  # replaced
    client.delete("other")
    expect_error(server, lambda: client.model("other"), 404)
    expect_error(server, lambda: client.delete("other"), 404)
    assert not (models_dir / "other.h5").exists()
    text = client.metrics()
    evictions = [ln for ln in text.splitlines() if ln.startswith('structrom_model_cache_events{event="eviction"}')]
    assert evictions and float(evictions[0].split()[-1]) >= 1


def test_query_log(client, tmp_path):
    client.solve("small", GOOD)
    with pytest.raises(ApiError):
        client.solve("small", OUT_OF_RANGE)
    client.batch("small", [GOOD])
    client.fields("small", GOOD, tmp_path / "f.vtu")
    log = client.queries(limit=4)
    assert [(q["kind"], q["status"], q["loadings"]) for q in log] == [("fields", 200, 1), ("batch", 200, 1),
                                                                      ("solve", 422, 1), ("solve", 200, 1)]
    assert all(q["model"] == "small" and q["ms"] > 0 for q in log)


def test_oversize_model_upload(server, client):
    def chunks():
        for _ in range(80):  # 5 MiB > max_model_bytes (4 MiB)
            yield b"\0" * 65536

    r = client.http.put("/v1/models/huge", content=chunks(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
    assert not any(p.name.startswith(".upload-") for p in server.models_dir.iterdir())
    assert_healthy(server)


def test_solves_do_not_block_the_event_loop(server, client):
    job = client.http.post("/v1/models/small/batch", params={"background": "true"},
                           json={"loadings": [fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 41).tolist())] * 8})
    assert job.status_code == 202
    t0 = time.perf_counter()
    assert client.health()["status"] == "ok"
    dt = time.perf_counter() - t0
    status = client.job(job.json()["job"])["status"]
    client.wait(job.json()["job"], timeout=120)
    assert dt < 0.5, f"/health took {dt:.3f} s while a batch was {status}"


def test_reads_can_require_a_key(built, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "small.h5").write_bytes(built.path.read_bytes())
    with af.ServerProcess(models, keys=[af.new_key()], args=["--read-requires-key"]) as srv:
        with Client(srv.url) as anon:
            expect_error(srv, anon.models, 401)
            expect_error(srv, lambda: anon.solve("small", GOOD), 401)
            assert anon.health()["status"] == "ok"  # liveness stays open; everything else needs the key
            for path in ("/ready", "/metrics", "/openapi.json", "/docs", "/redoc", "/v1/jobs/x", "/nope"):
                r = httpx.get(srv.url + path)
                assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key", (path, r.text)
        with Client(srv.url, api_key=srv.key) as c:
            assert [m["id"] for m in c.models()] == ["small"]
            assert c.ready()["status"] == "ready" and "structrom_http_requests_total" in c.metrics()
            assert httpx.get(srv.url + "/openapi.json", headers={"X-API-Key": srv.key}).status_code == 200
    # no key configured: writes disabled (403)
    with af.ServerProcess(models) as srv, Client(srv.url, api_key="some-key-0123456789") as c:
        expect_error(srv, lambda: c.publish("x", built.path), 403, code="writes_disabled")


def test_server_process_maps_no_mpi_or_petsc(server, client, tmp_path):
    """After solves, nodal uploads, field writes and publishing, the server process has mapped neither
    libmpi nor libpetsc (nor the mpi4py / petsc4py extension modules)."""
    client.solve("small", GOOD, node_sets=["xmax"])
    client.fields("small", GOOD, tmp_path / "f.vtu")
    maps = server.mapped_libraries()
    assert "libpython" in maps or "python" in maps
    for lib in ("libpetsc", "libmpi", "petsc4py", "mpi4py", "libopen-pal", "libopen-rte"):
        assert lib not in maps, f"{lib} is mapped in the server process"


def test_importing_the_server_imports_no_mpi_or_petsc():
    code = ("import sys, structrom.api.server, structrom.api.cli, structrom.api.client, structrom.api.service, structrom.api.registry\n"
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('mpi4py', 'petsc4py', 'mpi'))\n"
            "assert not bad, bad\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=af.REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- configuration -------------------------------------------------------------------------------------------------------
def test_config_toml_and_overrides(tmp_path, monkeypatch):
    from structrom.api.config import ConfigError, load_config

    f = tmp_path / "s.toml"
    f.write_text('port = 9000\nmodels_dir = "m"\nkeys_file = "keys"\ncache_models = 3\n')
    (tmp_path / "keys").write_text("# comment\n" + "k" * 20 + "\n\n")
    monkeypatch.setenv("STRUCTROM_API_KEYS", "e" * 20 + ", ")
    cfg = load_config(f, {"port": 9001, "host": None})
    assert cfg.port == 9001 and cfg.host == "127.0.0.1" and cfg.cache_models == 3
    assert cfg.models_dir == tmp_path / "m"
    assert cfg.api_keys() == ["k" * 20, "e" * 20]
    f.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_config(f)
    f.write_text("port = -1\n")
    with pytest.raises(ConfigError, match="port"):
        load_config(f)
    monkeypatch.setenv("STRUCTROM_API_KEYS", "short")
    with pytest.raises(ConfigError, match="shorter than 16"):
        load_config(None).api_keys()
    out = subprocess.run([sys.executable, "-m", "structrom.api.cli", "serve", "--config", str(tmp_path / "none.toml")],
                         cwd=af.REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "structrom: error:" in out.stderr


def test_client_handles_non_json_errors():
    def handler(request):
        return httpx.Response(502, text="bad gateway")

    with Client("http://test", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(ApiError) as e:
            c.health()
    assert e.value.status == 502 and e.value.code == "http_error"



def test_client_retries_after_429():
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) < 3:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": {"status": 429, "code": "busy",
                                                                                    "field": None, "message": "x"}})
        return httpx.Response(200, json={"status": "ok", "version": "1"})

    with Client("http://test", transport=httpx.MockTransport(handler), retries=2) as c:
        assert c.health()["status"] == "ok" and len(calls) == 3
    calls.clear()
    with Client("http://test", transport=httpx.MockTransport(handler)) as c:  # default: no retry
        with pytest.raises(ApiError) as e:
            c.health()
    assert e.value.status == 429 and e.value.code == "busy" and len(calls) == 1
