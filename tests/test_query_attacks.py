"""Semantic attacks on the query endpoints of a hyper-reduced model, against a real ``structrom serve`` process on
127.0.0.1: schema-valid loadings whose values overflow while they are evaluated, time axes whose spans overflow,
nodal temperatures with bad time axes or without values, /solve/nodal requests that carry a second temperature,
bodies the JSON / multipart parsers give up on, keys given twice, a 1 MB key, decks with thousands of steps or a byte-order mark.

Every answer is 2xx with finite numbers or 4xx JSON naming the field; never a 500, a traceback in the server
log, a silently ignored part of the request, or a wrong answer marked trusted.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

import api_fixtures as af
import rom_fixtures as fx

GOOD = fx.loading_dict(0.04, 0.25)
NO_TEMPERATURE = {k: v for k, v in GOOD.items() if k != "temperature"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return af.build_small_model(tmp_path_factory.mktemp("query_attack_models"))


@pytest.fixture(scope="module")
def server(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("query_attack_server")
    models = root / "models"
    models.mkdir()
    shutil.copy(built.path, models / "small.h5")
    config = root / "server.toml"
    config.write_text("max_request_bytes = 8388608\nmax_increments = 2000\nworkers = 1\nrequest_timeout_seconds = 60\n")
    with af.ServerProcess(models, config=config) as srv:
        yield srv
    assert "Traceback" not in srv.log(), srv.log()


def post(server, route, **kw):
    return httpx.post(f"{server.url}/v1/models/small/{route}", timeout=60, **kw)


def refused(r, status, field, code=None, text=None) -> dict:
    """``r`` is a JSON error with this status, naming ``field`` (exactly), with ``code`` and ``text`` in its
    message when given."""
    assert r.status_code == status, r.text[:2000]
    err = r.json()["error"]
    assert err["field"] == field, err
    assert code is None or err["code"] == code, err
    assert text is None or text in err["message"], err
    return err


def finite_answer(r) -> dict:
    assert r.status_code == 200, r.text[:2000]
    body = json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    for key in ("max_von_mises", "indicator", "times"):
        assert all(isinstance(v, float) and math.isfinite(v) for v in body[key]), (key, body[key])
    return body


def hot_spot(radius, center=(0.4, 0.5, 1.0)):
    return {**GOOD, "temperature": {"type": "hot_spot", "center": list(center), "radius": radius, "intensity": 0.25,
                                    "amplitude": [[0.0, 0.0], [1.0, 1.0]]}}


def test_hot_spot_radius_at_the_float_limits_is_answered_not_500(server, built):
    """radius**2 overflowed (OverflowError: 500, the whole batch with it); a radius below 1e-154 at a node gave
    0/0. Both are the field's limits now: flat (the intensity everywhere) and a spike at the center."""
    from structrom.rom.online import ReducedModel

    flat = {**GOOD, "temperature": {"type": "uniform", "amplitude": [[0.0, 0.0], [1.0, 0.25]]}}
    ref = ReducedModel.load(built.path).solve(flat, extrapolate=True)
    for radius in (1.4e154, 1e300):
        body = finite_answer(post(server, "solve", json={"loading": hot_spot(radius), "extrapolate": True}))
        assert np.allclose(body["max_von_mises"], ref.max_von_mises(), rtol=1e-9)
    spike = hot_spot(1e-200, center=(0.0, 0.0, 0.0))  # centered on a node
    finite_answer(post(server, "solve", json={"loading": spike, "extrapolate": True}))
    r = post(server, "batch", json={"loadings": [GOOD, hot_spot(1e300)], "extrapolate": True})
    assert r.status_code == 200 and r.json()["ok"] == 2, r.text[:2000]
    r = post(server, "fields", json={"loading": hot_spot(1e300), "extrapolate": True, "format": "hdf5"})
    assert r.status_code == 200 and r.content[:8] == b"\x89HDF\r\n\x1a\n"


