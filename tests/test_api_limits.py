"""Timeouts, bounds and hygiene of ``structrom serve`` (a real process on 127.0.0.1 per configuration, with
short timeouts and small bounds so that each test takes seconds):

* idle half-sent connections are closed (header and body deadlines, a bound on connections waiting for
  their client) and ``/health`` answers throughout;
* a solve past the per-request deadline answers 503 and the server keeps serving;
* requests and unfinished jobs share one admission bound (429 + ``Retry-After``, ``/ready`` 503 while
  saturated); a solve does not queue behind jobs; the job store is bounded without early eviction;
  jobs and their results survive a restart, unfinished jobs run after it;
* stale ``.partial`` files are removed at start-up; no response shows a server path;
* endless trailer fields are cut (431), requests the HTTP parser refuses answer a JSON 400; a response
  the client stops reading is dropped after body_timeout.
"""
from __future__ import annotations

import json
import shutil
import socket
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
LONG = fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 401).tolist())  # 400 increments: ~0.1-0.2 s


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return af.build_small_model(tmp_path_factory.mktemp("limits_models"))


@pytest.fixture(scope="module")
def reference(built):
    return ReducedModel.load(built.path).solve(GOOD)


def models_dir(tmp_path, built):
    models = tmp_path / "models"
    models.mkdir(exist_ok=True)
    if not (models / "small.h5").exists():
        shutil.copy(built.path, models / "small.h5")
    return models


def server(tmp_path, built, config: str, **kw) -> af.ServerProcess:
    (tmp_path / "server.toml").write_text(config)
    return af.ServerProcess(models_dir(tmp_path, built), keys=[af.new_key()], config=tmp_path / "server.toml", **kw)


def assert_correct(srv, reference):
    r = httpx.post(f"{srv.url}/v1/models/small/solve", json={"loading": GOOD}, timeout=60)
    assert r.status_code == 200, r.text
    assert np.allclose(r.json()["max_von_mises"], reference.max_von_mises(), rtol=1e-12)


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""  # EOF (a 4xx answer first would also end with EOF)
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_idle_half_sent_connections(tmp_path, built, reference):
    cfg = ("header_timeout_seconds = 2.0\nbody_timeout_seconds = 2.0\nkeep_alive_seconds = 2.0\n"
           "max_idle_connections = 100\n")
    with server(tmp_path, built, cfg) as srv:
        socks = []
        try:
            for i in range(300):  # headers cut in the middle, and bodies cut in the middle
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                if i % 2:
                    s.sendall(b"POST /v1/models/small/solve HTTP/1.1\r\nHost: x\r\nContent-Le")
                else:
                    s.sendall(b"POST /v1/models/small/solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                              b"\r\nContent-Length: 1000\r\n\r\n{\"loading\":")
                socks.append(s)
            for _ in range(5):  # a new client is read at once
                t0 = time.perf_counter()
                r = httpx.get(srv.url + "/health", timeout=5)
                assert r.status_code == 200 and time.perf_counter() - t0 < 1.0
            assert_correct(srv, reference)
            # beyond the bound of 100 waiting connections the oldest were closed already
            for s in socks:
                s.settimeout(0.01)
            assert sum(closed(s) for s in socks[:150]) >= 150 - 100
            time.sleep(3.0)  # past the header / body deadlines: all closed
            for s in socks:
                s.settimeout(1.0)
            assert all(closed(s) for s in socks)
        finally:
            for s in socks:
                s.close()
        r = httpx.get(srv.url + "/health", timeout=5)
        assert r.status_code == 200


def test_request_deadline(tmp_path, built, reference):
    with server(tmp_path, built, "request_timeout_seconds = 1.0\nsync_batch_max = 16\n") as srv:
        t0 = time.perf_counter()
        # 16 x 1600 increments: seconds of solving on any machine, past the 1 s deadline
        longer = fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 1601).tolist())
        r = httpx.post(f"{srv.url}/v1/models/small/batch", json={"loadings": [longer] * 16}, timeout=60)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "deadline_exceeded" and "Retry-After" in r.headers
        assert time.perf_counter() - t0 < 10
        assert_correct(srv, reference)


