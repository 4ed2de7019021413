"""Pressures of Ansys archives (SFE / SFEBLOCK, label PRES) in the Ansys import: face tables checked
geometrically, resultants of pressures written into the reader's example archives, refusals by file and
line, and an end-to-end import whose training cases carry the pressure surfaces."""
from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ansys.mapdl.reader")
from ansys.mapdl.reader import examples  # noqa: E402

from structrom.rom.adapters.ansys import AnsysError, AnsysResult, read_ansys_archive  # noqa: E402
from structrom.rom.adapters.ansys_pressure import ANSYS_FACE_TO_LOCAL, read_cdb_pressures  # noqa: E402
from structrom.rom.fem.mesh import CellBlock, Mesh  # noqa: E402
from structrom.rom.fem.surface import pressure_force  # noqa: E402

# Ansys Element Reference, "Surface Loads": corner nodes of each face (letters I J K L M N O P = nodes 0..7).
ANSYS_HEX = ["JILK", "IJNM", "JKON", "KLPO", "LIMP", "MNOP"]
ANSYS_TET = ["JIK", "IJL", "JKL", "KIL"]
HEX20_EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7)]
TET10_EDGES = [(0, 1), (1, 2), (2, 0), (0, 3), (1, 3), (2, 3)]
EXAMPLES = Path(examples.__file__).parent


def _corners(word: str) -> list[int]:
    return ["IJKLMNOP".index(c) for c in word]


def _area_vector(x: np.ndarray) -> np.ndarray:
    """Vector area ``(3,)`` of the polygon ``x`` ``(k, 3)`` (right-hand rule over its order)."""
    return 0.5 * np.cross(x, np.roll(x, -1, axis=0)).sum(axis=0)


def _resultant(mesh: Mesh, faces, p) -> np.ndarray:
    return pressure_force(mesh, np.asarray(faces).reshape(-1, 2), p).reshape(-1, 3).sum(axis=0)


@pytest.mark.parametrize("element", ["C3D8", "C3D20", "C3D4", "C3D10"])
def test_ansys_face_numbers_map_to_our_faces_geometrically(element):
    """On one distorted element per type, Ansys face k (its corners by the Element Reference's letters)
    points out of the element, and a unit pressure on our mapped face has the resultant -area vector."""
    rng = np.random.default_rng(3)
    hexa = element.startswith("C3D2") or element == "C3D8"
    corners = (np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0], [0, 0, 3], [2, 0, 3], [2, 1, 3], [0, 1, 3]], float)
               if hexa else np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 3]], float))
    corners += 0.15 * rng.standard_normal(corners.shape)
    edges = {"C3D20": HEX20_EDGES, "C3D10": TET10_EDGES}.get(element, [])
    points = np.vstack([corners] + [0.5 * (corners[[a]] + corners[[b]]) for a, b in edges])
    mesh = Mesh(points, [CellBlock(element, np.arange(len(points))[None, :])])
    centroid = corners.mean(axis=0)
    table = ANSYS_HEX if hexa else ANSYS_TET
    assert len(ANSYS_FACE_TO_LOCAL[element]) == len(table)
    for k, word in enumerate(table):
        x = corners[_corners(word)]
        area = _area_vector(x)
        assert area @ (x.mean(axis=0) - centroid) > 0.0  # the Reference's order gives the outward normal
        got = _resultant(mesh, [0, ANSYS_FACE_TO_LOCAL[element][k]], 1.0)
        assert np.allclose(got, -area, rtol=0, atol=1e-12 * np.abs(area).max()), (element, k + 1)


def _faces_on(coords: np.ndarray, conn_ids: np.ndarray, table: list[str], on) -> list[int]:
    """Ansys face number (1-based) of the element whose corners all satisfy ``on``, else 0."""
    for k, word in enumerate(table):
        if all(on(coords[c]) for c in conn_ids[_corners(word)]):
            return k + 1
    return 0


def _archive_with(source: Path, extra: list[str], dest: Path) -> Path:
    lines = source.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("/GO"))
    dest.write_text("\n".join(lines[:at] + extra + lines[at:]) + "\n")
    return dest


