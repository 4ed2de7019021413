"""Decks answered by a reduced model: .frd writer, deck screening, per-node temperature envelope, the
``structrom predict`` command and the REST route ``/v1/models/{id}/solve/deck``."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from structrom.rom.adapters.calculix import CalculixError, read_inp, run_ccx
from structrom.rom.adapters.calculix_predict import screen_deck_text
from structrom.rom.adapters.frd import read_frd_file
from structrom.rom.adapters.frd_writer import extrapolate_to_nodes, write_frd
from structrom.rom.fem.structured import box

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")
HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("element", ["C3D20R", "C3D8", "C3D10"])
def test_frd_written_reads_back(tmp_path, element):
    """Mesh (with the deck's ids, 20-node hexahedra reordered as ccx does) and DISP, NDTEMP, STRESS, TOSTRAIN,
    PE blocks read back by our reader to the format's 6 digits."""
    mesh = box((3.0, 1.0, 1.0), (3, 1, 1), element)
    rng = np.random.default_rng(0)
    times = np.array([0.5, 1.0, 1.5])
    node_ids = 10 + 3 * np.arange(mesh.n_nodes)
    element_ids = 100 + np.arange(mesh.n_elements)
    fields = {"DISP": rng.normal(size=(3, mesh.n_nodes, 3)) * 1e-3, "NDTEMP": 20 + 400 * rng.random((3, mesh.n_nodes)),
              "STRESS": rng.normal(size=(3, mesh.n_nodes, 6)) * 100, "TOSTRAIN": rng.normal(size=(3, mesh.n_nodes, 6)),
              "PE": rng.random((3, mesh.n_nodes)) * 1e-2}
    fields["DISP"][0, 0] = [1e-120, -1e-120, 0.0]  # below E12.5's 2-digit exponent: written as 0
    f = read_frd_file(write_frd(tmp_path / "r.frd", mesh, times, fields, node_ids=node_ids, element_ids=element_ids))
    assert np.array_equal(f.node_ids, node_ids) and np.array_equal(f.element_ids, element_ids)
    assert np.allclose(f.coordinates, mesh.points, rtol=1e-5, atol=1e-12)
    conn = np.vstack([b.connectivity for b in mesh.blocks])
    assert all(np.array_equal(c, node_ids[row]) for c, row in zip(f.connectivity, conn))
    assert np.allclose(f.times, times)
    for k, inc in enumerate(f.increments):
        for name, v in fields.items():
            assert np.allclose(inc.nodal(name, node_ids), v[k], rtol=1e-5, atol=1e-5 * np.abs(v[k]).max()), name
    with pytest.raises(CalculixError, match="field PE has 3 non-finite values"):
        bad = dict(fields, PE=np.where(np.arange(mesh.n_nodes) == 2, np.nan, fields["PE"]))
        write_frd(tmp_path / "bad.frd", mesh, times, bad)
    # a finite value no converged increment writes (its square overflows downstream): refused, naming node and time
    huge = {k: v.copy() for k, v in fields.items()}
    huge["DISP"][1, 4, 0] = -3e40
    f = read_frd_file(write_frd(tmp_path / "huge.frd", mesh, times, huge, node_ids=node_ids, element_ids=element_ids))
    with pytest.raises(CalculixError, match=rf"DISP at time 1 is -3e\+40 at node id {node_ids[4]} \(1 nodes infinite "
                                            r"or above 1e\+30"):
        f.increments[1].nodal("DISP", node_ids)
    assert np.allclose(f.increments[0].nodal("DISP", node_ids), fields["DISP"][0], atol=1e-8)


@pytest.mark.parametrize("element", ["C3D8", "C3D20R", "C3D20", "C3D10", "C3D4"])
def test_extrapolation_to_nodes_is_exact_for_linear_fields(element):
    """Integration-point values of a field linear in x, y, z extrapolate to its nodal values (every basis
    used contains the linear functions; C3D4's one point: the element mean), as ccx's nodal output."""
    from structrom.rom.fem.kernel import Discretization

    mesh = box((2.0, 1.0, 1.0), (2, 1, 1), element)
    disc = Discretization(mesh)
    g = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])  # two components
    at_points = 5.0 + disc.point_coordinates @ g.T
    nodal = extrapolate_to_nodes(mesh, at_points)
    if element == "C3D4":
        assert np.allclose(extrapolate_to_nodes(mesh, np.full(len(at_points), 3.0)), 3.0)
    else:
        assert np.allclose(nodal, 5.0 + mesh.points @ g.T, atol=1e-12)
    with pytest.raises(CalculixError, match="integration-point values"):
        extrapolate_to_nodes(mesh, at_points[:-1])


