"""The empirical cubature's selection loop (:func:`structrom.rom.reduced_quadrature.empirical_cubature`): its state
(the selected points, their positive weights and QR, the residual, the candidates) and its steps: the positive least
squares with its removals, the warm start, the greedy step (one point per score product) and the block step (up to
``block_size`` points per product, :mod:`structrom.rom.ecm_block`). The algorithm, its stopping tests and its
determinism are described in :mod:`structrom.rom.reduced_quadrature`'s docstring.

Shapes: ``n_aug`` integrand rows (plus the constant row); per rank ``n_local`` points (columns); ``k`` selected
points, the same on every rank.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg as sla
from mpi4py import MPI

from structrom.rom.ecm_block import InBlock, best_of, choose_block, exact_pool, pool as _pool
from structrom.rom.ecm_parts import EPS, ECMError, _ColumnQR, _columns, _ECMProgress, leaving
from structrom.rom.integrand import Integrand

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


class SelectionLoop:
    """The state of one ECM run on every rank (collective methods: every rank calls them alike).

    ``G``: this rank's integrand; ``gpts`` ``(n_local,)`` its global point numbers; ``col_norm`` ``(n_local,)`` the
    augmented column norms; ``b`` ``(n_aug,)`` the FE integrals (augmented); ``c`` the constant row's scale (0
    without it); ``norm_b``: ``||G w_FE||``; ``target``: the residual norm that ends the loop; ``limit``: the most
    points; ``rule``: the selection keywords of :func:`~structrom.rom.reduced_quadrature.empirical_cubature`
    (``block`` points per product, 1 for the greedy rule)."""

    def __init__(self, comm: MPI.Comm, G: Integrand, gpts: np.ndarray, col_norm: np.ndarray, b: np.ndarray, *,
                 n_rows: int, c: float, include_constant: bool, norm_b: float, tolerance: float, limit: int,
                 block: int, block_correlation: float, block_choice: str, shortlist: int, full_scores_every: int,
                 removal: str) -> None:
        self.comm, self.G, self.gpts, self.col_norm, self.b = comm, G, gpts, col_norm, b
        self.n_rows, self.n_local, self.c, self.include_constant = n_rows, len(gpts), c, include_constant
        self.n_aug = n_rows + (1 if include_constant else 0)
        self.norm_b, self.tolerance, self.target = norm_b, float(tolerance), float(tolerance) * norm_b
        self.limit, self.max_iter = limit, 4 * (self.n_aug + 1) + 20
        self.block, self.pool_size = block, (1 if block == 1 else POOL_FACTOR * block)
        self.block_correlation, self.block_choice, self.removal = block_correlation, block_choice, removal
        self.shortlist, self.full_scores_every = int(shortlist), int(full_scores_every)
        self.candidate = col_norm > 0.0  # points where every integrand vanishes can never help
        self.r = b.copy()
        self.selected: list[int] = []  # global point numbers
        self.norms: list[float] = []  # norms of the selected augmented columns (identical on every rank)
        self.alpha = np.zeros(0)
        self.qr = _ColumnQR(self.n_aug, comm=comm)
        self.history: list[float] = []
        self.n_dropped = self.n_nnls = self.stall = 0
        self.it = self.n_scorings = self.n_short_scorings = self.since_full = 0
        self.converged = bool(np.linalg.norm(self.r) <= self.target)
        self.shortlist_local: np.ndarray | None = None  # this rank's shortlisted points (block rule, shortlist)
        self.shortlist_G: Integrand | None = None  # the integrand at them
        self.order = np.argsort(gpts)
        self.gpts_sorted = gpts[self.order]
        self.screening = "float64"
        self.progress: _ECMProgress | None = None

    # -- the positive least squares ------------------------------------------------------------------------------
    def positive_weights(self) -> tuple[np.ndarray | None, np.ndarray]:
        """Least-squares weights (normalized columns) of the selected points and their residual ``b - A alpha``
        ``(n_aug,)``; points whose weight comes out non-positive are removed (all of them, Hernandez et al. 2017,
        Algorithm 1, or those that reach zero first, ``removal``: :func:`leaving`) and the least squares redone;
        removed points become candidates again. Weights None when every weight is non-positive."""
        alpha_n, res = self.qr.least_squares(self.b)
        # (Lawson-Hanson: the weights before this step, 0 for the points that joined since)
        w = np.zeros(len(self.selected))
        w[:len(self.alpha)] = self.alpha * np.array(self.norms[:len(self.alpha)])
        drop = leaving(self.removal, w, alpha_n)
        while np.any(drop) and not np.all(drop):
            self.n_nnls += 1
            self.n_dropped += int(np.count_nonzero(drop))
            w = w[~drop]
            dropped = np.array([p for p, d in zip(self.selected, drop) if d], dtype=np.int64)
            self.candidate |= np.isin(self.gpts, dropped) & (self.col_norm > 0.0)
            self.qr.delete_many(np.flatnonzero(drop))
            self.selected = [p for p, d in zip(self.selected, drop) if not d]
            self.norms = [nr for nr, d in zip(self.norms, drop) if not d]
            alpha_n, res = self.qr.least_squares(self.b)
            drop = leaving(self.removal, w, alpha_n)
        return (None if np.all(drop) else alpha_n), res

    def reweigh(self, r_norm: float, replace: bool = False) -> None:
        """Positive weights of the selected points and their residual (``replace``: of the last selection's
        history entry); the round-off and stagnation checks against the residual norm ``r_norm`` before."""
        # weights: least squares on the selected normalized columns, through an economic QR updated column by
        # column (:class:`_ColumnQR`: O(n_aug k) per step instead of a full solve); points whose weight comes
        # out non-positive are removed and the least squares redone (Hernandez et al. 2017, Algorithm 1);
        # removed points become candidates again.
        alpha_n, res = self.positive_weights()
        if alpha_n is None:
            raise ECMError(f"ECM could not find positive weights on {len(self.selected)} selected points")
        nrm = np.array(self.norms)
        self.alpha = alpha_n / nrm
        self.r = res  # b - A_z alpha = b - (normalized columns) alpha_n
        new_norm = float(np.linalg.norm(self.r))
        entry = float(np.linalg.norm(self.r[:self.n_rows]) / self.norm_b)
        if replace:
            self.history[-1] = entry
        else:
            self.history.append(entry)
        self.stall = self.stall + 1 if new_norm > (1.0 - STALL_RTOL) * r_norm else 0
        self.converged = new_norm <= self.target
        # round-off level of r = b - A alpha: below it, further selections only chase noise
        floor = ROUNDOFF_FACTOR * EPS * np.sqrt(self.n_aug) * (np.linalg.norm(self.b) + float(nrm @ self.alpha))
        if not self.converged and new_norm <= floor:
            raise ECMError(f"ECM reached the round-off level (relative residual {new_norm / self.norm_b:.3g}, "
                           f"{len(self.selected)} points) above the tolerance {self.tolerance:.3g}: the tolerance is "
                           "below the reachable level, raise it")
        if not self.converged and self.stall >= STALL_COUNT:
            raise ECMError(f"ECM stagnated at relative residual {new_norm / self.norm_b:.3g} > tolerance "
                           f"{self.tolerance:.3g} ({len(self.selected)} points, no decrease over {STALL_COUNT} "
                           "selections): the tolerance is below the reachable (round-off) level, raise it")

    def warm_start(self, initial: list[int]) -> None:
        """The ``initial`` points enter first, factorized at once, with the positive least-squares weights; initial
        points left out (dependent or of zero column) stay in the rule at weight 0 (the caller's)."""
        cols = _columns(self.comm, self.G, self.gpts, np.array(initial, dtype=np.int64),
                        self.c if self.include_constant else None)
        self.candidate &= ~np.isin(self.gpts, initial)
        nrm = np.linalg.norm(cols, axis=0)
        use = np.flatnonzero(nrm > 0.0)
        if len(use):  # an independent subset (pivoted QR), in the given order, factorized by one QR
            _, R, piv = sla.qr(cols[:, use] / nrm[use], mode="economic", pivoting=True)
            d = np.abs(np.diag(R))
            use = np.sort(use[piv[:int(np.count_nonzero(d > 1e-10 * d[0]))]]) if d.size and d[0] > 0 else use[:0]
        if not len(use):
            return
        self.qr.load(cols[:, use] / nrm[use])
        self.selected, self.norms = [initial[j] for j in use], nrm[use].tolist()
        alpha_n, res = self.positive_weights()
        if alpha_n is None:  # nothing usable: a cold start (every point a candidate)
            self.candidate = self.col_norm > 0.0
            self.selected, self.norms, self.qr = [], [], _ColumnQR(self.n_aug, comm=self.comm)
            return
        self.alpha = alpha_n / np.array(self.norms)
        self.r = res
        self.history.append(float(np.linalg.norm(self.r[:self.n_rows]) / self.norm_b))
        self.converged = bool(np.linalg.norm(self.r) <= self.target)

    # -- helpers -------------------------------------------------------------------------------------------------
    def local_index(self, point: int) -> int | None:
        """This rank's column of global ``point`` (None when another rank holds it)."""
        if not self.n_local:
            return None
        pos = int(np.searchsorted(self.gpts_sorted, point))
        return int(self.order[pos]) if pos < self.n_local and self.gpts_sorted[pos] == point else None

    def exact_scores(self, at: np.ndarray, part: Integrand | None = None,
                     in_part: np.ndarray | None = None) -> np.ndarray:
        """The normalized scores ``G_k . r / ||G_k||`` (augmented) of this rank's candidates ``at``, in double
        precision (``part``: a ``G.subset`` holding them, at its columns ``in_part``)."""
        r, n_rows = self.r, self.n_rows
        shift = self.c * r[n_rows] if self.include_constant else 0.0
        scores = self.G.scores(r[:n_rows], at, exact=True) if part is None else \
            part.scores(r[:n_rows], in_part, exact=True)
        return (scores + shift) / self.col_norm[at]

    def dependent(self, r_norm: float) -> None:
        """A selected column numerically dependent on the selected ones: nothing changed; stagnation after
        STALL_COUNT in a row."""
        self.stall += 1
        self.stagnation(r_norm, self.stall)

    def stagnation(self, r_norm: float, count: int) -> None:
        """:class:`ECMError` after ``count >= STALL_COUNT`` selections in a row that did not decrease the residual."""
        if count >= STALL_COUNT:
            raise ECMError(f"ECM stagnated at relative residual {r_norm / self.norm_b:.3g} > tolerance "
                           f"{self.tolerance:.3g} ({len(self.selected)} points): the tolerance is below the reachable "
                           "(round-off) level, raise it")

    def taken(self, point: int) -> None:
        """Global ``point`` is no longer a candidate."""
        k = self.local_index(point)
        if k is not None:
            self.candidate[k] = False

    # -- the loop ------------------------------------------------------------------------------------------------
    def run(self, screening: str, log: Callable[[str], None] | None) -> None:
        """Select points until the residual meets the target or the rule has ``limit`` points (``screening``: the
        block rule's score products' precision; ``log``: rank 0's progress lines)."""
        # the block rule's single-precision score products (a float32 copy: half the memory traffic of G)
        self.screening = self.G.prepare_screening(screening if self.block > 1 else "float64")
        self.progress = _ECMProgress(self.comm.Get_rank() == 0, self.tolerance, log)
        try:
            while not self.converged and len(self.selected) < self.limit:
                self.step()
        finally:
            self.progress.close()
            self.G.prepare_screening("float64")  # (drops the float32 copy)

    def step(self) -> None:
        """One score product and the point(s) it selects (none when a shortlist ran dry: the next is full)."""
        r_norm = float(np.linalg.norm(self.r))
        if self.it + 1 > self.max_iter:
            raise ECMError(f"ECM did not converge in {self.max_iter} selections: relative residual "
                           f"{r_norm / self.norm_b:.3g} > tolerance {self.tolerance:.3g} with {len(self.selected)} "
                           "points; the tolerance is likely below the reachable (round-off) level, raise it")
        band = SCORE_TIE_RTOL * r_norm
        stagnated = (f"ECM stagnated: no remaining point correlates positively with the residual (relative "
                     f"residual {r_norm / self.norm_b:.3g} > tolerance {self.tolerance:.3g}, {len(self.selected)} "
                     "points); the tolerance is below the reachable (round-off) level")
        # (block rule with a shortlist: between full products, only the shortlist's candidates are scored)
        short = self.shortlist_local is not None and self.since_full < self.full_scores_every
        score = self.scores(short)
        if self.block == 1:  # greedy: the global argmax, ties -> lowest global point number; its column travels
            best = float(self.comm.allreduce(float(score.max()) if self.n_local else -np.inf, op=MPI.MAX))
            if not best > band:
                raise ECMError(stagnated)
            ties = score >= best - band
            local_pt = int(self.gpts[ties].min()) if np.any(ties) else np.iinfo(np.int64).max
            point = int(self.comm.allreduce(local_pt, op=MPI.MIN))
            cols = _columns(self.comm, self.G, self.gpts, np.array([point], dtype=np.int64),
                            self.c if self.include_constant else None, self.order, initial=False)
            self.it += 1
            self.add(point, cols[:, 0], r_norm)
            self.progress.update(len(self.selected), self.history, self.it)
            return
        pool = self.block_pool(score, short, band, r_norm)
        if pool is None:  # the shortlist is exhausted: a full product
            self.since_full = self.full_scores_every
            return
        if not len(pool):
            raise ECMError(stagnated)
        self.block_step(pool, short, band, r_norm, stagnated)

    def scores(self, short: bool) -> np.ndarray:
        """The candidates' normalized positive correlations with the residual ``(n_local,)`` (-inf elsewhere): one
        product ``G^T r`` over all points, or over the shortlist's few (exact, from their own copy of ``G``)."""
        if short:
            self.n_short_scorings += 1
        else:
            self.n_scorings += 1
        if short:
            score = np.full(self.n_local, -np.inf)
            keep = np.flatnonzero(self.candidate[self.shortlist_local])
            if len(keep):
                at = self.shortlist_local[keep]
                score[at] = self.exact_scores(at, self.shortlist_G, keep)
            return score
        if not self.n_local:
            return np.zeros(0)
        shift = self.c * self.r[self.n_rows] if self.include_constant else 0.0  # (the constant row's part)
        score = self.G.scores(self.r[:self.n_rows]) + shift
        return np.where(self.candidate, score / np.where(self.candidate, self.col_norm, 1.0), -np.inf)

    def block_pool(self, score: np.ndarray, short: bool, band: float, r_norm: float) -> np.ndarray | None:
        """The block rule's pool, the best candidates of all ranks (None: a shortlist with none left); after a full
        product, the shortlist of the next blocks too. Screened scores: the candidates near the pool's cut are
        rescored exactly, so that the pool does not depend on the rank count through the screening's rounding."""
        comm, gpts = self.comm, self.gpts
        screened = self.screening == "float32" and not short
        tie = POOL_TIE_RTOL * r_norm
        pool = exact_pool(comm, self.exact_scores, score, gpts, band, tie, self.pool_size) \
            if screened else _pool(comm, score, gpts, band, tie, self.pool_size)
        if short and not len(pool):
            return None
        if len(pool) and self.shortlist and not short:  # the shortlist: the best candidates of this product
            listed = exact_pool(comm, self.exact_scores, score, gpts, band, tie, self.shortlist) \
                if screened else _pool(comm, score, gpts, band, tie, self.shortlist)
            n_candidates = int(comm.allreduce(int(np.count_nonzero(self.candidate)), op=MPI.SUM))
            # (a shortlist of half the candidates or more saves little: every product is then full)
            self.shortlist_local = np.flatnonzero(np.isin(gpts, listed)) if 2 * len(listed) < n_candidates else None
            self.shortlist_G = self.G.subset(self.shortlist_local) if self.shortlist_local is not None else None
            self.since_full = 0
        if len(pool):
            self.since_full += 1
        return pool

    def add(self, point: int, column: np.ndarray, r_norm: float) -> None:
        """Append the selected ``point`` (its augmented ``column``; the greedy rule) and recompute the positive
        weights and the residual (nothing changes when the column is numerically dependent on the selected ones)."""
        self.taken(point)
        col_nrm = float(np.linalg.norm(column))
        if not self.qr.append(column / col_nrm):  # numerically dependent on the selected columns
            self.dependent(r_norm)
            return
        self.selected.append(point)
        self.norms.append(col_nrm)
        self.reweigh(r_norm)

    def block_step(self, pool: np.ndarray, short: bool, band: float, r_norm: float, stagnated: str) -> None:
        """The block rule's points from ``pool``: its first Gram-Schmidt pass against the selected columns at once
        (GEMMs); the points chosen in the pool's coordinates (:class:`InBlock`: the exact least-squares residual's
        scores, no pass over ``Q`` per point), appended together, then one positive least squares."""
        qr = self.qr
        cols = _columns(self.comm, self.G, self.gpts, pool, self.c if self.include_constant else None, self.order,
                        initial=False)
        col_nrm = np.linalg.norm(cols, axis=0)
        V = cols / col_nrm
        H, M = qr.project(V)
        inb = InBlock(M, V.T @ self.r, self.r, qr.projected_row(V, H, self.n_rows) if self.include_constant else None,
                      dependent=1e-12 * (abs(float(qr.R[0, 0])) if qr.k else 1.0))
        s_best = float(inb.z.max())  # the first point: the pool's best, rescored exactly (the greedy choice)
        if not s_best > band and short:  # nothing positive left in the shortlist: a full product
            self.since_full = self.full_scores_every
            return
        if not s_best > band:
            raise ECMError(stagnated)
        it0, n0 = self.it, len(self.selected)
        picks = choose_block(
            inb, pool, best_of(inb.z, pool, band), s_best / r_norm, block=self.block,
            correlation=self.block_correlation, room=self.limit - n0, steps_left=self.max_iter - it0,
            target=self.target, norm_b=self.norm_b, stall=self.stall, history=self.history, tie_rtol=SCORE_TIE_RTOL,
            stall_rtol=STALL_RTOL, taken=lambda j: self.taken(int(pool[j])), dependent=self.stagnation,
            step=lambda n_chosen, steps: self.progress.update(n0 + n_chosen, self.history, it0 + steps),
            choice=self.block_choice)
        self.it, self.stall, self.converged = it0 + picks.steps, picks.stall, picks.converged
        appended = qr.append_projected(V, H, picks.chosen)
        for j, ok in zip(picks.chosen, appended):
            if ok:
                self.selected.append(int(pool[j]))
                self.norms.append(float(col_nrm[j]))
            else:
                self.dependent(r_norm)
        if any(appended):  # one positive least squares for the block's points
            self.reweigh(r_norm, replace=True)
        if short and not float(np.linalg.norm(self.r)) < (1.0 - SHORTLIST_PROGRESS) * r_norm:
            self.since_full = self.full_scores_every  # a shortlist block that barely helped: the next is full