def submit(srv, loadings, **params):
    return httpx.post(f"{srv.url}/v1/models/small/batch", params={"background": "true", **params},
                      json={"loadings": loadings}, timeout=30)


def wait(srv, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j = httpx.get(f"{srv.url}/v1/jobs/{job_id}", timeout=10).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.1)
    raise TimeoutError(job_id)


def test_jobs_share_the_admission_bound_and_do_not_delay_solves(tmp_path, built, reference):
    cfg = "max_inflight = 3\njob_chunk = 1\nmax_jobs = 100\n"
    with server(tmp_path, built, cfg) as srv:
        jobs = [submit(srv, [LONG] * 24) for _ in range(2)]
        assert all(j.status_code == 202 for j in jobs), [j.text for j in jobs]
        # a solve is answered while the jobs are still running: it does not queue behind them
        assert_correct(srv, reference)
        states = [httpx.get(f"{srv.url}/v1/jobs/{j.json()['job']}").json()["status"] for j in jobs]
        assert any(s in ("pending", "running") for s in states), states
        third = submit(srv, [LONG] * 24)
        assert third.status_code == 202
        # 3 unfinished jobs = max_inflight: saturated
        for r in (submit(srv, [GOOD]), httpx.post(f"{srv.url}/v1/models/small/solve", json={"loading": GOOD})):
            assert r.status_code == 429 and r.json()["error"]["code"] == "busy", r.text
            assert int(r.headers["Retry-After"]) >= 1
        r = httpx.get(srv.url + "/ready")
        assert r.status_code == 503 and r.json()["error"]["code"] == "saturated" and "Retry-After" in r.headers
        assert httpx.get(srv.url + "/health").status_code == 200
        for j in jobs + [third]:
            assert wait(srv, j.json()["job"])["status"] == "done"
        assert httpx.get(srv.url + "/ready").status_code == 200
        assert_correct(srv, reference)


def test_job_store_bounded_and_persistent(tmp_path, built, reference):
    cfg = "max_jobs = 3\njob_ttl_seconds = 3600\n"
    with server(tmp_path, built, cfg) as srv:
        ids = [submit(srv, [GOOD]).json()["job"] for _ in range(3)]
        results = [wait(srv, i) for i in ids]
        assert all(r["status"] == "done" for r in results)
        full = submit(srv, [GOOD])
        assert full.status_code == 429 and full.json()["error"]["code"] == "job_store_full", full.text
        assert int(full.headers["Retry-After"]) > 60  # the oldest result expires in about an hour
        for i, r in zip(ids, results):  # nothing was evicted to make room
            assert httpx.get(f"{srv.url}/v1/jobs/{i}").json() == r
        assert np.allclose(results[0]["result"]["results"][0]["max_von_mises"], reference.max_von_mises(),
                           rtol=1e-12)
    with server(tmp_path, built, "max_jobs = 10\n") as srv:  # restarted on the same directory
        for i, r in zip(ids, results):
            assert httpx.get(f"{srv.url}/v1/jobs/{i}").json() == r
        # an accepted job interrupted by a stop runs after the restart
        pending = submit(srv, [LONG] * 4).json()["job"]
    with server(tmp_path, built, "max_jobs = 10\n") as srv:
        j = wait(srv, pending)
        assert j["status"] == "done" and j["result"]["ok"] == 4, j


def test_one_client_cannot_fill_the_job_store(tmp_path, built, reference):
    """One anonymous client sent background solves until the store was full (1024 jobs in about 8 s with the
    defaults): every client's jobs, and batches above sync_batch_max, were refused for the jobs' hour. A client
    (its API key, else its address) now holds at most max_jobs_per_client of them; another client still submits."""
    cfg = "max_jobs = 8\nmax_jobs_per_client = 3\njob_ttl_seconds = 3600\n"
    with server(tmp_path, built, cfg) as srv:
        ids = [submit(srv, [GOOD]).json()["job"] for _ in range(3)]
        r = submit(srv, [GOOD])
        assert r.status_code == 429 and r.json()["error"]["code"] == "client_job_quota", r.text
        assert "at most 3 per client" in r.json()["error"]["message"] and "Retry-After" in r.headers
        # an invalid key is no new identity
        assert submit_as(srv, "not-a-key").json()["error"]["code"] == "client_job_quota"
        keyed = submit_as(srv, srv.key)
        assert keyed.status_code == 202, keyed.text
        for i in ids + [keyed.json()["job"]]:
            assert wait(srv, i)["status"] == "done"
        assert_correct(srv, reference)