def test_uploaded_deck_screening():
    ok = b"*HEADING\nx\n** *INCLUDE, INPUT=commented.inp\n*NODE\n1,0,0,0\n"
    assert screen_deck_text(ok, max_bytes=1000).startswith("*HEADING")
    for data, message in ((b"*NODE\n  *include ,input=/etc/passwd\n", r"not supported: \*INCLUDE, up.inp:2"),
                          (b"*NODE\n*INCLUDE,INPUT=m.inp\n", r"\*INCLUDE"),
                          # spellings the parser reads as *INCLUDE too (blanks removed, Unicode upper case)
                          (b"*NODE\n*IN CLUDE, INPUT=/etc/passwd\n", r"not supported: \*INCLUDE, up.inp:2"),
                          ("*NODE\n*\u0131nclude,input=/etc/passwd\n".encode(), r"not supported: \*INCLUDE, up.inp:2"),
                          # byte-order marks: the parser drops one, the screen all (none hides the card)
                          (b"\xef\xbb\xbf\xef\xbb\xbf*INCLUDE,INPUT=/etc/passwd\n", r"not supported: \*INCLUDE, up.inp:1"),
                          (b"*NODE\n1,0\x00,0\n", "binary data"), (b"x" * 2000, "2000 bytes; at most 1000")):
        with pytest.raises(CalculixError, match=message):
            screen_deck_text(data, max_bytes=1000, name="up.inp")
    with pytest.raises(CalculixError, match="3 lines; at most 2"):
        screen_deck_text(b"a\nb\nc\n", max_bytes=1000, max_lines=2)


def test_node_envelope_in_schema_family_check_and_distance():
    """A nodal temperature outside the per-node training envelope is flagged (even inside the global value
    range) and counted by the out-of-family distance; inside it, neither."""
    from structrom.rom.loading import Loading, NodalTemperature
    from structrom.rom.online.envelope import family_distance
    from structrom.rom.online.schema import SchemaError, check_family, node_envelope, validate_schema

    times = np.array([0.0, 1.0])
    train = [np.array([[20.0, 20.0, 20.0], [20.0, 300.0, 100.0]]), np.array([[20.0, 20.0, 20.0], [20.0, 450.0, 150.0]])]
    nodes = np.array([3, 5, 7])
    schema = {"temperature": {"type": "nodal", "value_range": [20.0, 450.0],
                              "node_envelope": node_envelope([_spread(t, nodes, 9) for t in train], nodes)}}
    validate_schema(schema)
    assert schema["temperature"]["node_envelope"] == {"nodes": [3, 5, 7], "min": [20.0, 20.0, 20.0],
                                                      "max": [20.0, 450.0, 150.0]}
    inside = np.array([[20.0, 20.0, 20.0], [20.0, 400.0, 120.0]])
    hot = np.array([[20.0, 20.0, 20.0], [60.0, 400.0, 120.0]])  # node 3 hotter than any training run there
    for values, flagged in ((inside, False), (hot, True)):
        loading = Loading(times, NodalTemperature(times, values))
        v = check_family(loading, schema, lambda: values)
        assert bool(v) == flagged
        assert (family_distance(loading, schema)[-1] > 0) == flagged
    assert "outside the per-node training envelope at 1 of the model's 3 temperature nodes (worst: mesh node 3, " \
           "60 vs [20, 20])" in check_family(Loading(times, NodalTemperature(times, hot)), schema, lambda: hot)[0]
    assert family_distance(Loading(times, NodalTemperature(times, hot)), schema)[-1] == pytest.approx(40 / 430)
    with pytest.raises(SchemaError, match="node_envelope"):
        validate_schema({"temperature": {"type": "nodal", "node_envelope": {"nodes": [1], "min": [2.0], "max": [1.0]}}})