def _loads_on(mesh, element_ids, table, on) -> list[tuple[int, int]]:
    """``[(Ansys element, Ansys face)]`` of the faces whose corners satisfy ``on`` (by the letter table)."""
    out = []
    for g, conn in enumerate(mesh.blocks[0].connectivity):
        k = _faces_on(mesh.points, conn, table, on)
        if k:
            out.append((int(element_ids[g]), k))
    return out


def _hexbeam_loads(tmp_path: Path, p_end: float, p_side: float, name: str = "run.cdb",
                   fmt: str = "(i9,i4,i4,4(pg20.9))"):
    """HexBeam.cdb (SOLID186, [0,1]x[0,1]x[0,5]) with p_end on z = 5 (SFE command lines, half of them in
    CDWRITE's R5.0 form) and p_side on x = 1 (an SFEBLOCK of row format ``fmt``: element i9, face i4, value
    key i4, four values of width 20)."""
    mesh, node_ids, element_ids = read_ansys_archive(EXAMPLES / "HexBeam.cdb")
    end = _loads_on(mesh, element_ids, ANSYS_HEX, lambda x: abs(x[2] - 5.0) < 1e-9)
    side = _loads_on(mesh, element_ids, ANSYS_HEX, lambda x: abs(x[0] - 1.0) < 1e-9)
    lines = []
    for i, (e, k) in enumerate(end):
        if i % 2:
            lines += [f"SFE,{e:8d},{k:4d},PRES, 0,R5.0", ",".join([f"{p_end:16.8e}"] * 4)]
        else:
            lines.append(f"SFE,{e},{k},PRES,,{p_end}")
    lines += [f"SFEBLOCK,4,PRES,{max(element_ids)},{2 * len(side)},0", fmt]
    for e, k in side:
        lines += [f"{e:9d}{k:4d}{1:4d}" + f"{p_side:20.12E}" * 4, f"{e:9d}{k:4d}{2:4d}" + f"{0.0:20.12E}" * 4]
    lines.append("SFE,END,LOC,-1,")
    return _archive_with(EXAMPLES / "HexBeam.cdb", lines, tmp_path / name), mesh, node_ids, element_ids, end, side


def test_hexbeam_pressures_give_the_analytic_resultant(tmp_path):
    """SOLID186 end face (area 1, normal +z) at 2e6 and side face (area 5, normal +x) at -3e5: the
    pressures read back per face, and their nodal forces sum to -p A n."""
    cdb, mesh, node_ids, element_ids, end, side = _hexbeam_loads(tmp_path, 2e6, -3e5)
    p = read_cdb_pressures(cdb, mesh, node_ids, element_ids)
    from structrom.rom.fem.faces import FACES

    assert len(p.faces) == len(end) + len(side) == 4 + 20 and p.ramped
    assert set(np.unique(p.values)) == {2e6, -3e5}
    total = _resultant(mesh, p.faces, p.values)
    assert np.allclose(total, [3e5 * 5.0, 0.0, -2e6 * 1.0], rtol=0, atol=1e-9 * 2e6)
    on_end = p.values == 2e6  # all 8 nodes of each mapped face (corners and mid-sides) on z = 5
    face_nodes = mesh.blocks[0].connectivity[p.faces[on_end, 0][:, None], FACES["C3D20"][p.faces[on_end, 1]]]
    assert face_nodes.shape == (4, 8) and np.allclose(mesh.points[face_nodes, 2], 5.0)


def test_tetbeam_pressure_resultant(tmp_path):
    """TetBeam.cdb (linear tetrahedra): a pressure on the faces at z = z_max in SFE command lines."""
    mesh, node_ids, element_ids = read_ansys_archive(EXAMPLES / "TetBeam.cdb")
    top = mesh.points[:, 2].max()
    loads = _loads_on(mesh, element_ids, ANSYS_TET, lambda x: abs(x[2] - top) < 1e-9)
    cdb = _archive_with(EXAMPLES / "TetBeam.cdb", [f"SFE,{e},{k},PRES,0,7.5" for e, k in loads], tmp_path / "t.cdb")
    p = read_cdb_pressures(cdb, mesh, node_ids, element_ids)
    xy = mesh.points[np.abs(mesh.points[:, 2] - top) < 1e-9, :2]
    area = np.ptp(xy[:, 0]) * np.ptp(xy[:, 1])  # the beam's rectangular end
    assert len(loads) >= 2
    assert np.allclose(_resultant(mesh, p.faces, p.values), [0, 0, -7.5 * area], rtol=0, atol=1e-10 * 7.5 * area)


