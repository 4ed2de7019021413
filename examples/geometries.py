"""Parametrized 3D example parts meshed with gmsh (OpenCASCADE kernel), read back as :class:`Mesh`.

Every function builds the geometry, names physical groups, meshes with tetrahedra (``order=2``:
10-node, mid-side nodes on the true geometry; ``order=1``: 4-node), saves a ``.msh`` (format 4.1) and
reads it back through :func:`structrom.rom.fem.io.read_mesh`, so physical groups become node, surface and element
sets. gmsh runs single-threaded with a fixed algorithm, so a given set of arguments gives the same mesh.

Mesh size and degrees of freedom: ``mesh_size`` is gmsh's maximum element size (model units). For
quadratic tetrahedra the number of nodes is about ``1.3 V / h^3`` (``V``: part volume), i.e. dofs scale
like ``h^-3``; :func:`size_for_dofs` finds ``h`` for a target number of dofs by extrapolating from a
coarse pilot mesh (and refining the guess with pilots at most ``pilot_max_dofs`` large).

Timings (2 cores, gmsh 4.8): plate ~91k dofs (C3D10) in 1.0 s, ~330k in 8 s; blade ~50k dofs in
8.4 s, of which 6.6 s is ``setOrder(2)`` projecting mid-side nodes onto the lofted B-spline faces
(grows linearly with the surface mesh).
"""
from __future__ import annotations

import contextlib
import inspect
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Sequence

import gmsh
import numpy as np

from structrom.rom.fem.io import read_mesh
from structrom.rom.fem.mesh import Mesh, MeshError

__all__ = ["plate_with_holes", "blade", "size_for_dofs", "naca4_profile"]


