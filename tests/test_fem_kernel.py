"""Tests of the vectorized FE kernel (structrom.rom.fem.elements, structrom.rom.fem.quadrature, structrom.rom.fem.kernel, structrom.rom.fem.surface).

Meshes are structured boxes built here: hexes on a grid, tets by splitting every cube into the 6 Kuhn
tets (conforming). Interior vertex nodes are randomly perturbed; mid-side nodes of quadratic
elements stay at edge midpoints (straight edges), so that the CalculiX Gauss rules integrate the
patch-test quantities exactly. (With curved edges, C3D20's 3x3x3 rule still passes the constant-stress
patch test to round-off, while C3D10's 4-point and C3D20R's 2x2x2 rules leave O(1e-3) residuals: an
integration error of curved elements, not a kernel defect.)
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse.linalg as spla

from structrom.rom.fem.elements import ELEMENTS, SHAPES
from structrom.rom.fem.faces import FACES
from structrom.rom.fem.kernel import Discretization
from structrom.rom.fem.mesh import CellBlock, Mesh, MeshError
from structrom.rom.fem.surface import face_integration
from structrom.rom.voigt import isotropic_stiffness

TYPES = ["C3D4", "C3D10", "C3D8", "C3D20", "C3D20R", "C3D6", "C3D15"]
SIZE = np.array([1.0, 0.7, 1.3])

_HEX_OFFSETS = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]]
)
_HEX20_EDGES = np.array(
    [[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4], [0, 4], [1, 5], [2, 6], [3, 7]]
)
_TET10_EDGES = np.array([[0, 1], [1, 2], [2, 0], [0, 3], [1, 3], [2, 3]])
_WEDGE15_EDGES = np.array([[0, 1], [1, 2], [2, 0], [3, 4], [4, 5], [5, 3], [0, 3], [1, 4], [2, 5]])
_QUADRATIC = {"C3D10": _TET10_EDGES, "C3D20": _HEX20_EDGES, "C3D20R": _HEX20_EDGES, "C3D15": _WEDGE15_EDGES}
_HEX_WEDGES = [[0, 1, 2, 4, 5, 6], [0, 2, 3, 4, 6, 7]]  # two prisms of a cube, split along an xy diagonal


def _kuhn_tets() -> np.ndarray:
    """(6, 4, 3) corner offsets of the 6 Kuhn tets of the unit cube, positively oriented."""
    tets = []
    for perm in itertools.permutations(range(3)):
        e = np.eye(3, dtype=int)[list(perm)]
        v = np.array([[0, 0, 0], e[0], e[0] + e[1], [1, 1, 1]])
        if np.linalg.det((v[1:] - v[0]).astype(float)) < 0:
            v = v[[0, 2, 1, 3]]
        tets.append(v)
    return np.array(tets)


def box_mesh(
    element: str, n=(2, 2, 2), size=SIZE, origin=(0.0, 0.0, 0.0), perturb=0.2, seed=0
) -> Mesh:
    """Structured box of one element type on [origin, origin + size] with n cells per direction."""
    n = np.asarray(n)
    quadratic = element in _QUADRATIC
    s = 2 if quadratic else 1  # grid points per cell edge
    m = s * n + 1  # grid points per direction
    cells = np.stack(np.meshgrid(*[np.arange(k) for k in n], indexing="ij"), -1).reshape(-1, 3)
    if element.startswith("C3D2") or element == "C3D8":
        corners = _HEX_OFFSETS[None].repeat(1, 0)  # (1, 8, 3)
    elif element in ("C3D6", "C3D15"):
        corners = _HEX_OFFSETS[_HEX_WEDGES]  # (2, 6, 3)
    else:
        corners = _kuhn_tets()  # (6, 4, 3)
    off = s * corners
    if quadratic:
        e = _QUADRATIC[element]
        off = np.concatenate([off, (off[:, e[:, 0]] + off[:, e[:, 1]]) // 2], axis=1)
    ijk = s * cells[:, None, None, :] + off[None]  # (n_cells, n_sub, n_en, 3)
    ijk = ijk.reshape(-1, off.shape[1], 3)
    conn = ijk[..., 0] + m[0] * (ijk[..., 1] + m[1] * ijk[..., 2])
    grid = np.stack(np.meshgrid(*[np.arange(k) for k in m], indexing="ij"), -1)
    grid = grid.transpose(2, 1, 0, 3).reshape(-1, 3)  # node id = i + m0 (j + m1 k)
    pts = origin + grid * (np.asarray(size) / (s * n))
    rng = np.random.default_rng(seed)
    interior = np.all((grid > 0) & (grid < m - 1), axis=1) & np.all(grid % s == 0, axis=1)
    h = np.asarray(size) / n
    pts[interior] += perturb * h * rng.uniform(-1, 1, (interior.sum(), 3))
    if quadratic:
        nc = {"C3D10": 4, "C3D15": 6}.get(element, 8)
        e = _QUADRATIC[element]
        pts[conn[:, nc:]] = 0.5 * (pts[conn[:, e[:, 0]]] + pts[conn[:, e[:, 1]]])
    used, conn = np.unique(conn, return_inverse=True)
    return Mesh(pts[used], [CellBlock(element, conn.reshape(len(ijk), -1))])


def merge(*meshes: Mesh) -> Mesh:
    """Disjoint union of single-block meshes (one block each, nodes renumbered)."""
    pts, blocks, off = [], [], 0
    for m in meshes:
        pts.append(m.points)
        blocks.extend(CellBlock(b.element, b.connectivity + off) for b in m.blocks)
        off += m.n_nodes
    return Mesh(np.vstack(pts), blocks)


def boundary_faces(mesh: Mesh, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Faces on the box [lo, hi] and their outward normals ``(n_faces, 3)``."""
    faces, normals, off = [], [], 0
    lo, hi = np.broadcast_to(np.asarray(lo, float), (3,)), np.broadcast_to(np.asarray(hi, float), (3,))
    for b in mesh.blocks:
        et = ELEMENTS[b.element]
        # corners of each face; a triangle's first corner repeated in the 4th column
        table = np.array([np.resize(et.face_nodes(f)[: 3 if s.name.startswith("tri") else 4], 4)
                          for f, s in enumerate(et.face_shapes)])
        X = mesh.points[b.connectivity[:, table]]  # (n_e, n_f, 4, 3)
        for axis, side in itertools.product(range(3), range(2)):
            val = (lo, hi)[side][axis]
            on = np.all(np.isclose(X[..., axis], val, atol=1e-12), axis=-1)
            e, f = np.nonzero(on)
            faces.append(np.stack([e + off, f], 1))
            nrm = np.zeros((len(e), 3))
            nrm[:, axis] = 1.0 if side else -1.0
            normals.append(nrm)
        off += len(b)
    return np.concatenate(faces), np.concatenate(normals)


