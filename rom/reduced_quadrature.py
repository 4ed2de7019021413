"""Hyper-reduction by the Empirical Cubature Method (ECM), distributed over MPI ranks.

Offline stage of the ROM (Hernandez, Caicedo, Ferrer 2017, CMAME 313, Algorithm 1; as used by Casenave
et al., arXiv 1812.07228): pick a few integration points and non-negative weights that integrate a
set of integrands as the full finite-element quadrature does.

Data distribution (per rank): the integration points of the rank's elements, each with a unique
GLOBAL point number. The integrand matrix ``G`` has one row per integrand and one column per point;
for the Galerkin internal forces of a ROM with modes ``psi_i`` (``N``) and stress snapshots
``sigma_s`` (``n_s``) the rows are ``(i, s) -> eps(psi_i)(x_k) : sigma_s(x_k)`` (:func:`integrand_rows`).
A rank holds ``G_local`` ``(n_rows, n_local)`` (its columns), the FE weights ``w_fe_local`` ``(n_local,)``
and ``global_points_local`` ``(n_local,)``. The FE quadrature is ``b = G w_FE`` (summed over ranks).
``G`` is never gathered: only the selected columns travel (``n_rows + 1`` doubles per selection).

Algorithm (:func:`empirical_cubature`), on the rows of ``G`` augmented, with ``include_constant``,
by the constant function scaled to ``c = ||b|| / V`` (``V = sum w_FE`` the volume, so that the
constant row's integral weighs as much as all other rows together)::

    b = G w_FE (Allreduce, reproducible: independent of the rank count), r = b, z = {}
    repeat
        k* = argmax_k  G_k . r / ||G_k||      over candidate points of all ranks (positive values only;
                                              scores within 1e-10 ||r|| of the max tie -> lowest
                                              global point number)
        z <- z + {k*}; the column G_k* is sent to every rank (Allreduce of a vector non-zero on the owner)
        alpha = least squares on the selected (normalized) columns;
        if some alpha <= 0: those points leave z (they become candidates again) and alpha is recomputed
                           (and become candidates again, as in the paper)
        r = b - G_z alpha
    until ||r_aug|| <= tolerance ||b||  (this implies ||G w - b|| <= tolerance ||b|| and, with the
          constant row, |sum w - V| <= tolerance V),  or |z| == max_points

Removals (``removal``). "nonpositive" (the default, the paper's): every point of non-positive least-squares weight
leaves. "lawson_hanson": the NNLS step of Lawson and Hanson (1974, Algorithm 23.10): from the previous (positive)
weights, move toward the least-squares weights until the first weight reaches zero; only the points that reach it
leave (new points of non-positive weight at once), and the least squares is redone. Points that the least squares
pushed below zero but that stay positive on the way are kept. On smooth integrands fewer points then leave and are
selected again (fewer selections for the same tolerance); on the 117k-dof plate's internal forces as many leave, one
per least squares, and the loop is slower (docs/benchmarks.md, "Offline stage: Lawson-Hanson removals").

Selection rules (``selection``). "greedy" is the loop above: one product ``G^T r`` over all points (memory
bound: ``n_rows x n_local`` doubles read per rank) per selected point (the default). "block" takes up to
``block_size`` points per product, from a pool of the best-scoring candidates of all ranks, against the exactly
updated least-squares residual (the most correlated, or with ``block_choice = "decrease"`` the one of largest
residual decrease), then one positive least squares per block; with ``shortlist``, most products score
only the best candidates of the last full one (:mod:`structrom.rom.ecm_block`'s docstring: the rule, its
determinism and its measured effect).

In exact arithmetic the residual decreases strictly at every selection (the previous weights plus a
small positive weight on a positively correlated point do better), so the greedy loop terminates;
numerically, when the residual reaches its round-off level (``4 eps sqrt(n_rows) (||b|| + sum_k w_k
||G_k||)``), stops decreasing (relative decrease < 1e-9 on 5 consecutive selections), no candidate
correlates positively with it, or the number of selections exceeds
``4 (n_rows + 1) + 20``, :class:`ECMError` reports that the tolerance is below what is reachable
(round-off), with the best residual reached.

The integrand (``G_local``): a matrix, or an integrand of :mod:`structrom.rom.integrand` (the factored form of the
Galerkin internal forces: score products and columns from the modes' strains and the stress snapshots, no matrix).

Determinism: ``b`` and the volume are summed reproducibly (pre-rounding to a common power-of-two grid,
Demmel & Nguyen, so that every partial sum is exact and the result does not depend on how points are
distributed); the selected columns travel exactly; all small problems are solved identically on every
rank. Hence the same points and weights for any number of ranks (bit-for-bit when the ranks' ``G``
columns are bit-for-bit the same; the factored integrand sums ``b`` by one GEMM, the same to round-off only), and
the tie rule makes symmetric problems deterministic.

Non-negativity and the point count: the non-negative least-squares solution keeps linearly
independent columns, so the reduced rule has at most ``rank(G_aug) <= n_rows + 1`` points
(Caratheodory).

The loop's state and steps: :class:`structrom.rom.ecm_loop.SelectionLoop`.

Row compression (:func:`structrom.rom.row_compression.compress_rows`, re-exported here): with many integrands (``N n_s`` rows), replace ``G`` by
``U_r^T G`` (``U_r``: leading left singular vectors), see its docstring for the error bound.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from mpi4py import MPI

from structrom.mpi.collectives import reproducible_row_sums, reproducible_weighted_row_sums  # noqa: F401 (API)
from structrom.rom.ecm_loop import (BLOCK_CORRELATION, BLOCK_SIZE, POOL_FACTOR, POOL_TIE_RTOL,  # noqa: F401
                                    ROUNDOFF_FACTOR, SCORE_TIE_RTOL, SHORTLIST_PROGRESS, STALL_COUNT, STALL_RTOL,
                                    SelectionLoop)
from structrom.rom.ecm_parts import (EPS, ECMError, ReducedQuadrature, _ColumnQR, _columns,  # noqa: F401
                                     SELECTIONS, _check_rule, _ECMProgress, _raise_collectively, _validate, every_point,
                                     leaving)
from structrom.rom.integrand import (AssembledIntegrand, FactoredIntegrand, Integrand, as_integrand,  # noqa: F401
                                     integrand_rows)
from structrom.rom.row_compression import RowCompression, compress_rows  # noqa: F401 (API)


# -- ECM ------------------------------------------------------------------------------------------


def empirical_cubature(
    comm: MPI.Comm | None,
    G_local: np.ndarray | Integrand,
    w_fe_local: np.ndarray,
    global_points_local: np.ndarray,
    *,
    tolerance: float = 1e-4,
    max_points: int | None = None,
    include_constant: bool = True,
    initial_points: np.ndarray | None = None,
    log: Callable[[str], None] | None = None,
    selection: str = "greedy",
    block_size: int = BLOCK_SIZE,
    block_correlation: float = BLOCK_CORRELATION,
    screening: str = "float32",
    shortlist: int = 0,
    full_scores_every: int = 1,
    removal: str = "nonpositive",
    block_choice: str = "correlation",
) -> ReducedQuadrature:
    """ECM reduced quadrature of distributed integrands (collective over ``comm``).

    ``G_local``: ``(n_rows, n_local)`` integrands (rows) at this rank's points (columns);
    ``w_fe_local``: ``(n_local,)`` FE weights (>= 0); ``global_points_local``: ``(n_local,)`` unique
    global point numbers (over all ranks). ``tolerance`` in (0, 1): relative quadrature error
    ``||G w - G w_FE|| / ||G w_FE||`` to reach (with ``include_constant`` also ``|sum w - V| / V``);
    ``max_points``: stop after this many points even if the tolerance is not met (``converged`` False).
    See the module docstring for the algorithm. ``selection``: ``"greedy"`` (default: one point per product
    ``G^T r``, the reference rule) or ``"block"`` (up to ``block_size`` points per product, each the best of a
    pool against the updated residual while it correlates at least ``block_correlation`` times as well as the
    product's best; with ``block_size=1`` the greedy rule) or ``"all"`` (no selection: every point with its FE weight, the
    Galerkin ROM's exact quadrature, to tell the cubature's error from the projection's; gathered on every rank); ``shortlist``, ``full_scores_every``: the block rule scores
    only the ``shortlist`` best candidates of the last full product in ``full_scores_every - 1`` blocks out of
    ``full_scores_every`` (module docstring; ``shortlist=0``: every product is full); ``removal``: which points leave on
    non-positive weights, ``"nonpositive"`` or ``"lawson_hanson"`` (module docstring); ``block_choice``: which of the
    pool's well-correlated points joins a block next, ``"correlation"`` (the most correlated) or ``"decrease"`` (of
    largest residual decrease; :func:`structrom.rom.ecm_block.choose_block`); ``screening``: precision of the block rule's
    score products, ``"float32"`` (a single-precision copy of ``G``, half the size of ``G``: twice less memory
    traffic per product; the pool is rescored exactly) or ``"float64"`` (no copy). Returns a
    :class:`ReducedQuadrature`, identical on every rank.

    Warm start (``initial_points``, e.g. the rule of a reduced model whose integrand has grown): the
    initial columns are factorized at once (an independent subset, found by a column-pivoted QR) and get
    the positive least-squares weights of the loop, which then continues as usual (points added where
    the residual correlates most, non-positive weights removed). Every initial point stays in the rule:
    first, in the given order, with weight 0 where left out.

    Memory: besides ``G_local`` (read only, never copied: the reproducible sums scale it by row blocks),
    ``O(n_rows + n_local)`` per rank plus the QR of the selected columns ``O(n_rows k)``, and with the block
    rule's ``screening="float32"`` a single-precision copy of ``G_local`` (half its bytes).
    ``log``: rank 0's progress lines (every 100 selections or 30 s: points, residual, elapsed time,
    estimated time left); a tqdm bar on stderr besides (:mod:`structrom.rom.progress`).

    Raises :class:`ECMError` (on every rank) for bad input, for ``G w_FE == 0`` (a relative tolerance is
    then undefined) and when the residual stagnates above the tolerance.
    """
    comm = MPI.COMM_SELF if comm is None else comm
    _check_rule(selection, block_size, block_correlation, screening, shortlist, full_scores_every, removal, block_choice)
    try:
        G, message = as_integrand(G_local), None
    except ECMError as exc:
        G, message = None, str(exc)
    except (TypeError, ValueError) as exc:
        G, message = None, f"G_local / w_fe_local / global_points_local are not numeric arrays: {exc}"
    _raise_collectively(comm, message)
    G, w_fe, gpts = _validate(comm, G, w_fe_local, global_points_local, tolerance, max_points)
    n_rows, n_local = G.shape
    n_total = int(comm.allreduce(n_local, op=MPI.SUM))
    if n_total == 0:
        raise ECMError("G_local has no points (columns) on any rank")
    if selection == "all":  # every point with its FE weight: no selection
        return every_point(comm, w_fe, gpts, tolerance, 0 if initial_points is None else len(initial_points),
                           block_size=block_size, block_correlation=float(block_correlation), screening=screening,
                           shortlist=int(shortlist), full_scores_every=int(full_scores_every),
                           block_choice=block_choice)

    b_G = G.weighted_sums(comm, w_fe)
    volume = float(reproducible_row_sums(comm, w_fe[None, :])[0])
    norm_b = float(np.linalg.norm(b_G))
    norms_sq, norm_max = G.norms_and_max()
    scale_ref = float(comm.allreduce(norm_max, op=MPI.MAX)) * volume  # ||G w_FE|| <= max_k ||G_k|| sum w_FE
    if not norm_b > 64 * EPS * scale_ref or norm_b == 0.0:
        raise ECMError(f"the FE integrals G w_FE vanish (||G w_FE|| = {norm_b:.3g}, volume {volume:.3g}): "
                       "the relative tolerance is undefined; add integrands with non-zero integrals")
    if include_constant and not volume > 0:
        raise ECMError("w_fe_local sums to zero over all ranks: include_constant needs a positive volume")
    c = norm_b / volume if include_constant else 0.0
    # the augmented columns (only used through their norms and the score products) and integrals
    col_norm = np.sqrt(norms_sq + c * c)
    del norms_sq
    b = np.concatenate([b_G, [c * volume]]) if include_constant else b_G
    loop = SelectionLoop(comm, G, gpts, col_norm, b, n_rows=n_rows, c=c, include_constant=include_constant,
                         norm_b=norm_b, tolerance=tolerance, limit=max_points if max_points is not None else n_total,
                         block=1 if selection == "greedy" else int(block_size), block_correlation=block_correlation,
                         block_choice=block_choice, shortlist=shortlist, full_scores_every=full_scores_every,
                         removal=removal)
    # warm start: the initial columns enter first, factorized at once, with the positive least-squares weights; the
    # loop continues from there. Initial points left out stay in the rule at 0.
    initial = list(dict.fromkeys(int(p) for p in initial_points)) if initial_points is not None else []
    if initial:
        loop.warm_start(initial)
    loop.run(screening, log)

    weights = np.asarray(loop.alpha, dtype=float)
    points = np.array(loop.selected, dtype=np.int64)
    if initial:  # the initial points first, in their order (weight 0 where left out), then the new ones
        weight_of = dict(zip(loop.selected, weights.tolist()))
        points = np.array(initial + [p for p in loop.selected if p not in set(initial)], dtype=np.int64)
        weights = np.array([weight_of.get(int(p), 0.0) for p in points])
    weights_sum = float(np.sum(weights))
    residual = float(np.linalg.norm(loop.r[:n_rows]) / norm_b)
    return ReducedQuadrature(
        points=points, weights=weights, residual=residual, history=loop.history,
        volume_error=abs(weights_sum - volume) / volume if volume > 0 else float("nan"),
        tolerance=float(tolerance), converged=loop.converged,
        extra={"n_selections": loop.it, "n_dropped": loop.n_dropped, "n_removals": loop.n_nnls, "volume": volume,
               "n_total_points": n_total, "n_initial": len(initial), "n_scorings": loop.n_scorings,
               "n_short_scorings": loop.n_short_scorings, "selection": selection, "block_size": loop.block,
               "block_correlation": float(block_correlation), "screening": loop.screening,
               "shortlist": int(shortlist), "full_scores_every": int(full_scores_every), "removal": removal,
               "block_choice": block_choice, "n_reorthogonalized": loop.qr.n_reorthogonalized,
               "condition": loop.qr.condition()},
    )
