"""Mesh generators (structured, gmsh examples) and meshio-based reading/writing."""
from __future__ import annotations

import meshio
import numpy as np
import pytest

from structrom.rom.fem.faces import FACES
from structrom.rom.fem.io import match_faces, mesh_from_meshio, mesh_to_meshio, read_mesh, write_mesh
from structrom.rom.fem.mesh import Mesh, MeshError
from structrom.rom.fem.structured import box, cylinder_sector

ELEMENTS = ["C3D4", "C3D10", "C3D8", "C3D20", "C3D20R"]
TET_EDGES = np.array([[0, 1], [1, 2], [2, 0], [0, 3], [1, 3], [2, 3]])
HEX_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
# Corner-local triple products: for each hex corner, its three neighbours in right-handed order.
HEX_CORNER_FRAMES = np.array(
    [[0, 1, 3, 4], [1, 2, 0, 5], [2, 3, 1, 6], [3, 0, 2, 7], [4, 7, 5, 0], [5, 4, 6, 1], [6, 5, 7, 2], [7, 6, 4, 3]]
)
# Kuhn split of a hexahedron (corners) into 6 positive tetrahedra, for exact volumes of flat hexes.
HEX_TETS = np.array([[0, 1, 2, 6], [0, 2, 3, 6], [0, 3, 7, 6], [0, 7, 4, 6], [0, 4, 5, 6], [0, 5, 1, 6]])