def boundary_nodes(mesh: Mesh, lo, hi) -> np.ndarray:
    x = mesh.points
    return np.flatnonzero(np.any(np.isclose(x, lo) | np.isclose(x, hi), axis=1))


def rigid_modes(x: np.ndarray) -> np.ndarray:
    """(3 n_nodes, 6) translations and infinitesimal rotations."""
    n = len(x)
    modes = np.zeros((n, 3, 6))
    for c in range(3):
        modes[:, c, c] = 1.0
    for k, w in enumerate(np.eye(3)):
        modes[:, :, 3 + k] = np.cross(w, x - x.mean(0))
    return modes.reshape(3 * n, 6)


def voigt_strain(A: np.ndarray) -> np.ndarray:
    """Strain of u = A x (du_c/dx_i = A[c, i])."""
    return np.array(
        [A[0, 0], A[1, 1], A[2, 2], A[0, 1] + A[1, 0], A[1, 2] + A[2, 1], A[2, 0] + A[0, 2]]
    )


C_ISO = isotropic_stiffness(210e3, 0.3)


@pytest.fixture(scope="module", params=TYPES)
def box(request):
    mesh = box_mesh(request.param)
    return request.param, mesh, Discretization(mesh)


# -- reference elements and quadrature -------------------------------------------------------------
def test_shape_functions_kronecker_unity_and_gradients():
    rng = np.random.default_rng(1)
    for name, s in SHAPES.items():
        R = s.reference_coordinates
        assert np.allclose(s.shape(R), np.eye(s.n_nodes), atol=1e-14), name
        xi = rng.uniform(0.0, 0.3, (6, s.dim))
        assert np.allclose(s.shape(xi).sum(1), 1.0, atol=1e-14)
        # linear completeness: sum_a N_a R_a = xi, sum_a dN_a R_a = I
        assert np.allclose(s.shape(xi) @ R, xi, atol=1e-14)
        assert np.allclose(np.einsum("pad,ae->pde", s.gradient(xi), R), np.eye(s.dim), atol=1e-13)
        h = 1e-6
        fd = np.stack(
            [(s.shape(xi + h * e) - s.shape(xi - h * e)) / (2 * h) for e in np.eye(s.dim)], -1
        )
        assert np.allclose(s.gradient(xi), fd, atol=1e-8), name


