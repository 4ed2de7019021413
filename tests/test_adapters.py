"""Nonintrusive adapters: CalculiX matrices and snapshots, the HF solver protocol, meshio series,
Ansys files, and the end-to-end CalculiX -> offline -> online check (small version of
``examples/calculix_rom.py``)."""
from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import h5py
import meshio
import numpy as np
import pytest
import scipy.sparse.linalg as spla

from structrom.rom.adapters.calculix import (CalculixError, expand_matrix, matrix_dofs_to_ours, read_matrix_storage,
                                   run_ccx, write_matrix_deck, write_mesh_inp)
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import MeshError
from structrom.rom.fem.structured import box
from structrom.rom.hifi.config import HifiConfig
from structrom.rom.loading import HotSpotTemperature
from structrom.rom.materials import LinearElastic

ROOT = Path(__file__).resolve().parents[1]
needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")

E_TABLE = {"temperatures": [20.0, 200.0, 400.0, 600.0], "values": [200000.0, 190000.0, 160000.0, 110000.0]}


def hot_spot(intensity: float) -> HotSpotTemperature:
    return HotSpotTemperature(center=(1.0, 0.5, 1.0), radius=0.6, intensity=intensity, reference=20.0)


def export(tmp_path: Path, name: str, mesh, law, temperature=None):
    d = tmp_path / name
    d.mkdir()
    write_matrix_deck(d / "job.inp", mesh, law, fixed={"xmin": (0, 1, 2)}, temperature=temperature)
    run_ccx(d, "job", require=("sti", "mas", "dof"), timeout=60)
    return read_matrix_storage(d, "job")


# -- assembled matrices ------------------------------------------------------------------------------------
@needs_ccx
@pytest.mark.calculix
def test_matrix_storage_matches_our_assembly(tmp_path):
    """K(T) and M from ccx, mapped onto 3 node + c, equal ours (C3D10 interpolates T as we do)."""
    mesh = box((4.0, 1.0, 1.0), (4, 2, 2), "C3D10")
    law = LinearElastic(E_TABLE, 0.3, density=7.8e-9)
    temp = hot_spot(450.0)(0.0, mesh.points)
    K, M, dofs = export(tmp_path, "a", mesh, law, temp)
    assert (abs(K - K.T)).max() == 0.0 and K.shape == (len(dofs), len(dofs))
    ours = matrix_dofs_to_ours(dofs)
    fixed = (3 * mesh.node_set("xmin")[:, None] + np.arange(3)).ravel()
    assert set(ours) == set(range(mesh.n_dofs)) - set(fixed)  # *BOUNDARY dofs removed, nothing else
    disc = Discretization(mesh)
    K_ours = disc.stiffness(law.elastic_tangent(disc.interpolate(temp)))
    M_ours = disc.mass_matrix(7.8e-9)
    for A, B in ((K, K_ours), (M, M_ours)):
        full = expand_matrix(A, ours, mesh.n_dofs)
        B = B.tocsr()[ours][:, ours]
        err = spla.norm(A - B) / spla.norm(B)
        print(f"ccx vs ours: {err:.1e}")
        assert err <= 1e-10  # ccx writes 14 significant digits
        assert full.shape == (mesh.n_dofs, mesh.n_dofs) and abs(full[fixed]).sum() == 0.0


def test_matrix_storage_errors(tmp_path):
    (tmp_path / "j.dof").write_text("1.1\n1.2\n2.x\n")
    with pytest.raises(CalculixError, match=r"j\.dof:3: expected 'node.direction'"):
        read_matrix_storage(tmp_path, "j")
    (tmp_path / "j.dof").write_text("1.1\n1.2\n")
    with pytest.raises(CalculixError, match=r"j\.sti.*SOLVER=MATRIXSTORAGE"):
        read_matrix_storage(tmp_path, "j")
    (tmp_path / "j.sti").write_text("1 1  2.0\n1 2  1.0\n2 2\n")  # truncated last line
    with pytest.raises(CalculixError, match=r"j\.sti:3: expected 'row col value'"):
        read_matrix_storage(tmp_path, "j")
    (tmp_path / "j.sti").write_text("1 1  2.0\n2 1  1.0\n2 2  3.0\n")
    with pytest.raises(CalculixError, match=r"j\.sti:2: .*below the diagonal"):
        read_matrix_storage(tmp_path, "j")
    (tmp_path / "j.sti").write_text("1 1  2.0\n1 3  1.0\n")
    with pytest.raises(CalculixError, match=r"j\.sti:2: index \(1, 3\) outside the 2 dofs"):
        read_matrix_storage(tmp_path, "j")
    # damaged copies: a line twice (summed before), a file cut at a line end (the last column's entries lost), an
    # index that is not an integer, a value that is not finite, a gzip-compressed file, a dof twice or of node 0
    for text, message in (("1 1  2.0\n1 2  1.0\n1 2  1.0\n2 2  3.0\n", r"j\.sti:3: entry \(1, 2\) is listed a second"),
                          ("1 1  2.0\n1 2  1.0\n", r"j\.sti: no positive diagonal entry for row 2 \(1 rows of 2\)"),
                          ("", r"j\.sti: no positive diagonal entry for row 1 \(2 rows of 2\)"),
                          ("1 1  2.0\n1 1.5  1.0\n2 2  3.0\n", r"j\.sti:2: expected integer 'row col' and a finite"),
                          ("1 1  2.0\n\n1 2  nan\n2 2  3.0\n", r"j\.sti:3: expected integer 'row col' and a finite")):
        (tmp_path / "j.sti").write_text(text)
        with pytest.raises(CalculixError, match=message):
            read_matrix_storage(tmp_path, "j")
    import gzip

    (tmp_path / "j.sti").write_bytes(gzip.compress(b"1 1  2.0\n1 2  1.0\n2 2  3.0\n"))
    with pytest.raises(CalculixError, match=r"j\.sti: the file is gzip-compressed"):
        read_matrix_storage(tmp_path, "j")
    (tmp_path / "j.sti").write_text("1 1  2.0\n1 2  1.0\n2 2  3.0\n")
    for dof, message in (("1.1\n1.1\n", r"j\.dof:2: dof '1\.1' is listed a second time"),
                         ("0.1\n1.2\n", r"j\.dof:1: expected 'node\.direction' \(node id >= 1")):
        (tmp_path / "j.dof").write_text(dof)
        with pytest.raises(CalculixError, match=message):
            read_matrix_storage(tmp_path, "j")
    (tmp_path / "j.dof").write_text("1.1\n1.2\n")
    K, M, dofs = read_matrix_storage(tmp_path, "j")
    assert M is None and np.array_equal(K.toarray(), [[2.0, 1.0], [1.0, 3.0]])
    assert np.array_equal(dofs, [[1, 1], [1, 2]]) and np.array_equal(matrix_dofs_to_ours(dofs), [0, 1])