def triple(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Triple products (x1 - x0) . ((x2 - x0) x (x3 - x0)) for every element and frame."""
    p = x[:, frames]  # (ne, nframes, 4, 3)
    a, b, c = (p[:, :, k] - p[:, :, 0] for k in (1, 2, 3))
    return np.einsum("efi,efi->ef", a, np.cross(b, c))


def corner_volumes(mesh: Mesh) -> tuple[np.ndarray, float]:
    """Minimum corner triple product and total straight-sided volume."""
    mins, total = [], 0.0
    for b in mesh.blocks:
        x = mesh.points[b.connectivity]
        if b.element in ("C3D4", "C3D10"):
            t = triple(x, np.array([[0, 1, 2, 3]]))
            mins.append(t.min())
            total += t.sum() / 6
        else:
            mins.append(triple(x, HEX_CORNER_FRAMES).min())
            total += triple(x, HEX_TETS).sum() / 6
    return min(mins), total


def edges_and_mids(element: str) -> tuple[np.ndarray, np.ndarray]:
    if element == "C3D10":
        return TET_EDGES, np.arange(4, 10)
    return HEX_EDGES, np.arange(8, 20)


# -- hex20 isoparametric volume (independent of the FE kernel) -------------------------------------
REF20 = np.array(
    [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1],
     [0, -1, -1], [1, 0, -1], [0, 1, -1], [-1, 0, -1], [0, -1, 1], [1, 0, 1], [0, 1, 1], [-1, 0, 1],
     [-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], dtype=float
)


def hex20_detj(points: np.ndarray, conn: np.ndarray, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Jacobian determinants ``(ne, n^3)`` at Gauss points and weights of serendipity hexahedra."""
    g, w = np.polynomial.legendre.leggauss(n)
    xi = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    x, y, z = (xi[:, None, k] for k in range(3))
    a, b, c = REF20.T
    fx, fy, fz = 1 + a * x, 1 + b * y, 1 + c * z
    s = a * x + b * y + c * z - 2
    d_corner = np.stack([a * fy * fz * (s + fx), b * fx * fz * (s + fy), c * fx * fy * (s + fz)], -1) / 8
    qx, qy, qz = (np.where(r == 0, 1 - t * t, f) for r, t, f in ((a, x, fx), (b, y, fy), (c, z, fz)))
    dx, dy, dz = (np.where(r == 0, -2 * t, r) for r, t in ((a, x), (b, y), (c, z)))
    d_mid = np.stack([dx * qy * qz, qx * dy * qz, qx * qy * dz], -1) / 4
    corner = np.all(REF20 != 0, axis=1)
    dn = np.where(corner[None, :, None], d_corner, d_mid)
    jac = np.einsum("eai,qaj->eqij", points[conn], dn)
    return np.linalg.det(jac), np.einsum("i,j,k->ijk", w, w, w).ravel()


# -- structured ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("element", ELEMENTS)
def test_box_orientation_volume_sets(element):
    lengths, div = (2.0, 1.5, 3.0), (3, 2, 4)
    mesh = box(lengths, div, element, origin=(1.0, -1.0, 0.5))
    vmin, volume = corner_volumes(mesh)
    assert vmin > 0
    assert volume == pytest.approx(np.prod(lengths), rel=1e-13)
    per_hex = 6 if element in ("C3D4", "C3D10") else 1
    assert mesh.n_elements == per_hex * np.prod(div)
    assert np.array_equal(mesh.element_sets["all"], np.arange(mesh.n_elements))
    lo, hi = np.array([1.0, -1.0, 0.5]), np.array([1.0, -1.0, 0.5]) + lengths
    conn = mesh.blocks[0].connectivity
    for axis, name in enumerate("xyz"):
        for side, value in (("min", lo[axis]), ("max", hi[axis])):
            key = name + side
            on_plane = np.flatnonzero(np.isclose(mesh.points[:, axis], value))
            assert np.array_equal(mesh.node_sets[key], on_plane)
            faces = mesh.surface_sets[key]
            other = [div[k] for k in range(3) if k != axis]
            assert len(faces) == (2 if per_hex == 6 else 1) * np.prod(other)
            face_nodes = conn[faces[:, 0][:, None], FACES[element][faces[:, 1]]]
            assert np.allclose(mesh.points[face_nodes][..., axis], value)
    if element not in ("C3D4", "C3D8"):
        edges, mids = edges_and_mids(element)
        x = mesh.points[conn]
        assert np.allclose(x[:, mids], x[:, edges].mean(axis=2), atol=1e-14)
    # no duplicate or unused nodes
    assert np.array_equal(np.unique(conn), np.arange(mesh.n_nodes))
    assert len(np.unique(mesh.points.round(12), axis=0)) == mesh.n_nodes


@pytest.mark.parametrize("element", ELEMENTS)
def test_cylinder_sector_geometry(element):
    ri, ro, h, angle = 1.0, 2.0, 1.5, 90.0
    mesh = cylinder_sector(ri, ro, h, angle, (2, 16, 1), element)
    vmin, _ = corner_volumes(mesh)
    assert vmin > 0
    r = np.hypot(mesh.points[:, 0], mesh.points[:, 1])
    theta = np.degrees(np.arctan2(mesh.points[:, 1], mesh.points[:, 0]))
    np.testing.assert_allclose(r[mesh.node_sets["inner"]], ri, rtol=1e-14)
    np.testing.assert_allclose(r[mesh.node_sets["outer"]], ro, rtol=1e-14)
    np.testing.assert_allclose(theta[mesh.node_sets["theta0"]], 0.0, atol=1e-12)
    np.testing.assert_allclose(theta[mesh.node_sets["theta1"]], angle, atol=1e-12)
    assert np.allclose(mesh.points[mesh.node_sets["zmax"], 2], h)
    conn = mesh.blocks[0].connectivity
    for name, nodes in mesh.node_sets.items():
        faces = mesh.surface_sets[name]
        assert len(faces) > 0
        assert np.isin(conn[faces[:, 0][:, None], FACES[element][faces[:, 1]]], nodes).all()
    if element in ("C3D20", "C3D20R"):
        detj, w = hex20_detj(mesh.points, conn)
        assert detj.min() > 0
        exact = np.radians(angle) / 2 * (ro**2 - ri**2) * h
        assert (detj * w).sum() == pytest.approx(exact, rel=1e-6)


# -- meshio round trips --------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".vtu", ".xdmf"])
def test_write_read_roundtrip(tmp_path, suffix):
    mesh = box((1.0, 2.0, 3.0), (2, 1, 2), "C3D20")
    u = np.arange(mesh.n_dofs, dtype=float).reshape(-1, 3)
    s = np.arange(mesh.n_elements * 6, dtype=float).reshape(-1, 6)
    path = tmp_path / f"out{suffix}"
    write_mesh(path, mesh, point_data={"U": u}, cell_data={"S": s})
    write_mesh(path, mesh, point_data={"U": 2 * u}, cell_data={"S": s})  # overwrite in place
    expected = {"out.vtu"} if suffix == ".vtu" else {"out.xdmf", "out.h5"}
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temporary leftovers
    back = read_mesh(path)
    assert np.array_equal(back.points, mesh.points)
    assert np.array_equal(back.blocks[0].connectivity, mesh.blocks[0].connectivity)
    raw = meshio.read(path)
    assert np.array_equal(raw.point_data["U"], 2 * u)
    assert np.array_equal(np.concatenate(raw.cell_data["S"]), s)
    assert read_mesh(path, quadratic_hex="C3D20R").blocks[0].element == "C3D20R"
    if suffix == ".xdmf":  # (read in a process of its own: HDF5 can crash natively on damaged data)
        data = (tmp_path / "out.h5").read_bytes()
        (tmp_path / "out.h5").write_bytes(data[:len(data) // 2])
        with pytest.raises(MeshError, match=r"out\.xdmf: meshio could not read it"):
            read_mesh(path)


def test_mixed_blocks_cell_data_split(tmp_path):
    a, b = box(element="C3D8"), box(element="C3D4", origin=(5.0, 0.0, 0.0))
    pts = np.concatenate([a.points, b.points])
    mesh = Mesh(pts, [a.blocks[0], type(b.blocks[0])("C3D4", b.blocks[0].connectivity + a.n_nodes)])
    m = mesh_to_meshio(mesh, cell_data={"id": np.arange(mesh.n_elements)})
    assert [len(c) for c in m.cell_data["id"]] == [1, 6]
    with pytest.raises(MeshError, match="cell_data"):
        mesh_to_meshio(mesh, cell_data={"id": np.arange(3)})


def test_sets_from_meshio_physical_groups():
    """gmsh 2.2-style tags: 3D group -> element + node set, 2D -> surface + node set, 0D -> node set."""
    mesh = box((1.0, 1.0, 1.0), (2, 2, 2), "C3D10")
    conn = mesh.blocks[0].connectivity
    faces = mesh.surface_sets["xmax"]
    tri6 = conn[faces[:, 0][:, None], FACES["C3D10"][faces[:, 1]]]
    tri6 = tri6[:, [2, 1, 0, 4, 3, 5]]  # reversed orientation, as a surface mesh may have it
    m = meshio.Mesh(
        mesh.points,
        [("vertex", np.array([[0]])), ("triangle6", tri6), ("tetra10", conn)],
        cell_data={"gmsh:physical": [np.array([3]), np.full(len(tri6), 2), np.full(len(conn), 1)]},
        field_data={"solid": np.array([1, 3]), "load": np.array([2, 2]), "corner": np.array([3, 0])},
    )
    got = mesh_from_meshio(m)
    assert np.array_equal(got.element_sets["solid"], np.arange(mesh.n_elements))
    assert np.array_equal(got.node_sets["solid"], np.arange(mesh.n_nodes))
    order = lambda f: f[np.lexsort(f.T[::-1])]  # noqa: E731
    assert np.array_equal(order(got.surface_sets["load"]), order(faces))
    assert np.array_equal(got.node_sets["load"], mesh.node_sets["xmax"])
    assert np.array_equal(got.node_sets["corner"], [0])
    assert "corner" not in got.surface_sets and "load" not in got.element_sets


def test_errors_name_the_field():
    mesh = box(element="C3D4")
    m = meshio.Mesh(mesh.points, [("pyramid", np.array([[0, 1, 2, 3, 4]]))])
    with pytest.raises(MeshError, match="pyramid.*re-mesh"):
        mesh_from_meshio(m, source="part.msh")
    interior = np.array([[1, 2, 4]])  # a triangle through the cube, not a face
    m = meshio.Mesh(
        mesh.points,
        [("tetra", mesh.blocks[0].connectivity), ("triangle", interior)],
        cell_sets={"clamp": [np.array([], dtype=int), np.array([0])]},
    )
    with pytest.raises(MeshError, match="surface set 'clamp'.*not faces of any volume element"):
        mesh_from_meshio(m)
    with pytest.raises(MeshError, match="wrong"):
        match_faces(mesh, interior, name="wrong")
    with pytest.raises(MeshError, match="no volume cells"):
        mesh_from_meshio(meshio.Mesh(mesh.points, [("triangle", interior)]))
    with pytest.raises(MeshError, match="does not exist"):
        read_mesh("/nonexistent/x.vtu")


# -- gmsh ----------------------------------------------------------------------------------------------
gmsh = pytest.importorskip("gmsh")


def test_gmsh_hex20_node_order(tmp_path):
    """gmsh's 20-node hexahedra arrive in VTK/CalculiX order (mid-side nodes on the right edges)."""
    gmsh.initialize([], readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.occ.addBox(0, 0, 0, 1, 2, 3)
        gmsh.model.occ.synchronize()
        for _, c in gmsh.model.getEntities(1):
            gmsh.model.mesh.setTransfiniteCurve(c, 3)
        for _, s in gmsh.model.getEntities(2):
            gmsh.model.mesh.setTransfiniteSurface(s)
            gmsh.model.mesh.setRecombine(2, s)
        gmsh.model.mesh.setTransfiniteVolume(1)
        gmsh.model.addPhysicalGroup(3, [1], 7)
        gmsh.model.setPhysicalName(3, 7, "solid")
        gmsh.option.setNumber("Mesh.SecondOrderIncomplete", 1)
        gmsh.model.mesh.generate(3)
        gmsh.model.mesh.setOrder(2)
        gmsh.write(str(tmp_path / "hex.msh"))
    finally:
        gmsh.finalize()
    mesh = read_mesh(tmp_path / "hex.msh")
    assert [b.element for b in mesh.blocks] == ["C3D20"] and mesh.n_elements == 8
    x = mesh.points[mesh.blocks[0].connectivity]
    assert np.allclose(x[:, 8:], x[:, HEX_EDGES].mean(axis=2))
    vmin, volume = corner_volumes(mesh)
    assert vmin > 0 and volume == pytest.approx(6.0)


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    from geometries import plate_with_holes

    path = tmp_path_factory.mktemp("plate") / "plate.msh"
    holes = [(30.0, 20.0, 6.0), (70.0, 20.0, 6.0)]
    mesh = plate_with_holes(100.0, 40.0, 5.0, holes, notch_depth=4.0, mesh_size=6.0, order=2, path=path)
    return mesh, holes, path


def test_gmsh_plate_sets(plate):
    mesh, holes, path = plate
    assert path.exists()
    assert [b.element for b in mesh.blocks] == ["C3D10"]
    assert set(mesh.surface_sets) == {"left", "right", "top", "bottom", "holes", "notches"}
    assert np.array_equal(mesh.element_sets["plate"], np.arange(mesh.n_elements))
    p = mesh.points
    conn = mesh.blocks[0].connectivity
    for name, axis, value in (("left", 0, 0.0), ("right", 0, 100.0), ("bottom", 2, 0.0), ("top", 2, 5.0)):
        nodes = mesh.node_sets[name]
        assert np.allclose(p[nodes, axis], value)
        faces = mesh.surface_sets[name]
        face_nodes = conn[faces[:, 0][:, None], FACES["C3D10"][faces[:, 1]]]
        assert np.allclose(p[face_nodes][..., axis], value)
        assert np.array_equal(np.unique(face_nodes), nodes)
    d = np.min([np.hypot(p[:, 0] - x, p[:, 1] - y) - r for x, y, r in holes], axis=0)
    assert np.abs(d[mesh.node_sets["holes"]]).max() < 1e-6
    vmin, _ = corner_volumes(mesh)
    assert vmin > 0
    # tetra10 mid-side nodes: at edge midpoints except on the curved walls (holes, notches)
    curved = np.zeros(mesh.n_nodes, dtype=bool)
    curved[np.concatenate([mesh.node_sets["holes"], mesh.node_sets["notches"]])] = True
    ends = conn[:, TET_EDGES]
    straight = ~(curved[ends[..., 0]] & curved[ends[..., 1]])
    err = np.linalg.norm(p[conn[:, 4:]] - p[ends].mean(axis=2), axis=-1)
    assert err[straight].max() < 1e-9
    assert err[~straight].max() > 1e-4  # curved edges really follow the geometry


def test_gmsh_plate_slivers_on_a_hole_are_not_inverted_by_curving():
    """At 2.5 mm the plate of examples/rom_plate.py has a sliver with its four corners on a hole's wall: projecting
    its mid-side nodes onto the wall inverted it (the HF solve then refused the mesh). Such elements get straight
    edges: every Jacobian of the mesh is positive, and the holes' nodes still lie on the walls within the sagitta."""
    from geometries import plate_with_holes

    from structrom.rom.fem.kernel import Discretization

    holes = [(30.0, 20.0, 6.0), (70.0, 20.0, 6.0)]
    mesh = plate_with_holes(100.0, 40.0, 5.0, holes, notch_depth=4.0, mesh_size=2.5, order=2)
    disc = Discretization(mesh)  # (raises on a non-positive Jacobian at an integration point)
    assert np.all(disc.point_weights > 0)
    p = mesh.points[mesh.node_sets["holes"]]
    d = np.min([np.hypot(p[:, 0] - x, p[:, 1] - y) - r for x, y, r in holes], axis=0)
    assert np.abs(d).max() < 2.5 ** 2 / (8 * 6.0)  # a chord of 2.5 mm on a 6 mm circle: sagitta 0.13 mm


def test_gmsh_plate_size_for_dofs_and_determinism(plate):
    from geometries import plate_with_holes, size_for_dofs

    h = size_for_dofs(plate_with_holes, 10_000, iterations=1)
    mesh = plate_with_holes(mesh_size=h)
    assert 5_000 <= mesh.n_dofs <= 20_000
    again = plate_with_holes(mesh_size=h)
    assert np.array_equal(again.points, mesh.points)
    linear = plate_with_holes(mesh_size=h, order=1)
    assert [b.element for b in linear.blocks] == ["C3D4"]


def test_gmsh_blade_groups():
    from geometries import blade

    span = 60.0
    mesh = blade(chord=30.0, span=span, mesh_size=12.0, order=1, curvature_points=8, twist_deg=15.0)
    assert {"root", "tip", "airfoil", "platform"} <= set(mesh.surface_sets)
    p = mesh.points
    assert np.allclose(p[mesh.node_sets["tip"], 2], span)
    assert p[mesh.node_sets["root"], 2].max() <= 1e-9
    assert np.allclose(p[mesh.node_sets["platform"], 2], 0.0)
    assert p[mesh.node_sets["airfoil"], 2].min() >= -1e-9
    vmin, _ = corner_volumes(mesh)
    assert vmin > 0