def test_overflowing_time_spans_are_refused_not_answered_as_trusted(server):
    """[[-1.7e308, 0], [1.7e308, 1]] interpolated over an infinite span as 0: the pressure dropped and the
    answer came back trusted. Spans must be finite now (loading times too)."""
    span = [[-1.7e308, 0.0], [1.7e308, 1.0]]
    refused(post(server, "solve", json={"loading": {**GOOD, "pressure": {"zmax": span}}, "extrapolate": True}), 422,
            "loading.pressure.zmax", "invalid_loading", "span more than the largest float")
    temp = {**GOOD, "temperature": {"type": "uniform", "amplitude": span}}
    refused(post(server, "solve", json={"loading": temp, "extrapolate": True}), 422, "loading.temperature.amplitude",
            "invalid_loading", "span more than the largest float")
    refused(post(server, "solve", json={"loading": {**GOOD, "times": [-1.7e308, 1.7e308]}, "extrapolate": True}), 422,
            "loading.times", "invalid_loading", "span more than the largest float")
    r = post(server, "batch", json={"loadings": [GOOD, {**GOOD, "pressure": {"zmax": span}}], "extrapolate": True})
    assert r.status_code == 200 and r.json()["failed"] == 1
    assert r.json()["results"][1]["error"]["field"] == "loadings.1.loading.pressure.zmax"


def test_inline_nodal_temperature_times_and_values(server, built):
    """Decreasing times were interpolated silently (200), repeated ones reported as 'non-finite'; a nodal
    temperature without values pointed at a server-side 'file' the API refuses."""
    n = built.mesh.n_nodes
    values = [[0.1] * n, [0.5] * n]
    for times in ([1.0, 0.0], [0.0, 0.0]):
        loading = {**GOOD, "temperature": {"type": "nodal", "times": times, "values": values}}
        refused(post(server, "solve", json={"loading": loading, "extrapolate": True}), 422, "loading.temperature.times",
                "invalid_loading", "strictly increasing")
        refused(post(server, "fields", json={"loading": loading, "extrapolate": True}), 422,
                "loading.temperature.times", "invalid_loading")
    no_values = {**GOOD, "temperature": {"type": "nodal", "times": [0.0, 1.0]}}
    err = refused(post(server, "solve", json={"loading": no_values, "extrapolate": True}), 422,
                  "loading.temperature.values", "invalid_loading", "/solve/nodal")
    assert "'file'" not in err["message"]
    r = post(server, "batch", json={"loadings": [GOOD, no_values], "extrapolate": True})
    assert r.json()["results"][1]["error"]["field"] == "loadings.1.loading.temperature.values"
    ok = {**GOOD, "temperature": {"type": "nodal", "times": [0.0, 1.0], "values": values}}
    finite_answer(post(server, "solve", json={"loading": ok, "extrapolate": True}))
    # rows that stop before the loading's end (or start after its start) were held at the last (first) row
    for times in ([0.0, 0.5], [0.25, 1.0]):
        short = {**GOOD, "temperature": {"type": "nodal", "times": times, "values": values}}
        refused(post(server, "solve", json={"loading": short, "extrapolate": True}), 422, "loading.temperature.times",
                "invalid_loading", "do not cover the loading times [0, 1]")
    r = post(server, "batch", json={"loadings": [GOOD, short], "extrapolate": True})
    assert r.json()["results"][1]["error"]["field"] == "loadings.1.loading.temperature.times"