@needs_ccx
@pytest.mark.calculix
def test_exported_matrices_feed_the_eim_separation(tmp_path):
    """E(T) table x hot-spot temperature: K depends non-affinely on the intensity. Matrices exported by ccx
    for 24 intensities are separated; a held-out exported matrix is reproduced (error vs terms printed)."""
    from structrom.eim.separation import AssembledEntries, separate_matrices

    mesh = box((2.0, 1.0, 1.0), (4, 2, 2), "C3D10")
    law = LinearElastic(E_TABLE, 0.3, density=7.8e-9)
    train = np.linspace(0.0, 600.0, 24)
    mats = [export(tmp_path, f"t{i}", mesh, law, hot_spot(mu)(0.0, mesh.points))[0] for i, mu in enumerate(train)]
    held_out = 333.0
    K_test = export(tmp_path, "test", mesh, law, hot_spot(held_out)(0.0, mesh.points))[0]
    sep = separate_matrices(mats, train)
    ev = AssembledEntries(lambda mu: K_test)  # the held-out export answers the d entry queries
    errors = []
    for d in range(1, sep.n_terms + 1):
        approx = sep.truncated(d).approximate(held_out, ev)
        errors.append(spla.norm(approx - K_test) / spla.norm(K_test))
    print("\nheld-out ccx matrix, relative Frobenius error vs terms: "
          + ", ".join(f"{d}: {e:.1e}" for d, e in enumerate(errors, start=1)))
    assert errors[0] > 1e-2  # not affine in the intensity
    assert errors[-1] <= 2e-4 and errors[-1] <= errors[0] / 100


# -- HF solver protocol ------------------------------------------------------------------------------------
LAW = {"type": "j2_plasticity",
       "elastic": {"young": {"temperatures": [20.0, 500.0], "values": [200000.0, 150000.0]}, "poisson": 0.3,
                   "expansion": 1.2e-5, "reference_temperature": 20.0},
       "hardening": {"type": "linear", "yield_stress": {"temperatures": [20.0, 500.0], "values": [300.0, 150.0]},
                     "modulus": 2000.0}}


def base_config(directory: Path, divisions=(10, 2, 2), element="C3D20R", law=LAW) -> HifiConfig:
    write_mesh_inp(directory / "bar.inp", box((10.0, 2.0, 2.0), divisions, element))
    return HifiConfig.model_validate({
        "mesh": {"file": "bar.inp"}, "material": [{"law": law}], "boundary": [{"node_set": "xmin"}],
        "loading": {"times": [0.0, 1.0]}, "base_dir": str(directory),
        "solver": {"newton_rtol": 1e-10, "linear": {"ksp_type": "preonly", "pc_type": "lu",
                                                   "petsc_options": {"pc_factor_mat_solver_type": "mumps"}}}})


def small_loading(intensity=400.0, pressure=7.0, times=(0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)) -> dict:
    return {"times": list(times),
            "temperature": {"type": "hot_spot", "center": [2.0, 1.0, 2.0], "radius": 2.0, "intensity": intensity,
                            "reference": 20.0, "amplitude": [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]},
            "pressure": {"zmax": [[0.0, 0.0], [1.0, pressure], [2.0, 0.0]]}}