# CalculiX 2.20 gauss.f values (15 digits), in gauss.f's order.
_G = 0.577350269189626
_G3 = [-0.774596669241483, 0.0, 0.774596669241483]
_W3 = [0.555555555555555, 0.888888888888888, 0.555555555555555]
_A, _B = 0.138196601125011, 0.585410196624968
CALCULIX_POINTS = {
    "C3D4": ([[0.25, 0.25, 0.25]], [0.166666666666667]),  # gauss3d4
    "C3D10": ([[_A, _A, _A], [_B, _A, _A], [_A, _B, _A], [_A, _A, _B]], [0.041666666666667] * 4),
    "C3D8": (  # gauss3d2
        [[-_G, -_G, -_G], [_G, -_G, -_G], [-_G, _G, -_G], [_G, _G, -_G],
         [-_G, -_G, _G], [_G, -_G, _G], [-_G, _G, _G], [_G, _G, _G]],
        [1.0] * 8,
    ),
    "C3D20": (  # gauss3d3: xi fastest, then eta, then zeta
        [[x, y, z] for z in _G3 for y in _G3 for x in _G3],
        [wx * wy * wz for wz in _W3 for wy in _W3 for wx in _W3],
    ),
}
CALCULIX_POINTS["C3D20R"] = CALCULIX_POINTS["C3D8"]
# Wedges: gauss3d7 (C3D6) and gauss3d8 (C3D15, triangle points fastest). ccx 2.20 prints the stresses of one
# element under a prescribed displacement with a different strain at each point in this order
# (tests/test_wedge_elements.py).
_T = 0.333333333333333
_T1, _T2 = 0.166666666666667, 0.666666666666667
CALCULIX_POINTS["C3D6"] = ([[_T, _T, -_G], [_T, _T, _G]], [0.5, 0.5])
CALCULIX_POINTS["C3D15"] = ([[x, y, z] for z in _G3 for x, y in ((_T1, _T1), (_T2, _T1), (_T1, _T2))],
                            [w * 0.166666666666667 for w in _W3 for _ in range(3)])


@pytest.mark.parametrize("element", TYPES)
def test_integration_point_order_is_calculix(element):
    et = ELEMENTS[element]
    # one element at its reference coordinates: physical = reference coordinates
    mesh = Mesh(et.shape.reference_coordinates.copy(), [CellBlock(element, np.arange(et.n_nodes)[None])])
    d = Discretization(mesh)
    pts, w = CALCULIX_POINTS[element]
    assert d.n_points == len(pts)
    np.testing.assert_allclose(d.point_coordinates, pts, atol=1e-12)
    np.testing.assert_allclose(d.point_weights, w, rtol=1e-12)
    assert np.all(d.point_elements == 0)
    assert et.rule.name == {"C3D4": "gauss3d4", "C3D10": "gauss3d5", "C3D8": "gauss3d2",
                            "C3D20": "gauss3d3", "C3D20R": "gauss3d2", "C3D6": "gauss3d7", "C3D15": "gauss3d8"}[element]


