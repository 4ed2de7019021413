"""Wedge elements C3D6 and C3D15: Gauss rules, mixed hexahedron + wedge patch tests, point order, mesh files and a
user's wedge deck (*DLOAD P1..P5, *CLOAD) read by the deck import and solved by the HF solver, against ccx 2.20.

Shape functions (Kronecker, unity, gradients), face normals and per-face pressure totals, and the single-type patch
tests are in ``tests/test_fem_kernel.py`` with the other types; ccx agreement on a loaded box in
``tests/test_calculix_agreement.py``.
"""
from __future__ import annotations

import shutil
from math import factorial

import meshio
import numpy as np
import pytest
import scipy.sparse.linalg as spla

from structrom.rom.fem.elements import ELEMENTS
from structrom.rom.fem.elements import WEDGE_MIRROR
from structrom.rom.fem.io import mesh_from_meshio, read_mesh, write_mesh
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import CellBlock, Mesh
from structrom.rom.fem.structured import box
from structrom.rom.voigt import isotropic_stiffness

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")
WEDGES = ["C3D6", "C3D15"]


# -- Gauss rules ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("element,tri_degree,z_degree", [("C3D6", 1, 3), ("C3D15", 2, 5)])
def test_wedge_rules_integrate_polynomials_exactly(element, tri_degree, z_degree):
    """gauss3d7 (centroid x 2-point Gauss) and gauss3d8 (3-point triangle x 3-point Gauss) integrate
    xi^a eta^b zeta^c over the wedge exactly for a + b up to the triangle rule's degree and c up to the Gauss
    rule's: a! b! / (a + b + 2)! times 2 / (c + 1) (c even) or 0 (c odd); the weights sum to the volume 1."""
    rule = ELEMENTS[element].rule
    assert rule.weights.sum() == pytest.approx(1.0, rel=1e-15)
    xi, eta, zeta = rule.points.T
    for a in range(tri_degree + 1):
        for b in range(tri_degree + 1 - a):
            for c in range(z_degree + 1):
                exact = factorial(a) * factorial(b) / factorial(a + b + 2) * (2.0 / (c + 1) if c % 2 == 0 else 0.0)
                assert rule.weights @ (xi**a * eta**b * zeta**c) == pytest.approx(exact, abs=1e-15), (a, b, c)
    # and not one degree more in the triangle (the rule is CalculiX's, not a richer one)
    d = tri_degree + 1
    assert abs(rule.weights @ xi**d - 2.0 * factorial(d) / factorial(d + 2)) > 1e-6


