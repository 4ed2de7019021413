"""Hostile model files and uploads against a real ``structrom serve`` process on 127.0.0.1: every attack is
answered 4xx (or 409 / 500 / 503 naming the cause) with a JSON body, nothing outside the upload is read,
and the server keeps giving correct answers afterwards (compared with the model solved in this process).

The attack files are built here with h5py: external storage pointing at a file standing for a server
secret, external and soft links, a virtual dataset, a filter outside the allowed set, extra datasets, a
gzip bomb and a sparse claim of 8 GB, out-of-range indices, a collapsed element, a NaN indicator tolerance
and NaN values, a missing dataset, a JSON attribute holding a lone surrogate; plus a killed solver process,
requests abandoned by their clients, concurrent replace / delete during solves and during a batch job, SIGTERM.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import h5py
import httpx
import numpy as np
import pytest

import api_fixtures as af
import rom_fixtures as fx
from structrom.rom.online import ReducedModel

GOOD = fx.loading_dict(0.04, 0.25)
SECRET = b"TOP-SECRET-API-KEY-0123456789abcdef\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attack_models")
    small = af.build_small_model(tmp)
    other = af.build_small_model(tmp, name="other.h5", divisions=(6, 2, 2))  # another mesh: other shapes
    return small, other


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    p = tmp_path_factory.mktemp("server_secrets") / "api_keys.txt"
    p.write_bytes(SECRET * 200)
    return p


@pytest.fixture(scope="module")
def server(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("attack_server")
    models = root / "models"
    models.mkdir()
    shutil.copy(built[0].path, models / "small.h5")
    config = root / "server.toml"
    config.write_text("max_request_bytes = 2097152\nmax_model_bytes = 4194304\nsync_batch_max = 16\n"
                      "max_increments = 2000\nworkers = 2\n")
    with af.ServerProcess(models, keys=[af.new_key()], config=config) as srv:
        yield srv


@pytest.fixture(scope="module")
def reference(built):
    return {"small": ReducedModel.load(built[0].path).solve(GOOD),
            "other": ReducedModel.load(built[1].path).solve(GOOD)}


def solve(server, model_id="small", body=None, **kw):
    return httpx.post(f"{server.url}/v1/models/{model_id}/solve", json=body or {"loading": GOOD}, timeout=60, **kw)


def assert_serving(server, reference):
    """/health answers, the list answers 200, and a solve of the good model gives the in-process answer."""
    assert httpx.get(server.url + "/health", timeout=5).json()["status"] == "ok"
    assert httpx.get(server.url + "/v1/models", timeout=30).status_code == 200
    r = solve(server)
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["max_von_mises"], reference["small"].max_von_mises(), rtol=1e-12)
    assert np.allclose(r.json()["indicator"], reference["small"].indicator, rtol=1e-12, atol=0)


def put(server, model_id, path):
    return httpx.put(f"{server.url}/v1/models/{model_id}", content=path.read_bytes(), timeout=60,
                     headers={"X-API-Key": server.key, "Content-Type": "application/octet-stream"})


def assert_error(r, status, code=None, field=None, contains=None):
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    if code is not None:
        assert err["code"] == code, err
    if field is not None:
        assert err["field"] is not None and err["field"].startswith(field), err
    if contains is not None:
        assert contains in err["message"], err
    return err


def hostile_models(src, other, secret, tmp):
    """(name, file, what the refusal names) for each hostile model file."""
    def external_storage(f):
        af.replace_dataset(f, "mesh/points", external=[(str(secret), 0, f["mesh/points"].nbytes)])

    def external_link(f):
        del f["mesh/points"]
        f["mesh/points"] = h5py.ExternalLink(str(other), "/mesh/points")

    def soft_link(f):
        del f["loads/pressure/zmax"]
        f["loads/pressure/zmax"] = h5py.SoftLink("/modes/singular_values")

    def virtual(f):
        shape = f["mesh/points"].shape
        layout = h5py.VirtualLayout(shape=shape, dtype="f8")
        layout[:] = h5py.VirtualSource(str(src), "mesh/points", shape=shape)
        del f["mesh/points"]
        f.create_virtual_dataset("mesh/points", layout)

    def scaleoffset_filter(f):
        af.replace_dataset(f, "reduced/element", scaleoffset=0, chunks=True)

    def extra_dataset(f):
        f["payload"] = np.arange(10)

    def sparse_8gb(f):  # never written: a tiny file that reads as 8 GB of fill values
        f.create_dataset("mesh/node_sets/huge", shape=(2**30,), dtype="i8", chunks=(2**20,), compression="gzip")

    def indices_out_of_range(f):
        f["reduced/temperature/indices"][5] = 10**6

    def element_out_of_range(f):
        f["reduced/element"][0] = -3

    def nan_tolerance(f):
        f["indicator"].attrs["tolerance"] = np.nan

    def nan_integrator(f):
        f["reduced/integrator"][0, 0, 0] = np.nan

    def nan_json(f):
        f.attrs["provenance"] = '{"tolerance": NaN}'

    def missing_dataset(f):
        del f["dual/stress/basis"]

    def scalar_dataset(f):  # a 0-d dataset where an array is expected
        del f["reduced/weights"]
        f["reduced/weights"] = np.float64(1.0)

    def infinite_version(f):
        f.attrs["schema_version"] = np.inf

    def bad_dirichlet(f):  # answers would then fail in the solve
        f.attrs["dirichlet"] = '[1, null, {"node_set": 5}]'

    def trusting_reference(f):  # a reference norm that makes the indicator trust any answer
        f["indicator"].attrs["reference"] = 1.7e308

    def overflowing_json(f):
        f.attrs["provenance"] = '{"x": 1e400}'

    def lone_surrogate(f):  # valid JSON whose string no UTF-8 answer can carry (the card answered 500)
        f.attrs["units"] = '{"length": "\\ud800"}'

    def lone_surrogate_bytes(f):  # the same, as the UTF-8-like bytes of a surrogate
        f.attrs["provenance"] = '{"name": "\\ud800"}'.encode().decode("unicode_escape").encode("utf-8", "surrogatepass")

    def oversized_node_set(f):  # more entries than the mesh has nodes, never written
        n = f["mesh/points"].shape[0]
        f.create_dataset("mesh/node_sets/bomb", shape=(64 * n,), dtype="i8", chunks=(n,), compression="gzip")

    def empty_attribute(f):  # no value (h5py.Empty): refused as "unreadable HDF5 structure ... corrupt"
        f["indicator"].attrs["tolerance"] = h5py.Empty("f8")

    def empty_kind(f):  # the same on a root attribute read before screening: "Unspecified error in H5Aget_..."
        f.attrs["kind"] = h5py.Empty("S10")

    def collapsed_element(f):  # an element's nodes all at one node: /fields and deck answers failed with a 500
        f["mesh/blocks/0/connectivity"][0] = 0

    def absurd_weight(f):  # finite, published, and then every solve diverged
        f["reduced/weights"][0] = 1e308

    def huge_weight(f):  # below the absurd magnitude, yet no volume of this mesh
        f["reduced/weights"][0] = 1e25

    def negative_weight(f):
        f["reduced/weights"][0] = -1.0

    def absurd_integrator(f):
        f["reduced/integrator"][0, 1, 0] = -1e300

    def huge_chunk(f):  # one chunk far larger than the writers' (re-decompressed for every block read)
        data = f["dual/stress/basis"][()]
        del f["dual/stress/basis"]
        f.create_dataset("dual/stress/basis", data=data, maxshape=(None, None), chunks=(2**22, 16),
                         compression="gzip")

    cases = [("external_storage", external_storage, "external storage"),
             ("external_link", external_link, "external link"), ("soft_link", soft_link, "soft link"),
             ("virtual_dataset", virtual, "virtual dataset"), ("filter", scaleoffset_filter, "filter"),
             ("extra_dataset", extra_dataset, "not part of the file format"),
             ("sparse_8gb", sparse_8gb, "once decompressed"),
             ("indices_out_of_range", indices_out_of_range, "reduced/temperature/indices"),
             ("element_out_of_range", element_out_of_range, "reduced/element"),
             ("nan_tolerance", nan_tolerance, "tolerance"), ("nan_integrator", nan_integrator, "non-finite"),
             ("nan_json", nan_json, "NaN"), ("missing_dataset", missing_dataset, "dual/stress/basis"),
             ("scalar_dataset", scalar_dataset, "reduced/weights: a scalar"),
             ("infinite_version", infinite_version, "schema_version"),
             ("bad_dirichlet", bad_dirichlet, "dirichlet"),
             ("trusting_reference", trusting_reference, "reference"),
             ("overflowing_json", overflowing_json, "1e400"),
             ("lone_surrogate", lone_surrogate, "lone surrogate"),
             ("lone_surrogate_bytes", lone_surrogate_bytes, "provenance"),
             ("oversized_node_set", oversized_node_set, "mesh/node_sets/bomb"),
             ("absurd_weight", absurd_weight, "/reduced/weights: entry 0 = 1e+308, above 1e+30"),
             ("huge_weight", huge_weight, "/reduced/weights: entry 0 = 1e+25; a quadrature weight is a volume"),
             ("negative_weight", negative_weight, "/reduced/weights: entry 0 = -1; a quadrature weight"),
             ("absurd_integrator", absurd_integrator, "/reduced/integrator: entry (0, 1, 0) = -1e+300"),
             ("huge_chunk", huge_chunk, "rechunk"),
             ("collapsed_element", collapsed_element, "non-positive Jacobian determinant"),
             ("empty_attribute", empty_attribute, "/indicator: attribute 'tolerance' has no value"),
             ("empty_kind", empty_kind, ".h5: /: attribute 'kind' has no value")]
    return [(name, af.mutated(src, tmp / f"{name}.h5", fn), what) for name, fn, what in cases]


def test_hostile_model_uploads_are_refused(server, built, secret, reference, tmp_path):
    models = server.models_dir
    for name, path, what in hostile_models(built[0].path, built[1].path, secret, tmp_path):
        r = put(server, "victim", path)
        err = assert_error(r, 422, "invalid_model_file", "body", what)
        assert SECRET.decode().strip() not in r.text and str(secret) not in r.text, name
        assert str(models) not in r.text and "/proc/" not in r.text, (name, err)
        assert not (models / "victim.h5").exists(), name
        assert not any(p.name.endswith(".partial") for p in models.iterdir())
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200, name
    assert_serving(server, reference)
    assert "victim" not in [m["id"] for m in httpx.get(server.url + "/v1/models").json()["models"]]


def test_hostile_files_copied_by_hand_are_screened(server, built, secret, reference, tmp_path):
    """Files dropped into the models directory are screened at the next listing: each is listed as
    rejected and answers 409 for itself; the list and the other models keep working."""
    cases = hostile_models(built[0].path, built[1].path, secret, tmp_path)
    for name, path, _ in cases:
        shutil.copy(path, server.models_dir / f"hand_{name}.h5")
    listing = httpx.get(server.url + "/v1/models", timeout=60)
    assert listing.status_code == 200, listing.text
    assert [m["id"] for m in listing.json()["models"]] == ["small"]
    assert set(listing.json()["rejected"]) >= {f"hand_{n}" for n, _, _ in cases}
    for name, _, what in cases:
        r = solve(server, f"hand_{name}")
        assert_error(r, 409, "invalid_model_file", "model_id", what)
        assert SECRET.decode().strip() not in r.text and str(server.models_dir) not in r.text
        assert_error(httpx.get(f"{server.url}/v1/models/hand_{name}"), 409, "invalid_model_file")
    assert_serving(server, reference)
    for name, _, _ in cases:
        (server.models_dir / f"hand_{name}.h5").unlink()
    assert httpx.get(server.url + "/v1/models").json()["rejected"] == []


def nodal_upload(server, loading, name, content, **extra):
    import json

    req = {"loading": loading, "extrapolate": True, **extra}
    return httpx.post(f"{server.url}/v1/models/small/solve/nodal", data={"request": json.dumps(req)},
                      files={"temperature": (name, content, "application/octet-stream")}, timeout=60)


def test_overflowing_model_data_is_refused_at_upload(server, built, reference, tmp_path):
    """A model whose finite data would overflow in an answer (a dual basis entry of 1e200: the reconstructed von
    Mises stress was infinite, a 422 non_finite_answer at every solve) is refused at upload naming the dataset,
    the entry and its value."""
    path = af.mutated(built[0].path, tmp_path / "overflow.h5",
                      lambda f: f["dual/stress/basis"].__setitem__((0, 0), 1e200))
    assert_error(put(server, "overflow", path), 422, "invalid_model_file", "body",
                 "/dual/stress/basis: entry (0, 0) = 1e+200, above 1e+30 in magnitude")
    assert_serving(server, reference)


def test_hostile_temperature_uploads(server, built, secret, reference, tmp_path):
    loading = {k: v for k, v in GOOD.items() if k != "temperature"}
    n_times, n_nodes = len(GOOD["times"]), built[0].mesh.n_nodes

    def h5(name, build):
        p = tmp_path / name
        with h5py.File(p, "w") as f:
            build(f)
        return p.read_bytes()

    ext = h5("ext.h5", lambda f: f.create_dataset("temperature", shape=(n_times, n_nodes), dtype="f8",
                                                  external=[(str(secret), 0, 8 * n_times * n_nodes)]))
    r = nodal_upload(server, loading, "t.h5", ext)
    assert_error(r, 422, "unsafe_upload", "temperature", "external storage")
    assert SECRET.decode().strip() not in r.text and str(secret) not in r.text
    # an external link to a file that exists and one that does not: the same answer (no path oracle)
    target = tmp_path / "target.h5"
    with h5py.File(target, "w") as f:
        f["temperature"] = np.zeros((n_times, n_nodes))
    answers = []
    for where in (target, tmp_path / "missing.h5"):
        link = h5(f"link_{where.stem}.h5", lambda f: f.__setitem__("temperature", h5py.ExternalLink(str(where),
                                                                                                  "/temperature")))
        r = nodal_upload(server, loading, "t.h5", link)
        err = assert_error(r, 422, "unsafe_upload", "temperature", "external link")
        answers.append(err["message"].replace(str(where), "X"))
    assert answers[0] == answers[1]
    soft = h5("soft.h5", lambda f: (f.create_dataset("data", data=np.zeros((n_times, n_nodes))),
                                    f.__setitem__("temperature", h5py.SoftLink("/data"))))
    assert_error(nodal_upload(server, loading, "t.h5", soft), 422, "unsafe_upload", "temperature", "soft link")

    # gzip bomb: 200 MB of zeros in a ~200 KB file; refused from its declared shape, before decompression
    def bomb(f):
        d = f.create_dataset("temperature", shape=(n_times, 6_250_000), dtype="f8", chunks=(1, 1_250_000),
                             compression="gzip", compression_opts=9)
        zeros = np.zeros((1, 1_250_000))
        for i in range(n_times):
            for j in range(5):
                d[i:i + 1, j * 1_250_000:(j + 1) * 1_250_000] = zeros
    data = h5("bomb.h5", bomb)
    assert len(data) < 1_000_000
    before = {p: af.peak_rss_bytes(p) for p in af.solver_pids(server)}
    r = nodal_upload(server, loading, "t.h5", data)
    assert_error(r, 422, "unsafe_upload", "temperature", "once decompressed")
    after = {p: af.peak_rss_bytes(p) for p in af.solver_pids(server)}
    grown = max(after[p] - before.get(p, after[p]) for p in after)
    assert grown < 64 * 2**20, f"a solver process's peak memory grew by {grown / 2**20:.0f} MiB"
    assert_serving(server, reference)


def test_http_process_never_reads_hdf5(server):
    """After all the hostile uploads above, the HTTP process has not even loaded the HDF5 library: every
    file is read in the solver processes."""
    maps = server.mapped_libraries()
    assert "libhdf5" not in maps and "h5py" not in maps
    assert any("libhdf5" in open(f"/proc/{p}/maps").read() for p in af.solver_pids(server))


def test_killed_solver_process_fails_one_request(server, reference):
    """A solver process dying mid-request (SIGSEGV, as a crash in native code) answers 500 worker_crashed
    for that request; the process is replaced and the next answers are correct."""
    # 16 x 2000 increments: several seconds of solving on any machine, so the kill lands mid-request
    long = {"loadings": [fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 2001).tolist())] * 16}
    out = {}
    t = threading.Thread(target=lambda: out.update(r=httpx.post(f"{server.url}/v1/models/small/batch", json=long,
                                                                timeout=120)))
    t.start()
    time.sleep(1.0)
    pids = af.solver_pids(server)
    assert len(pids) == 2, pids
    for pid in pids:
        try:
            import os

            os.kill(pid, signal.SIGSEGV)
        except ProcessLookupError:
            pass
    t.join(120)
    assert_error(out["r"], 500, "worker_crashed", contains="signal 11")
    assert_serving(server, reference)
    assert_serving(server, reference)  # both replacement processes
    assert len(af.solver_pids(server)) == 2


def _metric(server, name: str) -> float:
    for line in httpx.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


def test_abandoned_requests_are_not_solved(server, reference):
    """Eight long batches sent and their connections closed before the answer: every one was solved anyway
    (6 queued behind the 2 running), and a solve sent next waited for all of them. A request whose client went
    away is now cancelled: its queued solver task is dropped, a running one stopped (its process replaced), the
    query log records 499, nothing stays in flight."""
    import socket

    # 16 x 2000 increments: seconds of solving on any machine, far past the grace of a running abandoned task
    long = json.dumps({"loadings": [fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 2001).tolist())] * 16})
    head = (f"POST /v1/models/small/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(long)}\r\n\r\n").encode()
    before, pids = _metric(server, "structrom_solver_tasks_abandoned"), set(af.solver_pids(server))
    port = int(server.url.rsplit(":", 1)[1])
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    for sock in socks:
        sock.sendall(head + long.encode())
    deadline = time.monotonic() + 30  # every body read and queued (bounded wait, not a timing assertion)
    while _metric(server, "structrom_inflight") < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(server, "structrom_inflight") == 8
    for sock in socks:
        sock.close()
    deadline = time.monotonic() + 120
    while (_metric(server, "structrom_inflight") or _metric(server, "structrom_solver_queue")) and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert _metric(server, "structrom_inflight") == 0 and _metric(server, "structrom_solver_queue") == 0
    # the 2 that had started were stopped, the others never ran
    assert _metric(server, "structrom_solver_tasks_abandoned") - before == 8
    log = httpx.get(server.url + "/v1/queries?limit=8", headers={"X-API-Key": server.key}).json()["queries"]
    assert [q["status"] for q in log] == [499] * 8, log
    assert_serving(server, reference)
    assert_serving(server, reference)  # both solver processes
    assert len(af.solver_pids(server)) == 2 and set(af.solver_pids(server)).isdisjoint(pids)


def test_uploads_cut_short_leave_no_trace(server, built):
    """Model uploads whose client closes the connection half-way through the body logged two tracebacks each
    (``ClientDisconnect`` as an unhandled error, then uvicorn's 'Exception in ASGI application'). Cut short in the
    body, or closed right after it: no traceback, no temp file left; a body cut short publishes nothing."""
    import socket

    data = built[0].path.read_bytes()
    head = (f"PUT /v1/models/cut HTTP/1.1\r\nHost: x\r\nX-API-Key: {server.key}\r\nContent-Type: "
            f"application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    port = int(server.url.rsplit(":", 1)[1])
    for part, wait in ((data[: len(data) // 2], 0.3), (data[: len(data) // 3], 0.0), (data, 0.0)):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head + part)
            time.sleep(wait)
            if part is not data:
                assert not (server.models_dir / "cut.h5").exists()
    deadline = time.monotonic() + 30
    while _metric(server, "structrom_inflight") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    assert "Traceback" not in server.log() and "unhandled error" not in server.log(), server.log()[-2000:]
    assert not any(p.name.endswith(".partial") for p in server.models_dir.iterdir())
    httpx.delete(f"{server.url}/v1/models/cut", headers={"X-API-Key": server.key})  # (if its answer came first)


def test_failed_enrich_names_the_model_file(server):
    """A failed enrichment's message quoted the model's path with the models directory scrubbed to ``models`` and
    its separator lost (``modelssmall.h5: none of the model's training snapshot files...``)."""
    r = httpx.post(f"{server.url}/v1/models/small/enrich", json={"loadings": [GOOD]}, timeout=30,
                   headers={"X-API-Key": server.key})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (job := httpx.get(server.url + r.json()["location"]).json())["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    message = job["error"]["message"]
    assert job["status"] == "failed" and "models/small.h5" in message, job
    assert "modelssmall" not in message and str(server.models_dir) not in message, message


def test_concurrent_queries_to_two_models_never_mix(server, built):
    """8 clients sending solves and 2-loading batches at random to two models of different meshes at once: each
    answer (von Mises, indicator, node-set displacements, the model's sha256) equals the same query sent alone."""
    import random

    assert put(server, "mixother", built[1].path).status_code in (200, 201)
    loads = [fx.loading_dict(0.03 + 0.02 * k / 3, 0.5 * k / 3) for k in range(4)]
    keys = ("max_von_mises", "max_cumulated_plastic_strain", "indicator", "model_sha256", "displacement")

    def answer(c, model_id, k, batch):
        body = {"loadings": [loads[k], loads[(k + 1) % 4]]} if batch else {"loading": loads[k]}
        r = c.post(f"{server.url}/v1/models/{model_id}/{'batch' if batch else 'solve'}",
                   json={**body, "node_sets": ["zmax"]})
        assert r.status_code == 200, r.text
        return [{key: a[key] for key in keys} for a in (r.json()["results"] if batch else [r.json()])]

    with httpx.Client(timeout=120) as c:
        alone = {(m, k): answer(c, m, k, False)[0] for m in ("small", "mixother") for k in range(4)}
    wrong = []

    def client(seed):
        rnd = random.Random(seed)
        with httpx.Client(timeout=120) as c:
            for _ in range(12):
                m, k, batch = rnd.choice(["small", "mixother"]), rnd.randrange(4), rnd.random() < 0.5
                for j, got in enumerate(answer(c, m, k, batch)):
                    if got != alone[(m, (k + j) % 4)]:
                        wrong.append((m, k, j))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not wrong, wrong[:5]
    assert httpx.delete(f"{server.url}/v1/models/mixother", headers={"X-API-Key": server.key}).status_code == 204


def test_replace_and_delete_during_solves(server, built, reference):
    """Solves racing with replacements by a model of another mesh give exactly one version's answer;
    with a delete, the old answer or 404; never a 500 or a mixture."""
    refs = [reference["small"].max_von_mises(), reference["other"].max_von_mises()]
    assert put(server, "swap", built[0].path).status_code == 201
    stop = threading.Event()
    answers, errors = [], []

    def solver():
        with httpx.Client(timeout=60) as c:
            while not stop.is_set():
                r = c.post(f"{server.url}/v1/models/swap/solve", json={"loading": GOOD})
                (answers if r.status_code == 200 else errors).append(r)

    threads = [threading.Thread(target=solver) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(12):
            assert put(server, "swap", built[(i + 1) % 2].path).status_code == 200
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, [(r.status_code, r.text[:200]) for r in errors[:3]]
    assert len(answers) >= 6
    seen = set()
    for r in answers:
        v = r.json()["max_von_mises"]
        match = [k for k, ref in enumerate(refs) if len(v) == len(ref) and np.allclose(v, ref, rtol=1e-12)]
        assert len(match) == 1, v
        seen.add(match[0])
    assert seen == {0, 1}  # both versions were served during the swaps
    # delete while solving: 200 (the version the solve opened) or 404, nothing else
    stop.clear()
    answers.clear()
    threads = [threading.Thread(target=solver) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert httpx.delete(f"{server.url}/v1/models/swap", headers={"X-API-Key": server.key}).status_code == 204
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(60)
    assert all(r.status_code == 404 and r.json()["error"]["code"] == "unknown_model" for r in errors), \
        [(r.status_code, r.text[:200]) for r in errors[:3]]
    for r in answers:
        assert any(np.allclose(r.json()["max_von_mises"], ref, rtol=1e-12) for ref in refs if
                   len(ref) == len(r.json()["max_von_mises"]))
    assert_serving(server, reference)



def test_batch_job_answers_with_one_version(server, built):
    """A batch job is solved in chunks (separate solver tasks): a replacement during the job answered its first
    chunk with the old model and the rest with the new one, in one result without a word. The job's chunks
    are now all answered by the version published when it started."""
    long = fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 401).tolist())
    refs = [ReducedModel.load(m.path).solve(long).max_von_mises() for m in built]
    assert put(server, "jobmix", built[0].path).status_code == 201
    r = httpx.post(f"{server.url}/v1/models/jobmix/batch", json={"loadings": [long] * 64}, timeout=60)
    assert r.status_code == 202, r.text
    job = r.json()["location"]
    deadline = time.monotonic() + 60
    while httpx.get(server.url + job).json()["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a chunk or more answered
    assert put(server, "jobmix", built[1].path).status_code == 200
    while (answer := httpx.get(server.url + job).json())["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline + 120, answer["status"]
        time.sleep(0.2)
    assert answer["status"] == "done", answer
    assert answer["result"]["ok"] == 64, answer["result"]["failed"]
    sha = [hashlib.sha256(Path(m.path).read_bytes()).hexdigest() for m in built]
    for i, item in enumerate(answer["result"]["results"]):
        assert np.allclose(item["max_von_mises"], refs[0], rtol=1e-12), (i, item["max_von_mises"][-1], refs[0][-1])
        assert item["model_sha256"] == sha[0], i  # each answer names the version that answered it
    assert not [p for p in (server.models_dir / ".pinned").iterdir() if "-tasks-" in p.name]
    r = solve(server, "jobmix", {"loading": long})  # the replacement answers from now on
    assert np.allclose(r.json()["max_von_mises"], refs[1], rtol=1e-12)
    card = httpx.get(f"{server.url}/v1/models/jobmix").json()
    assert r.json()["model_sha256"] == sha[1] == card["sha256"]
    assert httpx.delete(f"{server.url}/v1/models/jobmix", headers={"X-API-Key": server.key}).status_code == 204


def test_model_ids_linked_to_one_file(built, reference, tmp_path):
    """Two ids that are hard links of one file (linked by hand in the models directory): a solver process pinned
    both under one name, so replacing one removed the pin the other's cached model reads from; the other then
    answered 409 'model file unreadable' until its process restarted."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(built[0].path, models / "small.h5")
    os.link(models / "small.h5", models / "twin.h5")
    (tmp_path / "server.toml").write_text("workers = 1\n")  # one process: it caches both ids
    with af.ServerProcess(models, keys=[af.new_key()], config=tmp_path / "server.toml") as srv:
        for model_id in ("small", "twin"):
            assert solve(srv, model_id).status_code == 200
        assert put(srv, "twin", built[1].path).status_code == 200
        r = solve(srv, "twin")  # the new version: the old twin entry dropped
        assert np.allclose(r.json()["max_von_mises"], reference["other"].max_von_mises(), rtol=1e-12)
        r = solve(srv, "small", {"loading": GOOD, "node_sets": ["zmax"]})  # lazily read full modes
        assert r.status_code == 200, r.text
        assert np.allclose(r.json()["max_von_mises"], reference["small"].max_von_mises(), rtol=1e-12)
        r = httpx.post(f"{srv.url}/v1/models/small/fields", json={"loading": GOOD, "format": "hdf5"}, timeout=60)
        assert r.status_code == 200, r.text

def test_sigterm_stops_the_server_after_attacks(built, secret, tmp_path):
    """After a rejected upload (a model missing a dataset) and a refused external-storage upload, the
    server still answers at once and SIGTERM stops it and its solver processes."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(built[0].path, models / "small.h5")
    srv = af.ServerProcess(models, keys=[af.new_key()])
    with srv:
        bad = af.mutated(built[0].path, tmp_path / "missing.h5", lambda f: f.__delitem__("dual/stress/basis"))
        assert_error(put(srv, "m", bad), 422, "invalid_model_file")
        t0 = time.perf_counter()
        assert httpx.get(srv.url + "/health", timeout=5).status_code == 200
        assert time.perf_counter() - t0 < 2.0
        assert solve(srv).status_code == 200
        family = [srv.proc.pid] + af.descendants(srv.proc.pid)
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(timeout=20) is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in family):
        time.sleep(0.1)
    assert not any(_alive(p) for p in family), "solver processes outlived the server"


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_corrupted_model_bytes_never_answer_5xx(server, built, reference, tmp_path):
    """Bytes overwritten at 24 places of a model file (headers, metadata, data) and 4 truncations: each
    upload is refused (422) or published; a published one solves or answers 4xx, never 5xx."""
    data = bytearray(built[0].path.read_bytes())
    rng = np.random.default_rng(7)
    variants = []
    for k, offset in enumerate(np.linspace(0, len(data) - 64, 24).astype(int)):
        bad = bytearray(data)
        bad[offset:offset + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
        variants.append(bytes(bad))
    variants += [bytes(data[: len(data) * k // 5]) for k in (1, 2, 3, 4)]
    statuses = []
    for k, content in enumerate(variants):
        p = tmp_path / f"corrupt{k}.h5"
        p.write_bytes(content)
        r = put(server, "corrupt", p)
        assert r.status_code in (200, 201, 422), (k, r.status_code, r.text)
        assert "error" in r.json() or r.json()["id"] == "corrupt"
        if r.status_code in (200, 201):
            s = solve(server, "corrupt")
            assert s.status_code < 500 or s.json()["error"]["code"] == "worker_crashed", (k, s.status_code, s.text)
            statuses.append(s.status_code)
        statuses.append(r.status_code)
    assert 422 in statuses
    httpx.delete(f"{server.url}/v1/models/corrupt", headers={"X-API-Key": server.key})
    assert_serving(server, reference)


def test_publish_racing_delete_and_reads_is_linearizable(server, built):
    """PUT, DELETE and GET of one id from several threads: a PUT answered 404 when a DELETE came between its
    rename and the card it answers with, a listing that had screened a file could index it after its DELETE
    (or mark it rejected: 409), and a listing could drop the row of a file a PUT had just renamed in. Now every
    request sees the state before or after each other one: PUT 201/200 with the card of the file IT uploaded,
    DELETE 204/404, GET 200 (a card of one of the uploaded files) or 404; never a 500 or 409, no leftover upload,
    and the reads after the race agree with the last operation."""
    files = [built[0].path.read_bytes(), built[1].path.read_bytes()]
    shas = [hashlib.sha256(b).hexdigest() for b in files]
    url, key = f"{server.url}/v1/models/race", {"X-API-Key": server.key}
    bad: list[tuple] = []
    counts = {"put": 0, "delete": 0, "get": 0}
    done = threading.Event()

    def publisher(k: int) -> None:
        with httpx.Client(timeout=60, headers={**key, "Content-Type": "application/octet-stream"}) as c:
            for _ in range(8):
                r = c.put(url, content=files[k])
                counts["put"] += 1
                if r.status_code not in (200, 201) or r.json()["sha256"] != shas[k]:
                    bad.append(("PUT", r.status_code, r.text[:300]))

    def deleter() -> None:
        with httpx.Client(timeout=60, headers=key) as c:
            while not done.is_set():
                r = c.delete(url)
                counts["delete"] += 1
                if r.status_code not in (204, 404):
                    bad.append(("DELETE", r.status_code, r.text[:300]))
                time.sleep(0.02)

    def reader() -> None:
        with httpx.Client(timeout=60) as c:
            while not done.is_set():
                r = c.get(url)
                counts["get"] += 1
                if not (r.status_code == 404 or (r.status_code == 200 and r.json()["sha256"] in shas)):
                    bad.append(("GET", r.status_code, r.text[:300]))
                r = c.get(f"{server.url}/v1/models")
                if r.status_code != 200 or "race" in r.json()["rejected"]:
                    bad.append(("LIST", r.status_code, r.text[:300]))

    publishers = [threading.Thread(target=publisher, args=(k,)) for k in (0, 1)]
    others = [threading.Thread(target=deleter), threading.Thread(target=reader)]
    for t in publishers + others:
        t.start()
    for t in publishers:
        t.join(120)
    done.set()
    for t in others:
        t.join(60)
    assert not bad, bad[:5]
    assert counts["put"] == 16 and counts["delete"] >= 2 and counts["get"] >= 2, counts
    assert not list(server.models_dir.glob(".upload-*.partial"))
    # after the race: the registry agrees with the file, and with each operation that follows
    on_disk = server.models_dir / "race.h5"
    r = httpx.get(url, timeout=60)
    if on_disk.exists():
        assert r.status_code == 200 and r.json()["sha256"] == hashlib.sha256(on_disk.read_bytes()).hexdigest()
    else:
        assert r.status_code == 404
    r = httpx.put(url, content=files[1], timeout=60, headers={**key, "Content-Type": "application/octet-stream"})
    assert r.status_code in (200, 201) and r.json()["sha256"] == shas[1]
    assert httpx.get(url, timeout=60).json()["sha256"] == shas[1]
    assert "race" in [m["id"] for m in httpx.get(f"{server.url}/v1/models", timeout=60).json()["models"]]
    assert httpx.delete(url, headers=key, timeout=60).status_code == 204
    assert httpx.get(url, timeout=60).status_code == 404
    listing = httpx.get(f"{server.url}/v1/models", timeout=60).json()
    assert "race" not in [m["id"] for m in listing["models"]] and "race" not in listing["rejected"]
    assert "Traceback" not in server.log()


def test_a_model_being_enriched_refuses_put_and_delete(tmp_path):
    """The enrichment's child process publishes the next version over ``<id>.h5``: a PUT renamed in meanwhile was
    overwritten by the enrichment of the version it replaced, a DELETE undone by it. While it runs, both are
    refused (409, retry after the job); afterwards they pass."""
    from structrom.api.errors import DomainError
    from structrom.api.registry import Registry

    reg = Registry(tmp_path / "models")
    described = {"sha256": "0" * 64, "card": {"kind": "hyper_reduced"}}
    (reg.dir / "up.partial").write_bytes(b"one")
    assert reg.commit("m", reg.dir / "up.partial", described)[0] is False
    reg.begin_enrichment("m")
    with pytest.raises(DomainError) as again:
        reg.begin_enrichment("m")
    assert again.value.status == 409 and again.value.code == "enrich_in_progress"
    (reg.dir / "up.partial").write_bytes(b"two")
    for write in (lambda: reg.commit("m", reg.dir / "up.partial", described), lambda: reg.delete("m")):
        with pytest.raises(DomainError) as refused:
            write()
        assert refused.value.status == 409 and refused.value.code == "enrich_in_progress"
    assert (reg.dir / "m.h5").read_bytes() == b"one" and reg.card("m")["sha256"] == "0" * 64
    reg.end_enrichment("m")
    assert reg.commit("m", reg.dir / "up.partial", described) == (True, reg.card("m"))
    assert (reg.dir / "m.h5").read_bytes() == b"two"
    reg.delete("m")
    assert not (reg.dir / "m.h5").exists()
    reg.close()