@pytest.mark.parametrize("element", TYPES)
def test_face_corner_right_hand_rule_points_inward(element):
    et = ELEMENTS[element]
    X = et.shape.reference_coordinates.copy()
    mesh = Mesh(X, [CellBlock(element, np.arange(et.n_nodes)[None])])
    centroid = X[: {"C3D4": 4, "C3D10": 4, "C3D6": 6, "C3D15": 6}.get(element, 8)].mean(0)
    faces = np.array([[0, f] for f in range(et.n_faces)])
    a = np.zeros((et.n_faces, 3))  # inward normal * area (flat faces)
    for fi in face_integration(mesh, faces):  # one per face shape
        a[fi.rows] = fi.area_vectors.sum(1)
    for f in range(et.n_faces):
        nodes = et.face_nodes(f)
        corners = X[nodes[:3]]
        rhr = np.cross(corners[1] - corners[0], corners[2] - corners[0])  # right-hand rule
        to_inside = centroid - X[nodes].mean(0)
        assert rhr @ to_inside > 0, (element, f)
        assert a[f] @ to_inside > 0 and np.allclose(np.cross(a[f], rhr), 0.0, atol=1e-13)
    areas = np.linalg.norm(a, axis=1)
    # wedge: triangles (0,0)-(1,0)-(0,1) at zeta = -1, +1, sides of height 2 on y = 0, x + y = 1, x = 0
    expected = {"C3D4": [0.5, 0.5, np.sqrt(3) / 2, 0.5], "C3D6": [0.5, 0.5, 2.0, 2.0 * np.sqrt(2), 2.0]}
    expected |= {"C3D10": expected["C3D4"], "C3D15": expected["C3D6"]}
    np.testing.assert_allclose(areas, expected.get(element, [4.0] * 6), rtol=1e-13)
    # a pressure p on each face alone: total force p * area along the inward normal
    p = 3.5
    for f in range(et.n_faces):
        total = Discretization(mesh).pressure_force(np.array([[0, f]]), p).reshape(-1, 3).sum(0)
        np.testing.assert_allclose(total, p * a[f], rtol=1e-13, atol=1e-13 * p)
        np.testing.assert_allclose(np.linalg.norm(total), p * areas[f], rtol=1e-13)
    # all faces at once, per face node (a wedge's triangles and quadrilaterals: the padded table's width)
    scale = np.arange(1.0, et.n_faces + 1.0)  # a different pressure on each face (a closed surface sums to 0)
    nodal = p * np.repeat(scale[:, None], et.faces.shape[1], axis=1)
    total = Discretization(mesh).pressure_force(faces, nodal).reshape(-1, 3).sum(0)
    np.testing.assert_allclose(total, p * scale @ a, rtol=1e-13, atol=1e-13 * p)
    assert np.linalg.norm(total) > p
    with pytest.raises(MeshError, match="per face node"):
        Discretization(mesh).pressure_force(faces, nodal[:, :2])