@pytest.mark.parametrize("line,match", [
    ("SFE,1,1,CONV,0,10", r"t\.cdb:\d+: surface load label 'CONV': only pressures \(PRES\)"),
    ("SFE,1,1,PRES,0,%PTAB%", r"t\.cdb:\d+: tabular pressure '%PTAB%' \(%TAB%\)"),
    ("SFE,ALL,1,PRES,0,5", r"t\.cdb:\d+: SFE,ALL: the loaded elements depend on a selection"),
    ("SF,ALL,PRES,5", r"t\.cdb:\d+: SF: surface loads on nodes are not read; give the pressures per element face"),
    ("SFE,1,1,PRES,0,1,2,3,4", r"t\.cdb:\d+: tapered pressure \[1.0, 2.0, 3.0, 4.0\] on face 1 of element 1"),
    ("SFE,1,7,PRES,0,5", r"t\.cdb:\d+: face 7 of element 1: a C3D20 element \(Ansys solid\) has faces 1..6"),
    ("SFE,999,1,PRES,0,5", r"t\.cdb:\d+: pressure on element 999, which is not a solid element"),
    ("SFE,1,1,PRES,2,5", r"t\.cdb:\d+: imaginary pressures \(KVAL = 2\) belong to harmonic analyses"),
    ("SFE,NOPE,1,PRES,0,5", r"t\.cdb:\d+: SFE on 'NOPE': not an element number nor an element component"),
    ("SFEBLOCK,4,PRES,40,2,1", r"t\.cdb:\d+: SFEBLOCK with table flag 1 \(tabular pressures %TAB%\)"),
    ("SFCUM,PRES,ADD", r"t\.cdb:\d+: SFCUM,PRES,ADD,,: only replacing loads"),
    ("SFE,1,1,PRES,0,1e308", r"t\.cdb:\d+: pressure '1e308' is not a finite number of magnitude <= 1e\+30"),
    ("SFE,1,1,PRES,0,inf", r"t\.cdb:\d+: pressure 'inf' is not a finite number"),
    ("SFE,1,1,PRES,0,nan", r"t\.cdb:\d+: pressure 'nan' is not a finite number"),
])
def test_unsupported_surface_loads_are_refused_by_file_and_line(tmp_path, line, match):
    mesh, node_ids, element_ids = read_ansys_archive(EXAMPLES / "HexBeam.cdb")
    cdb = _archive_with(EXAMPLES / "HexBeam.cdb", [line], tmp_path / "t.cdb")
    with pytest.raises(AnsysError, match=match):
        read_cdb_pressures(cdb, mesh, node_ids, element_ids)


def test_component_loads_and_later_loads_replace(tmp_path):
    """SFE on an element component (ECOMP1: elements 17, 18, 21..40) then one of its faces again: the later
    value wins; KBC,1 marks the archive's loads stepped."""
    mesh, node_ids, element_ids = read_ansys_archive(EXAMPLES / "HexBeam.cdb")
    cdb = _archive_with(EXAMPLES / "HexBeam.cdb", ["KBC,1", "SFE,ECOMP1,2,PRES,,1.5", "SFE,17,2,PRES,,4"],
                        tmp_path / "c.cdb")
    p = read_cdb_pressures(cdb, mesh, node_ids, element_ids)
    elems = element_ids[p.faces[:, 0]]
    assert sorted(elems.tolist()) == [17, 18] + list(range(21, 41)) and not p.ramped
    assert p.values[elems == 17].tolist() == [4.0] and np.all(p.values[elems != 17] == 1.5)
    assert np.all(p.faces[:, 1] == ANSYS_FACE_TO_LOCAL["C3D20"][1])