def _spread(values: np.ndarray, nodes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(values), n))
    out[:, nodes] = values
    return out


# -- with ccx: a model from imported runs answers decks locally and through the service ------------------------
@pytest.fixture(scope="module")
def deck_model(tmp_path_factory):
    """Two ccx runs of a 2-element deck (E(T), J2, hot spot, *DLOAD pressure with a total-time amplitude,
    *CLOAD forces in two directions, two steps), imported and reduced."""
    if shutil.which("ccx") is None:
        pytest.skip("CalculiX ccx not installed")
    sys.path.insert(0, str(HERE))
    from test_calculix_import import MODEL, STEPS

    from structrom.rom.adapters.calculix_import import import_calculix

    tmp = tmp_path_factory.mktemp("deck_model")
    runs = tmp / "runs"
    runs.mkdir()
    (runs / "a.inp").write_text(MODEL + STEPS)
    (runs / "b.inp").write_text(MODEL + STEPS.replace("LOAD,1,60", "LOAD,1,40\nLOAD,2,-25"))
    for name in ("a", "b"):
        run_ccx(runs, name, timeout=120)
    import_calculix(runs / "a.inp", runs, tmp / "m")
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "--quiet", "offline",
                           str(tmp / "m" / "offline.toml")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return tmp, MODEL, STEPS