# -- volume quantities -----------------------------------------------------------------------------
def test_volume_interpolation_and_operators(box):
    element, mesh, d = box
    assert np.isclose(d.point_weights.sum(), np.prod(SIZE), rtol=1e-13)
    assert d.volume == pytest.approx(np.prod(SIZE), rel=1e-13)
    rng = np.random.default_rng(2)
    assert np.allclose(d.interpolate(np.ones(mesh.n_nodes)), 1.0, atol=1e-14)
    a, Bm = rng.normal(size=2), rng.normal(size=(2, 3))
    lin = mesh.points @ Bm.T + a  # (n_nodes, 2) linear fields
    np.testing.assert_allclose(d.interpolate(lin), d.point_coordinates @ Bm.T + a, atol=1e-12)
    np.testing.assert_allclose(d.interpolate(lin[:, 0]), d.point_coordinates @ Bm[0] + a[0], atol=1e-12)
    v = rng.normal(size=mesh.n_nodes)
    np.testing.assert_allclose(d.interpolation_operator() @ v, d.interpolate(v), atol=1e-13)
    u = rng.normal(size=mesh.n_dofs)
    np.testing.assert_allclose(d.strain_operator() @ u, d.strain(u).ravel(), atol=1e-11)
    # points are group/element/point ordered and inside their elements' bounding boxes
    assert np.all(np.diff(d.point_elements) >= 0)
    for g in d.groups:
        X = mesh.points[g.nodes]
        pc = d.point_coordinates[g.points].reshape(g.n_elements, -1, 3)
        assert np.all(pc >= X.min(1)[:, None] - 1e-12) and np.all(pc <= X.max(1)[:, None] + 1e-12)
        assert g.B.shape == (g.n_elements, g.n_element_points, 6, 3 * g.nodes.shape[1])


def test_mass_matrix_total(box):
    element, mesh, d = box
    rho = 7.85e-9
    M = d.mass_matrix(rho)
    assert M.shape == (mesh.n_dofs, mesh.n_dofs)
    assert M.sum() / 3 == pytest.approx(rho * np.prod(SIZE), rel=1e-12)
    assert abs(M - M.T).max() < 1e-12 * abs(M).max()
    t = rigid_modes(mesh.points)[:, 0]
    assert (M @ t).sum() == pytest.approx(rho * np.prod(SIZE), rel=1e-12)
    # per-point density: doubling it doubles the mass
    M2 = d.mass_matrix(np.full(d.n_points, 2 * rho))
    assert abs(M2 - 2 * M).max() < 1e-12 * abs(M).max()


def test_rigid_modes_strain_free_and_in_nullspace(box):
    element, mesh, d = box
    R = rigid_modes(mesh.points)
    K = d.stiffness(C_ISO)
    scale = abs(K).max() * np.abs(R).max()
    for k in range(6):
        assert np.abs(d.strain(R[:, k])).max() < 1e-12
        assert np.abs(K @ R[:, k]).max() < 1e-10 * scale
    assert abs(K - K.T).max() < 1e-12 * abs(K).max()
    # exactly 6 zero eigenvalues
    ev = np.linalg.eigvalsh(K.toarray())
    assert np.sum(np.abs(ev) < 1e-8 * ev.max()) == 6


def test_stiffness_coo_matches_csr_and_energy(box):
    element, mesh, d = box
    rng = np.random.default_rng(3)
    Cq = C_ISO * (1 + 0.5 * rng.uniform(size=(d.n_points, 1, 1)))
    r, c, v = d.stiffness_coo(Cq)
    n_en = ELEMENTS[element].n_nodes
    assert len(v) == mesh.n_elements * (3 * n_en) ** 2
    g = d.groups[0]
    assert np.array_equal(r[: (3 * n_en) ** 2].reshape(3 * n_en, -1), np.repeat(g.dofs[0][:, None], 3 * n_en, 1))
    assert np.array_equal(d.stiffness_values(Cq), v)
    assert all(np.array_equal(a, b) for a, b in zip(d.stiffness_coo_pattern(), (r, c)))
    K = d.stiffness(Cq)
    import scipy.sparse as sp

    Kc = sp.coo_matrix((v, (r, c)), shape=K.shape).tocsr()
    assert abs(K - Kc).max() < 1e-12 * abs(K).max()
    # energy: u^T K u = sum_k eps_k^T C_k eps_k w_k, and K u = internal force of C eps
    u = rng.normal(size=mesh.n_dofs)
    eps = d.strain(u)
    sig = np.einsum("kij,kj->ki", Cq, eps)
    assert u @ (K @ u) == pytest.approx(np.sum(d.point_weights * (sig * eps).sum(1)), rel=1e-11)
    np.testing.assert_allclose(K @ u, d.internal_force(sig), atol=1e-9 * np.abs(K @ u).max())


