"""Offline stage of a separated model: ``mpirun -n P structrom offline config.toml`` with ``kind = "separated"``.

Inputs (:mod:`structrom.rom.offline.separated_config`): operators ``A(mu_j)`` exported by a black-box code for
``m`` training parameters (CalculiX matrix storage, Ansys ``.full`` or Matrix Market) and load vectors ``b(mu_j)``. Stages, all
collective, rows distributed in contiguous blocks (:func:`structrom.rom.offline.exported_operators.row_range`):

1. read: every rank keeps its rows of each ``A(mu_j)`` and ``b(mu_j)``;
2. EIM separation (arXiv 1307.4330) of the matrices on their upper triangles (they are symmetric; this halves
   the greedy's memory) with :func:`structrom.eim.separate_matrices` over ``comm``: ``d`` parameters ``J`` and
   ``d`` entries; the load vectors likewise (:func:`structrom.eim.separate_vectors`) unless they are all equal
   (a fixed load);
3. training solutions ``u_j = A(mu_j)^-1 b(mu_j)`` by PETSc KSP on the distributed matrices (default MUMPS
   Cholesky), and ``alpha_j = lambda_min(X^-1 A(mu_j))`` with ``X = A(mu_ref)`` by block inverse iteration
   with Rayleigh-Ritz (warm-started from the previous parameter);
4. reduced basis ``V``: POD of the solutions (:func:`structrom.rom.pod.pod`, Euclidean, rank-count independent
   signs);
5. reduced operators ``V^T A(mu_{J_k}) V``, ``V^T b_q``, ``V^T X V`` (PETSc products, allreduce);
6. estimator: ``Y = X^-1 Z`` (KSP with ``X``), stabilized factor ``R``
   (:func:`structrom.eim.distributed_estimator.distributed_residual_estimator`); with validation exports
   (``[[separated.validation]]``, not used for the model), the separation's operator error
   ``eta = max_v ||(A(mu_v) - A_sep(mu_v)) V u_N||_{X'} / ||V u_N||_X`` (:func:`validate_separation`), which the
   online estimate adds to the residual (triangle inequality);
7. the model file (:mod:`structrom.rom.separated_model_file`), written by rank 0 from the gathered basis.

The selected entries and parameters are identical for any rank count (the greedy is), the reduced matrices
agree to round-off (sums over ranks).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from mpi4py import MPI

from structrom.eim import separate_matrices, separate_vectors
from structrom.eim.distributed_estimator import distributed_residual_estimator
from structrom.mpi import collectives as _dist
from structrom.rom import separated_model_file as smf
from structrom.rom.pod import pod

from .ansys_full import ansys_full_numbering, check_ansys_free_dofs, read_ansys_full_rows, read_ansys_load_vector
from .distributed_operator import DistributedOperator, smallest_generalized_eigenvalue, start_vectors
from .exported_operators import (ExportError, matrix_market_size, read_calculix_rows, read_dofs,
                                 read_matrix_market_rows, read_vector, row_range)
from .separated_config import SeparatedOfflineConfig


def _raise(comm, msg: str | None) -> None:
    _dist.raise_collectively(comm, msg, ExportError)


def _gather_rows(comm, local: np.ndarray) -> np.ndarray | None:
    """The full array on rank 0 (None elsewhere)."""
    if _dist.size(comm) == 1:
        return local
    parts = comm.gather(local, root=0)
    return np.vstack(parts) if comm.rank == 0 else None


def run_separated_offline(cfg: SeparatedOfflineConfig, comm: MPI.Comm | None = None, log=print) -> Path:
    """Build and write the separated model of ``cfg`` (collective); returns the output path."""
    comm = MPI.COMM_WORLD if comm is None else comm
    rank, size = comm.rank, comm.size
    say = log if rank == 0 else (lambda *a, **k: None)
    s = cfg.separated
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    mus = np.array([t.mu for t in s.training], dtype=float)
    m = len(mus)

    # -- 1. sizes, numbering, local rows ----------------------------------------------------------------------
    t = time.perf_counter()
    msg, dofs, n = None, None, 0
    rows = None  # Ansys .full: (free (n,) rows among the file's n_file dofs, n_file), the load vectors' numbering
    try:
        if s.format == "calculix":
            dofs = read_dofs(cfg.path(s.training[0].matrix + ".dof"))
            n = len(dofs)
        elif s.format == "ansys_full":
            dofs, free, n_file = ansys_full_numbering(cfg.path(s.training[0].matrix))
            rows, n = (free, n_file), len(dofs)
        else:
            n = matrix_market_size(cfg.path(s.training[0].matrix))
    except ExportError as exc:
        msg = str(exc)
    _raise(comm, msg)
    msg = None
    if s.format == "calculix":  # every export must use the same numbering
        for j in range(rank, m, size):
            try:
                dj = read_dofs(cfg.path(s.training[j].matrix + ".dof"))
            except Exception as exc:  # any error, so that it reaches every rank (none waits alone below)
                msg = str(exc) if isinstance(exc, ExportError) else (
                    f"{s.training[j].matrix}.dof: unexpected {type(exc).__name__}: {exc}")
                break
            if not np.array_equal(dj, dofs):
                msg = (f"{s.training[j].matrix}.dof: the dofs differ from those of {s.training[0].matrix}.dof: "
                       "every export must come from the same mesh and boundary conditions")
                break
    _raise(comm, msg)
    msg, mesh_map = None, None
    if rank == 0 and dofs is not None and s.online.mesh is not None:  # (before hours of reading and solving)
        try:
            mesh_map = _mesh_dof_map(cfg, dofs, n)  # (kept for the model file: the deck is read once)
        except ExportError as exc:
            msg = str(exc)
    _raise(comm, msg)
    lo, hi = row_range(n, rank, size)
    A_local: list[sp.csr_matrix] = []
    b_local = np.zeros((hi - lo, m))
    shared_b = None
    msg = None
    try:
        if s.rhs is not None:
            shared_b = _read_load(cfg, s.rhs, n, rows)[lo:hi]
        for j, tr in enumerate(s.training):
            A, b_local[:, j] = _read_operator(cfg, tr, n, lo, hi, shared_b,
                                              dofs if s.format == "ansys_full" else None, rows)
            A_local.append(A)
    except Exception as exc:  # any error, so that it reaches every rank (none waits alone below)
        msg = str(exc) if isinstance(exc, ExportError) else (
            f"reading the training exports: unexpected {type(exc).__name__}: {exc}")
    _raise(comm, msg)
    timings["read"] = time.perf_counter() - t
    say(f"read {m} exported operators: {n} rows, {size} rank(s), {timings['read']:.1f} s")

    # -- 2. separation ---------------------------------------------------------------------------------------------
    t = time.perf_counter()
    upper = []
    for A in A_local:
        U = sp.triu(A, k=lo, format="csr")  # global column >= global row
        U.sort_indices()
        upper.append(U)
    sep = separate_matrices(upper, mus, comm=comm, row_offset=lo, n_cols=n, norm=s.eim.norm,
                            rtol=s.eim.rtol or None, max_terms=s.eim.max_terms)
    del upper
    J = sep.param_indices
    matrix = smf.SeparationData(J.astype(np.int64), sep.entry_rows.astype(np.int64), sep.entry_cols.astype(np.int64),
                                np.asarray(sep.interpolation_matrix, float), np.asarray(sep.greedy.point_rows, float))
    same_b = bool(_dist.allreduce(comm, np.array([float(np.all(b_local == b_local[:, :1]))]), "min")[0])
    rhs_sep = None
    if same_b:
        b_vecs = b_local[:, :1].copy()
    else:
        rs = separate_vectors(b_local, mus, comm=comm, row_offset=lo, rtol=s.eim.rtol or None)
        rhs_sep = smf.SeparationData(rs.param_indices.astype(np.int64), rs.entry_rows.astype(np.int64),
                                     rs.entry_cols.astype(np.int64), np.asarray(rs.interpolation_matrix, float),
                                     np.asarray(rs.greedy.point_rows, float))
        b_vecs = b_local[:, rs.param_indices]
    timings["separation"] = time.perf_counter() - t
    say(f"separation: d = {sep.n_terms} terms ({sep.greedy.stop_reason}; max-norm error {sep.greedy.errors[0]:.3e} "
        f"-> {sep.greedy.errors[-1]:.3e}), right-hand side {'fixed' if rhs_sep is None else f'{rhs_sep.n_terms} terms'}"
        f", {timings['separation']:.1f} s")

    # -- 3. training solves and coercivity constants ----------------------------------------------------------------
    t = time.perf_counter()
    est = s.estimator
    ops = [DistributedOperator(comm, A, lo, s.solver) for A in A_local]
    X = ops[est.reference]
    U_local = np.zeros((hi - lo, m))
    alpha = np.zeros(m)
    block = start_vectors(lo, hi - lo, est.eig_vectors)
    msg = None
    try:
        for j in range(m):
            U_local[:, j] = ops[j].solve(b_local[:, j:j + 1])[:, 0]
            if j == est.reference:
                alpha[j] = 1.0
            else:
                alpha[j], block = smallest_generalized_eigenvalue(comm, ops[j], X, block, est.eig_iterations,
                                                                  est.eig_rtol)
            if j != est.reference and ops[j] is not X:
                ops[j].ksp.destroy()
                ops[j].ksp = None
    except ExportError as exc:
        msg = str(exc)
    _raise(comm, msg)
    _raise(comm, None if np.all(np.isfinite(U_local)) else "a training solution contains NaN/inf (singular matrix?)")
    alpha_lb = est.safety * float(alpha.min())
    _raise(comm, None if alpha_lb > 0 else f"lambda_min(X^-1 A(mu_j)) = {alpha.min():g} <= 0: the exported matrices "
                                           "are not positive definite (Dirichlet conditions missing?)")
    timings["solves"] = time.perf_counter() - t
    say(f"training solves: {m} ({s.solver.ksp_type}/{s.solver.pc_type}), alpha_j in [{alpha.min():.3f}, "
        f"{alpha.max():.3f}] -> alpha_LB = {alpha_lb:.3f}, {timings['solves']:.1f} s")

    # -- 4. reduced basis ----------------------------------------------------------------------------------------------
    t = time.perf_counter()
    res = pod(comm, U_local, None, np.ones(hi - lo, dtype=bool), tolerance=s.basis.tolerance,
              max_modes=s.basis.max_modes, method="tsqr", global_rows=lo + np.arange(hi - lo, dtype=np.int64))
    V = np.ascontiguousarray(res.modes_local)
    N = V.shape[1]
    timings["pod"] = time.perf_counter() - t
    say(f"POD: N = {N} (tolerance {s.basis.tolerance:g}), {timings['pod']:.1f} s")

    # -- 5. reduced operators -------------------------------------------------------------------------------------------
    t = time.perf_counter()
    AV = [ops[int(k)].matmul(V) for k in J]
    A_red = _dist.allreduce(comm, np.stack([V.T @ W for W in AV]))
    b_red = _dist.allreduce(comm, (V.T @ b_vecs).T)
    norm_gram = _dist.allreduce(comm, V.T @ X.matmul(V))
    timings["reduced"] = time.perf_counter() - t

    # -- 6. estimator -----------------------------------------------------------------------------------------------------
    t = time.perf_counter()
    Z = np.hstack([b_vecs] + AV)
    msg = None
    try:
        Y = X.solve(Z)
    except ExportError as exc:
        msg, Y = str(exc), np.zeros_like(Z)
    _raise(comm, msg)
    estimator = distributed_residual_estimator(comm, Z, Y, lambda w: X.matmul(w[:, None])[:, 0])
    del Z, Y
    timings["estimator"] = time.perf_counter() - t
    say(f"reduced operators and estimator: P = {estimator.R.shape[1]} residual terms, "
        f"{timings['reduced'] + timings['estimator']:.1f} s")
    for op in ops:
        if op is not X:
            op.destroy()

    # -- 6b. validation: the separation's operator error, which the residual of the separated system misses ------
    t = time.perf_counter()
    validation = validate_separation(comm, cfg, n, lo, hi, matrix, rhs_sep, A_red, b_red, norm_gram, AV, V, X,
                                     estimator.R, alpha_lb, rows)
    X.destroy()
    del AV
    eim_error = max((v["eim_error"] for v in validation), default=0.0)
    for v in validation:  # the estimate the online stage will give there, and its effectivity
        v["estimate"] = (v["residual"] + eim_error * v["norm_u"]) / alpha_lb
        v["effectivity"] = v["estimate"] / v["error"] if v["error"] > 0 else float("inf")
    timings["validation"] = time.perf_counter() - t
    if validation:
        errors = ", ".join(f"{v['error'] / v['norm_u_exact']:.1e}" for v in validation)
        effectivities = ", ".join(f"{v['effectivity']:.2f}" for v in validation)
        say(f"validation ({len(validation)} exports): separation error eta = {eim_error:.2e} (relative, X norm); "
            f"errors {errors}; effectivities {effectivities}; {timings['validation']:.1f} s")

    # -- 7. model file ------------------------------------------------------------------------------------------------------
    t = time.perf_counter()
    V_full = _gather_rows(comm, V)
    out = cfg.path(cfg.output.file)
    msg = None
    if rank == 0:
        try:
            out = _write(cfg, out, mus, matrix, rhs_sep, A_red, b_red, norm_gram, estimator.R, alpha, alpha_lb,
                         res.singular_values, dofs, V_full, n, sep, timings, size, t_start, eim_error, validation,
                         mesh_map)
        except (ExportError, OSError, ValueError) as exc:
            msg = str(exc)
    _raise(comm, msg)
    timings["write"] = time.perf_counter() - t
    say(f"model written to {out} ({time.perf_counter() - t_start:.1f} s in total)")
    return out


def _read_load(cfg, rhs: str, n: int, rows: tuple[np.ndarray, int] | None = None) -> np.ndarray:
    """The load vector ``(n,)`` of file ``rhs`` in the exports' row order; ``rows``: for Ansys ``.full`` exports,
    ``(free (n,), n_file)``, the vector being given on the free dofs or on every dof of the file's numbering
    (:func:`read_ansys_load_vector`)."""
    if rows is None:
        return read_vector(cfg.path(rhs), n)
    return read_ansys_load_vector(cfg.path(rhs), *rows)


def _read_operator(cfg, entry, n: int, lo: int, hi: int, shared_b, dofs: np.ndarray | None = None,
                   rows: tuple[np.ndarray, int] | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """This rank's rows ``[lo, hi)`` of an export's matrix and load vector; ``dofs``: the first Ansys export's dof
    numbering, which every other one must have."""
    s = cfg.separated
    if s.format == "calculix":
        A = read_calculix_rows(cfg.path(entry.matrix), n, lo, hi)
    elif s.format == "ansys_full":
        A = read_ansys_full_rows(cfg.path(entry.matrix), n, lo, hi, dofs=dofs)
        if dofs is not None:
            check_ansys_free_dofs(cfg.path(entry.matrix), A, lo, dofs)
    else:
        A = read_matrix_market_rows(cfg.path(entry.matrix), n, lo, hi)
    b = _read_load(cfg, entry.rhs, n, rows)[lo:hi] if entry.rhs is not None else shared_b
    return A, b


def _entries_at(comm, A_local: sp.csr_matrix | np.ndarray, lo: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``A[rows, cols]`` ``(d,)`` of a row-distributed matrix (or vector ``(n_local,)``), on every rank."""
    mine = (rows >= lo) & (rows < lo + A_local.shape[0])
    out = np.zeros(len(rows))
    if mine.any():
        if sp.issparse(A_local):
            out[mine] = np.asarray(A_local[rows[mine] - lo, cols[mine]]).ravel()
        else:
            out[mine] = A_local[rows[mine] - lo]
    return _dist.allreduce(comm, out)