def test_nodal_upload_refuses_a_second_temperature(server, built):
    """An inline temperature beside the upload was dropped silently, a second file picked silently; the times
    of a ``{"type": "nodal", "times": ...}`` temperature were ignored. Now: 422, 422, used."""
    n = built.mesh.n_nodes
    buf = io.BytesIO()
    np.save(buf, np.full((5, n), 0.1))
    npy = buf.getvalue()

    def nodal(req, files=None):
        return post(server, "solve/nodal", data={"request": json.dumps({"extrapolate": True, **req})},
                    files=files or {"temperature": ("t.npy", npy)})

    base = finite_answer(nodal({"loading": NO_TEMPERATURE}))
    refused(nodal({"loading": GOOD}), 422, "request.loading.temperature", "validation_error", "'hot_spot'")
    two = [("temperature", ("a.npy", npy)), ("temperature", ("b.npy", npy))]
    refused(nodal({"loading": NO_TEMPERATURE}, files=two), 422, "temperature", "invalid_upload", "more than one")
    times = {**NO_TEMPERATURE, "temperature": {"type": "nodal", "times": [0.0, 0.25, 0.5, 0.75, 1.0]}}
    assert finite_answer(nodal({"loading": times}))["max_von_mises"] == base["max_von_mises"]
    refused(nodal({"loading": times, "temperature_times": [0.0, 1.0, 2.0, 3.0, 4.0]}), 422, "request.temperature_times")
    refused(nodal({"loading": {**NO_TEMPERATURE, "temperature": {"type": "nodal", "times": [0.0, 0.25, 0.5, 0.75,
                                                                                             0.75]}}}),
            422, "temperature_times", "invalid_loading")
    refused(nodal({"loading": NO_TEMPERATURE, "temperature_times": [0.0, 0.1, 0.2, 0.3, 0.4]}), 422,
            "temperature_times", "invalid_loading", "[0, 0.4] do not cover the loading times [0, 1]")
    # an HDF5 'times' dataset replaced the request's times without a word: now they must agree
    import h5py

    h5 = io.BytesIO()
    with h5py.File(h5, "w") as f:
        f["temperature"] = np.full((5, n), 0.1)
        f["times"] = [0.0, 0.25, 0.5, 0.75, 1.0]
    upload = {"temperature": ("t.h5", h5.getvalue())}
    refused(nodal({"loading": NO_TEMPERATURE, "temperature_times": [0.0, 0.5, 1.0, 1.5, 2.0]}, files=upload), 422,
            "request.temperature_times", "invalid_upload", "give the rows' times once")
    assert finite_answer(nodal({"loading": times}, files=upload))["max_von_mises"] == base["max_von_mises"]
    assert finite_answer(nodal({"loading": NO_TEMPERATURE}, files=upload))["max_von_mises"] == base["max_von_mises"]



def npy_claiming(shape) -> bytes:
    """An ``.npy`` header declaring a float64 array of ``shape``, followed by 64 bytes only."""
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': %r, }" % (tuple(shape),)
    header = text.encode() + b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(64)


def test_nodal_upload_declaring_a_huge_array(server, built):
    """An .npy header declaring 10^12 values (a 200-byte upload) made np.load allocate them: MemoryError, a 500
    with a traceback. The declared size is checked against the model's nodes x times before anything is read."""
    n = built.mesh.n_nodes
    for shape in [(10**12,), (5, 10**11), (5, 2 * n)]:
        r = post(server, "solve/nodal", data={"request": json.dumps({"loading": NO_TEMPERATURE, "extrapolate": True})},
                 files={"temperature": ("t.npy", npy_claiming(shape))})
        err = refused(r, 422, "temperature", "invalid_upload", "its header declares")
        assert f"{8 * int(np.prod(shape))} bytes" in err["message"]
    assert httpx.get(server.url + "/health", timeout=5).json()["status"] == "ok"

def test_nodal_uploads_of_other_types_and_shapes_are_named(server, built):
    """A complex .npy of the right shape was refused as 'its header declares 6480 bytes, more than ... allow', a 0-d
    HDF5 dataset as 'must be numeric', a 1-D array of the wrong length as shape (1, n): each now names what it is."""
    import h5py

    n = built.mesh.n_nodes

    def nodal(content, name):
        request = json.dumps({"loading": NO_TEMPERATURE, "extrapolate": True})
        return post(server, "solve/nodal", data={"request": request}, files={"temperature": (name, content)})

    def npy(a):
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()

    scalar = io.BytesIO()
    with h5py.File(scalar, "w") as f:
        f["temperature"] = 0.5
    refused(nodal(npy(np.zeros((5, n), complex)), "t.npy"), 422, "temperature", "invalid_upload", "type complex128")
    refused(nodal(scalar.getvalue(), "t.h5"), 422, "temperature", "invalid_shape", "has shape ();")
    refused(nodal(npy(np.zeros(n)), "t.npy"), 422, "temperature", "invalid_shape", f"has shape ({n},);")