# -- patch tests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("element", TYPES)
def test_displacement_patch_test(element):
    mesh = box_mesh(element, n=(3, 3, 3), perturb=0.25, seed=4)
    d = Discretization(mesh)
    rng = np.random.default_rng(5)
    A, b = 1e-3 * rng.normal(size=(3, 3)), 1e-3 * rng.normal(size=3)
    u_exact = (mesh.points @ A.T + b).ravel()
    bnd = boundary_nodes(mesh, 0.0, SIZE)
    fixed = np.zeros(mesh.n_dofs, bool)
    fixed[(3 * bnd[:, None] + np.arange(3)).ravel()] = True
    assert (~fixed).sum() > 0
    K = d.stiffness(C_ISO).tocsr()
    free = ~fixed
    u = np.where(fixed, u_exact, 0.0)
    u[free] = spla.spsolve(K[free][:, free].tocsc(), -K[free][:, fixed] @ u_exact[fixed])
    assert np.abs(u - u_exact).max() < 1e-10 * np.abs(u_exact).max()
    eps = d.strain(u)
    assert np.abs(eps - voigt_strain(A)).max() < 1e-10 * np.abs(A).max()


@pytest.mark.parametrize("element", TYPES)
def test_constant_stress_patch_test(element):
    mesh = box_mesh(element, n=(3, 3, 3), perturb=0.25, seed=6)
    d = Discretization(mesh)
    sig = np.array([100.0, -50.0, 30.0, 20.0, -10.0, 5.0])
    f = d.internal_force(np.tile(sig, (d.n_points, 1)))
    interior = np.setdiff1d(np.arange(mesh.n_nodes), boundary_nodes(mesh, 0.0, SIZE))
    assert interior.size
    scale = np.abs(f).max()
    assert np.abs(f.reshape(-1, 3)[interior]).max() < 1e-10 * scale
    # the boundary forces equal those of the traction sigma n_out on the boundary
    faces, n_out = boundary_faces(mesh, 0.0, SIZE)
    S = sig[np.array([[0, 3, 5], [3, 1, 4], [5, 4, 2]])]
    np.testing.assert_allclose(f, d.traction_force(faces, n_out @ S), atol=1e-10 * scale)
    assert np.abs(f.reshape(-1, 3).sum(0)).max() < 1e-10 * scale


# -- loads -----------------------------------------------------------------------------------------
def test_pressure_resultants(box):
    element, mesh, d = box
    faces, n_out = boundary_faces(mesh, 0.0, SIZE)
    p = 2.5
    f = d.pressure_force(faces, p).reshape(-1, 3)
    area = 2 * (SIZE[0] * SIZE[1] + SIZE[1] * SIZE[2] + SIZE[2] * SIZE[0])
    assert np.abs(f.sum(0)).max() < 1e-12 * p * area
    assert np.abs(np.cross(mesh.points, f).sum(0)).max() < 1e-12 * p * area  # zero moment
    # one face, x = L: positive pressure pushes into the solid, i.e. along -x (CalculiX P)
    right = faces[n_out[:, 0] == 1.0]
    Ly, Lz = SIZE[1], SIZE[2]
    f = d.pressure_force(right, p).reshape(-1, 3).sum(0)
    np.testing.assert_allclose(f, [-p * Ly * Lz, 0, 0], atol=1e-12 * p * Ly * Lz)
    # per face: same; per face node: linear p = p0 + p1 y
    np.testing.assert_allclose(
        d.pressure_force(right, np.full(len(right), p)).reshape(-1, 3).sum(0), f, atol=1e-12
    )
    et = ELEMENTS[element]
    fnodes = mesh.blocks[0].connectivity[right[:, 0][:, None], et.faces[right[:, 1]]]
    p0, p1 = 1.0, 3.0
    f_lin = d.pressure_force(right, p0 + p1 * mesh.points[fnodes, 1]).reshape(-1, 3)
    np.testing.assert_allclose(f_lin.sum(0), [-(p0 + p1 * Ly / 2) * Ly * Lz, 0, 0], rtol=1e-12, atol=1e-12)
    # moment about the z axis: -int x p(y) dA on x = L pushes in -x; M_z = -(-F_x y) summed
    Mz = -np.sum(mesh.points[:, 1] * f_lin[:, 0])
    expected = Lz * (p0 * Ly**2 / 2 + p1 * Ly**3 / 3)
    assert Mz == pytest.approx(expected, rel=1e-12)


