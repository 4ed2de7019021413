"""The block rule's step of the empirical cubature (:func:`structrom.rom.reduced_quadrature.empirical_cubature`,
``selection = "block"``): the pool of candidates of all ranks (:func:`pool`, :func:`exact_pool`), and the points of one
block chosen from it in the pool's own coordinates (:class:`InBlock`, :func:`best_of`, :func:`choose_block`).

The block rule takes up to ``block_size`` points per product: the product ranks all candidates (in single precision
with ``screening="float32"``, the default: half the memory traffic, from a ``float32`` copy of ``G``); the
``POOL_FACTOR block_size`` best-scoring candidates of all ranks form a pool whose columns travel at once (scores
within ``1e-5 ||r||`` of a group's best tie, lowest global point numbers first: the pool does not depend on the rank
count) and are rescored exactly; the pool's best (the greedy choice ``k*``, same tie rule) is taken first; then, point
after point, the residual of the unconstrained least squares is updated exactly (``r <- r - q (q . r)``, ``q`` the new
orthonormal direction of the QR), the pool is rescored against it, and while its best normalized correlation with the
residual is at least ``block_correlation`` times the one ``k*`` had with the residual of the product, a point joins:
with ``block_choice = "correlation"`` (the default) the most correlated one (same tie rule; a point whose column is
nearly in the span of the selected ones scores low and is not taken), with ``"decrease"``, of the pool's points that
correlate that well, the one whose join decreases the residual most (its correlation over the norm of its column's
part orthogonal to the selected columns and the block's: the choice of orthogonal least squares, Chen, Billings, Luo
1989, here within the pool); after the block, one positive least squares (removals as in the greedy loop). Picking
by decrease favours columns with more of their own direction: on the 47k- and 117k-dof plates, a quarter fewer
removals, 4-5 % fewer points and a 1.2-1.3x shorter loop for the same residual, but a 1.6-1.8x larger u error on the
held-out loading of largest error, whose error the default rule partly cancels (docs/benchmarks.md, "Offline stage:
the block's points by residual decrease"). The pool is projected off the selected columns
once (one GEMM ``H = Q^T V`` with the QR's ``Q``, and the projected columns' Gram matrix ``V^T V - H^T H``) and the
block's points are chosen in the pool's coordinates (:class:`InBlock`: the same scores and residual norms, ``O(p^2)``
per point for a pool of ``p``), then appended together (:meth:`~structrom.rom.column_qr.ColumnQR.append_projected`):
no pass over ``Q`` per point. With ``shortlist = K > 0`` and ``full_scores_every = F > 1``, a full product is followed
by ``F - 1`` blocks that score only the ``K`` best candidates of that product (those not yet taken), so that most
products cost ``K / n_points`` of a full one; the pool is then drawn from the shortlist. A full product comes early
when the shortlist has no positively correlated candidate left or a shortlist block reduced the residual by less than
``SHORTLIST_PROGRESS``; a shortlist of half the candidates or more is not used. The shortlist is chosen like the pool,
and both are cut on exact scores: the screening's best candidates, and those within 16 times its error measured on
them, are rescored in double precision (:func:`exact_pool`), and the shortlist's products are exact, so that neither
depends on how a rank count rounds the screening. So the rule is deterministic and rank-count independent like the
greedy one, and the stopping test and the error guarantee are unchanged: the loop ends only when the positive weights'
residual meets the tolerance. Measured on the plate's internal forces (docs/benchmarks.md, "Offline stage: ECM
selection rules"; 16 points, correlation 0.5, the defaults): 10x fewer products, about as many points (907 against
915) at the same residual, test errors within 1.5 % of the greedy rule's (u 7 % lower). 32 points at correlation 0.3
halve the products again on the 117,723-dof plate for the same point count, with test errors in u 10-25 % higher
(docs/benchmarks.md, "Offline stage: rotated stress snapshots").

Shapes: scores and global point numbers ``(n_local,)`` per rank; a pool of ``p`` candidates, the same on every rank,
its unit columns ``V`` ``(n_aug, p)`` (``n_aug`` integrand rows, plus the constant row).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from mpi4py import MPI


def pool(comm: MPI.Comm, score: np.ndarray, gpts: np.ndarray, floor: float, band: float, size: int) -> np.ndarray:
    """The block rule's candidate pool: the global numbers of the (at most ``size``) best candidates of all ranks
    by ``score`` ``(n_local,)`` (scores above ``floor`` only), best first. Scores within ``band`` of a group's
    best form one group, ordered by global point number, and the pool ends with a whole group (it may exceed
    ``size`` by the last group's length), so that near-equal scores (symmetric points, rounding that depends on
    the rank count) give the same pool for any number of ranks, closed under the symmetries of the mesh. One
    allgather (each rank sends its ``size`` best and whatever is within ``2 band`` of them: all that can be in
    the pool)."""
    ok = np.flatnonzero(score > floor)
    if len(ok) > size:
        kth = np.partition(score[ok], len(ok) - size)[len(ok) - size]
        ok = ok[score[ok] >= kth - 2 * band]
    mine = np.stack([score[ok], gpts[ok].astype(float)])
    allv = np.concatenate(comm.allgather(mine), axis=1) if comm.Get_size() > 1 else mine
    allv = allv[:, np.lexsort((allv[1], -allv[0]))]
    group = np.zeros(allv.shape[1], dtype=np.int64)  # a new group where the score drops band below its first
    first = allv[0, 0] if allv.shape[1] else 0.0
    for i in range(1, allv.shape[1]):  # a few hundred candidates at most
        if allv[0, i] < first - band:
            group[i], first = group[i - 1] + 1, allv[0, i]
        else:
            group[i] = group[i - 1]
    order = np.lexsort((allv[1], group))
    n = int(np.searchsorted(group[order], group[order][size - 1], side="right")) if len(order) > size else len(order)
    return allv[1, order[:n]].astype(np.int64)


#: :meth:`InBlock.decreases`: pool columns whose part orthogonal to the selected ones and to the block's has a squared
#: norm below this (a unit column's part below 1e-6 of it) are not ranked by their residual decrease, whose ratio
#: ``z_j / ||u_j||`` would then be set by round-off.
DECREASE_FLOOR = 1e-12
#: :func:`choose_block` with ``choice="decrease"``: decreases within this fraction of the largest tie (the lowest
#: global point number wins). A decrease ``z_j / ||u_j||`` divides the score's rank-count-dependent rounding (the
#: modes differ by ~1e-10 across partitions) by the column's orthogonal part (~1e-2 of it): wider than the scores'
#: ``SCORE_TIE_RTOL ||r||``, so that 1, 2 and 3 ranks pick the same points (measured on tests/test_offline.py's
#: model with this choice: with 1e-8, 2 ranks picked another point 106 points in).
DECREASE_TIE_RTOL = 1e-4
#: :func:`exact_pool` rescores the screened candidates within this multiple of the screening's largest error
#: measured on the best ones.
SCREENING_SAFETY = 16.0


def exact_pool(comm: MPI.Comm, exact_scores: Callable[[np.ndarray], np.ndarray], score: np.ndarray,
                gpts: np.ndarray, floor: float, band: float, size: int) -> np.ndarray:
    """:func:`pool` of the ``size`` best candidates by their exact scores, from single-precision screening scores
    ``score`` ``(n_local,)``. The screening's ``size`` best (over all ranks) are rescored by
    ``exact_scores(local_indices)`` (double precision); the largest difference ``e`` to their screened scores
    measures the screening's error, and every candidate screened within ``band + SCREENING_SAFETY e`` of the cut
    (the pool's last tie group included) is rescored too. The pool is cut on the exact scores: it does not depend on
    how a rank count rounds the screening
    (the screened scores of symmetric points, or of modes that differ at round-off across rank counts, differ by a
    few single-precision ulps, the exact ones by about 1e-10). The error is measured rather than bounded a priori:
    the worst-case bound ``n_rows 2^-24 ||G_k|| ||r||`` exceeds the normalized scores themselves once the residual
    is nearly orthogonal to every column (measured: errors 1e-9 ||r|| against scores of 4e-5 ||r||)."""
    ok = np.flatnonzero(score > floor)
    top = np.sort(score[ok])[-size:] if len(ok) else np.zeros(0)
    allv = np.concatenate(comm.allgather(top)) if comm.Get_size() > 1 else top
    cut = float(np.partition(allv, len(allv) - size)[len(allv) - size]) if len(allv) >= size else -np.inf
    exact = np.full(len(score), -np.inf)
    best = ok[score[ok] >= cut]
    if len(best):
        exact[best] = exact_scores(best)
    err = float(comm.allreduce(float(np.abs(exact[best] - score[best]).max(initial=0.0)), op=MPI.MAX))
    # (the pool ends with a whole tie group, which reaches up to ``band`` below the size-th best)
    more = np.flatnonzero((score >= cut - band - SCREENING_SAFETY * err) & (score < cut))
    if len(more):
        exact[more] = exact_scores(more)
    return pool(comm, exact, gpts, floor, band, size)


class InBlock:
    """The block rule's choice of points in the coordinates of its pool (``p`` columns): the least-squares residual
    after each point joins, without a pass over ``Q`` per point.

    With ``W`` the pool's unit columns projected off the selected ones (``V - Q Q^T V``) and ``M = W^T W`` (from
    :meth:`structrom.rom.column_qr.ColumnQR.project`), the block's new orthonormal directions are ``q_t = W c_t``
    (Gram-Schmidt in these coordinates: ``||u_j||^2 = M_jj - sum_t (M c_t)_j^2``), and since the residual ``r`` of
    the selected columns' least squares is orthogonal to ``Q``, the pool's scores ``z = V^T r = W^T r`` follow
    every new direction by ``z <- z - (M c) (c . z)`` and ``||r||^2`` by ``- (c . z)^2``: ``O(p^2)`` per point.
    ``z``: ``(p,)`` scores ``V^T r``; ``r``: ``(n_aug,)`` the residual (its norm and constant row);
    ``w_const``: ``(p,)`` the constant row of ``W`` (None without it); ``dependent``: norm of ``u_j`` below which
    a point is numerically dependent on the selected ones."""

    def __init__(self, M: np.ndarray, z: np.ndarray, r: np.ndarray, w_const: np.ndarray | None,
                 dependent: float) -> None:
        p = M.shape[0]
        self.M, self.z = M, np.array(z, dtype=float)
        self.r_sq = float(r @ r)
        self.w_const = w_const
        self.r_const = float(r[-1]) if w_const is not None else 0.0
        self.C, self.MC = np.zeros((p, p)), np.zeros((p, p))  # c_t and M c_t by columns
        self.t = 0
        self.dependent_sq = dependent * dependent
        self.u_sq = np.diag(M).copy()  # ||u_j||^2: the pool's columns projected off Q and the block's directions

    @property
    def norm(self) -> float:
        """``||r||`` (constant row included)."""
        return float(np.sqrt(self.r_sq))

    @property
    def rows_norm(self) -> float:
        """``||r||`` without the constant row."""
        return float(np.sqrt(max(self.r_sq - self.r_const ** 2, 0.0)))

    def take(self, j: int) -> bool:
        """Add pool column ``j`` (False, nothing changed, when it is numerically dependent)."""
        t = self.t
        g = self.MC[j, :t]
        u_sq = float(self.M[j, j] - g @ g)
        if not u_sq > self.dependent_sq:
            return False
        c = -(self.C[:, :t] @ g)
        c[j] += 1.0
        c /= np.sqrt(u_sq)
        mc = self.M @ c
        beta = float(c @ self.z)  # q . r
        self.z -= mc * beta
        self.r_sq = max(self.r_sq - beta * beta, 0.0)
        if self.w_const is not None:
            self.r_const -= float(self.w_const @ c) * beta
        self.C[:, t], self.MC[:, t] = c, mc
        self.u_sq -= mc * mc  # (u_j . q_t = (M c_t)_j)
        self.t = t + 1
        return True

    def decreases(self, eligible: np.ndarray) -> np.ndarray:
        """``(p,)``: by how much the residual norm would fall if pool column ``j`` joined next, ``z_j / ||u_j||``
        (the part of ``r`` along ``u_j / ||u_j||``: ``||r||^2`` falls by its square), at the ``eligible`` columns whose
        projected part ``||u_j||^2`` exceeds :data:`DECREASE_FLOOR` (and the dependence threshold); ``-inf``
        elsewhere."""
        ok = eligible & (self.u_sq > max(DECREASE_FLOOR, self.dependent_sq))
        out = np.full(len(self.z), -np.inf)
        out[ok] = self.z[ok] / np.sqrt(self.u_sq[ok])
        return out


@dataclass
class BlockChoice:
    """What :func:`choose_block` took: ``chosen``, the pool positions in the order taken (dependent ones left out);
    ``steps``, the selections made (taken or found dependent); ``stall``, the stagnation count after them;
    ``converged``, whether the residual reached the target."""
    chosen: list[int]
    steps: int
    stall: int
    converged: bool


def best_of(scores: np.ndarray, pool_points: np.ndarray, band: float) -> int:
    """The pool position of the best of ``scores`` ``(p,)``, scores within ``band`` of the best tied and won by the
    lowest global point number ``pool_points`` ``(p,)`` (the same choice on any rank count)."""
    tied = np.flatnonzero(scores >= float(scores.max()) - band)
    return int(tied[np.argmin(pool_points[tied])])


def choose_block(inb: InBlock, pool_points: np.ndarray, first: int, cos0: float, *, block: int, correlation: float,
                 room: int, steps_left: int, target: float, norm_b: float, stall: int, history: list[float],
                 tie_rtol: float, stall_rtol: float, taken: Callable[[int], None],
                 dependent: Callable[[float, int], None], step: Callable[[int, int], None],
                 choice: str = "correlation") -> BlockChoice:
    """The points of one block, the pool's best ``first`` first (the greedy choice; ``cos0``, its normalized
    correlation with the residual before the block), then one after the other the pool's best against the exactly
    updated residual while it correlates at least ``correlation`` times as well (the module docstring): with ``choice``
    "correlation" (the default), the one of largest correlation; with "decrease", among those, the one whose join
    decreases the residual most (:meth:`InBlock.decreases`; the one of largest correlation when none qualifies).

    ``pool_points``: ``(p,)`` global point numbers (ties between scores within ``tie_rtol ||r||`` go to the lowest);
    at most ``block`` points, ``room`` more points in the rule, ``steps_left`` selections; ``target``: the residual
    norm that ends the loop; ``history`` gets each taken point's relative residual (over ``norm_b``); ``stall``: the
    stagnation count before (a relative decrease below ``stall_rtol`` counts). Callbacks: ``taken(j)`` for each pool
    position tried (no longer a candidate); ``dependent(r_norm, stall)`` when it is numerically dependent on the
    selected columns (a selection that does not decrease the residual: ``stall`` counts it; the callback raises on
    stagnation); ``step(n_chosen, steps)`` after each selection (progress)."""
    active = np.ones(len(pool_points), dtype=bool)
    chosen: list[int] = []
    j, steps, converged = first, 0, False
    while True:
        steps += 1
        active[j] = False
        taken(j)
        r_before = inb.norm
        if inb.take(j):
            chosen.append(j)
            history.append(inb.rows_norm / norm_b)
            stall = stall + 1 if inb.norm > (1.0 - stall_rtol) * r_before else 0
            converged = inb.norm <= target
        else:
            stall += 1
            dependent(r_before, stall)
        step(len(chosen), steps)
        if converged or len(chosen) >= min(block, room) or not active.any() or steps >= steps_left:
            break
        # the pool's best against the new residual, if it still correlates nearly as well as the first did
        r_norm = inb.norm
        s = np.where(active, inb.z, -np.inf)
        s_best = float(s.max())
        band = tie_rtol * r_norm
        if not (s_best > band and s_best >= correlation * cos0 * r_norm):
            break
        if choice == "decrease":
            d = inb.decreases(active & (inb.z > band) & (inb.z >= correlation * cos0 * r_norm))
            if np.isfinite(d.max()):
                j = best_of(d, pool_points, DECREASE_TIE_RTOL * float(d.max()))
                continue
        j = best_of(s, pool_points, band)
    return BlockChoice(chosen, steps, stall, converged)