def submit_as(srv, key):
    return httpx.post(f"{srv.url}/v1/models/small/batch", params={"background": "true"}, timeout=30,
                      json={"loadings": [GOOD]}, headers={"X-API-Key": key})


def test_no_server_paths_and_stale_partials_removed(tmp_path, built):
    models = models_dir(tmp_path, built)
    (models / ".upload-abc.partial").write_bytes(b"half an upload")
    (models / "offline_model.h5.partial").write_bytes(b"half a model")
    prov = tmp_path / "with_paths.h5"
    shutil.copy(built.path, prov)
    with h5py.File(prov, "r+") as f:
        p = json.loads(f.attrs["provenance"])
        p.update(config=str(tmp_path / "secret_dir" / "offline.toml"), snapshots=[{"file": "/data/runs/run1.h5"}])
        f.attrs["provenance"] = json.dumps(p)
    shutil.copy(prov, models / "paths.h5")
    with server(tmp_path, built, "") as srv:
        assert not list(models.glob("*.partial"))
        text = httpx.get(f"{srv.url}/v1/models/paths").text
        card = json.loads(text)
        assert card["provenance"]["config"] == "offline.toml"
        assert card["provenance"]["snapshots"][0]["file"] == "run1.h5"
        assert str(tmp_path) not in text and "/data/runs" not in text
        # a model file broken after the start-up scan: the job's error names the model, not a path
        shutil.copy(built.path, models / "late.h5")
        r = httpx.get(f"{srv.url}/v1/models")
        assert "late" in [m["id"] for m in r.json()["models"]]
        with open(models / "late.h5", "r+b") as f:
            f.truncate(4000)
        job = httpx.post(f"{srv.url}/v1/models/late/solve", params={"background": "true"},
                         json={"loading": GOOD}).json()["job"]
        j = wait(srv, job)
        assert j["status"] == "failed" and j["error"]["status"] == 409, j
        assert str(models) not in json.dumps(j) and "/proc/" not in json.dumps(j) and ".pinned" not in json.dumps(j)
        assert "late.h5" in j["error"]["message"]


def test_index_written_by_an_older_server_is_not_trusted(tmp_path, built, reference):
    """A NaN-tolerance model that an older server published (file and index row, matching size and
    mtime) is screened again at start-up: listed as rejected, 409 for itself, the listing answers 200."""
    import sqlite3

    models = models_dir(tmp_path, built)
    bad = af.mutated(built.path, models / "nan.h5", lambda f: f["indicator"].attrs.__setitem__("tolerance", np.nan))
    st = bad.stat()
    db = sqlite3.connect(models / "index.sqlite")
    with db:
        db.execute("CREATE TABLE models (id TEXT PRIMARY KEY, sha256 TEXT, bytes INTEGER, mtime_ns INTEGER, "
                   "published REAL, card TEXT)")
        card = '{"sizes": {"modes": 5, "reduced_points": 256}, "surfaces": ["zmax"], "indicator": {"tolerance": NaN}}'
        db.execute("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?)", ("nan", "0" * 64, st.st_size, st.st_mtime_ns,
                                                                    time.time(), card))
    db.close()
    with server(tmp_path, built, "") as srv:
        r = httpx.get(f"{srv.url}/v1/models")
        assert r.status_code == 200 and [m["id"] for m in r.json()["models"]] == ["small"], r.text
        assert r.json()["rejected"] == ["nan"]
        r = httpx.post(f"{srv.url}/v1/models/nan/solve", json={"loading": GOOD})
        assert r.status_code == 409 and "tolerance" in r.json()["error"]["message"], r.text
        assert_correct(srv, reference)