def test_gravity_and_centrifugal_resultants(box):
    element, mesh, d = box
    rho, V = 7.85e-9, np.prod(SIZE)
    g = np.array([0.0, -9810.0, 1.0])
    fg = d.body_force(g, rho).reshape(-1, 3).sum(0)
    np.testing.assert_allclose(fg, rho * V * g, rtol=1e-12)
    # box offset from an oblique axis: resultant = rho omega^2 V r_perp(centroid) (r_perp linear in x)
    mesh2 = box_mesh(element, origin=(3.0, -1.0, 2.0), seed=7)
    d2 = Discretization(mesh2)
    p, axis, omega = np.array([0.5, 0.2, -1.0]), np.array([1.0, 2.0, 2.0]), 150.0
    fc = d2.centrifugal_force(rho, omega, p, 3 * axis).reshape(-1, 3).sum(0)
    e = axis / np.linalg.norm(axis)
    rc = np.array([3.0, -1.0, 2.0]) + SIZE / 2 - p
    r_perp = rc - (rc @ e) * e
    np.testing.assert_allclose(fc, rho * omega**2 * V * r_perp, rtol=1e-12)
    # point-wise density and acceleration are accepted
    fd = d.body_force(np.tile(g, (d.n_points, 1)), np.full(d.n_points, rho)).reshape(-1, 3).sum(0)
    np.testing.assert_allclose(fd, fg, rtol=1e-12)