@needs_ccx
@pytest.mark.calculix
def test_protocol_ccx_and_in_house_write_the_same_snapshots(tmp_path):
    from structrom.rom.hifi_protocol import CalculixSolver, HifiSolverProtocol, InHouseSolver
    from structrom.rom.offline.snapshots import read_training_case

    base = base_config(tmp_path)
    solvers = [CalculixSolver(base), InHouseSolver(base)]
    assert all(isinstance(s, HifiSolverProtocol) for s in solvers)
    runs = [s.solve(small_loading(), tmp_path / f"{s.name}.h5") for s in solvers]
    cases = [read_training_case(r.path, solvers[0].mesh) for r in runs]
    assert np.array_equal(cases[0].times, [0.25, 0.5, 0.75, 1.0, 1.5, 2.0])
    assert cases[0].materials == cases[1].materials and cases[0].dirichlet == cases[1].dirichlet
    with h5py.File(runs[0].path) as a, h5py.File(runs[1].path) as b:
        for name in ("displacement", "stress", "strain", "cumulated_plastic_strain", "temperature"):
            x, y = a[f"fields/{name}"][()], b[f"fields/{name}"][()]
            err = np.linalg.norm(x - y) / np.linalg.norm(y)
            print(f"{name}: ccx vs in-house {err:.1e}")
            assert err <= 1e-6  # .dat has 7 significant digits
        assert b["fields/cumulated_plastic_strain"][()].max() > 1e-3
        assert a["increments/newton_iterations"][()].min() >= 1
        for key in ("integration_points/element", "integration_points/weights"):
            assert np.array_equal(a[key][()], b[key][()])