def test_endless_headers_refused(tmp_path, built, reference):
    """Headers that never end are cut at 64 KiB with a 431 JSON answer; a 1 MiB body in one piece is not
    mistaken for headers."""
    with server(tmp_path, built, "max_request_bytes = 2097152\n") as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            try:
                for _ in range(100):
                    s.sendall(b"X-Filler: " + b"a" * 8000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = b""
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "headers_too_large"
        body = json.dumps({"loading": GOOD, "node_sets": [], "extrapolate": False}).encode()
        body = body[:-1] + b" " * (2**20) + b"}"
        r = httpx.post(f"{srv.url}/v1/models/small/solve", content=body, headers={"Content-Type": "application/json"},
                       timeout=60)
        assert r.status_code == 200, r.text
        assert_correct(srv, reference)



def raw_answer(port: int, data: bytes, more=()) -> bytes:
    """What the server answers on one connection to ``data`` then the pieces ``more`` (until it closes)."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        try:
            s.sendall(data)
            for piece in more:
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def json_error(answer: bytes) -> dict:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer[:300]
    return json.loads(body)["error"]


def test_endless_trailers_and_malformed_framing_refused(tmp_path, built, reference):
    """Trailer fields after a chunked body were kept in the HTTP process's memory without bound (300 MB sent,
    340 MB more resident): cut at 64 KiB with a 431 JSON answer. Requests the HTTP parser refuses (two
    Content-Length, Transfer-Encoding with Content-Length, NUL in a header) answered plain text; now JSON 400
    naming the parser's reason."""
    head = b"POST /v1/models/small/solve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with server(tmp_path, built, "max_request_bytes = 2097152\n") as srv:
        status = Path(f"/proc/{srv.proc.pid}/status")
        rss = lambda: int(next(ln for ln in status.read_text().splitlines() if ln.startswith("VmRSS")).split()[1])
        before = rss()
        trailer = b"X-T: " + b"a" * 1000 + b"\r\n"
        answer = raw_answer(srv.port, head + b"Transfer-Encoding: chunked\r\n\r\n0\r\n",
                            [trailer * 1000] * 100 + [b"\r\n"])  # 100 MB of trailer fields
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert "trailer fields" in json_error(answer)["message"]
        assert rss() - before < 32 * 1024, f"the HTTP process grew by {(rss() - before) >> 10} MiB"
        body = json.dumps({"loading": GOOD}).encode()
        for framing, reason in [(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(body), len(body)),
                                 "Duplicate Content-Length"),
                                (b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(body),
                                 "Content-Length can't be present with Transfer-Encoding"),
                                (b"X-A: a\x00b\r\nContent-Length: %d\r\n" % len(body), "Invalid header value char")]:
            answer = raw_answer(srv.port, head + framing + b"\r\n" + body)
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
            err = json_error(answer)
            assert err["code"] == "invalid_http" and reason in err["message"], err
        # a chunked body in many small chunks is not mistaken for trailers
        chunks = b"".join(b"1\r\n" + body[i:i + 1] + b"\r\n" for i in range(len(body))) + b"0\r\n\r\n"
        answer = raw_answer(srv.port, head + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert np.allclose(json.loads(answer.split(b"\r\n\r\n", 1)[1])["max_von_mises"], reference.max_von_mises(),
                           rtol=1e-12)
        assert_correct(srv, reference)


def test_clients_that_stop_reading_their_response(tmp_path, built, reference):
    """A client that never reads its response kept the unsent part in the HTTP process's memory for good (12 such
    clients of a 26 MB /fields file: +310 MB, never freed). A response whose buffered part has not shrunk for
    body_timeout seconds is dropped now; a slow reader that keeps reading gets all of it."""
    def fields_request(n: int) -> bytes:
        loading = fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, n + 1).tolist())
        body = json.dumps({"loading": loading, "format": "hdf5"}).encode()
        return (b"POST /v1/models/small/fields HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def read_all(s: socket.socket, pause: float = 0.0) -> bytes:
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
                if b"\r\n\r\n" in out:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    n = int(next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length"))
                            .split(b":")[1])
                    if len(rest) >= n:
                        break
                time.sleep(pause)
        except (ConnectionResetError, TimeoutError):
            pass
        return out

    with server(tmp_path, built, "body_timeout_seconds = 2\nmax_increments = 2000\n") as srv:
        stalled = []
        for _ in range(3):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", srv.port))
            s.sendall(fields_request(2000))  # ~26 MB
            stalled.append(s)
        time.sleep(12)  # the solve, then more than body_timeout without reading
        assert_correct(srv, reference)
        for s in stalled:
            s.settimeout(20)
            got = read_all(s)
            s.close()
            head, _, rest = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), got[:200]
            n = int(next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")).split(b":")[1])
            assert n > 20 * 2**20 and len(rest) < n // 2, (n, len(rest))  # dropped, not sent on
        with socket.create_connection(("127.0.0.1", srv.port), timeout=20) as s:  # slow but steady: all of it
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(fields_request(100))
            got = read_all(s, pause=0.2)
        head, _, rest = got.partition(b"\r\n\r\n")
        n = int(next(ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")).split(b":")[1])
        assert n > 10**6 and len(rest) == n, (n, len(rest))
        assert rest[:8] == b"\x89HDF\r\n\x1a\n"

def test_job_store_memory_budget(tmp_path, built):
    """Stored requests and results are bounded in bytes: a result that does not fit fails its job (507,
    kept as the job's error), a request that does not fit is refused (429); earlier results stay."""
    with server(tmp_path, built, "job_store_bytes = 40000\n") as srv:
        small = wait(srv, submit(srv, [GOOD]).json()["job"])
        assert small["status"] == "done"
        big = wait(srv, submit(srv, [LONG] * 2).json()["job"])  # ~2 x 30 kB of results
        assert big["status"] == "failed" and big["error"]["status"] == 507, big
        assert big["error"]["code"] == "result_too_large"
        r = submit(srv, [GOOD] * 200)  # the request itself (~45 kB) exceeds what is left
        assert r.status_code == 429 and r.json()["error"]["code"] == "job_store_full" and "Retry-After" in r.headers
        assert httpx.get(f"{srv.url}/v1/jobs/{small['id']}").json() == small


def test_fields_answer_bounded_before_the_solve(tmp_path, built):
    """/fields in HDF5 holds every increment's fields (displacement at the nodes, the dual quantities at the
    integration points) in the solver and the HTTP process: above max_response_bytes (estimated from the mesh before
    the solve) the answer is a 413 JSON naming the size; one increment as VTU, or fewer increments, still answers."""
    mesh = built.mesh
    from structrom.rom.hifi.output import points_per_element

    n_points = int(points_per_element(mesh).sum())
    per_increment = 8 * (3 * mesh.n_nodes + 7 * n_points)  # displacement, stress (6) and p (1)
    limit = 50 * per_increment
    with server(tmp_path, built, f"max_response_bytes = {limit}\n") as srv:
        many = fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 61).tolist())  # 60 increments: above
        r = httpx.post(f"{srv.url}/v1/models/small/fields", json={"loading": many, "format": "hdf5"}, timeout=60)
        assert r.status_code == 413, r.text
        err = r.json()["error"]
        assert err["code"] == "response_too_large" and "60 increment(s)" in err["message"], err
        r = httpx.post(f"{srv.url}/v1/models/small/fields", json={"loading": many, "format": "vtu"}, timeout=60)
        assert r.status_code == 200 and r.content.startswith(b"<?xml"), r.text[:200]
        few = fx.loading_dict(0.045, 0.4, times=np.linspace(0, 1, 41).tolist())  # 40 increments: below
        r = httpx.post(f"{srv.url}/v1/models/small/fields", json={"loading": few, "format": "hdf5"}, timeout=60)
        assert r.status_code == 200 and r.content[:8] == b"\x89HDF\r\n\x1a\n"
