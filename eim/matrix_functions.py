"""EIM of powers of affinely parametrized SPD matrices: online inverse actions and log-determinants.

After Casenave, Akkari, Charles, Rey, "Nonintrusive approximation of parametrized limits of matrix power
algorithms - application to matrix inverses and log-determinants" (arXiv 1710.02488).

Setting. ``A(mu) = sum_q theta_q(mu) A_q`` (``Q`` terms, each ``A_q`` symmetric positive semi-definite,
``theta_q > 0``), a reference ``A_0 = A(mu_0)`` and the scaling ``c > 0``. With ``r_q = theta_q(mu) /
theta_q(mu_0)`` and ``P_q = theta_q(mu_0) A_0^-1 A_q`` (``sum_q P_q = I``),

    M(mu) = I - c A_0^-1 A(mu) = sum_q e_q(mu) P_q,        e_q(mu) = 1 - c r_q(mu)                   (1)

so ``M(mu)^k = sum_{|alpha| = k} e(mu)^alpha S_alpha``: the parameter enters the powers only through the
monomials ``e^alpha``. Spectral bounds: the generalized Rayleigh quotient ``x^T A x / x^T A_0 x`` lies in
``[min_q r_q, max_q r_q]``; over the training set ``[a, b]``, ``c = 2 / (a + b)`` makes the spectral radius of
``M`` at most ``rho = (b - a) / (b + a) < 1`` (in the ``A_0`` norm), hence the Neumann and log series

    A(mu)^-1 = c sum_{k >= 0} M(mu)^k A_0^-1,
    log det A(mu) = log det A_0 - n log c - sum_{k >= 1} tr(M(mu)^k) / k                             (2)

converge like ``rho^k``. Truncated at degree ``K`` both are polynomials in ``e(mu)``. The EIM greedy
(:func:`structrom.eim.separation.separate_vectors`, rows = monomials spread over the ranks, columns = training
parameters) selects ``d`` monomials ``alpha_l`` and ``d`` training parameters ``mu_j`` with

    e(mu)^alpha ~ sum_j beta_j(mu) e(mu_j)^alpha,     F beta(mu) = (e(mu)^alpha_l)_l,  F_lj = e(mu_j)^alpha_l   (3)

and therefore ``M(mu)^k ~ sum_j beta_j(mu) M(mu_j)^k`` for every ``k <= K``, and the same combination of the
limits: ``A(mu)^-1 b ~ sum_j beta_j(mu) A(mu_j)^-1 b`` and ``log det A(mu) ~ log det A_0 - n log c +
sum_j beta_j(mu) T_j`` with ``T_j = log det A(mu_j) - log det A_0 + n log c``. Online: ``Q`` coefficients,
``d`` monomials (the :class:`~structrom.eim.separation.EntryEvaluator` "entries" of the power's coordinates),
one ``d x d`` LU solve, and a combination of ``d`` stored values; nothing of size ``n`` except the returned
vector. Offline values at the selected parameters: ``mode="limit"`` (exact sparse LU solves, log-determinant
from ``log |diag U|``) or ``mode="series"`` (the truncated series (2) with ``K`` solves by ``A_0``, traces by
Hutchinson's estimator with Rademacher probes): with all monomials of degree ``<= K`` the series mode
reproduces the truncated series exactly (affine case), the limit mode adds the truncation error of (2).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from structrom.mpi import collectives as _dist
from .errors import EIMError, raise_collectively
from .separation import Separation, separate_vectors

if TYPE_CHECKING:  # pragma: no cover
    from mpi4py import MPI

MODES = ("limit", "series")


def sparse_logdet(A) -> float:
    """``log det A`` of a sparse SPD matrix from a sparse LU (SuperLU, symmetric mode): ``sum log |U_ii|``
    (``L`` has a unit diagonal; permutations change only the sign, and ``det A > 0``)."""
    lu = splu_spd(A)
    return float(np.sum(np.log(np.abs(lu.U.diagonal()))))


def splu_spd(A):
    """SuperLU factors of an SPD matrix with diagonal pivots (symmetric mode)."""
    return spla.splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                     options={"SymmetricMode": True})


@dataclass
class AffineFamily:
    """``A(mu) = sum_q theta(mu)[q] terms[q]``: ``terms`` ``Q`` sparse ``(n, n)`` symmetric PSD matrices whose
    positive combinations are SPD; ``theta(mu) -> (Q,)`` positive coefficients (any parameter type)."""

    terms: Sequence[Any]
    theta: Callable[[Any], np.ndarray]

    def __post_init__(self) -> None:
        if len(self.terms) == 0:
            raise EIMError("an affine family needs at least one term A_q")
        self.terms = [sp.csr_matrix(A, dtype=np.float64) for A in self.terms]
        shapes = {A.shape for A in self.terms}
        if len(shapes) != 1 or self.terms[0].shape[0] != self.terms[0].shape[1]:
            raise EIMError(f"the terms A_q must be square and of one shape, got {sorted(shapes)}")

    @property
    def n(self) -> int:
        return self.terms[0].shape[0]

    @property
    def n_terms(self) -> int:
        return len(self.terms)

    def coefficients(self, mu) -> np.ndarray:
        """``(Q,)`` ``theta(mu)``; raises :class:`EIMError` unless finite and positive."""
        th = np.asarray(self.theta(mu), dtype=np.float64).ravel()
        if th.shape != (self.n_terms,):
            raise EIMError(f"theta({mu!r}) returned {th.shape[0]} coefficients for {self.n_terms} terms")
        if not np.all(np.isfinite(th)) or np.any(th <= 0):
            raise EIMError(f"theta({mu!r}) = {th.tolist()}: the coefficients must be finite and positive "
                           "(the spectral bounds and the Neumann scaling rely on it)")
        return th

    def matrix(self, mu) -> sp.csr_matrix:
        th = self.coefficients(mu)
        out = self.terms[0] * th[0]
        for t, A in zip(th[1:], self.terms[1:]):
            out = out + A * t
        return out.tocsr()


@dataclass(frozen=True)
class NeumannScaling:
    """Reference coefficients ``theta_ref`` ``(Q,)`` and the scaling ``c`` of (1); ``lower``, ``upper``: the
    spectral bounds ``[a, b]`` of ``A_ref^-1 A(mu)`` over the training set, ``rho = (b - a) / (b + a)``."""

    theta_ref: np.ndarray
    c: float
    lower: float
    upper: float

    @classmethod
    def from_training(cls, family: AffineFamily, mu_ref, parameters: Sequence) -> "NeumannScaling":
        th0 = family.coefficients(mu_ref)
        ratios = np.array([family.coefficients(mu) / th0 for mu in parameters])
        a, b = float(min(ratios.min(), 1.0)), float(max(ratios.max(), 1.0))
        return cls(th0, 2.0 / (a + b), a, b)

    @property
    def rho(self) -> float:
        return (self.upper - self.lower) / (self.upper + self.lower)

    def deviations(self, theta: np.ndarray) -> np.ndarray:
        """``e = 1 - c theta / theta_ref``: ``(Q,)`` or ``(m, Q)``."""
        return 1.0 - self.c * np.asarray(theta, dtype=np.float64) / self.theta_ref


def monomial_exponents(n_vars: int, max_degree: int, min_degree: int = 0) -> np.ndarray:
    """``(n_alpha, n_vars)`` exponents of all monomials of degree ``min_degree..max_degree`` (graded, then
    lexicographic in the variables' multiset order); ``n_alpha = C(n_vars + K, K) - C(n_vars + min - 1, min - 1)``."""
    if n_vars < 1 or max_degree < min_degree or min_degree < 0:
        raise EIMError(f"need n_vars >= 1 and 0 <= min_degree <= max_degree, got {n_vars}, {min_degree}, "
                       f"{max_degree}")
    blocks = []
    for k in range(min_degree, max_degree + 1):
        if k == 0:
            blocks.append(np.zeros((1, n_vars), np.int64))
            continue
        words = np.array(list(itertools.combinations_with_replacement(range(n_vars), k)), dtype=np.int64)
        blocks.append((words[:, :, None] == np.arange(n_vars)).sum(axis=1))
    return np.concatenate(blocks)


def block_rows(comm: MPI.Comm | None, n: int) -> tuple[int, int]:
    """This rank's contiguous share ``[lo, hi)`` of ``n`` rows (balanced, rank after rank)."""
    p, r = _dist.size(comm), _dist.rank(comm)
    return r * n // p, (r + 1) * n // p


@dataclass
class MonomialEntries:
    """:class:`~structrom.eim.separation.EntryEvaluator` of the monomial coordinates of ``M(mu)^k``:
    ``entries(mu, rows, cols)`` = ``e(mu)^alpha_rows`` (``cols`` ignored, vector separation); O(len(rows) Q)."""

    family: AffineFamily
    scaling: NeumannScaling
    exponents: np.ndarray  # (n_alpha, Q)
    calls: int = 0

    def values(self, e: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Monomials at deviations ``e`` ``(Q,)`` (or ``(m, Q)`` -> ``(n_rows, m)``)."""
        X = self.exponents if rows is None else self.exponents[np.asarray(rows, dtype=np.int64)]
        e = np.asarray(e, dtype=np.float64)
        if e.ndim == 1:
            return np.prod(e[None, :] ** X, axis=1)
        return np.prod(e.T[None, :, :] ** X[:, :, None], axis=1)

    def entries(self, mu, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.values(self.scaling.deviations(self.family.coefficients(mu)), rows)


def separate_powers(family: AffineFamily, parameters: Sequence, *, mu_ref, max_degree: int, min_degree: int = 0,
                    comm: MPI.Comm | None = None, norm: str = "l2", tol: float = 0.0, rtol: float | None = None,
                    max_terms: int | None = None) -> tuple[Separation, MonomialEntries]:
    """EIM (3) of the monomials of degree ``min_degree..max_degree`` in ``e(mu)`` over the training
    ``parameters`` (``m`` values): rows (monomials) spread over the ranks of ``comm``, the selection is the
    same for any rank count. Returns the separation (``param_indices`` the selected ``mu_j``, ``entry_rows``
    the selected monomials) and the entry evaluator. Collective."""
    parameters = list(parameters)
    raise_collectively(comm, None if len(parameters) >= 1 else "no training parameters given")
    scaling = NeumannScaling.from_training(family, mu_ref, parameters)
    entries = MonomialEntries(family, scaling, monomial_exponents(family.n_terms, max_degree, min_degree))
    lo, hi = block_rows(comm, len(entries.exponents))
    E = scaling.deviations(np.array([family.coefficients(mu) for mu in parameters]))  # (m, Q)
    samples = entries.values(E, np.arange(lo, hi))
    sep = separate_vectors(samples, None, comm=comm, row_offset=lo, norm=norm, tol=tol, rtol=rtol,
                           max_terms=max_terms)
    return sep, entries


@dataclass
class _Interpolated:
    """Shared online part: ``beta(mu)`` from the ``d`` selected monomials, for the first ``n_terms`` terms."""

    separation: Separation
    entries: MonomialEntries
    selected: list  # the selected training parameters mu_j
    _truncated: dict = field(default_factory=dict, repr=False)

    @property
    def n_terms(self) -> int:
        return self.separation.n_terms

    def coefficients(self, mu, n_terms: int | None = None) -> np.ndarray:
        """``(d,)`` ``beta(mu)`` of (3) with the first ``n_terms`` (default all) greedy terms."""
        d = self.n_terms if n_terms is None else int(n_terms)
        if d not in self._truncated:
            self._truncated[d] = self.separation if d == self.n_terms else self.separation.truncated(d)
        return self._truncated[d].coefficients_for(mu, self.entries)


@dataclass
class ParametrizedInverse(_Interpolated):
    """``x(mu) = A(mu)^-1 b ~ sum_j beta_j(mu) x_j`` (see the module docstring); ``snapshots`` ``(n, d)``."""

    snapshots: np.ndarray = None

    def solve(self, mu, n_terms: int | None = None) -> np.ndarray:
        """``(n,)`` approximation of ``A(mu)^-1 b``: O(d^2 + d Q) for the coefficients, O(n d) for the vector."""
        beta = self.coefficients(mu, n_terms)
        return self.snapshots[:, :len(beta)] @ beta


@dataclass
class ParametrizedLogDet(_Interpolated):
    """``log det A(mu) ~ offset + sum_j beta_j(mu) values_j``; ``offset = log det A_0 - n log c``."""

    values: np.ndarray = None
    offset: float = 0.0

    def __call__(self, mu, n_terms: int | None = None) -> float:
        beta = self.coefficients(mu, n_terms)
        return float(self.offset + self.values[:len(beta)] @ beta)


def _check_mode(mode: str, probes: int) -> None:
    if mode not in MODES:
        raise EIMError(f"mode must be one of {MODES}, got {mode!r}")
    if probes < 1:
        raise EIMError(f"probes must be >= 1, got {probes}")


def _spread(comm: MPI.Comm | None, d: int, compute: Callable[[int], Any]) -> list:
    """``[compute(j) for j in range(d)]``, the ``j`` dealt round-robin to the ranks, gathered on all."""
    p, r = _dist.size(comm), _dist.rank(comm)
    mine, error = {}, None
    try:
        for j in range(r, d, p):
            mine[j] = compute(j)
    except Exception as exc:  # shared below so that no rank waits forever
        error = f"{type(exc).__name__}: {exc}"
    raise_collectively(comm, error)
    if p == 1:
        return [mine[j] for j in range(d)]
    merged: dict = {}
    for part in comm.allgather(mine):
        merged.update(part)
    return [merged[j] for j in range(d)]


def inverse_action(family: AffineFamily, b: np.ndarray, parameters: Sequence, *, mu_ref, max_degree: int,
                   mode: str = "limit", comm: MPI.Comm | None = None, norm: str = "l2", tol: float = 0.0,
                   rtol: float | None = None, max_terms: int | None = None) -> ParametrizedInverse:
    """Offline stage of ``A(mu)^-1 b`` (``b`` ``(n,)``): the EIM of the monomials of degree ``0..max_degree``
    and, at the ``d`` selected parameters, ``A(mu_j)^-1 b`` (``"limit"``: sparse LU) or the Neumann sum
    ``c sum_{k <= K} M(mu_j)^k A_0^-1 b`` (``"series"``). The ``d`` solves are dealt to the ranks. Collective."""
    _check_mode(mode, 1)
    b = np.asarray(b, dtype=np.float64)
    if b.shape != (family.n,) or not np.all(np.isfinite(b)):
        raise EIMError(f"b must be a finite ({family.n},) vector, got shape {b.shape}")
    sep, entries = separate_powers(family, parameters, mu_ref=mu_ref, max_degree=max_degree, min_degree=0,
                                   comm=comm, norm=norm, tol=tol, rtol=rtol, max_terms=max_terms)
    selected = [parameters[j] for j in sep.param_indices]
    sc = entries.scaling
    lu0 = splu_spd(family.matrix(mu_ref)) if mode == "series" else None

    def compute(j: int) -> np.ndarray:
        A = family.matrix(selected[j])
        if mode == "limit":
            return splu_spd(A).solve(b)
        y = lu0.solve(b)
        x = y.copy()
        for _ in range(max_degree):
            y = y - sc.c * lu0.solve(A @ y)
            x += y
        return sc.c * x

    X = np.stack(_spread(comm, sep.n_terms, compute), axis=1)
    return ParametrizedInverse(sep, entries, selected, snapshots=X)


def log_determinant(family: AffineFamily, parameters: Sequence, *, mu_ref, max_degree: int, mode: str = "limit",
                    probes: int = 30, seed: int = 0, comm: MPI.Comm | None = None, norm: str = "l2",
                    tol: float = 0.0, rtol: float | None = None, max_terms: int | None = None) -> ParametrizedLogDet:
    """Offline stage of ``log det A(mu)``: the EIM of the monomials of degree ``1..max_degree`` and, at the
    ``d`` selected parameters, ``T_j = log det A(mu_j) - log det A_0 + n log c`` (``"limit"``: sparse LU) or
    ``-sum_{k <= K} tr(M(mu_j)^k) / k`` with Hutchinson's estimator on ``probes`` Rademacher vectors
    (``"series"``, ``K probes`` solves by ``A_0`` per parameter; the same probes for every ``mu_j``, drawn
    from ``seed``). Collective."""
    _check_mode(mode, probes)
    sep, entries = separate_powers(family, parameters, mu_ref=mu_ref, max_degree=max_degree, min_degree=1,
                                   comm=comm, norm=norm, tol=tol, rtol=rtol, max_terms=max_terms)
    selected = [parameters[j] for j in sep.param_indices]
    sc, n = entries.scaling, family.n
    A0 = family.matrix(mu_ref)
    lu0 = splu_spd(A0)
    logdet0 = float(np.sum(np.log(np.abs(lu0.U.diagonal()))))
    offset = logdet0 - n * math.log(sc.c)
    Z = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n, probes)) if mode == "series" else None

    def compute(j: int) -> float:
        A = family.matrix(selected[j])
        if mode == "limit":
            return sparse_logdet(A) - offset
        Y, total = Z.copy(), 0.0
        for k in range(1, max_degree + 1):
            Y = Y - sc.c * lu0.solve(A @ Y)
            total -= float(np.einsum("ij,ij->", Z, Y)) / (probes * k)
        return total

    values = np.array(_spread(comm, sep.n_terms, compute), dtype=np.float64)
    return ParametrizedLogDet(sep, entries, selected, values=values, offset=offset)


@dataclass
class PowerSeparation(_Interpolated):
    """``M(mu)^k ~ sum_j beta_j(mu) M(mu_j)^k`` (degree-``k`` monomials only); :meth:`apply` forms the separated
    action on a vector (``k`` solves by ``A_0`` per term: for checks and small problems)."""

    power: int = 1
    _lu0: Any = None

    def apply(self, mu, v: np.ndarray, n_terms: int | None = None) -> np.ndarray:
        beta = self.coefficients(mu, n_terms)
        fam, sc = self.entries.family, self.entries.scaling
        out = np.zeros_like(np.asarray(v, dtype=np.float64))
        for bj, mu_j in zip(beta, self.selected):
            A = fam.matrix(mu_j)
            y = np.asarray(v, dtype=np.float64).copy()
            for _ in range(self.power):
                y = y - sc.c * self._lu0.solve(A @ y)
            out += bj * y
        return out


def matrix_power(family: AffineFamily, parameters: Sequence, *, mu_ref, power: int, comm: MPI.Comm | None = None,
                 norm: str = "l2", tol: float = 0.0, rtol: float | None = None,
                 max_terms: int | None = None) -> PowerSeparation:
    """EIM of ``M(mu)^power`` (1): exact once every degree-``power`` monomial is selected. Collective."""
    if power < 1:
        raise EIMError(f"power must be >= 1, got {power}")
    sep, entries = separate_powers(family, parameters, mu_ref=mu_ref, max_degree=power, min_degree=power,
                                   comm=comm, norm=norm, tol=tol, rtol=rtol, max_terms=max_terms)
    out = PowerSeparation(sep, entries, [parameters[j] for j in sep.param_indices], power=power)
    out._lu0 = splu_spd(family.matrix(mu_ref))
    return out