@needs_ccx
@pytest.mark.calculix
def test_ccx_failures_and_bad_results_are_reported(tmp_path):
    from structrom.rom.hifi_protocol import CalculixSolver, write_calculix_snapshot

    perfectly_plastic = dict(LAW, hardening={"type": "linear", "yield_stress": 300.0, "modulus": 0.0})
    base = base_config(tmp_path, divisions=(4, 1, 1), element="C3D20R", law=perfectly_plastic)
    solver = CalculixSolver(base, workdir=tmp_path / "jobs")  # beyond the limit load (about 6 MPa):
    with pytest.raises(CalculixError, match=r"ccx failed .*\n\*ERROR.*diverge.*\n\(job directory kept"):
        solver.solve(small_loading(pressure=500.0, times=(0.0, 1.0)), tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.h5.partial").exists()
    solver.keep = True
    run = solver.solve(small_loading(times=(0.0, 0.5, 1.0)), tmp_path / "ok.h5")
    job = Path(run.info["jobdir"])
    dat = (job / "job.dat").read_text()
    cut = dat.index(" displacements", 10)  # drop the second increment: a truncated file
    (job / "cut.dat").write_text(dat[:cut])
    from structrom.rom.hifi_protocol import case_config

    cfg = case_config(base, small_loading(times=(0.0, 0.5, 1.0)), tmp_path / "t.h5")
    with pytest.raises(CalculixError, match=r"cut\.dat: no results for increment 2 \(ccx total time 1\)"):
        write_calculix_snapshot(tmp_path / "t.h5", solver.mesh, cfg, job / "cut.dat", np.array([0.5, 1.0]))
    other = box((10.0, 2.0, 2.0), (5, 2, 2), "C3D20R")
    with pytest.raises(CalculixError, match=r"job\.dat: displacement block .* has \d+ nodes .*node count mismatch"):
        write_calculix_snapshot(tmp_path / "t.h5", other, cfg, job / "job.dat", np.array([0.5, 1.0]))
    assert not (tmp_path / "t.h5").exists()


# -- meshio series ----------------------------------------------------------------------------------------
def test_meshio_series_xdmf_vtu_and_abaqus(tmp_path, monkeypatch):
    from structrom.rom.adapters.meshio_series import read_meshio_series

    monkeypatch.chdir(tmp_path)  # meshio's TimeSeriesWriter puts the .h5 in the working directory

    mesh = box((2.0, 1.0, 1.0), (2, 1, 1), "C3D8")
    # An extra unused point first (dropped) shifts every meshio index by one.
    points = np.vstack([[9.0, 9.0, 9.0], mesh.points])
    cells = [("hexahedron", mesh.blocks[0].connectivity + 1), ("quad", mesh.blocks[0].connectivity[:1, :4] + 1)]
    u = np.random.default_rng(0).normal(size=(3, len(points), 3))
    temp = np.random.default_rng(1).normal(size=(3, len(points)))
    with meshio.xdmf.TimeSeriesWriter(tmp_path / "s.xdmf") as w:
        w.write_points_cells(points, cells)
        for k, t in enumerate([0.5, 1.0, 2.0]):
            w.write_data(t, point_data={"u": u[k], "T": temp[k]})
    m, times, fields = read_meshio_series(tmp_path / "s.xdmf")
    assert np.array_equal(m.points, mesh.points) and np.array_equal(m.blocks[0].connectivity,
                                                                    mesh.blocks[0].connectivity)
    assert np.array_equal(times, [0.5, 1.0, 2.0])
    assert fields["u"].shape == (3, mesh.n_nodes, 3) and fields["T"].shape == (3, mesh.n_nodes, 1)
    assert np.array_equal(fields["u"], u[:, 1:]) and np.array_equal(fields["T"][..., 0], temp[:, 1:])
    (tmp_path / "s.h5").rename(tmp_path / "gone.h5")
    with pytest.raises(MeshError, match=r"s\.xdmf: cannot read the XDMF time series"):
        read_meshio_series(tmp_path / "s.xdmf")

    for k in range(3):
        meshio.write(tmp_path / f"step_{k * 5}.vtu", meshio.Mesh(points, cells, point_data={"u": u[k]}))
    m2, t2, f2 = read_meshio_series(str(tmp_path / "step_*.vtu"))  # natural order: 0, 5, 10
    assert np.array_equal(t2, [0.0, 1.0, 2.0]) and np.array_equal(f2["u"], u[:, 1:])
    meshio.write(tmp_path / "moved.vtu", meshio.Mesh(points[:-1], [("hexahedron", cells[0][1][:1])],
                                                     point_data={"u": u[0, :-1]}))
    with pytest.raises(MeshError, match=r"moved\.vtu: its points differ"):
        read_meshio_series([tmp_path / "step_0.vtu", tmp_path / "moved.vtu"])

    meshio.write(tmp_path / "a.inp", meshio.Mesh(points, cells[:1]), file_format="abaqus")
    m3, t3, f3 = read_meshio_series(tmp_path / "a.inp")
    assert m3.n_nodes == mesh.n_nodes and np.array_equal(t3, [0.0]) and f3 == {}

    bad = tmp_path / "bad.vtu"
    meshio.write(bad, meshio.Mesh(points, [("pyramid", np.array([[1, 2, 3, 4, 5]]))]))
    with pytest.raises(MeshError, match=r"bad\.vtu: volume cells of type 'pyramid' are not supported"):
        read_meshio_series(bad)
    with pytest.raises(MeshError, match="matches no file"):
        read_meshio_series(str(tmp_path / "none_*.vtu"))


def test_meshio_series_refuses_damaged_and_inconsistent_series(tmp_path, monkeypatch):
    """Each way a series can be damaged or inconsistent ends in a MeshError naming the file and what is wrong,
    instead of an IndexError, a stack error, a wrapped-around node number or data read against the wrong mesh."""
    from structrom.rom.adapters.meshio_series import read_meshio_series

    monkeypatch.chdir(tmp_path)
    mesh = box((2.0, 1.0, 1.0), (2, 1, 1), "C3D8")
    P, C = mesh.points, mesh.blocks[0].connectivity
    u = np.ones((len(P), 3))

    def vtu(name, points=P, cells=C, **point_data):
        meshio.write(tmp_path / name, meshio.Mesh(points, [("hexahedron", cells)], point_data=point_data or {"u": u}))
        return tmp_path / name

    for node in (len(P), -1):  # a node number past the last point, or one that numpy would wrap around
        c = C.copy()
        c[0, 0] = node
        with pytest.raises(MeshError, match=rf"hexahedron cells: cell 0 references node {node}, outside"):
            read_meshio_series(vtu("bad_nodes.vtu", cells=c))
    with pytest.raises(MeshError, match=r"flat\.vtu: C3D8 element 0 .*has no volume"):  # (VTU pads them with z = 0)
        read_meshio_series(vtu("flat.vtu", points=P[:, :2]))
    c = C.copy()
    c[0, 0] = -2  # gmsh node tag -1: meshio's tag - 1 wraps around to a real node, a repeated one here
    meshio.write(tmp_path / "tag.msh", meshio.Mesh(P, [("hexahedron", c)]), file_format="gmsh22", binary=False)
    with pytest.raises(MeshError, match=r"tag\.msh: C3D8 element 0 .*uses a node twice"):
        read_meshio_series(tmp_path / "tag.msh")
    meshio.write(tmp_path / "flat.xdmf", meshio.Mesh(P[:, :2], [("hexahedron", C)]))
    with pytest.raises(MeshError, match=r"2D \(x, y\) mesh has no volume"):
        read_meshio_series(tmp_path / "flat.xdmf")
    nan = u.copy()
    nan[3, 1] = np.nan
    with pytest.raises(MeshError, match=r"nan\.vtu: point data 'u' is not finite at node 3"):
        read_meshio_series(vtu("nan.vtu", u=nan))
    nan[3, 1] = -1e300  # finite, but its square overflows: no run writes it
    with pytest.raises(MeshError, match=r"huge\.vtu: point data 'u' is not finite at node 3 .*-1e\+300"):
        read_meshio_series(vtu("huge.vtu", u=nan))
    a, b = vtu("a.vtu"), vtu("b.vtu", u=np.ones((len(P), 2)))
    with pytest.raises(MeshError, match=r"'u' has 2 components at .*b\.vtu, 3 at"):
        read_meshio_series([a, b])
    with pytest.raises(MeshError, match=r"b\.vtu: its volume cells differ"):
        read_meshio_series([a, vtu("b.vtu", cells=C[:1])])
    with pytest.raises(MeshError, match="strictly increasing"):
        read_meshio_series([a, a], times=[1.0, 1.0])
    with pytest.raises(MeshError, match="1 times of shape"):
        read_meshio_series([a, a], times=[1.0])
    # two arrays of one name in a VTU section: meshio would keep one silently (raw appended binary and ASCII)
    for binary in (True, False):
        meshio.write(tmp_path / "dup.vtu", meshio.Mesh(P, [("hexahedron", C)], point_data={"u": u, "T": u[:, 0]}),
                     binary=binary)
        data = (tmp_path / "dup.vtu").read_bytes()
        assert data.count(b'Name="T"') == 1
        (tmp_path / "dup.vtu").write_bytes(data.replace(b'Name="T"', b'Name="u"', 1))
        with pytest.raises(MeshError, match=r"dup\.vtu: piece 0: <PointData> holds two arrays named 'u'"):
            read_meshio_series(tmp_path / "dup.vtu")
    # the same in a legacy VTK file, versions 4.2 and 5.1, binary and ASCII: a FIELD block's arrays (what meshio
    # writes) and SCALARS sections; point and cell data of one name stay allowed
    mesh = meshio.Mesh(P, [("hexahedron", C)], point_data={"u": u, "Tx": u[:, 0]},
                       cell_data={"u": [np.arange(len(C), dtype=float)]})
    for version in ("4.2", "5.1"):
        for binary in (True, False):
            meshio.vtk.write(tmp_path / "ok.vtk", mesh, fmt_version=version, binary=binary)
            ok = read_meshio_series(tmp_path / "ok.vtk")[2]
            assert sorted(ok) == ["Tx", "u"] and np.array_equal(ok["Tx"][0, :, 0], u[:, 0])
            data = (tmp_path / "ok.vtk").read_bytes()
            assert data.count(b"Tx ") == 1
            (tmp_path / "dup.vtk").write_bytes(data.replace(b"Tx ", b"u  "))
            with pytest.raises(MeshError, match=r"dup\.vtk: its POINT_DATA section 'FIELD .* holds fewer arrays"):
                read_meshio_series(tmp_path / "dup.vtk")
    scalars = "SCALARS T double 1\nLOOKUP_TABLE default\n" + " ".join(["1"] * len(P)) + "\n"
    legacy = ("# vtk DataFile Version 4.2\nt\nASCII\nDATASET UNSTRUCTURED_GRID\n"
              f"POINTS {len(P)} double\n" + "\n".join(" ".join(map(repr, p)) for p in P.tolist())
              + f"\nCELLS {len(C)} {9 * len(C)}\n" + "\n".join("8 " + " ".join(map(str, c)) for c in C.tolist())
              + f"\nCELL_TYPES {len(C)}\n" + "12\n" * len(C) + f"POINT_DATA {len(P)}\n")
    (tmp_path / "s.vtk").write_text(legacy + scalars)
    assert read_meshio_series(tmp_path / "s.vtk")[2]["T"].shape == (1, len(P), 1)
    (tmp_path / "s2.vtk").write_text(legacy + scalars + scalars)
    with pytest.raises(MeshError, match=r"s2\.vtk: its POINT_DATA section 'SCALARS T double 1' holds two arrays named "
                                        r"'T'"):
        read_meshio_series([tmp_path / "s.vtk", tmp_path / "s2.vtk"])
    # the same name in the point and the cell data is no duplicate
    meshio.write(tmp_path / "c.vtu", meshio.Mesh(P, [("hexahedron", C)], point_data={"u": u},
                                                 cell_data={"u": [np.arange(len(C), dtype=float)]}), binary=False)
    assert read_meshio_series(tmp_path / "c.vtu")[2]["u"].shape == (1, len(P), 3)

    # XDMF: a step whose own geometry differs from the series' mesh, and a series without steps
    with meshio.xdmf.TimeSeriesWriter(tmp_path / "s.xdmf") as w:
        w.write_points_cells(P, [("hexahedron", C)])
        for t in (0.0, 0.5):
            w.write_data(t, point_data={"u": u})
    text = (tmp_path / "s.xdmf").read_text()
    last = [mt.start() for mt in re.finditer(r"<\w+:include\b", text)][-1]  # (the last step's reference to the mesh)
    end = text.index("/>", last) + 2
    moved = " ".join(f"{x:.6g}" for x in (3 * P).ravel())
    (tmp_path / "m.xdmf").write_text(text[:last] + f'<Geometry GeometryType="XYZ"><DataItem Dimensions="{len(P)} 3" '
                                     f'Format="XML">{moved}</DataItem></Geometry>' + text[end:])
    assert np.array_equal(read_meshio_series(tmp_path / "s.xdmf")[1], [0.0, 0.5])
    with pytest.raises(MeshError, match=r"m\.xdmf: time step 1 has a Geometry of its own"):
        read_meshio_series(tmp_path / "m.xdmf")
    with meshio.xdmf.TimeSeriesWriter(tmp_path / "e.xdmf") as w:
        w.write_points_cells(P, [("hexahedron", C)])
    with pytest.raises(MeshError, match="no time step"):
        read_meshio_series(tmp_path / "e.xdmf")
    # a damaged .h5 (a duplicated kilobyte) crashes HDF5 1.10 natively while meshio reads it: the series is read in
    # a process of its own, so this one gets a MeshError instead of dying
    with meshio.xdmf.TimeSeriesWriter(tmp_path / "one.xdmf") as w:
        w.write_points_cells(P, [("hexahedron", C)])
        w.write_data(0.0, point_data={"u": u, "T": np.zeros(len(P))})
    data = (tmp_path / "one.h5").read_bytes()
    (tmp_path / "one.h5").write_bytes(data[:4201] + data[3201:4201] + data[4201:])
    with pytest.raises(MeshError, match=r"one\.xdmf: (reading its HDF5 data crashed|cannot read|time step 0)"):
        read_meshio_series(tmp_path / "one.xdmf")
    (tmp_path / "d.xdmf").mkdir()
    with pytest.raises(MeshError, match="not a regular file"):
        read_meshio_series(tmp_path / "d.xdmf")


# -- Ansys ----------------------------------------------------------------------------------------------
def test_meshio_files_damaged_in_transfer_are_refused(tmp_path):
    """A VTU array whose values were damaged (meshio skips it with a warning), a Gmsh file cut short (meshio reads
    it without the sections after the cut), a gzip-compressed and an empty file: each a MeshError naming the file."""
    import gzip

    from structrom.rom.adapters.meshio_series import read_meshio_series

    mesh = box((2.0, 1.0, 1.0), (2, 1, 1), "C3D8")
    P, C = mesh.points, mesh.blocks[0].connectivity
    m = meshio.Mesh(P, [("hexahedron", C)], point_data={"u": P * 1e-3, "T": P[:, 0] * 100.0})
    meshio.write(tmp_path / "a.vtu", m, binary=False)
    text = (tmp_path / "a.vtu").read_text()
    start = text.index('Name="u"')
    value = re.compile(r"-?\d\.\d+(e[-+]\d+)?").search(text, text.index(">", start) + 1)
    (tmp_path / "stars.vtu").write_text(text[:value.start()] + "*" * 12 + text[value.end():])
    with pytest.raises(MeshError, match=r"stars\.vtu: its <PointData> array 'u' could not be read"):
        read_meshio_series(tmp_path / "stars.vtu")
    for fmt, binary in (("gmsh22", False), ("gmsh22", True), ("gmsh", False), ("gmsh", True)):
        meshio.write(tmp_path / "a.msh", m, file_format=fmt, binary=binary)
        raw = (tmp_path / "a.msh").read_bytes()
        _, _, fields = read_meshio_series(tmp_path / "a.msh")
        np.testing.assert_allclose(fields["T"][0, :, 0], P[:, 0] * 100.0, rtol=0, atol=0)
        for cut in (len(raw) - 8, raw.rindex(b"$NodeData") + 40, len(raw) // 2):  # in the end tag, the data
            (tmp_path / "cut.msh").write_bytes(raw[:cut])
            with pytest.raises(MeshError, match=r"cut\.msh: the file ends with .*not with the '\$End\.\.\.' line "
                                                r"of a section it opened: it is truncated"):
                read_meshio_series(tmp_path / "cut.msh")
    # an ASCII $NodeData listing its nodes in another order than $Nodes (legal Gmsh): meshio drops the node numbers
    # and pairs values by position, which put T(x) = 100 x on the wrong nodes
    for fmt in ("gmsh22", "gmsh"):
        meshio.write(tmp_path / "a.msh", m, file_format=fmt, binary=False)
        text = (tmp_path / "a.msh").read_text()
        start = text.index('"T"')
        head, rows = text[start:text.index("$EndNodeData", start)].splitlines(), None
        head, rows = head[:7], head[7:]
        assert head[6] == str(len(P)) and rows[0].split()[0] == "1"
        (tmp_path / "perm.msh").write_text(text[:start] + "\n".join(head + rows[::-1]) + "\n"
                                           + text[text.index("$EndNodeData", start):])
        with pytest.raises(MeshError, match=rf"perm\.msh:\d+: \$NodeData 'T' lists node {len(P)} where \$Nodes has "
                                            r"node 1: meshio pairs the values with the nodes by position"):
            read_meshio_series(tmp_path / "perm.msh")
    # two $NodeData sections of one name (a Gmsh view's time steps, or a section copied twice): meshio keeps the last
    for fmt, binary in (("gmsh22", True), ("gmsh", False)):
        meshio.write(tmp_path / "a.msh", m, file_format=fmt, binary=binary)
        raw = (tmp_path / "a.msh").read_bytes()
        i = raw.rindex(b"$NodeData")
        j = raw.index(b"$EndNodeData\n", i) + len(b"$EndNodeData\n")
        (tmp_path / "steps.msh").write_bytes(raw[:j] + raw[i:j] + raw[j:])
        with pytest.raises(MeshError, match=r"steps\.msh: 2 \$NodeData sections are named 'T' .*meshio keeps only the "
                                            "last one"):
            read_meshio_series(tmp_path / "steps.msh")
    (tmp_path / "z.vtu").write_bytes(gzip.compress((tmp_path / "a.vtu").read_bytes()))
    with pytest.raises(MeshError, match=r"z\.vtu: the file is gzip-compressed; decompress it"):
        read_meshio_series(tmp_path / "z.vtu")
    (tmp_path / "empty.vtu").write_bytes(b"")
    with pytest.raises(MeshError, match=r"empty\.vtu: the file is empty"):
        read_meshio_series(tmp_path / "empty.vtu")


def test_ansys_reader_missing_package_is_a_clear_import_error(monkeypatch):
    from structrom.rom.adapters import ansys

    monkeypatch.setitem(sys.modules, "ansys.mapdl", None)
    with pytest.raises(ImportError, match="ansys-mapdl-reader"):
        ansys.read_ansys_result("file.rst")


def test_ansys_example_files(tmp_path):
    pytest.importorskip("ansys.mapdl.reader")
    from ansys.mapdl import reader
    from ansys.mapdl.reader import examples

    from structrom.rom.adapters.ansys import AnsysError, read_ansys_archive, read_ansys_result

    res = read_ansys_result(examples.rstfile)  # SOLID186 beam, 6 result sets
    raw = reader.read_binary(examples.rstfile)
    assert res.mesh.n_nodes == raw.mesh.n_node == 321 and [b.element for b in res.mesh.blocks] == ["C3D20"]
    assert res.mesh.n_elements == raw.mesh.n_elem and res.displacement.shape == (6, 321, 3)
    assert np.allclose(res.times, raw.time_values)
    assert Discretization(res.mesh).volume == pytest.approx(5.0, rel=1e-12)  # 1 x 1 x 5 beam: VTK order is ours
    rng = np.random.default_rng(0)
    for k in range(raw.nsets):
        nnum, disp = raw.nodal_displacement(k)
        for node in rng.choice(nnum, 10, replace=False):
            ours = int(np.flatnonzero(res.node_ids == node)[0])
            assert np.array_equal(res.displacement[k, ours], disp[np.flatnonzero(nnum == node)[0], :3])
            coords = raw.mesh.nodes[np.flatnonzero(raw.mesh.nnum == node)[0]]
            assert np.allclose(res.mesh.points[ours], coords)
    assert np.abs(res.displacement[-1]).max() > 0

    hexes, nodes, elements = read_ansys_archive(examples.hexarchivefile)
    arch = reader.Archive(examples.hexarchivefile)
    assert hexes.n_nodes == arch.n_node and len(elements) == arch.n_elem
    assert set(hexes.node_sets) == {"NCOMP2", "NODE_SELECTION"} and set(hexes.element_sets) == {"ECOMP1", "ECOMP2"}
    assert np.array_equal(np.sort(nodes[hexes.node_sets["NCOMP2"]]), np.sort(arch.node_components["NCOMP2"]))
    tets, _, _ = read_ansys_archive(examples.tetarchivefile)
    assert [b.element for b in tets.blocks] == ["C3D4"] and Discretization(tets).volume > 0
    # 4 SOLID185 prisms (bricks with K = L, O = P), which the reader hands as VTK wedges of negative volume: C3D6 in
    # CalculiX's orientation, the same solid (volume = the sum of VTK's cell sizes' magnitudes)
    sector, _, sector_elements = read_ansys_archive(examples.sector_archive_file)
    assert [(b.element, len(b)) for b in sector.blocks] == [("C3D8", 101), ("C3D6", 4)]
    grid = reader.Archive(examples.sector_archive_file).grid
    wedge_cells = np.flatnonzero(np.asarray(grid.celltypes) == 13)
    assert np.array_equal(sector_elements[101:], np.asarray(grid.cell_data["ansys_elem_num"])[wedge_cells])
    sizes = grid.compute_cell_sizes(length=False, area=False, volume=True)["Volume"]
    assert np.all(sizes[wedge_cells] < 0)
    assert Discretization(sector).volume == pytest.approx(np.abs(sizes).sum(), rel=1e-12)
    # an archive cut before its node block: the reader gives no grid
    lines = Path(examples.hexarchivefile).read_text().splitlines()
    cut = tmp_path / "cut.cdb"
    cut.write_text("\n".join(lines[:next(i for i, ln in enumerate(lines) if ln.upper().startswith("NBLOCK"))]) + "\n")
    with pytest.raises(AnsysError, match=r"cut\.cdb: no mesh read .*cut short, damaged or not an Ansys"):
        read_ansys_archive(cut)


def test_native_readers_in_a_process_of_their_own():
    """run_isolated: the value and the exceptions of the function come back as they are; a process ended by a
    signal (here SIGABRT, as ansys-mapdl-reader's std::bad_alloc on a damaged .rst) or past its time limit becomes
    the caller's error."""
    from structrom.rom.adapters.ansys import AnsysError
    from structrom.rom.adapters.reader_process import run_isolated

    def crashed():
        return AnsysError("the reader crashed")

    assert run_isolated(sum, [1, 2, 3], crashed=crashed) == 6
    with pytest.raises(ValueError, match="invalid literal"):
        run_isolated(int, "x", crashed=crashed)
    with pytest.raises(AnsysError, match="the reader crashed"):
        run_isolated(os.abort, crashed=crashed)
    # without crashed(): how it ended; past its time limit the process is killed and waited for
    import time

    from structrom.rom.adapters.reader_process import ReaderStopped

    with pytest.raises(ReaderStopped, match="ended by signal SIGABRT"):
        run_isolated(os.abort, crashed=None)
    with pytest.raises(ReaderStopped, match=r"did not finish within 1 s and was stopped") as info:
        run_isolated(time.sleep, 60, crashed=None, timeout=1)
    assert info.value.timed_out


def test_isolated_reader_from_a_script_without_main_guard(tmp_path):
    """A user's script that reads an XDMF series (read in a process of its own) at its top level, without an
    ``if __name__ == "__main__":`` guard: it runs once and gets the series (multiprocessing's spawn ran such a script
    again in the worker and failed there, reported as an HDF5 crash of a valid file)."""
    import subprocess

    (tmp_path / "user.py").write_text(
        "import meshio, numpy as np\n"
        "from structrom.rom.adapters.meshio_series import read_meshio_series\n"
        "from structrom.rom.fem.structured import box\n"
        "print('top level')\n"
        "m = box((1.0, 1.0, 1.0), (1, 1, 1), 'C3D8')\n"
        "with meshio.xdmf.TimeSeriesWriter('s.xdmf') as w:\n"
        "    w.write_points_cells(m.points, [('hexahedron', m.blocks[0].connectivity)])\n"
        "    for t in (0.5, 1.0):\n"
        "        w.write_data(t, point_data={'u': m.points * t})\n"
        "mesh, times, fields = read_meshio_series('s.xdmf')\n"
        "print('times', times.tolist(), fields['u'].shape)\n")
    proc = subprocess.run([sys.executable, "user.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("top level") == 1 and "times [0.5, 1.0] (2, 8, 3)" in proc.stdout, proc.stdout


def test_damaged_ansys_results_end_in_an_error_line(tmp_path, capsys):
    """`structrom import ansys` on copies of the reader's example .rst with a few bytes cut out (with this reader,
    seeds 1, 7, 12 and 29 make it abort or crash in native code): exit 2 and a 'structrom: error' line naming the
    file, never a traceback or a dead process; the intact (modal) file is refused by the analysis type."""
    pytest.importorskip("ansys.mapdl.reader")
    import random

    from ansys.mapdl.reader import examples

    from structrom.api.cli import main

    data = Path(examples.rstfile).read_bytes()
    assert main(["import", "ansys", examples.rstfile, "--out", str(tmp_path / "o")]) == 2
    assert "a modal analysis (ANTYPE); only static results" in capsys.readouterr().err  # (raised in the process)
    # an option of the other format is refused by name, never dropped
    for fmt, extra, named in (("ansys", ["--runs", "runs", "--parameters", "p.csv"], "--runs, --parameters"),
                              ("calculix", ["--runs", "runs", "--cdb", "r.cdb"], "--cdb")):
        assert main(["import", fmt, examples.rstfile, *extra, "--out", str(tmp_path / "o")]) == 2
        assert f"import {fmt} reads no {named} (an option of import " in capsys.readouterr().err
    for seed in (1, 7, 12, 29, 3):
        rng = random.Random(seed)
        damaged = bytearray(data)
        j = rng.randrange(len(damaged))
        del damaged[j:j + rng.randrange(1, 64)]
        path = tmp_path / f"d{seed}.rst"
        path.write_bytes(bytes(damaged))
        assert main(["--quiet", "import", "ansys", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert "structrom: error: " in err and str(path) in err and "Traceback" not in err, err


# -- end to end ----------------------------------------------------------------------------------------------
@needs_ccx
@pytest.mark.calculix
def test_calculix_snapshots_to_reduced_model(tmp_path):
    """Small version of examples/calculix_rom.py: C3D10 bar (1875 dofs), J2 + hot spot + pressure, 10
    increments; 4 ccx training loadings -> offline stage -> 2 unseen loadings vs ccx."""
    from mpi4py import MPI

    sys.path.insert(0, str(ROOT / "examples"))
    import calculix_rom as ex

    from structrom.rom.hifi_protocol import CalculixSolver
    from structrom.rom.offline.pipeline import run_offline
    from structrom.rom.online import ReducedModel

    base = base_config(tmp_path, divisions=(12, 2, 2), element="C3D10")
    solver = CalculixSolver(base, field_tolerances=None)
    ex.run_cases(solver, ex.SMALL_TRAINING, tmp_path / "train", "case", print)
    refs = ex.run_cases(solver, ex.SMALL_TESTS, tmp_path / "test", "test", print)
    model = ReducedModel.load(run_offline(ex.offline_config(tmp_path), comm=MPI.COMM_SELF, log=lambda *a: None))
    for (intensity, pressure), (path, ccx_seconds) in zip(ex.SMALL_TESTS, refs):
        t0 = time.perf_counter()
        r = model.solve(ex.loading(intensity, pressure))
        seconds = time.perf_counter() - t0
        with h5py.File(path) as f:
            u, p = f["fields/displacement"][()], f["fields/cumulated_plastic_strain"][()]
        du = ex.rel(r.displacement(increment=None), u)
        dp = ex.rel(r.dual_field("cumulated_plastic_strain", None), p)
        print(f"I={intensity} P={pressure}: {model.n_modes} modes, displacement {du:.2e}, PEEQ {dp:.2e} "
              f"(max {p.max():.3g}), speedup {ccx_seconds / seconds:.0f}")
        assert p.max() > 1e-3
        assert du <= 0.02 and dp <= 0.05
