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
updated least-squares residual, then one positive least squares per block; with ``shortlist``, most products score
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

Row compression (:func:`structrom.rom.row_compression.compress_rows`, re-exported here): with many integrands (``N n_s`` rows), replace ``G`` by
``U_r^T G`` (``U_r``: leading left singular vectors), see its docstring for the error bound.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.mpi.collectives import reproducible_row_sums, reproducible_weighted_row_sums  # noqa: F401 (API)
from structrom.rom.ecm_block import InBlock, best_of, choose_block, exact_pool, pool as _pool
from structrom.rom.ecm_parts import (EPS, ECMError, ReducedQuadrature, _ColumnQR, _columns,  # noqa: F401
                                     SELECTIONS, _check_rule, _ECMProgress, _raise_collectively, _validate, every_point,
                                     leaving)
from structrom.rom.integrand import (AssembledIntegrand, FactoredIntegrand, Integrand, as_integrand,  # noqa: F401
                                     integrand_rows)
from structrom.rom.row_compression import RowCompression, compress_rows  # noqa: F401 (API)

#: Scores within ``SCORE_TIE_RTOL * ||r||`` of the best one tie; the lowest global point number wins. Wider than
#: the rank-count-dependent rounding of the integrand (modes equal to ~1e-10 for P = 1, 2, 3), so that
#: near-ties are broken the same way whatever the number of ranks.
SCORE_TIE_RTOL = 1e-8

#: Stagnation: this many consecutive selections with a relative residual decrease below STALL_RTOL.
STALL_COUNT = 5
STALL_RTOL = 1e-9
#: A residual below ``ROUNDOFF_FACTOR eps sqrt(n_rows) (||b|| + sum_k w_k ||G_k||)`` is round-off.
ROUNDOFF_FACTOR = 4.0