# -- mixed meshes ----------------------------------------------------------------------------------------------
def _joined(left: Mesh, right: Mesh, affine: np.ndarray) -> Mesh:
    """The two meshes as one (coincident nodes merged: a conforming interface), mapped by ``affine`` (3, 3)."""
    points = np.vstack([left.points, right.points])
    _, first, inverse = np.unique(np.round(points, 9), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep the nodes in first-appearance order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    new = rank[inverse.ravel()]
    blocks = [CellBlock(left.blocks[0].element, new[left.blocks[0].connectivity]),
              CellBlock(right.blocks[0].element, new[left.n_nodes + right.blocks[0].connectivity])]
    return Mesh(points[first[order]] @ affine.T, blocks)


@pytest.mark.parametrize("hexa,wedge", [("C3D8", "C3D6"), ("C3D20", "C3D15")])
def test_mixed_hexahedron_wedge_patch_test(hexa, wedge):
    """Hexahedra on [0, 1] x [0, 1] x [0, 1] joined to wedges on [1, 2] x ... (the interface's quadrilateral faces
    shared), the whole sheared by an affine map: the displacement patch test (boundary nodes on a linear field)
    gives the linear field at every interior node and its constant strain at every point; a constant stress gives
    no force at interior nodes."""
    affine = np.array([[1.0, 0.2, -0.1], [0.1, 0.9, 0.3], [-0.2, 0.1, 1.1]])
    mesh = _joined(box((1.0, 1.0, 1.0), (2, 2, 2), hexa), box((1.0, 1.0, 1.0), (2, 2, 2), wedge, (1.0, 0.0, 0.0)),
                   affine)
    # conforming: the interface nodes are shared (hex + wedge nodes minus those of the x = 1 plane)
    assert mesh.n_nodes < sum(len(np.unique(b.connectivity)) for b in mesh.blocks)
    d = Discretization(mesh)
    assert d.volume == pytest.approx(2.0 * np.linalg.det(affine), rel=1e-13)
    rng = np.random.default_rng(3)
    A, b = 1e-3 * rng.normal(size=(3, 3)), 1e-3 * rng.normal(size=3)
    u_exact = (mesh.points @ A.T + b).ravel()
    ref = np.linalg.solve(affine, mesh.points.T).T  # logical coordinates in [0, 2] x [0, 1] x [0, 1]
    on_boundary = np.any(np.isclose(ref, 0.0, atol=1e-9) | np.isclose(ref, [2.0, 1.0, 1.0], atol=1e-9), axis=1)
    fixed = np.repeat(on_boundary, 3)
    assert (~fixed).sum() > 0
    K = d.stiffness(isotropic_stiffness(210e3, 0.3)).tocsr()
    u = np.where(fixed, u_exact, 0.0)
    u[~fixed] = spla.spsolve(K[~fixed][:, ~fixed].tocsc(), -K[~fixed][:, fixed] @ u_exact[fixed])
    assert np.abs(u - u_exact).max() < 1e-10 * np.abs(u_exact).max()
    strain = np.array([A[0, 0], A[1, 1], A[2, 2], A[0, 1] + A[1, 0], A[1, 2] + A[2, 1], A[2, 0] + A[0, 2]])
    assert np.abs(d.strain(u) - strain).max() < 1e-10 * np.abs(A).max()
    f = d.internal_force(np.tile([100.0, -50.0, 30.0, 20.0, -10.0, 5.0], (d.n_points, 1))).reshape(-1, 3)
    assert np.abs(f[~on_boundary]).max() < 1e-10 * np.abs(f).max()


# -- mesh files --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("element", WEDGES)
def test_wedge_mesh_files_round_trip_in_calculix_orientation(tmp_path, element):
    """A wedge mesh written as .vtu, gmsh .msh and Abaqus .inp reads back with the same elements; VTK reads the .vtu
    with positive cell volumes (VTK's wedges are CalculiX's; meshio's VTK writer and reader mirror 6-node ones, which
    write_mesh and the reader undo), and a wedge given in the mirrored numbering is read in CalculiX's."""
    mesh = box((2.0, 1.0, 1.0), (2, 1, 1), element)
    conn = mesh.blocks[0].connectivity
    for name, file_format in (("m.vtu", None), ("m.msh", "gmsh"), ("m.inp", None)):
        back = read_mesh(write_mesh(tmp_path / name, mesh, file_format=file_format))
        assert back.blocks[0].element == element
        np.testing.assert_allclose(back.points[back.blocks[0].connectivity], mesh.points[conn], atol=1e-12)
        assert Discretization(back).volume == pytest.approx(2.0, rel=1e-13)
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    reader = vtk.vtkXMLUnstructuredGridReader()
    reader.SetFileName(str(tmp_path / "m.vtu"))
    sizes = vtk.vtkCellSizeFilter()
    sizes.SetInputConnection(reader.GetOutputPort())
    sizes.Update()
    np.testing.assert_allclose(vtk_to_numpy(sizes.GetOutput().GetCellData().GetArray("Volume")), 0.5, rtol=1e-12)
    cell = "wedge" if element == "C3D6" else "wedge15"
    mirrored = meshio.Mesh(mesh.points, [(cell, conn[:, WEDGE_MIRROR[element]])])
    back = mesh_from_meshio(mirrored, source="mirrored")
    assert np.array_equal(back.blocks[0].connectivity, conn)


# -- against ccx ---------------------------------------------------------------------------------------------------
@needs_ccx
@pytest.mark.calculix
@pytest.mark.parametrize("element", WEDGES)
def test_point_order_is_calculix(tmp_path, element):
    """One wedge at its reference coordinates (shifted), every node on a prescribed quadratic displacement: the
    strain differs at every integration point, and ccx's printed stresses (7 digits) are ours point by point. ccx's
    .frd lists the element's nodes in its own order, which our .frd reader and writer translate (and the nodal
    stresses it extrapolates from the 9 points of C3D15 are those of our 6-node wedge fit)."""
    from structrom.rom.adapters.calculix import read_dat, run_ccx
    from structrom.rom.adapters.frd import read_frd_file
    from structrom.rom.adapters.frd_writer import FRD_TYPE, extrapolation_matrix, write_frd

    et = ELEMENTS[element]
    X = et.shape.reference_coordinates + [0.0, 0.0, 1.0]
    x, y, z = X.T
    U = 0.01 * np.column_stack([x**2 + 2 * y * z + x * z, x * y + z**2 + y * z, y**2 + x * z + z])
    if element == "C3D6":  # the linear wedge's field: no quadratic terms in (x, y)
        U = 0.01 * np.column_stack([x * z + y, y * z - x, x + z])
    lines = ["*NODE"] + [f"{i + 1}, {p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f}" for i, p in enumerate(X)]
    lines += [f"*ELEMENT, TYPE={element}, ELSET=E", "1, " + ", ".join(str(i + 1) for i in range(len(X))),
              "*MATERIAL, NAME=M", "*ELASTIC", "1000., 0.25", "*SOLID SECTION, ELSET=E, MATERIAL=M",
              "*STEP", "*STATIC", "*BOUNDARY"]
    lines += [f"{i + 1}, {c + 1}, {c + 1}, {U[i, c]:.17g}" for i in range(len(X)) for c in range(3)]
    lines += ["*NODE FILE", "U", "*EL FILE", "S", "*EL PRINT, ELSET=E", "S", "*END STEP"]
    (tmp_path / "one.inp").write_text("\n".join(lines) + "\n")
    dat = read_dat(run_ccx(tmp_path, "one", timeout=60).dat)
    ccx = dat[max(dat)]["S"].values  # (n_points, 6): xx, yy, zz, xy, yz, zx
    mesh = Mesh(X, [CellBlock(element, np.arange(len(X))[None])])
    d = Discretization(mesh)
    eps = d.strain(U.ravel())
    ours = eps @ isotropic_stiffness(1000.0, 0.25).T  # Voigt xx, yy, zz, xy, yz, zx
    assert len(np.unique(np.round(ours[:, 0], 6))) > 1  # the points differ
    np.testing.assert_allclose(ours, ccx, rtol=0, atol=1e-6 * np.abs(ccx).max())
    frd = read_frd_file(tmp_path / "one.frd")
    assert frd.element_types.tolist() == [FRD_TYPE[element]]
    assert np.array_equal(frd.connectivity[0], np.arange(len(X)) + 1)
    write_frd(tmp_path / "ours.frd", mesh, np.array([1.0]), {"DISP": U[None]})
    elements = [(tmp_path / name).read_text().split("\n -3")[1] for name in ("ours.frd", "one.frd")]
    assert elements[0] == elements[1]  # the element block as ccx writes it
    if element == "C3D15":  # ccx's nodal stresses: (its 6 digits, and its shear order xy, yz, zx in the .frd too)
        nodal = extrapolation_matrix(element) @ ours
        np.testing.assert_allclose(frd.increments[-1].fields["STRESS"], nodal, atol=1e-5 * np.abs(nodal).max())


@needs_ccx
@pytest.mark.calculix
@pytest.mark.parametrize("element", WEDGES)
def test_wedge_deck_imported_and_solved_as_ccx(tmp_path, element):
    """A user's wedge deck: 3 x 1 x 1 box of 6 wedges clamped at x = 0, *DLOAD P1..P5 (outer faces of both
    triangle and quadrilateral kinds, and an inner face for P5) and a *CLOAD. The deck import reads it (the faces
    keep their numbers) and the HF solver given the imported case reproduces ccx's displacements to the .frd's 6
    digits (measured 1.8e-6 (C3D6), 8.9e-7 (C3D15))."""
    import json

    import h5py

    from structrom.rom.adapters.calculix import read_inp, run_ccx, write_mesh_inp
    from structrom.rom.adapters.calculix_import import import_calculix
    from structrom.rom.hifi.config import HifiConfig
    from structrom.rom.hifi.run import run_hifi
    from structrom.rom.offline.snapshots import read_training_case

    mesh = box((3.0, 1.0, 1.0), (3, 1, 1), element)
    faces = {name: mesh.surface_sets[name] for name in ("zmin", "zmax", "ymin", "xmax", "ymax")}
    assert [sorted(set(f[:, 1].tolist())) for f in faces.values()] == [[0], [1], [2], [3], [3]]
    inner = np.array([[2, 4], [5, 4]])  # S5 inside: a cell's diagonal face (element 2), the plane x = 2 (element 5)
    loads = [(faces["zmin"][faces["zmin"][:, 0] >= 2], 1.5), (faces["zmax"], 5.0), (faces["ymin"], 3.0),
             (faces["xmax"], -4.0), (faces["ymax"], 2.0), (inner, 7.0)]
    dload = "\n".join(f"{e + 1}, P{f + 1}, {p}" for rows, p in loads for e, f in rows.tolist())
    corner = int(np.flatnonzero(np.all(np.isclose(mesh.points, [3.0, 1.0, 1.0]), axis=1))[0]) + 1
    runs = tmp_path / "runs"
    runs.mkdir()
    write_mesh_inp(runs / "mesh.inp", mesh, all_nset="NALL", all_elset="EALL")
    (runs / "a.inp").write_text(f"""*INCLUDE, INPUT=mesh.inp
*MATERIAL, NAME=STEEL
*ELASTIC
210000., 0.3
*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL
*BOUNDARY
xmin, 1, 3
*STEP
*STATIC
*DLOAD
{dload}
*CLOAD
{corner}, 2, 10.
*NODE FILE
U
*EL FILE
S
*END STEP
""")
    run_ccx(runs, "a", timeout=120)
    import_calculix(runs / "a.inp", [("a", runs / "a.inp", [runs / "a.frd"])], tmp_path / "m")
    model_mesh = read_inp(tmp_path / "m" / "mesh.inp")[0]
    assert [b.element for b in model_mesh.blocks] == [element]
    case = read_training_case(tmp_path / "m" / "train" / "a.h5", model_mesh)
    loaded = np.concatenate([model_mesh.surface_sets[name] for name in case.loading.pressures])
    assert sorted(set(loaded[:, 1].tolist())) == [0, 1, 2, 3, 4]  # S1..S5 all imported
    with h5py.File(case.path, "r") as f:
        meta = json.loads(f.attrs["metadata"])
    cfg = HifiConfig.model_validate(dict(meta["config"], output={"file": str(tmp_path / "hf.h5"), "xdmf": False},
                                         solver={"linear": {"ksp_type": "preonly", "pc_type": "lu"}}))
    run_hifi(cfg, log=lambda *a, **k: None)
    with h5py.File(tmp_path / "hf.h5", "r") as f:
        u_hf = f["fields/displacement"][()]
    u_ccx = case.displacements()
    rel = np.linalg.norm(u_hf - u_ccx) / np.linalg.norm(u_ccx)
    print(f"{element}: |u_hf - u_ccx| / |u_ccx| = {rel:.1e}")
    assert rel <= 5e-6  # the .frd's 6 digits


@pytest.mark.parametrize("element", WEDGES)
def test_gmsh_extruded_prisms(tmp_path, element):
    """gmsh's prisms (a triangulated 2 x 1 rectangle extruded by 0.5 in 2 recombined layers; order 2 incomplete for
    C3D15) read as wedges with positive Jacobians and the box's volume; the physical surfaces on top (triangles) and at
    x = 2 (quadrilaterals) become surface sets on which a pressure p gives p x area along the inward normal."""
    gmsh = pytest.importorskip("gmsh")
    gmsh.initialize([], readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.occ.addRectangle(0, 0, 0, 2, 1)
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.4)
        out = gmsh.model.occ.extrude([(2, 1)], 0, 0, 0.5, numElements=[2], recombine=True)
        gmsh.model.occ.synchronize()
        volume = [t for d, t in out if d == 3]
        gmsh.model.addPhysicalGroup(3, volume, 1)
        gmsh.model.setPhysicalName(3, 1, "solid")
        for k, (name, test) in enumerate((("top", lambda c: abs(c[2] - 0.5) < 1e-9),
                                          ("right", lambda c: abs(c[0] - 2.0) < 1e-9)), start=2):
            tags = [t for _, t in gmsh.model.getEntities(2) if test(gmsh.model.occ.getCenterOfMass(2, t))]
            gmsh.model.addPhysicalGroup(2, tags, k)
            gmsh.model.setPhysicalName(2, k, name)
        gmsh.model.mesh.generate(3)
        if element == "C3D15":
            gmsh.option.setNumber("Mesh.SecondOrderIncomplete", 1)
            gmsh.model.mesh.setOrder(2)
        gmsh.write(str(tmp_path / "prisms.msh"))
    finally:
        gmsh.finalize()
    mesh = read_mesh(tmp_path / "prisms.msh")
    assert [b.element for b in mesh.blocks] == [element] and mesh.n_elements > 20
    d = Discretization(mesh)  # (raises on a non-positive Jacobian)
    assert d.volume == pytest.approx(1.0, rel=1e-12)
    p = 2.5
    for name, local, normal, area in (("top", {1}, [0, 0, -1], 2.0), ("right", {2, 3, 4}, [-1, 0, 0], 0.5)):
        faces = mesh.surface_sets[name]
        assert set(faces[:, 1].tolist()) <= local  # S2 (top triangles), S3..S5 (quadrilaterals)
        total = d.pressure_force(faces, p).reshape(-1, 3).sum(0)
        np.testing.assert_allclose(total, p * area * np.array(normal), atol=1e-12 * p * area)
