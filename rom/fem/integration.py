"""Integration-point data of the elements of one type, and the point-wise linear algebra on it.

:class:`BlockIntegration` holds, for the elements of one type, the shape function values ``N``
``(n_q, n_en)``, the spatial gradients ``(n_e, n_q, n_en, 3)`` [1/length] and the volume weights
``(n_e, n_q)`` [length^3] at the integration points, with the chunking rule that keeps the temporaries
of the vectorized operators bounded (:data:`CHUNK_ENTRIES`). The helpers work on stacks of small
matrices: 3x3 Jacobian inverses, strain-displacement matrices ``B`` ``(..., 6, 3 n_en)`` from spatial
gradients, and the Voigt conversions (strains with engineering shears, stresses with tensor shears;
:mod:`structrom.rom.voigt`). :class:`structrom.rom.fem.kernel.Discretization` builds these groups.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Target number of float64 entries in one chunk's temporaries (about 128 MB).
CHUNK_ENTRIES = 16_000_000
#: At most this many elements per chunk.
MAX_CHUNK_ELEMENTS = 50_000
#: Element types whose integration points take the mean of the element's nodal temperatures instead of
#: the shape-function interpolation, as CalculiX 2.20 does (C3D8: checked against ccx, stresses agree to
#: 7e-7 with the mean and differ by O(1) with the interpolation on a bar with a temperature gradient).
ELEMENT_MEAN_TEMPERATURE = frozenset({"C3D8"})


def b_matrix(G: np.ndarray) -> np.ndarray:
    """Strain-displacement matrices from spatial gradients.

    ``G``: ``(..., n_en, 3)`` with ``G[..., a, i] = dN_a/dx_i``. Returns ``(..., 6, 3 n_en)`` with columns
    node-major (``3 a + c``) and rows xx yy zz xy yz zx (engineering shears).
    """
    n_en = G.shape[-2]
    B = np.zeros(G.shape[:-2] + (6, n_en, 3))
    gx, gy, gz = G[..., 0], G[..., 1], G[..., 2]
    B[..., 0, :, 0] = gx
    B[..., 1, :, 1] = gy
    B[..., 2, :, 2] = gz
    B[..., 3, :, 0] = gy
    B[..., 3, :, 1] = gx
    B[..., 4, :, 1] = gz
    B[..., 4, :, 2] = gy
    B[..., 5, :, 0] = gz
    B[..., 5, :, 2] = gx
    return B.reshape(G.shape[:-2] + (6, 3 * n_en))


def _det_inv3(J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Determinants ``(...)`` and inverses ``(..., 3, 3)`` of 3x3 matrices by the adjugate formula
    (faster than LAPACK for many tiny matrices). Inverses of singular matrices are not finite."""
    a = J
    adj = np.empty_like(a)  # adjugate = transposed cofactor matrix
    adj[..., 0, 0] = a[..., 1, 1] * a[..., 2, 2] - a[..., 1, 2] * a[..., 2, 1]
    adj[..., 0, 1] = a[..., 0, 2] * a[..., 2, 1] - a[..., 0, 1] * a[..., 2, 2]
    adj[..., 0, 2] = a[..., 0, 1] * a[..., 1, 2] - a[..., 0, 2] * a[..., 1, 1]
    adj[..., 1, 0] = a[..., 1, 2] * a[..., 2, 0] - a[..., 1, 0] * a[..., 2, 2]
    adj[..., 1, 1] = a[..., 0, 0] * a[..., 2, 2] - a[..., 0, 2] * a[..., 2, 0]
    adj[..., 1, 2] = a[..., 0, 2] * a[..., 1, 0] - a[..., 0, 0] * a[..., 1, 2]
    adj[..., 2, 0] = a[..., 1, 0] * a[..., 2, 1] - a[..., 1, 1] * a[..., 2, 0]
    adj[..., 2, 1] = a[..., 0, 1] * a[..., 2, 0] - a[..., 0, 0] * a[..., 2, 1]
    adj[..., 2, 2] = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    det = a[..., 0, 0] * adj[..., 0, 0] + a[..., 0, 1] * adj[..., 1, 0] + a[..., 0, 2] * adj[..., 2, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return det, adj / det[..., None, None]


def _voigt_from_gradient(H: np.ndarray) -> np.ndarray:
    """Engineering-shear Voigt strains ``(..., 6)`` from ``H[..., i, c] = du_c/dx_i`` ``(..., 3, 3)``."""
    return np.stack(
        [
            H[..., 0, 0],
            H[..., 1, 1],
            H[..., 2, 2],
            H[..., 0, 1] + H[..., 1, 0],
            H[..., 1, 2] + H[..., 2, 1],
            H[..., 2, 0] + H[..., 0, 2],
        ],
        axis=-1,
    )


def _tensor_from_voigt(s: np.ndarray) -> np.ndarray:
    """Symmetric tensors ``(..., 3, 3)`` from stress-like (tensor-shear) Voigt vectors ``(..., 6)``."""
    i = np.array([[0, 3, 5], [3, 1, 4], [5, 4, 2]])
    return s[..., i]


@dataclass
class BlockIntegration:
    """Integration-point data of the elements of one type.

    Shapes (``n_e`` elements, ``n_en`` nodes per element, ``n_q`` points per element):

    * ``elements`` ``(n_e,)`` ascending global element indices; ``nodes`` ``(n_e, n_en)``;
      ``dofs`` ``(n_e, 3 n_en)`` node-major ``3 node + c``;
    * ``N`` ``(n_q, n_en)`` shape function values at the points;
    * ``gradients`` ``(n_e, n_q, n_en, 3)`` spatial gradients ``dN_a/dx_i`` (1/length);
    * ``weights`` ``(n_e, n_q)`` volume weights ``|det J| w_q`` (length^3);
    * ``point_offset``: index of the group's first point in the flat point arrays (points of element
      ``e`` and point ``q`` at ``point_offset + e n_q + q``).
    """

    element: str
    elements: np.ndarray
    nodes: np.ndarray
    dofs: np.ndarray
    N: np.ndarray
    gradients: np.ndarray
    weights: np.ndarray
    point_offset: int

    @property
    def N_temperature(self) -> np.ndarray:
        """``(n_q, n_en)`` weights of the nodal temperatures at the points: ``N``, or the element mean for
        the types of :data:`ELEMENT_MEAN_TEMPERATURE` (CalculiX's rule)."""
        if self.element in ELEMENT_MEAN_TEMPERATURE:
            return np.full(self.N.shape, 1.0 / self.N.shape[1])
        return self.N

    @property
    def n_elements(self) -> int:
        return len(self.elements)

    @property
    def n_element_points(self) -> int:
        return self.N.shape[0]

    @property
    def n_points(self) -> int:
        return self.n_elements * self.n_element_points

    @property
    def points(self) -> slice:
        """Slice of this group's points in the flat point arrays."""
        return slice(self.point_offset, self.point_offset + self.n_points)

    @property
    def B(self) -> np.ndarray:
        """``(n_e, n_q, 6, 3 n_en)`` strain-displacement matrices, built on demand (not cached: it is
        18 n_en floats per point; prefer :meth:`chunks` with :func:`b_matrix` for large groups)."""
        return b_matrix(self.gradients)

    def chunks(self, entries_per_element: int) -> list[slice]:
        """Slices of elements so that a chunk's temporaries stay below :data:`CHUNK_ENTRIES`."""
        size = int(max(1, min(MAX_CHUNK_ELEMENTS, CHUNK_ENTRIES // max(1, entries_per_element))))
        return [slice(s, min(s + size, self.n_elements)) for s in range(0, self.n_elements, size)]