@contextlib.contextmanager
def _gmsh_session(name: str) -> Iterator[None]:
    """Initialise gmsh quietly and deterministically; finalise even on errors."""
    gmsh.initialize([], readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.Verbosity", 2)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay 2D
        gmsh.option.setNumber("Mesh.Algorithm3D", 1)  # Delaunay 3D
        gmsh.option.setNumber("Mesh.RandomFactor", 1e-9)
        gmsh.option.setNumber("Mesh.Binary", 1)
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.SaveAll", 0)
        gmsh.model.add(name)
        yield
    finally:
        gmsh.finalize()


def _surfaces_in_box(xmin, ymin, zmin, xmax, ymax, zmax, eps) -> list[int]:
    return [t for _, t in gmsh.model.getEntitiesInBoundingBox(
        xmin - eps, ymin - eps, zmin - eps, xmax + eps, ymax + eps, zmax + eps, 2)]


def _mesh_and_read(volumes: list[int], groups: dict[str, list[int]], volume_name: str,
                   mesh_size: float, order: int, path: str | Path | None, curvature_points: int) -> Mesh:
    if order not in (1, 2):
        raise MeshError(f"order must be 1 (C3D4) or 2 (C3D10), got {order}")
    if not mesh_size > 0:
        raise MeshError(f"mesh_size must be positive, got {mesh_size}")
    for name, tags in groups.items():
        if not tags:
            raise MeshError(f"geometry has no surfaces for physical group {name!r}; check the parameters")
        _named(2, tags, name)
    _named(3, volumes, volume_name)
    gmsh.option.setNumber("Mesh.MeshSizeMax", mesh_size)
    gmsh.option.setNumber("Mesh.MeshSizeMin", mesh_size / 20)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", curvature_points)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 1)
    gmsh.model.mesh.generate(3)
    if order == 2:
        gmsh.option.setNumber("Mesh.SecondOrderLinear", 0)
        gmsh.model.mesh.setOrder(2)
        _straighten_inverted()
    with contextlib.ExitStack() as stack:
        if path is None:
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "mesh.msh"
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        gmsh.write(str(path))
        return read_mesh(path)


#: gmsh's 10-node tetrahedron: mid-side nodes 4..9 on these corner pairs (gmsh's ``MTetrahedron10`` edge order).
_TET10_EDGES = ((0, 1), (1, 2), (2, 0), (3, 0), (3, 2), (3, 1))


def _inverted_tet10() -> tuple[np.ndarray, np.ndarray]:
    """``(tags (m,), nodes (m, 10))`` of the 10-node tetrahedra whose Jacobian determinant is not positive at one of
    their 4 Gauss points or their corners (gmsh's own shape functions)."""
    tags, nodes = gmsh.model.mesh.getElementsByType(11)
    if not len(tags):
        return np.zeros(0, np.int64), np.zeros((0, 10), np.int64)
    a, b = 0.1381966011250105, 0.5854101966249685
    local = [a, a, a, b, a, a, a, b, a, a, a, b, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    det = np.asarray(gmsh.model.mesh.getJacobians(11, local)[1]).reshape(len(tags), -1)
    bad = ~np.all(det > 0, axis=1)
    return np.asarray(tags, np.int64)[bad], np.asarray(nodes, np.int64).reshape(-1, 10)[bad]


def _straighten_inverted(passes: int = 3) -> None:
    """10-node tetrahedra that the mid-side nodes' projection onto curved faces inverts (slivers whose four corners
    lie on one curved face, which gmsh's high-order optimizer does not untangle) get their mid-side nodes back on the
    straight edges (the chord midpoints: a local geometric error of the edge's sagitta, e.g. 0.08 mm on a 6 mm hole
    meshed at 2.5 mm). Repeated while a straightened neighbour is inverted; :class:`MeshError` if some still are."""
    for _ in range(passes):
        tags, conn = _inverted_tet10()
        if not len(tags):
            return
        for c in conn:
            corners = [np.asarray(gmsh.model.mesh.getNode(int(n))[0]) for n in c[:4]]
            for k, (i, j) in enumerate(_TET10_EDGES):
                gmsh.model.mesh.setNode(int(c[4 + k]), list(0.5 * (corners[i] + corners[j])), [])
    tags, _ = _inverted_tet10()
    if len(tags):
        raise MeshError(f"{len(tags)} quadratic tetrahedra stay inverted with straight edges (first: gmsh element "
                        f"{int(tags[0])}); change mesh_size")


def _named(dim: int, tags: list[int], name: str) -> None:
    """Physical group with a name (gmsh 4.8's addPhysicalGroup has no name argument)."""
    tag = gmsh.model.addPhysicalGroup(dim, sorted(tags))
    gmsh.model.setPhysicalName(dim, tag, name)


def plate_with_holes(
    length: float = 100.0,
    width: float = 40.0,
    thickness: float = 5.0,
    holes: Sequence[tuple[float, float, float]] = ((50.0, 20.0, 8.0),),
    notch_depth: float = 0.0,
    mesh_size: float = 5.0,
    order: int = 2,
    path: str | Path | None = None,
    curvature_points: int = 16,
) -> Mesh:
    """A plate ``[0, length] x [0, width] x [0, thickness]`` with through holes and optional notches.

    ``holes``: ``(x, y, r)`` circles (must lie inside the plate); ``notch_depth > 0`` cuts two
    semicircular side notches of that radius at ``x = length / 2`` (at ``y = 0`` and ``y = width``).
    Groups: surfaces ``left`` (x = 0, to clamp), ``right`` (x = length), ``top`` (z = thickness),
    ``bottom`` (z = 0), ``holes`` (hole walls, if any), ``notches`` (if any); volume ``plate``.
    ``curvature_points``: elements per 2 pi on curved edges (gmsh ``MeshSizeFromCurvature``).
    ``path``: where to keep the ``.msh`` (default: a temporary file).
    """
    for x, y, r in holes:
        if not (r > 0 and r < x < length - r and r < y < width - r):
            raise MeshError(f"hole (x={x}, y={y}, r={r}) does not lie inside the {length} x {width} plate")
    if notch_depth < 0 or 2 * notch_depth >= width:
        raise MeshError(f"notch_depth must be in [0, width / 2), got {notch_depth}")
    eps = 1e-6 * max(length, width, thickness)
    with _gmsh_session("plate_with_holes"):
        occ = gmsh.model.occ
        plate = occ.addBox(0, 0, 0, length, width, thickness)
        tools = [(3, occ.addCylinder(x, y, -thickness, 0, 0, 3 * thickness, r)) for x, y, r in holes]
        if notch_depth > 0:
            tools += [(3, occ.addCylinder(length / 2, y, -thickness, 0, 0, 3 * thickness, notch_depth))
                      for y in (0.0, width)]
        if tools:
            out, _ = occ.cut([(3, plate)], tools)
            volumes = [t for d, t in out if d == 3]
        else:
            volumes = [plate]
        occ.synchronize()
        groups = {
            "left": _surfaces_in_box(0, 0, 0, 0, width, thickness, eps),
            "right": _surfaces_in_box(length, 0, 0, length, width, thickness, eps),
            "top": _surfaces_in_box(0, 0, thickness, length, width, thickness, eps),
            "bottom": _surfaces_in_box(0, 0, 0, length, width, 0, eps),
        }
        if holes:
            groups["holes"] = sorted({s for x, y, r in holes
                                      for s in _surfaces_in_box(x - r, y - r, 0, x + r, y + r, thickness, eps)})
        if notch_depth > 0:
            d = notch_depth
            groups["notches"] = sorted(
                _surfaces_in_box(length / 2 - d, 0, 0, length / 2 + d, d, thickness, eps)
                + _surfaces_in_box(length / 2 - d, width - d, 0, length / 2 + d, width, thickness, eps))
        return _mesh_and_read(volumes, groups, "plate", mesh_size, order, path, curvature_points)


def naca4_profile(chord: float, thickness: float, camber: float = 0.04, camber_pos: float = 0.4,
                  n: int = 24) -> np.ndarray:
    """NACA 4-digit-like profile points ``(2 n - 1, 2)`` in the x-y plane, leading edge at the origin.

    Runs from the upper trailing edge over the leading edge to the lower trailing edge; the trailing
    edge is blunt (the closed form's finite thickness there). ``thickness`` and ``camber`` are fractions
    of the chord.
    """
    beta = np.linspace(0.0, np.pi, n)
    x = 0.5 * (1 - np.cos(beta))  # clustered at both edges
    yt = 5 * thickness * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1015 * x**4)
    p, m = camber_pos, camber
    yc = np.where(x < p, m / p**2 * (2 * p * x - x**2), m / (1 - p) ** 2 * (1 - 2 * p + 2 * p * x - x**2))
    dyc = np.where(x < p, 2 * m / p**2 * (p - x), 2 * m / (1 - p) ** 2 * (p - x))
    th = np.arctan(dyc)
    upper = np.stack([x - yt * np.sin(th), yc + yt * np.cos(th)], axis=1)
    lower = np.stack([x + yt * np.sin(th), yc - yt * np.cos(th)], axis=1)
    pts = np.concatenate([upper[::-1], lower[1:]])
    return chord * pts


def blade(
    chord: float = 40.0,
    span: float = 100.0,
    thickness_ratio: float = 0.15,
    twist_deg: float = 20.0,
    root_height: float = 20.0,
    root_width: float = 30.0,
    root_neck: float = 14.0,
    mesh_size: float = 6.0,
    order: int = 2,
    path: str | Path | None = None,
    sections: int = 4,
    curvature_points: int = 16,
) -> Mesh:
    """A simplified blade: a dovetail root plus a twisted, cambered NACA-like airfoil.

    Axes: x axial (chord direction at the root), y circumferential, z radial (span). The dovetail
    root occupies ``z`` in ``[-root_height, 0]`` and ``x`` in ``[-0.1 chord, 1.1 chord]``; its cross section
    (y-z plane) is a trapezoid ``root_width`` wide at the bottom and ``root_neck`` at ``z = 0``. The
    airfoil (chord ``chord``, thickness ``thickness_ratio``) runs from inside the root to ``z = span``
    through ``sections`` sections twisted linearly up to ``twist_deg`` at the tip (about the
    quarter-chord point), lofted with OpenCASCADE ``addThruSections`` and fused with the root.
    Groups: ``root`` (dovetail flanks and bottom, to clamp), ``tip`` (z = span), ``airfoil`` (the
    airfoil's side surfaces above the root), ``platform`` (root top at z = 0); volume ``blade``.
    """
    if sections < 2:
        raise MeshError(f"sections must be >= 2, got {sections}")
    if root_neck >= root_width:
        raise MeshError("root_neck must be smaller than root_width (dovetail)")
    profile = naca4_profile(chord, thickness_ratio)
    max_half = np.abs(profile[:, 1]).max()
    if root_neck < 2 * max_half:
        raise MeshError(f"root_neck {root_neck} is narrower than the airfoil ({2 * max_half:.3g}); widen it")
    eps = 1e-5 * max(chord, span)
    with _gmsh_session("blade"):
        occ = gmsh.model.occ
        wires = []
        zs = np.linspace(-0.5 * root_height, span, sections)
        pivot = np.array([0.25 * chord, 0.0])
        for z in zs:
            angle = np.deg2rad(twist_deg) * max(z, 0.0) / span
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            pts = (profile - pivot) @ rot.T + pivot
            tags = [occ.addPoint(px, py, z) for px, py in pts]
            spline = occ.addSpline(tags)
            te = occ.addLine(tags[-1], tags[0])
            wires.append(occ.addWire([spline, te]))
        loft = occ.addThruSections(wires, makeSolid=True, makeRuled=False)
        # dovetail: trapezoid in y-z, extruded along x
        x0, x1 = -0.1 * chord, 1.1 * chord
        corners = [(-root_width / 2, -root_height), (root_width / 2, -root_height),
                   (root_neck / 2, 0.0), (-root_neck / 2, 0.0)]
        pts = [occ.addPoint(x0, y, z) for y, z in corners]
        lines = [occ.addLine(pts[k], pts[(k + 1) % 4]) for k in range(4)]
        face = occ.addPlaneSurface([occ.addCurveLoop(lines)])
        root = [t for d, t in occ.extrude([(2, face)], x1 - x0, 0, 0) if d == 3]
        out, _ = occ.fuse([(3, root[0])], [e for e in loft if e[0] == 3])
        occ.synchronize()
        volumes = [t for d, t in gmsh.model.getEntities(3)]
        groups: dict[str, list[int]] = {"root": [], "tip": [], "airfoil": [], "platform": []}
        for _, s in gmsh.model.getEntities(2):
            bx0, by0, bz0, bx1, by1, bz1 = gmsh.model.getBoundingBox(2, s)
            if bz0 > span - eps:
                groups["tip"].append(s)
            elif bz1 < eps and bz0 > -eps:
                groups["platform"].append(s)
            elif bz1 < eps:
                if bx1 - bx0 > eps:  # flanks and bottom; the x = const ends are free
                    groups["root"].append(s)
            else:
                groups["airfoil"].append(s)
        return _mesh_and_read(volumes, groups, "blade", mesh_size, order, path, curvature_points)


def size_for_dofs(
    func: Callable[..., Mesh],
    target_dofs: int,
    *,
    pilot_size: float | None = None,
    pilot_max_dofs: int = 30_000,
    iterations: int = 4,
    rtol: float = 0.1,
    **kwargs,
) -> float:
    """Mesh size giving about ``target_dofs`` degrees of freedom for ``func(mesh_size=..., **kwargs)``.

    Pilot meshes aim at ``aim = min(target_dofs, pilot_max_dofs)``: a first one at ``pilot_size``
    (default: ``func``'s default ``mesh_size``), then secant steps on ``log dofs`` vs ``log h`` until
    within ``rtol`` of ``aim`` (at most ``iterations`` more meshes). A larger target is extrapolated
    from the two last pilots with their local exponent ``dofs ~ h^-k`` (``k`` clamped to [2.2, 3]),
    so no mesh larger than ~``pilot_max_dofs`` is generated here. Measured (gmsh 4.8): plate target
    10k -> 10.9k, 100k -> 91k dofs; blade target 100k -> 50k (its curvature-refined airfoil grows
    slower than ``h^-3``): for large targets, check ``n_dofs`` and rescale once if needed.
    """
    if target_dofs < 100:
        raise MeshError(f"target_dofs must be >= 100, got {target_dofs}")
    aim = min(target_dofs, pilot_max_dofs)
    h = float(pilot_size if pilot_size is not None else inspect.signature(func).parameters["mesh_size"].default)
    history = [(h, func(mesh_size=h, **kwargs).n_dofs)]
    for _ in range(max(iterations, 1)):
        h_b, d_b = history[-1]
        if abs(d_b / aim - 1) <= rtol and len(history) > 1:
            break
        k = 3.0
        if len(history) > 1:
            h_a, d_a = history[-2]
            if d_a != d_b and h_a != h_b:
                k = float(np.clip(np.log(d_b / d_a) / np.log(h_a / h_b), 1.0, 4.0))
        h = h_b * (d_b / aim) ** (1.0 / k)
        history.append((h, func(mesh_size=h, **kwargs).n_dofs))
    h_b, d_b = history[-1]
    if target_dofs <= pilot_max_dofs:
        return h_b
    h_a, d_a = history[-2]
    k = np.log(d_b / d_a) / np.log(h_a / h_b) if d_a != d_b and h_a != h_b else 3.0
    k = float(np.clip(k, 2.2, 3.0))
    return h_b * (d_b / target_dofs) ** (1.0 / k)
