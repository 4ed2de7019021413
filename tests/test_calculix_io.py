"""CalculiX adapter: deck round trips (no ccx needed) and ccx runs against analytic solutions."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pytest

from structrom.rom.adapters.calculix import CalculixError, read_dat, read_frd, read_inp, run_ccx, write_mesh_inp
from structrom.rom.fem.structured import box, cylinder_sector

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")

E_MOD, NU = 210_000.0, 0.3


@pytest.mark.parametrize("element", ["C3D8", "C3D20", "C3D20R", "C3D10", "C3D4"])
def test_inp_roundtrip(tmp_path, element):
    mesh = cylinder_sector(1.0, 2.0, 1.0, 60.0, (2, 3, 2), element)
    mesh.element_sets["odd"] = np.arange(1, mesh.n_elements, 2)
    mesh.node_sets["many"] = np.arange(0, mesh.n_nodes, 3)  # several 16-entry lines
    path = tmp_path / "mesh.inp"
    write_mesh_inp(path, mesh)
    text = path.read_text()
    assert max(len(line) for line in text.splitlines()) <= 132
    assert max(line.count(",") + (not line.endswith(",")) for line in text.splitlines()
               if not line.startswith("*")) <= 16
    back, ids = read_inp(path)
    assert np.array_equal(back.points, mesh.points)  # %.17g: exact
    assert [b.element for b in back.blocks] == [element]
    assert np.array_equal(back.blocks[0].connectivity, mesh.blocks[0].connectivity)
    assert np.array_equal(ids.node_ids, np.arange(1, mesh.n_nodes + 1))
    assert np.array_equal(ids.element_ids, np.arange(1, mesh.n_elements + 1))
    assert set(back.node_sets) == set(mesh.node_sets) | {"Nall"}
    assert set(back.element_sets) == set(mesh.element_sets) | {"Eall"}
    for name, nodes in mesh.node_sets.items():
        assert np.array_equal(back.node_sets[name], nodes)
    for name, els in mesh.element_sets.items():
        assert np.array_equal(back.element_sets[name], els)
    assert set(back.surface_sets) == set(mesh.surface_sets)
    for name, faces in mesh.surface_sets.items():
        assert np.array_equal(back.surface_sets[name], faces)


def test_read_inp_features_and_errors(tmp_path):
    deck = tmp_path / "a.inp"
    deck.write_text(
        "** comment\n*Node, NSET=N1\n10, 0, 0, 0\n20, 1, 0, 0\n30, 0, 1, 0\n40, 0, 0, 1\n"
        "*Element, type=C3D4, elset=E1\n7, 10, 20, 30, 40\n"
        "*Nset, nset=gen, generate\n10, 40, 10\n*NSET, NSET=copy\nn1\n"
        "*Surface, name=s, type=element\nE1, S2\n*MATERIAL, NAME=x\n*ELASTIC\n1., 0.\n"
    )
    mesh, ids = read_inp(deck)
    assert np.array_equal(ids.node_ids, [10, 20, 30, 40]) and np.array_equal(ids.element_ids, [7])
    assert np.array_equal(mesh.node_sets["gen"], np.arange(4))
    assert np.array_equal(mesh.node_sets["copy"], np.arange(4))
    assert np.array_equal(mesh.surface_sets["s"], [[0, 1]])
    assert np.array_equal(ids.node_index([40, 10]), [3, 0])
    # a face the element does not have: a tetrahedron's are S1-S4
    deck.write_text(deck.read_text().replace("E1, S2", "E1, S5"))
    with pytest.raises(CalculixError, match=r"a\.inp: \*SURFACE, NAME=s: face S5 of element 7: a C3D4 element has "
                                            r"faces S1-S4"):
        read_inp(deck)
    deck.write_text("*NODE\n1, 0, 0, 0\n*ELEMENT, TYPE=C3D8I\n1, 1, 1, 1, 1, 1, 1, 1, 1\n")
    with pytest.raises(CalculixError, match=r"a\.inp:3: \*ELEMENT: element TYPE=C3D8I is not supported"):
        read_inp(deck)
    deck.write_text("*NODE\n1, 0, 0, 0\n2, 0, x, 0\n")
    with pytest.raises(CalculixError, match=r"a\.inp:3: \*NODE: .*'x'"):
        read_inp(deck)
    # coordinates left out at the end of a line, or blank, are 0 (CalculiX's and Abaqus's convention; 4 lines of
    # 2-4 entries whose total is 16, and a trailing comma, must not be read as 4 numbers per line)
    deck.write_text("*NODE\n1, 1.5\n2, 0, 2., 3.,\n3, 4., , 5.\n4, 1, 2, 3D0\n5, 7., .8d+1\n"
                    "*ELEMENT, TYPE=C3D4\n1, 1, 2, 3, 4\n")
    mesh, ids = read_inp(deck)
    assert np.array_equal(ids.node_ids, [1, 2, 3, 4, 5])
    assert np.array_equal(mesh.points, [[1.5, 0, 0], [0, 2, 3], [4, 0, 5], [1, 2, 3], [7, 8, 0]])
    # numbers that are not coordinates or ids: named with their line, never a wrapped-around or NaN id
    for text, message in (("*NODE\n1, 0, 0, 0\n2, nan, 0, 0\n", r"a\.inp:3: \*NODE: .*'nan' \(finite numbers only\)"),
                          ("*NODE\n1, 1e400, 0, 0\n", r"a\.inp:2: \*NODE: .*'1e400'"),
                          ("*NODE\n1.5, 0, 0, 0\n", r"a\.inp:2: \*NODE: node ids must be integers, got 1\.5"),
                          ("*NODE\n1, 0, 0, 0\n*ELEMENT, TYPE=C3D4\n1, 1, 1, 1, 99999999999999999999\n",
                           r"a\.inp:4: \*ELEMENT: integer ids expected, got '99999999999999999999'"),
                          ("*NODE\n1, 0, 0, 0\n*NSET, NSET=A\n1e400\n", r"'1e400' is neither an id nor a set")):
        deck.write_text(text)
        with pytest.raises(CalculixError, match=message):
            read_inp(deck)
    deck.write_text("*NODE\n1, 0, 0, 0\n2, 1, 0, 0\n3, 0, 1, 0\n4, 0, 0, 1\n*ELEMENT, TYPE=C3D4\n1, 1, 2, 3, 4\n"
                    "*NSET, NSET=A\nA, 2\n")  # a set naming itself: what it held so far (nothing)
    assert np.array_equal(read_inp(deck)[0].node_sets["A"], [1])
    deck.write_text("*NODE\n1, 0, 0, 0, 4\n2, 1\n")
    with pytest.raises(CalculixError, match=r"a\.inp:2: \*NODE lines must be 'id, x\[, y\[, z\]\]'.*got 5 entries"):
        read_inp(deck)
    deck.write_text("*NODE\n1, 0, 0, 0\n*ELEMENT, TYPE=C3D4\n1, 1, 1, 1, 9\n")
    with pytest.raises(CalculixError, match="connectivity.*9"):
        read_inp(deck)
    bad = box()
    bad.node_sets["bad name"] = np.array([0])
    with pytest.raises(CalculixError, match="'bad name' is not a valid CalculiX name"):
        write_mesh_inp(io.StringIO(), bad)


# -- ccx runs --------------------------------------------------------------------------------------------
def _deck(mesh, steps: str, material_extra: str = "") -> str:
    out = io.StringIO()
    write_mesh_inp(out, mesh)
    out.write(
        f"*MATERIAL, NAME=STEEL\n*ELASTIC\n{E_MOD}, {NU}\n{material_extra}"
        "*SOLID SECTION, ELSET=Eall, MATERIAL=STEEL\n" + steps
    )
    return out.getvalue()


OUTPUT = "*NODE PRINT, NSET=Nall\nU\n*EL PRINT, ELSET=Eall\nS, E\n*NODE FILE\nU\n*EL FILE\nS, E\n"
PLASTIC_OUTPUT = OUTPUT.replace("S, E\n", "S, E, PEEQ\n")


@needs_ccx
@pytest.mark.calculix
@pytest.mark.parametrize("element,div", [("C3D8", (2, 2, 2)), ("C3D20R", (1, 1, 2)), ("C3D10", (1, 1, 1))])
def test_ccx_uniaxial_tension(tmp_path, element, div):
    """Rollers on the three symmetry planes + traction p on xmax: exact uniaxial stress state."""
    lengths, p = np.array([2.0, 1.0, 1.5]), 100.0
    mesh = box(tuple(lengths), div, element)
    steps = (
        "*STEP\n*STATIC\n*BOUNDARY\nxmin, 1\nymin, 2\nzmin, 3\n"
        f"*DLOAD\nxmax, P, {-p}\n" + OUTPUT + "*END STEP\n"
    )
    (tmp_path / "job.inp").write_text(_deck(mesh, steps))
    run = run_ccx(tmp_path, "job", timeout=60)
    exact_u = mesh.points * np.array([p / E_MOD, -NU * p / E_MOD, -NU * p / E_MOD])
    exact_s = np.array([p, 0, 0, 0, 0, 0])
    exact_e = np.array([p / E_MOD, -NU * p / E_MOD, -NU * p / E_MOD, 0, 0, 0])

    dat = read_dat(run.dat)
    assert list(dat) == [1.0]
    u = dat[1.0]["U"]
    assert np.array_equal(u.ids, np.arange(1, mesh.n_nodes + 1))
    np.testing.assert_allclose(u.values, exact_u, rtol=2e-6, atol=1e-6 * np.abs(exact_u).max())
    s, e = dat[1.0]["S"], dat[1.0]["E"]
    assert s.ids.shape[1] == 2 and np.array_equal(np.unique(s.ids[:, 0]), np.arange(1, mesh.n_elements + 1))
    np.testing.assert_allclose(s.values, np.broadcast_to(exact_s, s.values.shape), atol=1e-6 * p)
    np.testing.assert_allclose(e.values, np.broadcast_to(exact_e, e.values.shape), atol=1e-6 * p / E_MOD)

    node_ids, coords, results = read_frd(run.frd)
    assert np.array_equal(node_ids, np.arange(1, mesh.n_nodes + 1))
    np.testing.assert_allclose(coords, mesh.points, rtol=1e-5, atol=1e-6)
    (res,) = results
    assert (res.step, res.increment, res.time) == (1, 1, 1.0)
    np.testing.assert_allclose(res.disp, exact_u, rtol=1e-5, atol=1e-5 * np.abs(exact_u).max())
    np.testing.assert_allclose(res.stress, np.broadcast_to(exact_s, res.stress.shape), atol=1e-4 * p)


@needs_ccx
@pytest.mark.calculix
def test_ccx_simple_shear_component_order(tmp_path):
    """Homogeneous shear u_x = gamma z (all boundary nodes prescribed): tests xz <-> zx mapping and
    ccx's tensor-shear strains, in .dat and .frd, over two increments; PEEQ is read (and zero)."""
    gamma = 1e-3
    mesh = box((1.0, 1.0, 1.0), (2, 2, 2), "C3D8")
    boundary = np.unique(np.concatenate(list(mesh.node_sets.values())))
    lines = "".join(f"{n + 1}, 1, 1, {gamma * mesh.points[n, 2]!r}\n{n + 1}, 2, 3, 0.\n" for n in boundary)
    steps = "*STEP\n*STATIC, DIRECT\n0.5, 1.\n*BOUNDARY\n" + lines + PLASTIC_OUTPUT + "*END STEP\n"
    # a (never reached) yield stress makes ccx treat the step as nonlinear, hence incremented
    (tmp_path / "shear.inp").write_text(_deck(mesh, steps, "*PLASTIC\n1e9, 0.\n"))
    run = run_ccx(tmp_path, "shear")
    dat = read_dat(run.dat)
    assert sorted(dat) == [0.5, 1.0]
    g = E_MOD / (2 * (1 + NU))
    for t in (0.5, 1.0):
        s, e = dat[t]["S"].values, dat[t]["E"].values
        np.testing.assert_allclose(s, np.broadcast_to([0, 0, 0, 0, 0, g * gamma * t], s.shape), atol=1e-6 * g * gamma)
        np.testing.assert_allclose(e, np.broadcast_to([0, 0, 0, 0, 0, gamma * t], e.shape), atol=1e-9 * gamma)
        assert np.array_equal(dat[t]["PEEQ"].values, np.zeros((8 * mesh.n_elements, 1)))
    _, _, results = read_frd(run.frd)
    assert np.array_equal(results[-1].fields["PE"], np.zeros((mesh.n_nodes, 1)))
    assert [(r.step, r.increment, r.time) for r in results] == [(1, 1, 0.5), (1, 2, 1.0)]
    st = results[-1].stress
    np.testing.assert_allclose(st, np.broadcast_to([0, 0, 0, 0, 0, g * gamma], st.shape), atol=1e-4 * g * gamma)
    eps = results[-1].fields["TOSTRAIN"]
    np.testing.assert_allclose(eps[:, 5], gamma, rtol=1e-4)


@needs_ccx
@pytest.mark.calculix
def test_ccx_errors_are_reported(tmp_path):
    mesh = box()
    deck = _deck(mesh, "*STEP\n*STATIC\n*END STEP\n").replace("MATERIAL=STEEL", "MATERIAL=NOPE")
    (tmp_path / "bad.inp").write_text(deck)
    with pytest.raises(CalculixError, match=r"(?s)ccx failed on .*bad\.inp.*\*ERROR.*nonexistent material"):
        run_ccx(tmp_path, "bad")
    with pytest.raises(CalculixError, match="does not exist"):
        run_ccx(tmp_path, "missing")