def test_ansys_import_with_archive_pressures(tmp_path, monkeypatch, capsys):
    """Two static runs of HexBeam (z = 0 fixed by D records) whose archives load the end face (2e6, 1e6)
    and the side face (-3e5 in both): two surfaces, ramped histories, the end pressure a parameter; the
    training cases' surfaces and loadings give the analytic resultant at the end time."""
    from structrom.rom.adapters import ansys_import
    from structrom.rom.adapters.calculix import read_inp
    from structrom.rom.offline.snapshots import read_training_case

    cdb1, mesh, node_ids, element_ids, end, side = _hexbeam_loads(tmp_path, 2e6, -3e5, "r1.cdb")
    cdb2 = _hexbeam_loads(tmp_path, 1e6, -3e5, "r2.cdb", fmt="(1i9,2i4,1p4e20.12)")[0]
    base = np.flatnonzero(mesh.points[:, 2] < 1e-9)
    times = np.array([0.5, 1.0])

    def d(k):
        return np.repeat(node_ids[base], 3), np.tile([1, 2, 3], len(base)), np.zeros(3 * len(base))

    def no_records(k):
        raise IndexError(k)

    def no_temperature(k):
        raise ValueError("not available")

    res = SimpleNamespace(nsets=2, _resultheader={"kan": 0, "nlgeom": 0,
                                                  "ls_table": np.array([[1, 1, 1], [1, 2, 2]])},
                          materials={1: {"EX": 7e10, "NUXY": 0.35}}, nodal_boundary_conditions=d,
                          nodal_input_force=no_records, result_dof=lambda k: ["UX", "UY", "UZ"],
                          nodal_temperature=no_temperature)
    hexbeam = read_ansys_archive(EXAMPLES / "HexBeam.cdb")[0]
    monkeypatch.setattr(ansys_import, "read_ansys_result", lambda p, records: AnsysResult(
        Path(p), copy.deepcopy(hexbeam), node_ids, element_ids, times, np.full((2, mesh.n_nodes, 3), 1e-4),
        records(res, str(p))))
    family = ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "out", cdb=[cdb1, cdb2])
    assert sorted(family["pressures"]) == ["PRESSURE_1", "PRESSURE_2"]
    assert sorted(family["pressures"].values()) == sorted([len(end), len(side)])
    end_name = next(s for s, n in family["pressures"].items() if n == len(end))
    assert family["ranges"] == {f"pressure.{end_name}": [1e6, 2e6]} and family["forces"] == {}
    m = read_inp(tmp_path / "out" / "mesh.inp")[0]
    case = read_training_case(tmp_path / "out" / "train" / "r1.h5", m)
    amp = case.loading.pressures[end_name]
    assert amp(0.5) == pytest.approx(1e6) and amp(1.0) == pytest.approx(2e6)  # ramped from 0 at t = 0
    total = sum(_resultant(m, m.surface_sets[s], a(1.0)) for s, a in case.loading.pressures.items())
    assert np.allclose(total, [3e5 * 5.0, 0.0, -2e6], rtol=0, atol=1e-9 * 2e6)
    from structrom.api.cli import main
    args = ["import", "ansys", str(tmp_path / "r1.rst"), str(tmp_path / "r2.rst"), "--out", str(tmp_path / "o2")]
    assert main(args + ["--cdb", str(cdb1), "--cdb", str(cdb2)]) == 0
    assert f"pressures {{'PRESSURE_1': " in capsys.readouterr().out
    assert main(args + ["--cdb", str(cdb1), "--cdb", str(cdb2), "--cdb", str(cdb2)]) == 2
    assert "structrom: error: --cdb: 3 archives for 2 result files" in capsys.readouterr().err
    with pytest.raises(AnsysError, match=r"r1.rst: no nodal forces \(F\), no pressures and uniform temperatures"):
        ansys_import.import_ansys([tmp_path / "r1.rst"], tmp_path / "o4", cdb=[EXAMPLES / "HexBeam.cdb"])
    res._resultheader["ls_table"] = np.array([[1, 1, 1], [2, 1, 2]])
    with pytest.raises(AnsysError, match=r"r1.rst: 2 load steps: the pressures of .*r1.cdb are one load state"):
        ansys_import.import_ansys([tmp_path / "r1.rst", tmp_path / "r2.rst"], tmp_path / "o3", cdb=[cdb1, cdb2])