@needs_ccx
@pytest.mark.calculix
def test_predict_command_writes_frd_and_vtu(deck_model):
    """``structrom predict`` on a training deck: the .frd (read back by our reader) holds the model's answer,
    which reproduces ccx's displacements of that run; VTU/PVD written; bad decks exit 2 naming the line."""
    import meshio

    from structrom.rom.online import ReducedModel

    tmp, MODEL, STEPS = deck_model
    out = tmp / "pred"
    cmd = [sys.executable, "-m", "structrom.api.cli", "predict", str(tmp / "m" / "model.h5"), "--deck",
           str(tmp / "runs" / "b.inp"), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and (out / "b.frd").exists() and (out / "b.pvd").exists()
    frd = read_frd_file(out / "b.frd")
    ccx = read_frd_file(tmp / "runs" / "b.frd")
    assert np.allclose(frd.times, ccx.times)
    ids = ccx.node_ids
    u_rom = np.array([inc.nodal("DISP", ids) for inc in frd.increments])
    u_ccx = np.array([inc.nodal("DISP", ids) for inc in ccx.increments])
    assert np.linalg.norm(u_rom - u_ccx) <= 1e-3 * np.linalg.norm(u_ccx)
    t_rom = np.array([inc.nodal("NDTEMP", ids) for inc in frd.increments])
    t_ccx = np.array([inc.nodal("NDTEMP", ids) for inc in ccx.increments])
    assert np.allclose(t_rom, t_ccx, rtol=1e-5)
    assert {"STRESS", "PE"} <= set(frd.increments[0].fields)
    vtu = meshio.read(out / "b_0000.vtu")
    assert vtu.points.shape == (12, 3) and "stress_element_mean" in vtu.cell_data
    # a deck outside the family (hotter) is refused unless --extrapolate; a foreign mesh names the deck
    hot = tmp / "hot.inp"
    hot.write_text((MODEL + STEPS).replace("9,420\n10,420", "9,620\n10,620"))
    proc = subprocess.run(cmd[:6] + [str(hot), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "training" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(cmd[:6] + [str(hot), "--out", str(out), "--extrapolate"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "warning" in proc.stdout, proc.stderr
    moved = tmp / "moved.inp"
    moved.write_text((MODEL + STEPS).replace("9,2,0,0", "9,2.5,0,0"))
    proc = subprocess.run(cmd[:6] + [str(moved), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "moved.inp: its mesh" in proc.stderr
    assert ReducedModel.load(tmp / "m" / "model.h5").loading_schema["temperature"]["node_envelope"]["nodes"]


@needs_ccx
@pytest.mark.calculix
def test_rest_deck_route(deck_model):
    """The service answers an uploaded deck (JSON, .frd, zipped VTU) as the local command does, and refuses
    hostile uploads with 4xx JSON errors: *INCLUDE of a server file, binary data, oversized bodies, a foreign
    mesh, absurd increment counts, garbage."""
    import io
    import zipfile

    import httpx

    sys.path.insert(0, str(HERE))
    from api_fixtures import ServerProcess

    tmp, MODEL, STEPS = deck_model
    models = tmp / "models"
    models.mkdir(exist_ok=True)
    shutil.copy(tmp / "m" / "model.h5", models / "cl.h5")
    deck = (tmp / "runs" / "b.inp").read_bytes()
    with ServerProcess(models, args=["--max-request-bytes", "200000"]) as server:
        url = server.url + "/v1/models/cl/solve/deck"

        def post(data, name="b.inp", **form):
            return httpx.post(url, files={"deck": (name, data)}, data=form, timeout=120)

        r = post(deck)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["deck"] == "b.inp" and body["loading"]["force"] == ["FORCE_1"] and len(body["times"]) == 5
        assert body["loading"]["pressure"] == ["PRESSURE_1"] and body["trusted_all"] in (True, False)
        r = post(deck, format="frd")
        assert r.status_code == 200 and r.headers["content-disposition"].endswith('b.frd"')
        (tmp / "rest.frd").write_bytes(r.content)
        local = read_frd_file(tmp / "pred" / "b.frd") if (tmp / "pred" / "b.frd").exists() else None
        rest = read_frd_file(tmp / "rest.frd")
        if local is not None:
            assert np.allclose(rest.increments[-1].fields["DISP"], local.increments[-1].fields["DISP"])
        r = post(deck, format="vtu")
        assert r.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert "b.pvd" in names and "b_0000.vtu" in names

        def refused(resp, status, code=None, text=None):
            assert resp.status_code == status, resp.text
            err = resp.json()["error"]
            assert code is None or err["code"] == code, err
            assert text is None or text in err["message"], err
            assert str(tmp) not in err["message"]

        for include in (b"*INCLUDE, INPUT=/etc/passwd", b"*IN CLUDE, INPUT=/etc/passwd"):  # (ccx drops the blanks)
            refused(post(deck.replace(b"*MATERIAL", include + b"\n*MATERIAL")), 422, "unsupported_keyword",
                    "*INCLUDE, b.inp:")
        refused(post(b"\x00\x01binary" * 10), 422, "invalid_deck", "binary")
        refused(post(deck + b"** pad\n" * 40000), 413)
        refused(post(deck.replace(b"9,2,0,0", b"9,2.5,0,0")), 422, "invalid_deck", "its mesh")
        refused(post(deck.replace(b"*STATIC\n0.5,1\n", b"*STATIC\n1e-9,1\n", 1)), 422, "invalid_deck",
                "increments")
        refused(post(deck.replace(b"*STATIC\n0.5,1\n", b"*STATIC\nnan,1\n", 1)), 422, "invalid_deck",
                "initial time increment 'nan' is not finite")
        refused(post(b"*NODE\n1,a,b\n*STEP\n*END STEP\n"), 422, "invalid_deck")
        refused(post(b"hello"), 422, "invalid_deck")
        refused(post(deck.replace(b"LOAD,1,40", b"LOAD,1,40\n1,3,5.")), 422, "invalid_deck", "none of the model's")
        refused(post(deck, format="pdf"), 422, "invalid_format")
        refused(post(deck.replace(b"9,420\n10,420", b"9,920\n10,920")), 422, "outside_training_family")
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200
        from structrom.api.client import Client

        client = Client(server.url)
        assert client.solve_deck("cl", tmp / "runs" / "b.inp")["times"] == body["times"]
        assert client.solve_deck("cl", deck, format="frd").startswith(b"    1C")


# -- structrom import ansys ---------------------------------------------------------------------------------------
def test_ansys_import_refuses_the_modal_example_file(tmp_path):
    """``file.rst`` of ansys-mapdl-reader is a modal analysis: refused by name, exit code 2, no traceback."""
    pytest.importorskip("ansys.mapdl.reader")
    from ansys.mapdl.reader import examples

    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "import", "ansys", examples.rstfile, "--out",
                           str(tmp_path / "a")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "a modal analysis (ANTYPE); only static results" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ansys_import_builds_cases_from_static_records(tmp_path, monkeypatch):
    """Static results as the reader returns them (D records at x = 0, F records at x = L in two directions,
    nodal temperatures, one isotropic material): fixed and force node sets, force histories per set, the
    material law, detected parameters; snapshots read back as training cases."""
    from types import SimpleNamespace

    from structrom.rom.adapters import ansys, ansys_import
    from structrom.rom.offline.snapshots import read_training_case

    mesh = box((4.0, 1.0, 1.0), (4, 1, 1), "C3D8")
    ids = 1 + np.arange(mesh.n_nodes)[::-1]  # Ansys numbers in another order than ours
    xmin, xmax = mesh.node_sets["xmin"], mesh.node_sets["xmax"]
    times = np.array([0.5, 1.0])

    def fake(fx, fy):
        def d(k):
            n = np.repeat(ids[xmin], 3)
            return n, np.tile([1, 2, 3], len(xmin)), np.zeros(len(n))

        def f(k):
            n = np.repeat(ids[xmax], 2)
            return n, np.tile([1, 2], len(xmax)), np.tile([fx, fy], len(xmax)) * times[k]

        def temp(k):
            return ids, 20.0 + 100.0 * times[k] * mesh.points[:, 0]

        return SimpleNamespace(nsets=2, _resultheader={"kan": 0, "nlgeom": 0}, materials={1: {"EX": 2e5, "PRXY": 0.3,
                               "ALPX": 1.2e-5, "REFT": 20.0}}, nodal_boundary_conditions=d, nodal_input_force=f,
                               result_dof=lambda k: ["UX", "UY", "UZ"], nodal_temperature=temp)

    runs = {"r1.rst": fake(10.0, 0.0), "r2.rst": fake(-5.0, 3.0)}
    # (the reader's result object replaced; the records function of the import reads it as in the reader's process)
    monkeypatch.setattr(ansys_import, "read_ansys_result", lambda p, records: ansys.AnsysResult(
        Path(p), box((4.0, 1.0, 1.0), (4, 1, 1), "C3D8"), ids, np.arange(mesh.n_elements) + 1, times,
        np.full((2, mesh.n_nodes, 3), 1e-3), records(runs[Path(p).name], str(p))))
    family = ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "out")
    assert family["fixed"] == {"FIXED_XYZ": len(xmin)} and family["forces"] == {"FORCE_1": len(xmax)}
    assert family["ranges"] == {"force.FORCE_1.x": [-5.0, 10.0], "force.FORCE_1.y": [0.0, 3.0]}
    assert family["material"] == {"type": "linear_elastic", "young": 2e5, "poisson": 0.3, "expansion": 1.2e-5,
                                  "reference_temperature": 20.0}
    m = read_inp(tmp_path / "out" / "mesh.inp")[0]
    assert sorted(m.node_set("FORCE_1")) == sorted(xmax) and sorted(m.node_set("FIXED_XYZ")) == sorted(xmin)
    case = read_training_case(tmp_path / "out" / "train" / "r2.h5", m)
    assert np.allclose(case.loading.forces["FORCE_1"](1.0), [-5.0, 3.0, 0.0])
    assert np.allclose(case.loading.forces["FORCE_1"](0.5), [-2.5, 1.5, 0.0])
    temps = case.loading.nodal_temperatures(case.loading.times, m.points)
    assert np.allclose(temps[0], 20.0) and np.allclose(temps[2], 20.0 + 100.0 * m.points[:, 0])
    runs["r2.rst"].nodal_boundary_conditions = lambda k: (ids[xmin], np.ones(len(xmin), int), np.full(len(xmin), 0.1))
    with pytest.raises(ansys.AnsysError, match="r2.rst: result set 1: non-zero prescribed displacements"):
        ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "out2")
    # finite entries no converged run writes (their squares overflow later) are refused at read, naming the node
    runs["r2.rst"] = fake(1e308, 0.0)
    with pytest.raises(ansys.AnsysError, match=r"r2.rst: result set 1: force \(F\) records: value 5e\+307 at node "
                                               rf"{ids[xmax][0]} is infinite or above 1e\+30"):
        ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "out3")
    hot = fake(10.0, 0.0)
    hot.nodal_temperature = lambda k: (ids, np.full(len(ids), np.inf))
    runs["r2.rst"] = hot
    with pytest.raises(ansys.AnsysError, match=r"r2.rst: result set 1: nodal temperatures: value inf at node"):
        ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "out4")
    # a force on a node no solid element uses (a remote load's pilot node) is refused, not dropped
    runs["r2.rst"] = fake(10.0, 0.0)
    runs["r2.rst"].nodal_input_force = lambda k: (np.array([10_000]), np.array([1]), np.array([5.0]))
    with pytest.raises(ansys.AnsysError, match=r"r2.rst: result set 1: force \(F\) records on nodes \[10000\] that no "
                                               "converted solid element uses"):
        ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "out5")
    runs["r1.rst"].materials = {1: {"EX": [2e5, 1.9e5], "PRXY": 0.3}}  # (EX at two temperatures)
    with pytest.raises(ansys.AnsysError, match=r"r1.rst: temperature-dependent EX \(MPDATA tables\): .*--material"):
        ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "out6")
    with pytest.raises(ansys.AnsysError, match=r"x.rst: result set 2: nodal displacements: value -1e\+300 at node 7"):
        ansys.check_magnitudes(np.array([[0.0, 0, 0], [np.nan, 1, 1], [1, -1e300, 0]]),
                               "x.rst: result set 2: nodal displacements", np.array([3, 5, 7]))


def test_force_components_are_loading_parameters_and_family_distance():
    """Forces enter the out-of-family measures: their peak components are parameters of the calibrated
    nearest-training distance, and a force beyond the schema's range counts in the box distance."""
    from structrom.rom.loading import Loading, VectorAmplitude
    from structrom.rom.online.envelope import family_distance, loading_parameters

    schema = {"force": {"tip": {"range": [[0.0, 0.0], [-1.0, 1.0], [0.0, 0.0]]}}}
    loading = Loading(np.array([0.0, 1.0]), forces={"tip": VectorAmplitude.from_config([[0, 0, 0, 0], [1, 0, 3, 0]])})
    assert loading_parameters(loading, schema) == {"force.tip.x": 0.0, "force.tip.y": 3.0, "force.tip.z": 0.0}
    assert loading_parameters(Loading(np.array([0.0, 1.0])), schema)["force.tip.y"] == 0.0
    assert family_distance(loading, schema)[-1] == pytest.approx(1.0)  # 2 beyond a range of width 2


def test_ansys_import_without_the_reader_names_the_package(tmp_path, monkeypatch, capsys):
    """A broken ansys-mapdl-reader install: the command exits 2 naming the package and the pip command."""
    from structrom.api.cli import main

    monkeypatch.setitem(sys.modules, "ansys.mapdl.reader", None)  # import fails as for a broken install
    if "ansys.mapdl" in sys.modules:  # imported by an earlier test: hide the loaded submodule too
        monkeypatch.delattr(sys.modules["ansys.mapdl"], "reader", raising=False)
    (tmp_path / "r.rst").write_bytes(b"\0" * 16)
    assert main(["import", "ansys", str(tmp_path / "r.rst"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "needs the package 'ansys-mapdl-reader' (pip install ansys-mapdl-reader)" in err and "Traceback" not in err