# -- subsets -----------------------------------------------------------------------------------------
def test_subsets_sum_to_whole():
    mesh = merge(
        box_mesh("C3D8", n=(2, 2, 1)),
        box_mesh("C3D10", n=(1, 2, 1), origin=(2.0, 0.0, 0.0)),
        box_mesh("C3D20R", n=(1, 1, 2), origin=(0.0, 2.0, 0.0)),
        box_mesh("C3D4", n=(1, 1, 1), origin=(0.0, 0.0, 3.0)),
        box_mesh("C3D8", n=(1, 1, 1), origin=(4.0, 0.0, 0.0)),  # second C3D8 block
    )
    whole = Discretization(mesh)
    assert [g.element for g in whole.groups] == ["C3D8", "C3D10", "C3D20R", "C3D4"]
    assert whole.n_points == sum(g.n_points for g in whole.groups)
    rng = np.random.default_rng(8)
    perm = rng.permutation(mesh.n_elements)
    halves = [Discretization(mesh, perm[: len(perm) // 2]), Discretization(mesh, perm[len(perm) // 2 :])]
    assert np.all(np.diff(halves[0].elements) > 0)

    def stress(x):  # a smooth stress field of the point coordinates
        return np.stack([np.sin(x[:, 0]), x[:, 1] ** 2, x[:, 2], x[:, 0] * x[:, 1], np.cos(x[:, 2]), x[:, 1]], 1)

    def tangent(x):
        return isotropic_stiffness(1000.0 * (1.0 + x[:, 0] ** 2), 0.3)

    fw = whole.internal_force(stress(whole.point_coordinates))
    fh = sum(h.internal_force(stress(h.point_coordinates)) for h in halves)
    np.testing.assert_allclose(fh, fw, atol=1e-12 * np.abs(fw).max())
    Kw = whole.stiffness(tangent(whole.point_coordinates))
    Kh = sum(h.stiffness(tangent(h.point_coordinates)) for h in halves)
    assert abs(Kw - Kh).max() < 1e-12 * abs(Kw).max()
    Mw, Mh = whole.mass_matrix(2.0), sum(h.mass_matrix(2.0) for h in halves)
    assert abs(Mw - Mh).max() < 1e-14
    # pressure on every face of every element (each face belongs to exactly one element)
    n_faces = np.array([ELEMENTS[b.element].n_faces for b in mesh.blocks])[
        mesh.element_block(np.arange(mesh.n_elements))[0]
    ]
    faces = np.stack([np.repeat(np.arange(mesh.n_elements), n_faces),
                      np.concatenate([np.arange(k) for k in n_faces])], 1)
    p = rng.uniform(1, 2, len(faces))
    pw = whole.pressure_force(faces, p)
    ph = sum(h.pressure_force(faces, p) for h in halves)
    np.testing.assert_allclose(ph, pw, atol=1e-13 * np.abs(pw).max())
    # integration point data partition the whole's
    w = np.concatenate([h.point_weights for h in halves])
    assert w.sum() == pytest.approx(whole.point_weights.sum(), rel=1e-14)
    assert sorted(np.concatenate([h.point_elements for h in halves])) == sorted(whole.point_elements)
    # point_elements index the elements of the group data
    for h in halves:
        for g in h.groups:
            assert np.array_equal(h.point_elements[g.points], np.repeat(g.elements, g.n_element_points))


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("element", ["C3D8", "C3D10"])
def test_inverted_element_raises_naming_it(element):
    mesh = box_mesh(element, n=(3, 3, 2), perturb=0.0)
    conn = mesh.blocks[0].connectivity.copy()
    if element == "C3D8":
        conn[17] = conn[17][[4, 5, 6, 7, 0, 1, 2, 3]]  # mirror through the mid plane
    else:
        conn[17] = conn[17][[0, 2, 1, 3, 6, 5, 4, 7, 9, 8]]  # swap corners 1 and 2 (and mid-sides)
    bad = Mesh(mesh.points, [CellBlock(element, conn)])
    with pytest.raises(MeshError, match=rf"element 17 \(block 0, {element}\).*non-positive Jacobian.*integration point"):
        Discretization(bad)
    # a subset without element 17 is fine
    Discretization(bad, np.setdiff1d(np.arange(bad.n_elements), [17]))


def test_empty_subset_contributes_nothing():
    mesh = box_mesh("C3D10", n=(1, 1, 1))
    d = Discretization(mesh, np.array([], dtype=np.int64))
    faces, _ = boundary_faces(mesh, 0.0, SIZE)
    assert d.n_points == 0 and d.groups == []
    assert d.stiffness(C_ISO).nnz == 0 and d.mass_matrix(1.0).nnz == 0
    assert d.strain_operator().shape == (0, mesh.n_dofs)
    assert not d.internal_force(np.zeros((0, 6))).any()
    assert not d.pressure_force(faces, np.ones(len(faces))).any()
    assert all(len(a) == 0 for a in d.stiffness_coo(C_ISO))


def test_bad_inputs_raise_mesh_error():
    mesh = box_mesh("C3D8", n=(1, 1, 1))
    d = Discretization(mesh)
    with pytest.raises(MeshError, match="elements"):
        Discretization(mesh, [0, 5])
    with pytest.raises(MeshError, match="local face 6"):
        d.pressure_force(np.array([[0, 6]]), 1.0)
    with pytest.raises(MeshError, match="element 3"):
        d.pressure_force(np.array([[3, 0]]), 1.0)
    with pytest.raises(MeshError, match="pressure"):
        d.pressure_force(np.array([[0, 0], [0, 1]]), np.ones(3))
    with pytest.raises(MeshError, match="tangent"):
        d.stiffness(np.eye(5))
    with pytest.raises(MeshError, match="stress"):
        d.internal_force(np.zeros((3, 6)))
    with pytest.raises(MeshError, match="u "):
        d.strain(np.zeros(5))
