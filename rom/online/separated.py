"""Online stage of a separated (EIM) linear model: ``A(mu) u = b(mu)`` in a reduced basis, with a residual
error estimate.

Usage (pyMOR-like parameter API)::

    from structrom.rom.online import load_model
    model = load_model("model.h5")              # a SeparatedModel for a file of kind "separated"
    model.parameters                            # {"intensity": (300.0, 700.0), "x_center": (30.0, 70.0)}
    result = model.solve({"intensity": 512.0, "x_center": 41.0})    # or model.solve([512.0, 41.0])
    result.error_estimate, result.indicator, result.trusted
    result.vector()                             # (n,) V u_N in the exported numbering
    result.displacement()                       # (n_nodes, 3) when the model knows the mesh numbering
    model.estimate_error(mu)                    # the estimate alone (absolute, in the X norm)

Online algorithm (arXiv 1307.4330; :mod:`structrom.eim.reduced_solve`): the ``d`` entries ``a = A(mu)[i_l, j_l]`` by
the model's entry evaluator (:mod:`structrom.rom.online.separated_entries`), ``beta = F^-1 a``; likewise
``gamma`` for a separated right-hand side (``gamma = 1`` for a fixed load); ``A_N = sum_k beta_k V^T A_k V``,
``b_N = sum_q gamma_q V^T b_q``, ``u_N = A_N^-1 b_N``. Cost ``O(entries + d N^2 + N^3)``, independent of ``n``.

Error estimate (:mod:`structrom.eim.estimator`, stabilized, arXiv 1212.0970): the residual of the separated
system ``r(mu) = sum_q gamma_q b_q - sum_k beta_k A_k V u_N = Z theta`` in the dual norm of ``X = A(mu_ref)``
(the stiffness at a training parameter), ``||r||_{X'} = ||R theta||`` with ``R`` from an ``X``-orthonormal
factorization of ``X^-1 Z`` computed offline, and

    Delta(mu) = ||r||_{X'} / alpha_LB,      ||u_sep(mu) - V u_N||_X <= Delta(mu)

when ``alpha_LB <= lambda_min(X^-1 A_sep(mu))``. ``alpha_LB`` is a safety factor times the smallest
``lambda_min(X^-1 A(mu_j))`` over the training parameters (computed offline): a bound at the training
parameters, an assumption between them. ``u_sep`` solves the *separated* system: the residual does not see
the separation's error ``A(mu) - A_sep(mu)``. The true residual is ``r_true = r + (A_sep(mu) - A(mu)) V u_N``,
so (triangle inequality) the model adds ``eta ||V u_N||_X`` with ``eta`` the largest relative operator error
``||(A(mu_v) - A_sep(mu_v)) V u_N||_{X'} / ||V u_N||_X`` measured offline on validation exports (not used for
the model; ``eta = 0`` without them):

    Delta(mu) = (||R theta(mu)|| + eta ||V u_N||_X) / alpha_LB   >=   ||u(mu) - V u_N||_X   (when eta and
                                                                      alpha_LB hold at mu)

``indicator = Delta / ||V u_N||_X`` (relative), ``trusted = indicator <= tolerance`` inside the training box
only: ``eta`` and ``alpha_LB`` are checked at the training and validation parameters, and outside their box
(``extrapolate=True``) neither holds in general (the thermoelastic bar of ``examples/separated_thermoelastic.py``
at intensity 1200 against the training's 300-700: ``Delta`` 0.79 x the energy-norm error against CalculiX, the
softer stiffness below ``alpha_LB``), so such answers keep their indicator but are never trusted.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg as sla

from structrom.rom import separated_model_file as smf
from structrom.rom.model_file import ModelFileError

from .errors import ModelDataError, OnlineError
from .separated_entries import FEKernelEntries, InterpolatedEntries

#: What the indicator of a separated model guarantees (served in the card).
GUARANTEE = ("indicator = Delta / ||V u_N||_X, Delta = (||r_sep(mu)||_{X'} + eta ||V u_N||_X) / alpha_LB: the "
             "stabilized residual of the separated system plus the separation error eta measured on validation "
             "exports, over a coercivity lower bound (X = stiffness at a training parameter). An upper bound of "
             "the energy-norm error against the exported operator when eta and alpha_LB hold at mu (checked at "
             "the validation and training parameters, assumed between them); answers outside the training box "
             "(extrapolate) are never trusted")


@dataclass
class SeparatedResult:
    """Answer of :meth:`SeparatedModel.solve` for one parameter value.

    ``mu`` ``(p,)``; ``coordinates`` ``(N,)`` reduced solution ``u_N``; ``beta`` ``(d,)``, ``gamma`` ``(Q,)``
    separation coefficients; ``error_estimate``: ``Delta`` (absolute, X norm, units of ``sqrt(A) u``);
    ``indicator``: ``Delta / ||V u_N||_X``; ``trusted``: ``indicator <= model.tolerance`` and ``mu`` inside the
    training box (no ``warnings``); ``residual``:
    ``||r||_{X'}``; ``timings`` seconds; ``warnings``: range violations accepted with ``extrapolate``.
    """

    model: "SeparatedModel"
    mu: np.ndarray
    coordinates: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    residual: float
    error_estimate: float
    indicator: float
    trusted: bool
    timings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def vector(self) -> np.ndarray:
        """``V u_N`` ``(n,)`` in the numbering of the exported matrices (reads the basis on first use)."""
        return self.model.basis() @ self.coordinates

    def displacement(self, nodes: np.ndarray | None = None) -> np.ndarray:
        """``(n_nodes, 3)`` nodal displacements in the mesh numbering (0 at dofs the black box removed,
        e.g. clamped ones); ``nodes``: a subset of node indices."""
        m = self.model
        if np.any(m.dof_map < 0):
            raise OnlineError("this model does not know the mesh numbering of its rows (dofs/map has -1)")
        u = np.zeros(3 * m.n_mesh_nodes)
        u[m.dof_map] = self.vector()
        u = u.reshape(-1, 3)
        return u if nodes is None else u[np.asarray(nodes, dtype=np.int64)]

    def summary(self) -> dict:
        """JSON-serializable summary (no full-size data)."""
        return {"kind": "separated", "mu": dict(zip(self.model.parameter_names, self.mu.tolist())),
                "coordinates": self.coordinates.tolist(), "error_estimate": self.error_estimate,
                "indicator": self.indicator, "trusted": self.trusted, "indicator_tolerance": self.model.tolerance,
                "warnings": list(self.warnings), "timings": dict(self.timings)}


#: Smallest reciprocal condition number of a separation's ``F`` (1-norm estimate)
F_RCOND = 1e3 * np.finfo(float).eps
#: :meth:`SeparatedModel.check_estimator`: ``R^T R`` may fall below ``P^T G^-1 P`` by this fraction of the largest
#: diagonal entry (round-off; measured 5e-15 on the test suite's models).
ESTIMATOR_RTOL = 1e-8


def _finite(a: np.ndarray, what: str, mu) -> np.ndarray:
    """``a`` when every value is finite, else :class:`ModelDataError` naming the data ``what``."""
    if not np.all(np.isfinite(a)):
        raise ModelDataError(f"{what} of the model file gives non-finite values at mu = {np.asarray(mu).tolist()} "
                             "(its values overflow); rebuild or check the model")
    return a


def _interpolated(data: smf.SeparatedModelData, s: smf.SeparationData, ranges, where: str, name: str):
    """The :class:`InterpolatedEntries` of separation ``name``; :class:`ModelFileError` when the training
    parameters cannot carry an interpolation (repeated points)."""
    try:
        return InterpolatedEntries(data.training_parameters, ranges, s.entry_rows, s.entry_cols, s.training_values)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ModelFileError(f"{where}: /training/parameters: the interpolation of separation/{name}/training_values "
                             f"over the training parameters is singular ({exc}); the training parameters must be "
                             "distinct points") from None


class SeparatedModel:
    """A separated linear model (see the module docstring); build with :meth:`load` or from
    :class:`~structrom.rom.separated_model_file.SeparatedModelData` (``data.mesh`` needed for FE-kernel entries)."""

    kind = "separated"

    def __init__(self, data: smf.SeparatedModelData, path: str | Path | None = None) -> None:
        self.data = data
        self.path = Path(path) if path is not None else None
        where = str(self.path) if self.path else "separated model"
        self.parameter_names = [q["name"] for q in data.parameters]
        self.ranges = np.array([q["range"] for q in data.parameters], dtype=float)
        self.dof_map = np.asarray(data.dof_map, dtype=np.int64)
        self._F = sla.lu_factor(data.matrix.F)
        self._F_rhs = sla.lu_factor(data.rhs.F) if data.rhs is not None else None
        for name, lu in (("matrix", self._F), ("rhs", self._F_rhs)):
            if lu is None:
                continue
            F = getattr(data, name).F
            rcond = 0.0
            if np.all(np.isfinite(lu[0])) and np.all(np.diag(lu[0]) != 0):
                gecon, = sla.get_lapack_funcs(("gecon",), (lu[0],))
                rcond = float(gecon(lu[0], float(np.linalg.norm(F, 1)), norm="1")[0])
            if not rcond > F_RCOND:
                raise ModelFileError(f"{where}: /separation/{name}/F is singular (reciprocal condition number "
                                     f"{rcond:.3g}); the separation's interpolation matrix must be invertible")
        ent = data.entries
        self.n_mesh_nodes = int(data.mesh.n_nodes) if data.mesh is not None else (
            int(self.dof_map.max()) // 3 + 1 if self.dof_map.size and self.dof_map.min() >= 0 else 0)
        if ent["kind"] == "fe_kernel":
            if data.mesh is None:
                raise ModelFileError(f"{where}: FE-kernel entries need the mesh (load with mesh=True)")
            try:
                self.matrix_entries = FEKernelEntries(data.mesh, ent["material"], ent["temperature"],
                                                      self.parameter_names, self.dof_map, float(ent.get("time", 1.0)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ModelFileError(f"{where}: entries: {exc}") from None
        else:
            self.matrix_entries = _interpolated(data, data.matrix, self.ranges, where, "matrix")
        self.rhs_entries = None
        if data.rhs is not None:
            self.rhs_entries = _interpolated(data, data.rhs, self.ranges, where, "rhs")
        self._basis = None if data.basis is None else np.asarray(data.basis)

    @classmethod
    def load(cls, path: str | Path, *, keep_basis: bool = False) -> "SeparatedModel":
        """Read and validate (:func:`structrom.rom.separated_model_file.load`); the mesh is read only for FE-kernel
        entries, the basis ``V`` only with ``keep_basis`` (else on first :meth:`basis`)."""
        data = smf.load(path, basis=keep_basis, mesh=True)
        model = cls(data, path)
        model.self_check()
        return model

    def self_check(self, at_most: int = 32) -> None:
        """Solve at up to ``at_most`` training parameters (evenly spaced, the reference among them): the
        separation coefficients, the reduced solution, its norm and the error estimate must be finite and the
        reduced system regular, else :class:`~structrom.rom.model_file.ModelFileError` naming the data at fault
        (what a file's screening cannot see from the arrays one by one); then the estimator must not under-report
        (:meth:`check_estimator`). Cost ``at_most (d N^2 + N^3) + (Q + d N)^3 / 3``."""
        where = str(self.path) if self.path else "separated model"
        mus = np.asarray(self.data.training_parameters, dtype=float)
        picks = np.unique(np.r_[np.linspace(0, len(mus) - 1, min(at_most, len(mus))).round().astype(int),
                                self.data.reference])
        for j in picks:
            try:
                res = self.solve(mus[j], extrapolate=True)
            except OnlineError as exc:
                raise ModelFileError(f"{where}: /reduced: at training parameter {j} ({mus[j].tolist()}): {exc}; "
                                     "the file's reduced operators or separation are inconsistent, rebuild the "
                                     "model") from None
            if not (np.isfinite(res.error_estimate) and np.isfinite(res.indicator)):
                raise ModelFileError(f"{where}: /estimator: at training parameter {j} ({mus[j].tolist()}) the error "
                                     f"estimate is {res.error_estimate!r} (indicator {res.indicator!r}): estimator/R, "
                                     "the estimator's attributes, reduced/norm_gram or reduced/b_red overflow or "
                                     "vanish; rebuild the model")
        self.check_estimator(where)

    def check_estimator(self, where: str) -> None:
        """:class:`~structrom.rom.model_file.ModelFileError` when ``estimator/R`` under-reports residuals. The
        residual's part in the span of the basis is fixed by the reduced data: for every ``theta``, ``V^T r = P
        theta`` with ``P = [b_red^T, A_red_1, ..., A_red_d]`` ``(N, p)``, and ``||r||_{X'} >= ||V^T r||_{G^-1}``
        (``G = V^T X V``: the dual norm of ``r`` is at least that of its restriction to the span). So a consistent
        file has ``R^T R - P^T G^-1 P`` positive semi-definite (it is ``Z^T X^-1/2 (I - Pi) X^-1/2 Z``, ``Pi`` the
        ``X``-orthogonal projector on the span); a zero or scaled-down ``R`` would mark wrong answers trusted.
        Checked by one Cholesky factorization ``O(p^3)``, up to :data:`ESTIMATOR_RTOL`."""
        d = self.data
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                P = np.concatenate([np.asarray(d.b_red, dtype=float).T, *np.asarray(d.A_red, dtype=float)], axis=1)
                W = sla.solve_triangular(np.linalg.cholesky(np.asarray(d.norm_gram, dtype=float)), P, lower=True)
                R = np.asarray(d.R, dtype=float)
                if R.shape[1] != P.shape[1]:
                    raise ModelFileError(f"{where}: /estimator/R has {R.shape[1]} columns, the reduced data "
                                         f"{P.shape[1]} residual terms (Q + d N); rebuild the model")
                RtR, WtW = R.T @ R, W.T @ W
                excess = RtR - WtW
                scale = float(max(np.abs(np.diag(RtR)).max(initial=0.0), np.abs(np.diag(WtW)).max(initial=0.0)))
                if not np.all(np.isfinite(excess)) or not np.isfinite(scale):
                    raise np.linalg.LinAlgError("not finite")
                np.linalg.cholesky(excess + ESTIMATOR_RTOL * max(scale, np.finfo(float).tiny) * np.eye(len(excess)))
        except np.linalg.LinAlgError:
            raise ModelFileError(f"{where}: /estimator/R under-reports the residual: for some coefficients ||R theta|| "
                                 "is below the residual's part in the span of the basis, which /reduced/A_red, "
                                 "/reduced/b_red and /reduced/norm_gram fix (its answers would be trusted when they "
                                 "are wrong); rebuild the model") from None

    # -- parameter API ----------------------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, tuple[float, float]]:
        """Parameter names and training ranges ``{name: (lo, hi)}``."""
        return {n: (float(lo), float(hi)) for n, (lo, hi) in zip(self.parameter_names, self.ranges)}

    @property
    def loading_schema(self) -> dict:
        return {"parameters": {n: list(r) for n, r in self.parameters.items()}}

    @property
    def tolerance(self) -> float:
        return self.data.tolerance

    @property
    def n_modes(self) -> int:
        return self.data.n_modes

    @property
    def n_terms(self) -> int:
        return self.data.n_terms

    def __repr__(self) -> str:
        return (f"SeparatedModel({str(self.path) if self.path else '<memory>'}: parameters {self.parameter_names}, "
                f"{self.n_terms} matrix terms, {self.n_modes} basis vectors, entries {self.data.entries['kind']})")

    def parse(self, mu) -> np.ndarray:
        """``(p,)`` parameter vector from ``{name: value}`` or a sequence in :attr:`parameter_names` order."""
        names = self.parameter_names
        if isinstance(mu, dict):
            unknown = sorted(set(mu) - set(names))
            missing = [n for n in names if n not in mu]
            if unknown or missing:
                raise OnlineError(f"parameters must be exactly {names}: " + "; ".join(
                    ([f"unknown {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])))
            mu = [mu[n] for n in names]
        try:
            v = np.asarray(mu, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise OnlineError(f"parameters must be numbers {names}, got {mu!r}") from None
        if v.shape != (len(names),):
            raise OnlineError(f"expected {len(names)} parameter values {names}, got {v.size}")
        if not np.all(np.isfinite(v)):
            bad = [n for n, x in zip(names, v) if not np.isfinite(x)]
            raise OnlineError(f"parameter values must be finite: {bad}")
        return v

    def check(self, mu, *, extrapolate: bool = False) -> list[str]:
        """Range violations of ``mu`` (raises :class:`OnlineError` for them unless ``extrapolate``, and for
        malformed values always)."""
        v = self.parse(mu)
        lo, hi = self.ranges[:, 0], self.ranges[:, 1]
        slack = 1e-9 * np.maximum(np.abs(self.ranges).max(axis=1), 1.0)
        out = [f"parameter {n} = {x:g} is outside the training range [{a:g}, {b:g}]"
               for n, x, a, b, s in zip(self.parameter_names, v, lo, hi, slack) if x < a - s or x > b + s]
        if out and not extrapolate:
            raise OnlineError("; ".join(out) + ": pass extrapolate=True (REST: \"extrapolate\": true) to solve it "
                              "anyway (check the indicator)")
        return out

    # -- solve ----------------------------------------------------------------------------------------------
    def coefficients(self, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(beta (d,), gamma (Q,))`` at the parameter vector ``mu``."""
        s = self.data.matrix
        a = np.asarray(self.matrix_entries.entries(mu, s.entry_rows, s.entry_cols), dtype=float).reshape(-1)
        if a.shape != (s.n_terms,):
            raise OnlineError(f"the entry evaluator returned {a.shape} values, expected {s.n_terms}")
        if not np.all(np.isfinite(a)):  # (the interpolation overflows far outside the training ranges)
            given = ", ".join(f"{n} = {x:g}" for n, x in zip(self.parameter_names, np.asarray(mu, float).ravel()))
            raise OnlineError(f"the matrix entries at {given} are not finite (the interpolation of the training "
                              "entries overflows there); give parameters nearer the training ranges of the model "
                              "card")
        beta = _finite(sla.lu_solve(self._F, a), "separation/matrix", mu)
        if self.data.rhs is None:
            return beta, np.ones(1)
        r = self.data.rhs
        g = np.asarray(self.rhs_entries.entries(mu, r.entry_rows, r.entry_cols), dtype=float).reshape(-1)
        _finite(g, "separation/rhs/training_values", mu)
        return beta, _finite(sla.lu_solve(self._F_rhs, g), "separation/rhs", mu)

    def solve(self, mu, *, extrapolate: bool = False) -> SeparatedResult:
        """Reduced solution and error estimate at ``mu`` (dict or sequence); out-of-range values raise
        :class:`OnlineError` unless ``extrapolate`` (then listed in ``result.warnings``)."""
        t0 = time.perf_counter()
        warnings = self.check(mu, extrapolate=extrapolate)
        v = self.parse(mu)
        t1 = time.perf_counter()
        beta, gamma = self.coefficients(v)
        t2 = time.perf_counter()
        d = self.data
        with np.errstate(over="ignore", invalid="ignore"):
            A_N = _finite(np.tensordot(beta, d.A_red, axes=1), "reduced/A_red", v)
            b_N = _finite(gamma @ d.b_red, "reduced/b_red", v)
        try:
            u_N = sla.solve(A_N, b_N, assume_a="gen")
        except (sla.LinAlgError, ValueError) as exc:
            raise OnlineError(f"the reduced system at mu = {v.tolist()} is singular ({exc}); the parameter is "
                              "probably far outside the training set") from None
        theta = np.concatenate([gamma, -np.outer(beta, u_N).ravel()])
        with np.errstate(over="ignore", invalid="ignore"):
            residual = float(np.linalg.norm(d.R @ theta))
            norm_u = float(np.sqrt(max(u_N @ (d.norm_gram @ u_N), 0.0)))
            estimate = (residual + d.eim_error * norm_u) / d.alpha_lb
        indicator = estimate / norm_u if norm_u > 0 else (0.0 if estimate == 0 else float("inf"))
        t3 = time.perf_counter()
        return SeparatedResult(self, v, u_N, beta, gamma, residual, estimate, float(indicator),
                               # outside the box the bound's assumptions (eta, alpha_LB) are not checked
                               bool(indicator <= d.tolerance) and not warnings,
                               {"total": t3 - t0, "check": t1 - t0, "entries": t2 - t1, "solve": t3 - t2},
                               warnings)

    def estimate_error(self, mu, *, extrapolate: bool = False) -> float:
        """``Delta(mu)``: the a posteriori estimate of ``||u(mu) - V u_N(mu)||_X`` (see the module docstring)."""
        return self.solve(mu, extrapolate=extrapolate).error_estimate

    # -- full-size data -------------------------------------------------------------------------------------
    def basis(self) -> np.ndarray:
        """``V`` ``(n, N)`` (read from the file once, then kept)."""
        if self._basis is None:
            if self.path is None:
                raise OnlineError("this model lives in memory without its basis")
            import h5py

            try:
                with h5py.File(self.path, "r") as f:
                    self._basis = f["basis/V"][()]
            except (OSError, KeyError) as exc:
                raise ModelFileError(f"{self.path}: cannot read basis/V ({exc})") from None
        return self._basis

    def card(self) -> dict:
        """JSON-serializable description (served by the registry)."""
        d = self.data
        return {
            "kind": self.kind,
            "sizes": {"modes": self.n_modes, "reduced_points": self.n_terms, "matrix_terms": self.n_terms,
                      "rhs_terms": 1 if d.rhs is None else d.rhs.n_terms, "rows": d.n_rows,
                      "training_parameters": len(d.training_parameters),
                      "mesh_nodes": self.n_mesh_nodes if d.mesh is not None else None},
            "parameters": [{"name": n, "range": list(r)} for n, r in self.parameters.items()],
            "loading_schema": self.loading_schema,
            "surfaces": [],
            "entries": d.entries["kind"],
            "indicator": {"quantity": "relative_error_estimate", "tolerance": d.tolerance,
                          "alpha_lb": d.alpha_lb, "separation_error": d.eim_error, "guarantee": GUARANTEE},
            "provenance": d.provenance,
        }