#: Block rule with a shortlist: a shortlist block that reduces the residual by less than this fraction is followed by
#: a full product.
SHORTLIST_PROGRESS = 1e-3
#: Block rule: at most this many points per score product ...
BLOCK_SIZE = 16
#: ... taken from a pool of the POOL_FACTOR x BLOCK_SIZE best-scoring candidates (their columns travel at once) ...
POOL_FACTOR = 4
#: ... while the pool's best correlates with the current residual at least this fraction of the first's.
BLOCK_CORRELATION = 0.5
#: Block rule's pool: scores within ``POOL_TIE_RTOL * ||r||`` of a group's best tie (lowest global point numbers
#: first; the pool ends with a whole group). Wider than the single-precision rounding of the screening products;
#: the candidates are then taken by their exact scores with the greedy rule's ties (SCORE_TIE_RTOL).
POOL_TIE_RTOL = 1e-5


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
    non-positive weights, ``"nonpositive"`` or ``"lawson_hanson"`` (module docstring); ``screening``: precision of the block rule's
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
    _check_rule(selection, block_size, block_correlation, screening, shortlist, full_scores_every, removal)
    block = 1 if selection == "greedy" else int(block_size)
    pool_size = 1 if block == 1 else POOL_FACTOR * block
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
                           shortlist=int(shortlist), full_scores_every=int(full_scores_every))

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
    n_aug = n_rows + (1 if include_constant else 0)

    # Augmented local columns (only used through their norms and the score products).
    col_norm = np.sqrt(norms_sq + c * c)
    del norms_sq
    candidate = col_norm > 0.0  # points where every integrand vanishes can never help
    b = np.concatenate([b_G, [c * volume]]) if include_constant else b_G
    r = b.copy()
    target = float(tolerance) * norm_b

    selected: list[int] = []  # global point numbers
    norms: list[float] = []  # norms of the selected augmented columns (identical on every rank)
    alpha = np.zeros(0)
    qr = _ColumnQR(n_aug, comm=comm)
    history: list[float] = []
    n_dropped = n_nnls = 0
    stall = 0
    max_iter = 4 * (n_aug + 1) + 20
    limit = max_points if max_points is not None else n_total
    converged = bool(np.linalg.norm(r) <= target)

    def positive_weights() -> tuple[np.ndarray | None, np.ndarray]:
        """Least-squares weights (normalized columns) of the selected points and their residual ``b - A alpha``
        ``(n_aug,)``; points whose weight comes out non-positive are removed (all of them, Hernandez et al. 2017,
        Algorithm 1, or those that reach zero first, ``removal``: :func:`leaving`) and the least squares redone;
        removed points become candidates again. Weights None when every weight is non-positive."""
        nonlocal selected, norms, candidate, n_nnls, n_dropped
        alpha_n, res = qr.least_squares(b)
        # (Lawson-Hanson: the weights before this step, 0 for the points that joined since)
        w = np.zeros(len(selected))
        w[:len(alpha)] = alpha * np.array(norms[:len(alpha)])
        drop = leaving(removal, w, alpha_n)
        while np.any(drop) and not np.all(drop):
            n_nnls += 1
            n_dropped += int(np.count_nonzero(drop))
            w = w[~drop]
            dropped = np.array([p for p, d in zip(selected, drop) if d], dtype=np.int64)
            candidate |= np.isin(gpts, dropped) & (col_norm > 0.0)
            qr.delete_many(np.flatnonzero(drop))
            selected = [p for p, d in zip(selected, drop) if not d]
            norms = [nr for nr, d in zip(norms, drop) if not d]
            alpha_n, res = qr.least_squares(b)
            drop = leaving(removal, w, alpha_n)
        return (None if np.all(drop) else alpha_n), res

    # Warm start: the initial columns enter first, factorized at once, with the positive least-squares
    # weights above; the greedy loop continues from there. Initial points left out stay in the rule at 0.
    initial = list(dict.fromkeys(int(p) for p in initial_points)) if initial_points is not None else []
    if initial:
        cols = _columns(comm, G, gpts, np.array(initial, dtype=np.int64), c if include_constant else None)
        candidate &= ~np.isin(gpts, initial)
        nrm = np.linalg.norm(cols, axis=0)
        use = np.flatnonzero(nrm > 0.0)
        if len(use):  # an independent subset (pivoted QR), in the given order, factorized by one QR
            _, R, piv = sla.qr(cols[:, use] / nrm[use], mode="economic", pivoting=True)
            d = np.abs(np.diag(R))
            use = np.sort(use[piv[:int(np.count_nonzero(d > 1e-10 * d[0]))]]) if d.size and d[0] > 0 else use[:0]
        if len(use):
            qr.load(cols[:, use] / nrm[use])
            selected, norms = [initial[j] for j in use], nrm[use].tolist()
            alpha_n, res = positive_weights()
            if alpha_n is None:  # nothing usable: a cold start (every point a candidate)
                candidate = col_norm > 0.0
                selected, norms, qr = [], [], _ColumnQR(n_aug, comm=comm)
            else:
                alpha = alpha_n / np.array(norms)
                r = res
                history.append(float(np.linalg.norm(r[:n_rows]) / norm_b))
                converged = bool(np.linalg.norm(r) <= target)
    it = n_scorings = n_short_scorings = since_full = 0
    shortlist_local: np.ndarray | None = None  # this rank's shortlisted points (block rule with a shortlist)
    shortlist_G: Integrand | None = None  # the integrand at them
    # the block rule's single-precision score products (a float32 copy: half the memory traffic of G)
    screening = G.prepare_screening(screening if block > 1 else "float64")
    progress = _ECMProgress(comm.Get_rank() == 0, float(tolerance), log)
    order = np.argsort(gpts)
    gpts_sorted = gpts[order]

    def local_index(point: int) -> int | None:
        """This rank's column of global ``point`` (None when another rank holds it)."""
        if not n_local:
            return None
        pos = int(np.searchsorted(gpts_sorted, point))
        return int(order[pos]) if pos < n_local and gpts_sorted[pos] == point else None

    def exact_scores(at: np.ndarray, part: Integrand | None = None, in_part: np.ndarray | None = None) -> np.ndarray:
        """The normalized scores ``G_k . r / ||G_k||`` (augmented) of this rank's candidates ``at``, in double
        precision (``part``: a ``G.subset`` holding them, at its columns ``in_part``)."""
        shift = c * r[n_rows] if include_constant else 0.0
        scores = G.scores(r[:n_rows], at, exact=True) if part is None else part.scores(r[:n_rows], in_part, exact=True)
        return (scores + shift) / col_norm[at]

    def dependent(r_norm: float) -> None:
        """A selected column numerically dependent on the selected ones: nothing changed; stagnation after
        STALL_COUNT in a row."""
        nonlocal stall
        stall += 1
        stagnation(r_norm, stall)

    def stagnation(r_norm: float, count: int) -> None:
        """:class:`ECMError` after ``count >= STALL_COUNT`` selections in a row that did not decrease the residual."""
        if count >= STALL_COUNT:
            raise ECMError(f"ECM stagnated at relative residual {r_norm / norm_b:.3g} > tolerance "
                           f"{tolerance:.3g} ({len(selected)} points): the tolerance is below the reachable "
                           "(round-off) level, raise it")

    def add(point: int, column: np.ndarray, r_norm: float) -> None:
        """Append the selected ``point`` (its augmented ``column``; the greedy rule) and recompute the positive
        weights and the residual (nothing changes when the column is numerically dependent on the selected ones)."""
        k = local_index(point)
        if k is not None:
            candidate[k] = False
        col_nrm = float(np.linalg.norm(column))
        if not qr.append(column / col_nrm):  # numerically dependent on the selected columns
            dependent(r_norm)
            return
        selected.append(point)
        norms.append(col_nrm)
        reweigh(r_norm)

    def reweigh(r_norm: float, replace: bool = False) -> None:
        """Positive weights of the selected points and their residual (``replace``: of the last selection's
        history entry); the round-off and stagnation checks against the residual norm ``r_norm`` before."""
        nonlocal alpha, r, stall, converged
        # weights: least squares on the selected normalized columns, through an economic QR updated column by
        # column (:class:`_ColumnQR`: O(n_aug k) per step instead of a full solve); points whose weight comes
        # out non-positive are removed and the least squares redone (Hernandez et al. 2017, Algorithm 1);
        # removed points become candidates again.
        alpha_n, res = positive_weights()
        if alpha_n is None:
            raise ECMError(f"ECM could not find positive weights on {len(selected)} selected points")
        nrm = np.array(norms)
        alpha = alpha_n / nrm
        r = res  # b - A_z alpha = b - (normalized columns) alpha_n
        new_norm = float(np.linalg.norm(r))
        if replace:
            history[-1] = float(np.linalg.norm(r[:n_rows]) / norm_b)
        else:
            history.append(float(np.linalg.norm(r[:n_rows]) / norm_b))
        stall = stall + 1 if new_norm > (1.0 - STALL_RTOL) * r_norm else 0
        converged = new_norm <= target
        # round-off level of r = b - A alpha: below it, further selections only chase noise
        floor = ROUNDOFF_FACTOR * EPS * np.sqrt(n_aug) * (np.linalg.norm(b) + float(nrm @ alpha))
        if not converged and new_norm <= floor:
            raise ECMError(f"ECM reached the round-off level (relative residual {new_norm / norm_b:.3g}, "
                           f"{len(selected)} points) above the tolerance {tolerance:.3g}: the tolerance is below "
                           "the reachable level, raise it")
        if not converged and stall >= STALL_COUNT:
            raise ECMError(f"ECM stagnated at relative residual {new_norm / norm_b:.3g} > tolerance {tolerance:.3g} "
                           f"({len(selected)} points, no decrease over {STALL_COUNT} selections): the tolerance is "
                           "below the reachable (round-off) level, raise it")

    while not converged and len(selected) < limit:
        r_norm = float(np.linalg.norm(r))
        if it + 1 > max_iter:
            raise ECMError(f"ECM did not converge in {max_iter} selections: relative residual {r_norm / norm_b:.3g} "
                           f"> tolerance {tolerance:.3g} with {len(selected)} points; the tolerance is likely below "
                           "the reachable (round-off) level, raise it")
        # -- the normalized positive correlations of all candidates (one product G^T r)
        band = SCORE_TIE_RTOL * r_norm
        stagnated = (f"ECM stagnated: no remaining point correlates positively with the residual (relative "
                     f"residual {r_norm / norm_b:.3g} > tolerance {tolerance:.3g}, {len(selected)} points); the "
                     "tolerance is below the reachable (round-off) level")
        # (block rule with a shortlist: between full products, only the shortlist's candidates are scored)
        short = shortlist_local is not None and since_full < full_scores_every
        if short:
            n_short_scorings += 1
        else:
            n_scorings += 1
        shift = c * r[n_rows] if include_constant else 0.0  # (the constant row's part of every score)
        if short:  # (the shortlist's few candidates: exact scores, no screening, from their own copy of G)
            score = np.full(n_local, -np.inf)
            keep = np.flatnonzero(candidate[shortlist_local])
            if len(keep):
                at = shortlist_local[keep]
                score[at] = exact_scores(at, shortlist_G, keep)
        elif n_local:
            score = G.scores(r[:n_rows]) + shift
            score = np.where(candidate, score / np.where(candidate, col_norm, 1.0), -np.inf)
        else:
            score = np.zeros(0)
        if block == 1:  # greedy: the global argmax, ties -> lowest global point number; its column travels
            best = float(comm.allreduce(float(score.max()) if n_local else -np.inf, op=MPI.MAX))
            if not best > band:
                raise ECMError(stagnated)
            ties = score >= best - band
            local_pt = int(gpts[ties].min()) if np.any(ties) else np.iinfo(np.int64).max
            pool = np.array([int(comm.allreduce(local_pt, op=MPI.MIN))], dtype=np.int64)
        else:  # block: the best candidates of all ranks; their columns travel at once
            # (screened scores: the candidates near the pool's cut are rescored exactly, so that the pool does not
            # depend on the rank count through the screening's rounding)
            screened = screening == "float32" and not short
            pool = exact_pool(comm, exact_scores, score, gpts, band, POOL_TIE_RTOL * r_norm, pool_size) \
                if screened else _pool(comm, score, gpts, band, POOL_TIE_RTOL * r_norm, pool_size)
            if short and not len(pool):  # the shortlist is exhausted: a full product
                since_full = full_scores_every
                continue
            if not len(pool):
                raise ECMError(stagnated)
            if shortlist and not short:  # the shortlist of the next blocks: the best candidates of this product
                listed = exact_pool(comm, exact_scores, score, gpts, band, POOL_TIE_RTOL * r_norm, int(shortlist)) \
                    if screened else _pool(comm, score, gpts, band, POOL_TIE_RTOL * r_norm, int(shortlist))
                n_candidates = int(comm.allreduce(int(np.count_nonzero(candidate)), op=MPI.SUM))
                # (a shortlist of half the candidates or more saves little: every product is then full)
                shortlist_local = np.flatnonzero(np.isin(gpts, listed)) if 2 * len(listed) < n_candidates else None
                shortlist_G = G.subset(shortlist_local) if shortlist_local is not None else None
                since_full = 0
            since_full += 1
        cols = _columns(comm, G, gpts, pool, c if include_constant else None, order, initial=False)
        if block == 1:
            it += 1
            add(int(pool[0]), cols[:, 0], r_norm)
            progress.update(len(selected), history, it)
            continue
        # -- block: the pool's first Gram-Schmidt pass against the selected columns at once (GEMMs); the points of
        #    the block are then chosen in the pool's coordinates (InBlock: the exact least-squares residual's
        #    scores, no pass over Q per point) and appended together
        col_nrm = np.linalg.norm(cols, axis=0)
        V = cols / col_nrm
        H, M = qr.project(V)
        inb = InBlock(M, V.T @ r, r, qr.projected_row(V, H, n_rows) if include_constant else None,
                      dependent=1e-12 * (abs(float(qr.R[0, 0])) if qr.k else 1.0))
        s_best = float(inb.z.max())  # the first point: the pool's best, rescored exactly (the greedy choice)
        if not s_best > band and short:  # nothing positive left in the shortlist: a full product
            since_full = full_scores_every
            continue
        if not s_best > band:
            raise ECMError(stagnated)

        def taken(j: int) -> None:
            k = local_index(int(pool[j]))
            if k is not None:
                candidate[k] = False

        it0 = it
        picks = choose_block(
            inb, pool, best_of(inb.z, pool, band), s_best / r_norm, block=block, correlation=block_correlation,
            room=limit - len(selected), steps_left=max_iter - it, target=target, norm_b=norm_b, stall=stall,
            history=history, tie_rtol=SCORE_TIE_RTOL, stall_rtol=STALL_RTOL, taken=taken, dependent=stagnation,
            step=lambda n_chosen, steps: progress.update(len(selected) + n_chosen, history, it0 + steps))
        it, stall, converged, chosen = it0 + picks.steps, picks.stall, picks.converged, picks.chosen
        appended = qr.append_projected(V, H, chosen)
        for j, ok in zip(chosen, appended):
            if ok:
                selected.append(int(pool[j]))
                norms.append(float(col_nrm[j]))
            else:
                dependent(r_norm)
        if any(appended):  # one positive least squares for the block's points
            reweigh(r_norm, replace=True)
        if short and not float(np.linalg.norm(r)) < (1.0 - SHORTLIST_PROGRESS) * r_norm:
            since_full = full_scores_every  # a shortlist block that barely helped: the next product is full

    progress.close()
    G.prepare_screening("float64")  # (drops the float32 copy)
    weights = np.asarray(alpha, dtype=float)
    points = np.array(selected, dtype=np.int64)
    if initial:  # the initial points first, in their order (weight 0 where left out), then the new ones
        weight_of = dict(zip(selected, weights.tolist()))
        points = np.array(initial + [p for p in selected if p not in set(initial)], dtype=np.int64)
        weights = np.array([weight_of.get(int(p), 0.0) for p in points])
    weights_sum = float(np.sum(weights))
    residual = float(np.linalg.norm(r[:n_rows]) / norm_b)
    return ReducedQuadrature(
        points=points, weights=weights, residual=residual, history=history,
        volume_error=abs(weights_sum - volume) / volume if volume > 0 else float("nan"),
        tolerance=float(tolerance), converged=converged,
        extra={"n_selections": it, "n_dropped": n_dropped, "n_removals": n_nnls, "volume": volume,
               "n_total_points": n_total, "n_initial": len(initial), "n_scorings": n_scorings,
               "n_short_scorings": n_short_scorings, "selection": selection, "block_size": block,
               "block_correlation": float(block_correlation), "screening": screening,
               "shortlist": int(shortlist), "full_scores_every": int(full_scores_every), "removal": removal,
               "n_reorthogonalized": qr.n_reorthogonalized, "condition": qr.condition()},
    )
