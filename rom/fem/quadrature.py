"""Gauss rules, with CalculiX 2.20's points, weights and point ordering (``src/gauss.f``).

Every rule is a :class:`QuadratureRule` named after the ``gauss.f`` array it reproduces. Points are
rows of ``points`` in the order of ``gauss.f``'s columns; CalculiX numbers integration points in the
same order (``kk = 1..mint3d`` in ``e_c3d.f``), so point ``k`` here is CalculiX's point ``k + 1``.

Volume rules, as used by CalculiX's ``e_c3d.f`` for each element type:

========  ==========  ======  ==================================================================
element   gauss.f     points  reference domain, ordering
========  ==========  ======  ==================================================================
C3D4      gauss3d4    1       tet ``0 <= xi, eta, zeta``, ``xi + eta + zeta <= 1``; (1/4, 1/4, 1/4)
C3D10     gauss3d5    4       same tet; (a,a,a), (b,a,a), (a,b,a), (a,a,b) with
                              a = (5 - sqrt 5)/20 = 0.138196601125011,
                              b = (5 + 3 sqrt 5)/20 = 0.585410196624968; weights 1/24
C3D8      gauss3d2    8       cube ``[-1, 1]^3``, 2x2x2 at +-1/sqrt 3, ``xi`` fastest, then ``eta``,
C3D20R    gauss3d2    8       then ``zeta``: (-,-,-), (+,-,-), (-,+,-), (+,+,-), (-,-,+), ...
C3D20     gauss3d3    27      cube, 3x3x3 at (-sqrt(3/5), 0, +sqrt(3/5)), ``xi`` fastest, then
                              ``eta``, then ``zeta``; weights products of 5/9, 8/9, 5/9
C3D6      gauss3d7    2       wedge ``0 <= xi, eta``, ``xi + eta <= 1``, ``-1 <= zeta <= 1``;
                              (1/3, 1/3, -1/sqrt 3), (1/3, 1/3, +1/sqrt 3); weights 1/2
C3D15     gauss3d8    9       same wedge; gauss2d5's 3 triangle points (1/6, 1/6), (2/3, 1/6),
                              (1/6, 2/3) (fastest) times zeta = -sqrt(3/5), 0, +sqrt(3/5);
                              weights 1/6 times 5/9, 8/9, 5/9
========  ==========  ======  ==================================================================

(CalculiX's ``gauss3d1`` is the 1-point *hex* rule of C3D8R; the 1-point *tet* rule of C3D4 is
``gauss3d4``.) The tet parameter space is CalculiX's ``shape4tet.f``/``shape10tet.f`` one: node 1 at
the origin, nodes 2, 3, 4 at the unit points of the xi, eta and zeta axes. Weights sum to the
reference volume (1/6 for the tet, 8 for the cube, 1 for the wedge). The wedge is ``shape6w.f``/``shape15w.f``'s:
a triangle in (xi, eta) times [-1, 1] in zeta. The wedge points and their order were checked against ccx 2.20 by
printing the stress of one element under a prescribed displacement whose strain differs at every point
(``tests/test_wedge_elements.py``).

Face rules (for face loads): ``gauss2d5`` (3 points, degree 2) on tri3 faces, ``gauss2d6`` (7 points,
degree 5) on tri6 faces, ``gauss2d2`` (2x2) on quad4 faces and ``gauss2d3`` (3x3) on quad8 faces; the
triangle is ``0 <= r, s``, ``r + s <= 1`` (weights sum 1/2), the quad ``[-1, 1]^2`` (weights sum 4),
``r`` fastest. Wedge faces take the rule of their shape too (tri3/tri6 for S1, S2; quad4/quad8 for S3..S5), where
ccx takes fewer points (1 point on C3D6 faces, 3 and 2x2 on C3D15's): the same nodal forces on flat faces with
parallelogram quadrilaterals, exact ones (ours) otherwise.

The coordinates are computed in closed form (to full double precision) rather than copied from the
15-digit decimals of ``gauss.f``; they agree with them to 1e-15.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuadratureRule:
    """A quadrature rule on a reference domain.

    ``points``: ``(n_points, dim)`` reference coordinates; ``weights``: ``(n_points,)``.
    ``name`` is the CalculiX ``gauss.f`` array reproduced (e.g. ``"gauss3d2"``).
    """

    name: str
    points: np.ndarray
    weights: np.ndarray

    @property
    def n_points(self) -> int:
        return len(self.weights)

    @property
    def dim(self) -> int:
        return self.points.shape[1]


def _tensor_rule(name: str, x1d: np.ndarray, w1d: np.ndarray, dim: int) -> QuadratureRule:
    """Tensor-product Gauss rule with the first coordinate varying fastest (gauss.f's order)."""
    n = len(x1d)
    # np.indices rows go slowest..fastest; reversed, column 0 (xi) is the fastest index.
    idx = np.indices((n,) * dim).reshape(dim, -1)[::-1].T
    points = x1d[idx]
    weights = np.prod(w1d[idx], axis=1)
    return QuadratureRule(name, np.ascontiguousarray(points), weights)


_G2 = np.array([-1.0, 1.0]) / np.sqrt(3.0)
_W2 = np.array([1.0, 1.0])
_G3 = np.array([-np.sqrt(0.6), 0.0, np.sqrt(0.6)])
_W3 = np.array([5.0, 8.0, 5.0]) / 9.0

#: 2x2x2 hex rule (C3D8, C3D20R).
GAUSS3D2 = _tensor_rule("gauss3d2", _G2, _W2, 3)
#: 3x3x3 hex rule (C3D20).
GAUSS3D3 = _tensor_rule("gauss3d3", _G3, _W3, 3)
#: 1-point tet rule (C3D4).
GAUSS3D4 = QuadratureRule("gauss3d4", np.full((1, 3), 0.25), np.array([1.0 / 6.0]))


def _gauss3d5() -> QuadratureRule:
    a = (5.0 - np.sqrt(5.0)) / 20.0
    b = (5.0 + 3.0 * np.sqrt(5.0)) / 20.0
    pts = np.full((4, 3), a)
    pts[1, 0] = pts[2, 1] = pts[3, 2] = b
    return QuadratureRule("gauss3d5", pts, np.full(4, 1.0 / 24.0))


#: 4-point tet rule (C3D10), degree 2.
GAUSS3D5 = _gauss3d5()

def _wedge_rule(name: str, tri: np.ndarray, w_tri: np.ndarray, z: np.ndarray, w_z: np.ndarray) -> QuadratureRule:
    """Triangle rule (fastest) times a 1D Gauss rule in zeta."""
    pts = np.column_stack([np.tile(tri, (len(z), 1)), np.repeat(z, len(tri))])
    return QuadratureRule(name, pts, np.repeat(w_z, len(tri)) * np.tile(w_tri, len(z)))


_TRI3_POINTS = np.array([[1.0, 1.0], [4.0, 1.0], [1.0, 4.0]]) / 6.0
#: 2-point wedge rule (C3D6): the triangle's centroid times 2-point Gauss in zeta.
GAUSS3D7 = _wedge_rule("gauss3d7", np.full((1, 2), 1.0 / 3.0), np.array([0.5]), _G2, _W2)
#: 9-point wedge rule (C3D15): the 3-point triangle rule times 3-point Gauss in zeta.
GAUSS3D8 = _wedge_rule("gauss3d8", _TRI3_POINTS, np.full(3, 1.0 / 6.0), _G3, _W3)

#: 2x2 quad rule (quad4 faces).
GAUSS2D2 = _tensor_rule("gauss2d2", _G2, _W2, 2)
#: 3x3 quad rule (quad8 faces).
GAUSS2D3 = _tensor_rule("gauss2d3", _G3, _W3, 2)
#: 3-point triangle rule (tri3 faces), degree 2.
GAUSS2D5 = QuadratureRule("gauss2d5", _TRI3_POINTS, np.full(3, 1.0 / 6.0))


def _gauss2d6() -> QuadratureRule:
    # 7-point degree-5 rule (Dunavant / Cowper), in gauss2d6's order; weights sum to 1/2.
    s15 = np.sqrt(15.0)
    a1, b1 = (6.0 - s15) / 21.0, (9.0 + 2.0 * s15) / 21.0
    a2, b2 = (6.0 + s15) / 21.0, (9.0 - 2.0 * s15) / 21.0
    w1, w2 = (155.0 - s15) / 2400.0, (155.0 + s15) / 2400.0
    pts = np.array(
        [[1 / 3, 1 / 3], [b1, a1], [a1, b1], [a1, a1], [a2, b2], [b2, a2], [a2, a2]]
    )
    return QuadratureRule("gauss2d6", pts, np.array([9.0 / 80.0, w1, w1, w1, w2, w2, w2]))


#: 7-point triangle rule (tri6 faces), degree 5.
GAUSS2D6 = _gauss2d6()

#: All rules by their gauss.f name.
RULES: dict[str, QuadratureRule] = {
    r.name: r
    for r in (GAUSS3D2, GAUSS3D3, GAUSS3D4, GAUSS3D5, GAUSS3D7, GAUSS3D8, GAUSS2D2, GAUSS2D3, GAUSS2D5, GAUSS2D6)
}