def validate_separation(comm, cfg, n, lo, hi, matrix, rhs_sep, A_red, b_red, norm_gram, AV, V, X, R,
                        alpha_lb, rows: tuple[np.ndarray, int] | None = None) -> list[dict]:
    """For every validation export ``A_v = A(mu_v)``: the reduced solution ``u_N`` of the separated system (entries
    taken from ``A_v``, as an exact entry evaluator gives them), the separation's operator error on it
    ``eta_v = ||(A_v - A_sep(mu_v)) V u_N||_{X'} / ||V u_N||_X``, the residual ``||R theta||`` and the true error
    ``||A_v^-1 b_v - V u_N||_X``; ``rows``: the load vectors' numbering (:func:`_read_load`). Collective."""
    s = cfg.separated
    out = []
    F = sla.lu_factor(matrix.F)
    shared_b = _read_load(cfg, s.rhs, n, rows)[lo:hi] if s.rhs is not None else None
    for v in s.validation:
        msg = None
        try:
            A_v, b_v = _read_operator(cfg, v, n, lo, hi, shared_b, rows=rows)
        except Exception as exc:  # any error, so that it reaches every rank (none waits alone below)
            msg, A_v, b_v = (str(exc) if isinstance(exc, ExportError) else
                             f"{v.matrix}: unexpected {type(exc).__name__}: {exc}"), None, None
        _raise(comm, msg)
        beta = sla.lu_solve(F, _entries_at(comm, A_v, lo, matrix.entry_rows, matrix.entry_cols))
        gamma = np.ones(1) if rhs_sep is None else sla.lu_solve(
            sla.lu_factor(rhs_sep.F), _entries_at(comm, b_v, lo, rhs_sep.entry_rows, rhs_sep.entry_cols))
        u_N = sla.solve(np.tensordot(beta, A_red, axes=1), gamma @ b_red)
        op = DistributedOperator(comm, A_v, lo, s.solver)
        Vu = V @ u_N
        w = op.matmul(Vu[:, None])[:, 0] - sum(bk * (W @ u_N) for bk, W in zip(beta, AV))
        eta_abs = float(np.sqrt(max(_dist.allreduce(comm, float(w @ X.solve(w[:, None])[:, 0])), 0.0)))
        norm_u = float(np.sqrt(max(u_N @ (norm_gram @ u_N), 0.0)))
        e = op.solve(b_v[:, None])[:, 0]
        norm_exact = float(np.sqrt(max(_dist.allreduce(comm, float(e @ X.matmul(e[:, None])[:, 0])), 0.0)))
        e -= Vu
        err = float(np.sqrt(max(_dist.allreduce(comm, float(e @ X.matmul(e[:, None])[:, 0])), 0.0)))
        op.destroy()
        theta = np.concatenate([gamma, -np.outer(beta, u_N).ravel()])
        out.append({"mu": list(v.mu), "matrix": v.matrix, "eim_error": eta_abs / norm_u if norm_u > 0 else 0.0,
                    "residual": float(np.linalg.norm(R @ theta)), "norm_u": norm_u, "norm_u_exact": norm_exact,
                    "error": err})
    return out