@pytest.mark.parametrize("body, status, code, cause", [
    (b'{"loading": {"times": [0, 1' + b"0" * 5000 + b"]}}", 400, "invalid_body", "4300 digits"),
    (b'{"loading": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "invalid_body", "RecursionError"),
    (b'{"loading": {"times": [0, 1], "pressure": {"\xff\xfe": 1}}}', 400, "invalid_body", "UnicodeDecodeError"),
    (b"hello", 422, "validation_error", "not valid JSON at character 0"),
    (b"", 422, "validation_error", "send a JSON object"),
])
def test_unparsable_bodies_name_the_body_and_the_fix(server, body, status, code, cause):
    r = post(server, "solve", content=body, headers={"Content-Type": "application/json"})
    refused(r, status, "body", code, cause)
    assert "Content-Type: application/json" in r.json()["error"]["message"]



def test_duplicate_keys_are_refused_not_overwritten(server):
    """A key given twice in one JSON object kept its last value without a word (a second ``loading``, a second
    ``zmax`` pressure answered 200 with the other value ignored): 400 naming the key, in every JSON body."""
    one, other = json.dumps(GOOD), json.dumps({**GOOD, "pressure": {"zmax": [[0.0, 0.0], [1.0, 0.05]]}})
    twice = [("solve", '{"loading": %s, "loading": %s}' % (one, other), "loading"),
             ("batch", '{"loadings": [%s], "extrapolate": false, "extrapolate": true}' % one, "extrapolate"),
             ("fields", '{"loading": %s, "format": "vtu", "format": "hdf5"}' % one, "format")]
    for route, body, key in twice:
        refused(post(server, route, content=body, headers={"Content-Type": "application/json"}), 400, "body",
                "invalid_body", f"the key '{key}' appears twice in one JSON object; give each key once")
    inner = one.replace('"zmax": [[0.0, 0.0], [1.0, 0.04]]', '"zmax": [[0.0, 0.0], [1.0, 0.04]], "zmax": 0.05')
    assert inner != one
    refused(post(server, "solve", content='{"loading": %s}' % inner, headers={"Content-Type": "application/json"}), 400,
            "body", "invalid_body", "the key 'zmax' appears twice")
    req = '{"loading": %s, "extrapolate": true, "extrapolate": false}' % json.dumps(NO_TEMPERATURE)
    r = post(server, "solve/nodal", data={"request": req}, files={"temperature": ("t.npy", b"x")})
    refused(r, 422, "request", "validation_error", "the key 'extrapolate' appears twice")
    finite_answer(post(server, "solve", content='{"loading": %s}' % one, headers={"Content-Type": "application/json"}))

def test_multipart_garbage_and_huge_keys(server):
    refused(post(server, "solve/nodal", content=b"--x\r\nfoo\r\n--x--",
                 headers={"Content-Type": "multipart/form-data; boundary=x"}), 400, "body", "invalid_body", "multipart")
    r = post(server, "solve", json={"loading": {**GOOD, "pressure": {"a" * 1_000_000: 1.0}}})
    assert r.status_code == 422 and len(r.content) < 5000, len(r.content)
    assert "(1000023 characters)" in r.json()["error"]["field"]


def small_deck(mesh) -> bytes:
    """A CalculiX deck of the small model's mesh: clamped at x = 0, a ramped pressure on the top faces."""
    conn = mesh.blocks[0].connectivity
    top = set(np.flatnonzero(np.isclose(mesh.points[:, 2], mesh.points[:, 2].max())).tolist())
    lines = ["*NODE"] + [f"{i + 1},{x!r},{y!r},{z!r}" for i, (x, y, z) in enumerate(mesh.points.tolist())]
    lines += ["*ELEMENT, TYPE=C3D8, ELSET=EALL"] + [f"{e + 1}," + ",".join(str(n + 1) for n in c)
                                                     for e, c in enumerate(conn.tolist())]
    xmin = np.flatnonzero(np.isclose(mesh.points[:, 0], mesh.points[:, 0].min()))
    lines += ["*NSET, NSET=XMIN"] + [str(n + 1) for n in xmin]
    lines += ["*MATERIAL, NAME=M", "*ELASTIC", "1000, 0.3", "*SOLID SECTION, ELSET=EALL, MATERIAL=M", "*BOUNDARY",
              "XMIN,1,3", "*AMPLITUDE, NAME=A", "0,0,1,1"]
    step = ["*STEP", "*STATIC", "1,1", "*DLOAD, AMPLITUDE=A"]
    step += [f"{e + 1},P2,0.04" for e, c in enumerate(conn.tolist()) if set(c[4:]) <= top] + ["*END STEP"]
    return ("\n".join(lines + step) + "\n").encode(), ("\n".join(step) + "\n").encode()


def test_decks_with_thousands_of_steps_or_a_bom(server, built):
    """20,000 steps were parsed until the request's deadline (503, the solver process restarted); a step is at
    least one increment, so more steps than max_increments are refused before parsing. A UTF-8 byte-order mark
    is dropped (it was a 'data line before any keyword card')."""
    deck, step = small_deck(built.mesh)

    def answer(data):
        return post(server, "solve/deck", files={"deck": ("d.inp", data)}, data={"extrapolate": "true"})

    ref = finite_answer(answer(deck))
    assert finite_answer(answer(b"\xef\xbb\xbf" + deck))["max_von_mises"] == ref["max_von_mises"]
    t0 = time.perf_counter()
    refused(answer(deck + step * 2000), 422, "deck", "too_many_increments", "more than 2000 *STEP cards")
    assert time.perf_counter() - t0 < 10
    assert httpx.get(server.url + "/health", timeout=5).json()["status"] == "ok"



def test_deck_form_parts_given_twice_and_input_parameters(server, built):
    """A second ``deck`` part of the form was answered in place of the first without a word, and ``INPUT=`` on a
    mesh card (``*NODE, INPUT=/etc/passwd``: a file that ccx and Abaqus read for the card's lines) was dropped
    silently. Both are refused (422 naming the part or the line); nothing on the server is opened."""
    deck, _ = small_deck(built.mesh)
    url = f"{server.url}/v1/models/small/solve/deck"
    two = [("deck", ("a.inp", deck)), ("deck", ("b.inp", b"*HEADING\n"))]
    refused(httpx.post(url, files=two, data={"extrapolate": "true"}, timeout=60), 422, "deck", "invalid_upload",
            "more than one 'deck' part")
    refused(httpx.post(url, files={"deck": ("a.inp", deck)}, data={"extrapolate": ["true", "false"]}, timeout=60),
            422, "extrapolate", "invalid_upload", "more than one 'extrapolate' part")
    for card in (b"*NODE", b"*ELEMENT, TYPE=C3D8, ELSET=EALL", b"*NSET, NSET=XMIN"):
        bad = deck.replace(card + b"\n", card + b", input = /etc/passwd\n", 1)
        r = httpx.post(url, files={"deck": ("d.inp", bad)}, data={"extrapolate": "true"}, timeout=60)
        keyword = card.split(b",")[0].decode()
        refused(r, 422, "deck", "unsupported_keyword", f"{keyword}, INPUT=, d.inp:")
        assert "root:" not in r.text


def test_deck_answer_names_the_cards_it_ignored(server, built):
    """Cards the deck import reads but does not use (*RESTART, *NODE FILE...) were dropped from the answer without a
    word; the summary lists them with their line and the reason."""
    deck, _ = small_deck(built.mesh)
    extra = b"*RESTART, WRITE\n*NODE FILE\nU\n"
    text = deck.replace(b"*STEP", extra + b"*STEP", 1)
    line = text.decode().splitlines().index("*RESTART, WRITE") + 1
    r = post(server, "solve/deck", files={"deck": ("job.inp", text)}, data={"extrapolate": "true"})
    answer = finite_answer(r)
    ignored = answer["ignored"]
    assert [(i["keyword"], i["where"]) for i in ignored] == [("RESTART", f"job.inp:{line}"),
                                                             ("NODE FILE", f"job.inp:{line + 1}")], ignored
    assert "restart" in ignored[0]["why"] and "output" in ignored[1]["why"]
    assert answer["model_sha256"] == hashlib.sha256(Path(built.path).read_bytes()).hexdigest()
    # reading a restart changes what ccx computes (the history before it is not in the deck): refused
    r = post(server, "solve/deck", files={"deck": ("job.inp", text.replace(b"RESTART, WRITE", b"RESTART, READ"))},
             data={"extrapolate": "true"})
    assert r.status_code == 422 and f"job.inp:{line}: READ" in r.json()["error"]["message"], r.text

def test_arithmetic_errors_of_a_solve_are_422_in_process():
    """Defence in depth: any OverflowError / ZeroDivisionError while a loading is evaluated is a 422 naming the
    loading (a 500 before)."""
    from structrom.api.errors import DomainError
    from structrom.api.schemas import LoadingSpec, SolveOptions
    from structrom.api.service import solve

    class Overflowing:
        def node_set(self, name):
            return None

        def solve(self, loading, extrapolate=False):
            raise OverflowError(34, "Numerical result out of range")

    with pytest.raises(DomainError) as info:
        solve(Overflowing(), LoadingSpec.model_validate(GOOD), SolveOptions(), max_increments=10,
              field_prefix="loadings.3.")
    e = info.value
    assert (e.status, e.code, e.field) == (422, "invalid_loading", "loadings.3.loading")
    assert "overflows floating point" in e.message


def test_strings_and_booleans_where_numbers_belong_are_refused(server):
    """JSON strings or booleans in place of numbers (``"0.04"``, ``true``) and strings in place of booleans
    (``"yes"``) were converted without a word; a client that sends them has a bug the answer must name: 422 naming
    the field."""
    def solve(body):
        return post(server, "solve", json=body)

    peak = {**GOOD, "pressure": {"zmax": [[0.0, 0.0], [1.0, "0.04"]]}}
    refused(solve({"loading": peak}), 422, "loading.pressure.zmax.1.1", "validation_error",
            'loading.pressure.zmax.1.1: Input should be a valid number, got "0.04"')
    refused(solve({"loading": {**GOOD, "gravity": [0.0, 0.0, True]}}), 422, "loading.gravity.2", "validation_error",
            "got true")
    steps = {k: v for k, v in GOOD.items() if k != "times"}
    refused(solve({"loading": {**steps, "end_time": 1.0, "increments": "4"}}), 422, "loading.increments",
            "validation_error", 'got "4"')
    refused(solve({"loading": GOOD, "extrapolate": "yes"}), 422, "extrapolate", "validation_error", 'got "yes"')
    refused(solve({"loading": GOOD, "reconstruct": 1}), 422, "reconstruct", "validation_error", "got 1")
    # a set named like a type keeps its name in the path
    refused(solve({"loading": {**GOOD, "pressure": {"float": "x"}}}), 422, "loading.pressure.float",
            "validation_error", 'got "x"')
    # integers stay numbers: JSON has one number type
    ints = {**GOOD, "times": [0, 1], "pressure": {"zmax": [[0, 0], [1, 0.04]]}}
    finite_answer(solve({"loading": ints}))


def test_query_parameters_given_twice_are_refused(server):
    """``?background=false&background=true`` ran with one of the values and dropped the other: 400 naming it."""
    url = f"{server.url}/v1/models/small/solve"
    r = httpx.post(f"{url}?background=false&background=true", json={"loading": GOOD}, timeout=60)
    refused(r, 400, "query.background", "invalid_query", "'background' is given more than once")
    many = "&".join(f"p{i}=1" for i in range(40))
    refused(httpx.get(f"{server.url}/v1/models?{many}", timeout=60), 400, "query", "invalid_query")
    finite_answer(httpx.post(f"{url}?background=false", json={"loading": GOOD}, timeout=60))


def test_unknown_routes_and_methods_name_the_fix(server):
    """A path no route matches answered ``{"field": null, "message": "Not Found"}``, a wrong method "Method Not
    Allowed": neither named the request's path nor where the routes are."""
    refused(httpx.get(server.url + "/v1/model/small"), 404, "path", "not_found", "no route GET /v1/model/small; "
            "the routes are listed at /docs")
    refused(httpx.get(server.url + "/v1/models/small/solve"), 405, "method", "method_not_allowed",
            "GET is not allowed on /v1/models/small/solve; allowed: POST")


def _cae_deck(mesh, part_body: list[str], instances: int) -> bytes:
    """A part/assembly deck: part ``P`` (``part_body`` lines) instanced ``instances`` times, then the small deck's
    material and step."""
    lines = ["*PART, NAME=P"] + part_body + ["*END PART", "*ASSEMBLY, NAME=A"]
    for i in range(instances):
        lines += [f"*INSTANCE, NAME=I{i}, PART=P", f"{2.0 * i}, 0., 0.", "*END INSTANCE"]
    lines += ["*END ASSEMBLY", "*MATERIAL, NAME=M", "*ELASTIC", "1000, 0.3", "*STEP", "*STATIC", "1,1", "*END STEP"]
    return ("\n".join(lines) + "\n").encode()


def test_decks_that_expand_are_refused_before_they_grow(server, built):
    """A small upload that expands: a part instanced many times (its flat deck is the part's lines times the
    instances: 300 instances of a part of a 60,000-line set were 18 million lines, minutes of parsing and GBs), sets
    naming the previous set twice (doubling per card: 60 cards were 2^60 ids, the solver process out of memory), and
    100,000 lines naming one large set (100,000 x its size). Refused on counts, before anything is made: 413 when the
    flat deck passes the upload limits, 422 when the instances hold more nodes than the model or the sets list more
    than 16 ids per data line; 100,000 load lines on one node (each checked against the step's earlier lines), 30,000
    assembly labels of a part of 30,000 sets, a surface naming 30,000 sets and one set of 50,000 cards named 50,000
    times (names looked up, or cards merged, in time growing with the sets) took minutes each, past the request
    deadline: read in linear time. The server answers the small deck afterwards."""
    deck, _ = small_deck(built.mesh)
    url = f"{server.url}/v1/models/small/solve/deck"

    def answer(data):
        return httpx.post(url, files={"deck": ("d.inp", data)}, data={"extrapolate": "true"}, timeout=120)

    wide = _cae_deck(built.mesh, ["*NSET, NSET=S"] + ["1"] * 60_000, 300)
    refused(answer(wide), 413, "deck", "deck_too_large", "allowed here (the limit on a deck")
    cube = ["*NODE"] + [f"{k + 1}, {k & 1}., {k >> 1 & 1}., {k >> 2 & 1}." for k in range(8)]
    cube += ["*ELEMENT, TYPE=C3D8, ELSET=E", "1, 1, 2, 4, 3, 5, 6, 8, 7", "*SOLID SECTION, ELSET=E, MATERIAL=M"]
    err = refused(answer(_cae_deck(built.mesh, cube, 100_000)), 422, "deck", "invalid_deck",
                  f"more than the model's {built.mesh.n_nodes}")
    assert "d.inp:" in err["message"] and "*INSTANCE" in err["message"]
    head = deck.split(b"*MATERIAL")[0]
    chain = b"".join(b"*NSET, NSET=S%d\nS%d, S%d\n" % (k + 1, k, k) for k in range(60))
    refused(answer(head + b"*NSET, NSET=S0, GENERATE\n1, 81\n" + chain + deck[len(head):]), 422, "deck",
            "invalid_deck", "more than 16 per data line")
    step = deck.index(b"*END STEP")
    every = head + b"*NSET, NSET=EVERY, GENERATE\n1, 81\n" + deck[len(head):step]
    many = every + b"*CLOAD\n" + b"EVERY, 1, 1.0\n" * 100_000 + deck[step:]
    refused(answer(many), 422, "deck", "invalid_deck", "a deck of this size holds (16 per data line")
    one = deck[:step] + b"*CLOAD\n" + b"1, 1, 1.0\n" * 100_000 + deck[step:]
    err = refused(answer(one), 422, "deck", "invalid_deck")
    assert "force" in err["message"], err
    # 30,000 assembly labels 'I.1' of a part of 30,000 sets: each label looked through the part's sets (minutes)
    labels = ["*NODE", "1, 0, 0, 0", "*ELEMENT, TYPE=C3D4, ELSET=E", "1, 1, 1, 1, 1"]
    labels += [f"*NSET, NSET=S{k}\n1" for k in range(30_000)]
    lines = ["*PART, NAME=P", *labels, "*END PART", "*ASSEMBLY, NAME=A", "*INSTANCE, NAME=I, PART=P",
             "*END INSTANCE", "*NSET, NSET=X", *["I.1"] * 30_000, "*END ASSEMBLY", "*STEP", "*STATIC", "*END STEP"]
    refused(answer(("\n".join(lines) + "\n").encode()), 422, "deck", "invalid_deck", "no *SOLID SECTION")
    # a surface of 30,000 lines naming 30,000 element sets (each name looked up by rebuilding an index of every set),
    # and a set of 50,000 empty cards named 50,000 times (its cards merged at each naming): minutes each
    names = labels[:4] + [f"*ELSET, ELSET=S{k}\n1" for k in range(30_000)]
    names += ["*SURFACE, NAME=F", *[f"s{k}, S1" for k in range(30_000)], "*STEP", "*STATIC", "*END STEP"]
    refused(answer(("\n".join(names) + "\n").encode()), 422, "deck", "invalid_deck", "no *SOLID SECTION")
    empty = labels[:4] + ["*NSET, NSET=A"] * 50_000 + ["*NSET, NSET=B", *["A"] * 50_000, "*STEP", "*STATIC",
                                                      "*END STEP"]
    refused(answer(("\n".join(empty) + "\n").encode()), 422, "deck", "invalid_deck", "no *SOLID SECTION")
    finite_answer(answer(deck))
