"""The offline stage's reduced points: empirical cubature of the internal forces plus the dual bases' Q-DEIM points.

The integrand ``eps(psi_i) : sigma_s`` comes in one of two forms (``form``). "factored" (the default): the ECM
works on the modes' strains and the stress snapshots themselves (:class:`structrom.rom.integrand.FactoredIntegrand`:
no integrand matrix, no row compression; the memory is the snapshots', which the stage holds anyway).
"assembled": memory per rank is one integrand matrix of this rank's points: the rows ``eps(psi_i) : sigma_s``
(:func:`structrom.rom.reduced_quadrature.integrand_rows`) are built by blocks of points and, when there are more
than ``max_rows`` of them, row-compressed block by block (:func:`structrom.rom.reduced_quadrature.compress_rows`
takes a factory of the blocks and fills the compressed ``(r, n_local)`` matrix in place), so the uncompressed
``(N n_s, n_local)`` matrix never exists whole. The Q-DEIM points of the dual bases come from the
distributed row-pivoted QR of :func:`structrom.eim.deim.qdeim` (no basis gathered).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from structrom.eim.deim import qdeim
from structrom.rom.integrand import AssembledIntegrand, FactoredIntegrand, Integrand
from structrom.rom.reduced_quadrature import (ECMError, ReducedQuadrature, RowCompression, compress_rows,
                                              empirical_cubature, integrand_rows)
from structrom.rom.stress_compression import CompressedIntegrand, compress_stress

#: Forms of the integrand (see the module docstring).
FORMS = ("factored", "assembled")

#: Integrand entries (rows x points) built at a time: 32 MiB blocks.
BLOCK_ENTRIES = 4 * 2**20
#: Integrand rows up to which the row compression diagonalizes G G^T on every rank (2 x 8 R^2 bytes: 1 GiB at
#: 8,192 rows); above, a randomized range finder without R x R arrays.
MAX_GRAM_ROWS = 8192

#: Q-DEIM pivots whose residual row norms are within this relative band of the largest tie; the lowest global
#: row wins, so that symmetric meshes (exact ties up to rounding) select the same points for any rank count.
QDEIM_TIE_RTOL = 1e-8


@dataclass
class Cubature:
    """``quadrature``: the ECM rule; ``G``: the integrand it ran on (:mod:`structrom.rom.integrand`, shape
    ``(n_rows_used, n_local)``: this rank's points); ``n_rows``: integrand rows before compression;
    ``compression``: the compression's summary (``method``, ``rank``, ``energy_error``, ...: the row compression's,
    its ``(n_rows, r)`` basis not kept, or the stress rotation's); None when not compressed."""

    quadrature: ReducedQuadrature
    G: Integrand
    n_rows: int
    compression: dict | None


def integrand_blocks(eps_modes: np.ndarray, stress: np.ndarray) -> Callable[[], Iterator[np.ndarray]]:
    """A factory of the integrand matrix's point blocks: ``(N n_s, b)`` for consecutive blocks of this rank's
    points (``eps_modes`` ``(n_local, 6, N)``, ``stress`` ``(n_local, 6, n_s)``)."""
    n_local = eps_modes.shape[0]
    n_rows = eps_modes.shape[2] * stress.shape[2]
    step = max(1, BLOCK_ENTRIES // max(n_rows, 1))

    def blocks() -> Iterator[np.ndarray]:
        if n_local == 0:
            yield np.zeros((n_rows, 0))
        for a in range(0, n_local, step):
            yield integrand_rows(eps_modes[a:a + step], stress[a:a + step])
    return blocks


def integrand_matrix(comm, eps_modes: np.ndarray, stress: np.ndarray, max_rows: int, row_tolerance: float,
                     gidx: np.ndarray | None = None,
                     max_gram_rows: int = MAX_GRAM_ROWS) -> tuple[np.ndarray, int, RowCompression | None]:
    """``(G, n_rows, compression)``: the integrand at this rank's points, row-compressed (tolerance
    ``row_tolerance``) when it has more than ``max_rows`` rows; built by blocks of points. Up to
    ``max_gram_rows`` rows the compression diagonalizes the Allreduced ``G G^T``
    (:func:`~structrom.rom.reduced_quadrature.compress_rows`); above, the randomized range finder of
    :func:`structrom.rom.row_sketch.sketch_rows` (no ``n_rows^2`` array; ``gidx``: the points' global
    numbers, for a test matrix independent of the rank count)."""
    n_rows = eps_modes.shape[2] * stress.shape[2]
    blocks = integrand_blocks(eps_modes, stress)
    if n_rows > max_rows and n_rows > max_gram_rows:
        from structrom.rom.row_sketch import sketch_rows

        ids = gidx if gidx is not None else np.arange(eps_modes.shape[0])
        rc = sketch_rows(comm, blocks, row_tolerance, ids)
        return rc.compressed_local, n_rows, rc
    if n_rows > max_rows:
        rc = compress_rows(comm, blocks, row_tolerance)
        return rc.compressed_local, n_rows, rc
    G = np.empty((n_rows, eps_modes.shape[0]))
    j = 0
    for blk in blocks():
        G[:, j:j + blk.shape[1]] = blk
        j += blk.shape[1]
    return G, n_rows, None


def cubature(comm, eps_modes: np.ndarray, stress: np.ndarray, point_weights: np.ndarray, gidx: np.ndarray, *,
             tolerance: float, row_tolerance: float, max_rows: int, max_points: int | None,
             max_gram_rows: int = MAX_GRAM_ROWS, log=None, selection: str = "greedy",
             block_size: int = 16, block_correlation: float = 0.5, screening: str = "float32",
             shortlist: int = 0, full_scores_every: int = 1, removal: str = "nonpositive",
             block_choice: str = "correlation",
             form: str = "factored", stress_compression: bool = False) -> Cubature:
    """The ECM rule of the Galerkin internal forces at this rank's points (collective); see the module
    docstring. ``log``: rank 0's progress lines (points, residual, time, estimated time left); ``selection``,
    ``block_size``, ``block_correlation``, ``screening``, ``shortlist``, ``full_scores_every``, ``removal``,
    ``block_choice``: the ECM's selection rule
    (:func:`~structrom.rom.reduced_quadrature.empirical_cubature`);
    ``form``, ``stress_compression``: the integrand's (:func:`integrand`; ``stress`` is not overwritten)."""
    G, n_rows, summary = integrand(comm, eps_modes, stress, gidx, row_tolerance=row_tolerance, max_rows=max_rows,
                                   max_gram_rows=max_gram_rows, form=form, stress_compression=stress_compression)
    quad = reduced_rule(comm, G, point_weights, gidx, tolerance=tolerance, max_points=max_points, log=log,
                        selection=selection, block_size=block_size, block_correlation=block_correlation,
                        screening=screening, shortlist=shortlist, full_scores_every=full_scores_every,
                        removal=removal, block_choice=block_choice)
    return Cubature(quad, G, n_rows, summary)


def reduced_rule(comm, G: Integrand, point_weights: np.ndarray, gidx: np.ndarray, *, tolerance: float,
                 **ecm) -> ReducedQuadrature:
    """:func:`~structrom.rom.reduced_quadrature.empirical_cubature` of ``G`` (keywords ``ecm`` passed on). For a
    :class:`~structrom.rom.stress_compression.CompressedIntegrand` the rule is found on the leading rows, then its
    residual is measured on all rows (the discarded ones too, with the constant row as in the ECM):
    ``sqrt(||r_leading||^2 + ||r_discarded||^2 + (c (V - sum w))^2) <= tolerance ||G w_FE||``, ``c = ||G w_FE|| / V``
    (the leading rows' ECM aims at ``tolerance sqrt(1 - (e / tolerance)^2)``, ``e`` the compression's energy
    error, at least ``tolerance / 2``). When it is not met, the ECM continues on all rows, warm-started from the
    rule's points. The returned ``residual`` is the one over all rows (``extra``: ``residual_leading``,
    ``stress_rank``, ``stress_energy_error``, ``continued``)."""
    if not isinstance(G, CompressedIntegrand) or ecm.get("selection") == "all":
        return empirical_cubature(comm, G, point_weights, gidx, tolerance=tolerance, **ecm)
    # the leading rows' target leaves room for the discarded rows' residual, measured to be about the energy error
    # (117k-dof plate: 5e-6 at an energy error of 1e-5), at most half of the tolerance
    share = min(G.compression.energy_error / tolerance, np.sqrt(0.75))
    quad = empirical_cubature(comm, G, point_weights, gidx, tolerance=tolerance * np.sqrt(1.0 - share ** 2), **ecm)
    w_local = quad.local_weights(gidx)
    sq = {}
    for name, part in (("leading", G), ("discarded", G.discarded())):
        if part.shape[0] == 0:
            sq[name] = (0.0, 0.0)
            continue
        b = part.weighted_sums(comm, point_weights)
        r = b - part.weighted_sums(comm, w_local)
        sq[name] = (float(b @ b), float(r @ r))
    norm_b = float(np.sqrt(sq["leading"][0] + sq["discarded"][0]))
    volume = quad.extra["volume"]
    c = norm_b / volume
    full = float(np.sqrt(sq["leading"][1] + sq["discarded"][1] + (c * (volume - float(np.sum(quad.weights)))) ** 2))
    extra = {"residual_leading": quad.residual, "stress_rank": G.compression.rank,
             "stress_energy_error": G.compression.energy_error, "continued": False}
    if quad.converged and not full <= tolerance * norm_b:
        quad = empirical_cubature(comm, G.full(), point_weights, gidx, tolerance=tolerance,
                                  **{**ecm, "initial_points": quad.points})
        quad.extra.update(extra, continued=True)
        return quad
    quad.residual = float(np.sqrt(sq["leading"][1] + sq["discarded"][1])) / norm_b
    quad.extra.update(extra)
    return quad


def integrand(comm, eps_modes: np.ndarray, stress: np.ndarray, gidx: np.ndarray, *, row_tolerance: float,
              max_rows: int, max_gram_rows: int = MAX_GRAM_ROWS, form: str = "factored",
              stress_compression: bool = False, overwrite: bool = False) -> tuple[Integrand, int, dict | None]:
    """``(G, n_rows, compression summary)``: ``form`` "factored", the
    :class:`~structrom.rom.integrand.FactoredIntegrand` of ``eps_modes`` ``(n_local, 6, N)`` and ``stress``
    ``(n_local, 6, n_s)`` (which it keeps: they must stay unchanged while it is used); with ``stress_compression``
    on the leading rotated stress snapshots (:func:`~structrom.rom.stress_compression.compress_stress`, relative
    energy ``row_tolerance``; ``overwrite``: rotated in ``stress``'s own buffer, which then holds ``S V``; run the
    ECM with :func:`reduced_rule`), else uncompressed (summary None); "assembled", the matrix of
    :func:`integrand_matrix` (the compression's ``(n_rows, r)`` basis dropped: the ECM does not need it, and the
    caller may free the stress snapshots before the ECM). ``n_rows``: the rows before any compression."""
    if form not in FORMS:
        raise ECMError(f"form must be one of {FORMS} (the integrand's form), got {form!r}")
    if form == "factored":
        if stress_compression:
            G = compress_stress(comm, eps_modes, stress, row_tolerance, overwrite=overwrite)
            return G, G.E.shape[2] * G.rotated.shape[2], G.compression.summary()
        G = FactoredIntegrand(eps_modes, stress)
        return G, G.shape[0], None
    G, n_rows, rc = integrand_matrix(comm, eps_modes, stress, max_rows, row_tolerance, gidx, max_gram_rows)
    G = AssembledIntegrand(G)
    summary = None if rc is None else {"method": rc.method, "rank": rc.rank, "range_rank": rc.range_rank,
                                       "energy_error": rc.energy_error, "tolerance": row_tolerance}
    return G, n_rows, summary


def dual_points(comm, basis_local: np.ndarray, global_rows: np.ndarray, components: int) -> np.ndarray:
    """Q-DEIM points of a dual basis with rows spread over ranks: ``basis_local`` ``(n_local c, m)`` at global
    rows ``global_rows`` (``c`` rows per point, point-major); returns the sorted global points (rows // c),
    the same on every rank."""
    total = int(comm.allreduce(basis_local.shape[1] if basis_local.ndim == 2 else 0, op=_max()))
    if total == 0:
        return np.zeros(0, np.int64)
    res = qdeim(basis_local, comm=comm, ids=global_rows, tie_rtol=QDEIM_TIE_RTOL)
    return np.unique(res.point_ids // components)


def _max():
    from mpi4py import MPI
    return MPI.MAX