def _mesh_dof_map(cfg, dofs: np.ndarray | None, n: int):
    """``(mesh or None, dof_map (n,))``: the online mesh deck and our dof of each matrix row (-1 without a mesh
    numbering); :class:`ExportError` when the deck cannot be read or lacks a node of the exports' dofs ``(n, 2)``."""
    s = cfg.separated
    mesh = None
    dof_map = np.full(n, -1, dtype=np.int64)
    if dofs is None and s.online.mesh is None:
        return mesh, dof_map
    from structrom.rom.adapters.calculix import CalculixError, matrix_dofs_to_ours, read_inp

    ids = None
    if s.online.mesh is not None:
        try:
            mesh, ids = read_inp(cfg.path(s.online.mesh))
        except (CalculixError, OSError, ValueError) as exc:
            raise ExportError(f"separated.online.mesh: {exc}") from None
    if dofs is not None:
        try:
            dof_map = matrix_dofs_to_ours(dofs, ids)
        except (CalculixError, ValueError, KeyError) as exc:
            raise ExportError(f"separated.online.mesh: the .dof node ids are not the mesh's ({exc}): give the deck "
                              "of the model whose matrices were exported") from None
    return mesh, dof_map


def _write(cfg, out, mus, matrix, rhs_sep, A_red, b_red, norm_gram, R, alpha, alpha_lb, sigma, dofs, V_full, n, sep,
           timings, size, t_start, eim_error, validation, mesh_map=None) -> Path:
    """Write the model file (rank 0); ``mesh_map``: :func:`_mesh_dof_map`'s answer when it was read already."""
    s = cfg.separated
    ranges = s.parameter_ranges or [[float(mus[:, i].min()), float(mus[:, i].max())] for i in range(mus.shape[1])]
    mesh, dof_map = mesh_map if mesh_map is not None else _mesh_dof_map(cfg, dofs, n)
    entries: dict = {"kind": s.online.entries}
    if s.online.entries == "fe_kernel":
        if mesh is None or np.any(dof_map < 0):
            raise ExportError("separated.online: entries = 'fe_kernel' needs a CalculiX export and its mesh deck")
        entries.update(material=s.online.material, temperature=s.online.temperature, time=s.online.time)
    provenance = {
        "kind": "separated", "format": s.format, "ranks": size, "config": cfg.model_dump(),
        "training": [{"mu": t.mu, "matrix": t.matrix} for t in s.training],
        "greedy": {"errors": sep.greedy.errors.tolist(), "stop_reason": sep.greedy.stop_reason,
                   "lebesgue": sep.greedy.lebesgue.tolist()},
        "timings": {**timings, "total": time.perf_counter() - t_start},
        "validation": validation,
    }
    data = smf.SeparatedModelData(
        parameters=[{"name": nm, "range": [float(r[0]), float(r[1])]} for nm, r in zip(s.parameter_names, ranges)],
        entries=entries, training_parameters=mus, matrix=matrix, rhs=rhs_sep, A_red=np.asarray(A_red),
        b_red=np.asarray(b_red), norm_gram=np.asarray(norm_gram), R=np.asarray(R), alpha_lb=alpha_lb,
        tolerance=s.estimator.tolerance, reference=s.estimator.reference, alpha_training=alpha, eim_error=eim_error,
        singular_values=np.asarray(sigma), dof_map=dof_map, n_rows=n, provenance=provenance)
    smf.validate(out, data, V_full.shape, mesh is not None)
    return smf.write(out, data, V_full, mesh)
