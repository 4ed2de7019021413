"""Enrichment: incremental POD update, warm-started cubature, a round trip under mpirun, failed HF solves."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import offline_fixtures as F
from mpi_helpers import ROOT, run_program


# -- incremental POD ---------------------------------------------------------------------------------------
def _weight(n: int, rng) -> sp.csr_matrix:
    """A consistent-mass-like SPD weight: tridiagonal, diagonally dominant, positive."""
    d = rng.uniform(1.0, 2.0, n)
    off = 0.25 * np.minimum(d[:-1], d[1:])
    return sp.diags([off, d, off], [-1, 0, 1], format="csr")


def _w_angles(W, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Principal angles between span(A) and span(B) in the W product (both W-orthonormal), from their
    sines (accurate for small angles): the W-norms of the part of B outside span(A)."""
    R = B - A @ (A.T @ (W @ B))
    lam = np.linalg.eigvalsh(R.T @ (W @ R))
    return np.arcsin(np.sqrt(np.clip(lam, 0.0, 1.0)))


def test_update_pod_equals_pod_of_the_union():
    """Low-rank data (5 directions, noise 1e-10): the update from the old modes alone spans the union's
    POD space (angles ~ noise); with a decaying spectrum the union is captured to the tolerance."""
    from structrom.rom.pod import pod, update_pod

    rng = np.random.default_rng(3)
    n = 400
    W = _weight(n, rng)
    X = rng.normal(size=(n, 5))
    old = X[:, :3] @ rng.normal(size=(3, 30)) + 1e-10 * rng.normal(size=(n, 30))
    new = X[:, 2:] @ rng.normal(size=(3, 6)) + 1e-10 * rng.normal(size=(n, 6))
    tol = 1e-6
    p_old = pod(None, old, W, tolerance=tol)
    upd = update_pod(None, p_old.modes_local, p_old.singular_values, p_old.total_energy, new, W, tolerance=tol)
    union = pod(None, np.hstack([old, new]), W, tolerance=tol)
    assert p_old.n_modes == 3 and upd.n_modes == union.n_modes == 5
    assert np.max(np.abs(upd.modes_local.T @ (W @ upd.modes_local) - np.eye(5))) < 1e-12
    assert _w_angles(W, upd.modes_local, union.modes_local).max() < 1e-8
    assert np.allclose(upd.singular_values, union.singular_values, rtol=1e-8)

    # decaying spectrum, truncated at 1e-3: the old truncation's loss is accounted for
    U = np.linalg.qr(rng.normal(size=(n, 40)))[0]
    old = U @ (np.logspace(0, -6, 40)[:, None] * rng.normal(size=(40, 50)))
    new = U[:, ::-1] @ (np.logspace(0, -6, 40)[:, None] * rng.normal(size=(40, 10)))  # other directions lead
    tol = 1e-3
    p_old = pod(None, old, W, tolerance=tol)
    upd = update_pod(None, p_old.modes_local, p_old.singular_values, p_old.total_energy, new, W, tolerance=tol)
    union = pod(None, np.hstack([old, new]), W, tolerance=tol)
    S = np.hstack([old, new])
    R = S - upd.modes_local @ (upd.modes_local.T @ (W @ S))
    err = np.sqrt(np.einsum("ij,ij->", R, W @ R) / np.einsum("ij,ij->", S, W @ S))
    assert err <= tol * 1.01
    assert abs(upd.n_modes - union.n_modes) <= 1
    k = union.n_modes // 2  # leading modes: well separated singular values, same subspace
    assert _w_angles(W, upd.modes_local[:, :k], union.modes_local[:, :k]).max() < 10 * tol


# -- warm-started cubature ---------------------------------------------------------------------------------
def test_ecm_warm_start_keeps_old_points_and_meets_tolerance():
    from structrom.rom.reduced_quadrature import empirical_cubature

    rng = np.random.default_rng(7)
    n = 600
    x = np.sort(rng.uniform(0.0, 1.0, n))
    w_fe = rng.uniform(0.5, 1.5, n) / n
    old_rows = np.array([x ** k for k in range(6)])
    new_rows = np.array([np.sin((k + 1) * np.pi * x) for k in range(8)])
    gpts = np.arange(n, dtype=np.int64)
    tol = 1e-6
    old = empirical_cubature(None, old_rows, w_fe, gpts, tolerance=tol)
    G = np.vstack([old_rows, new_rows])
    warm = empirical_cubature(None, G, w_fe, gpts, tolerance=tol, initial_points=old.points)
    assert np.array_equal(warm.points[:old.n_points], old.points)  # old points kept, first, in order
    assert warm.n_points > old.n_points and warm.converged and np.all(warm.weights >= 0)
    exact = G @ w_fe
    w = np.zeros(n)
    w[warm.points] = warm.weights
    assert np.linalg.norm(G @ w - exact) <= tol * np.linalg.norm(exact)
    assert abs(w.sum() - w_fe.sum()) <= tol * w_fe.sum()
    # an initial point that is not a point of the discretization is refused, by name
    from structrom.rom.reduced_quadrature import ECMError

    with pytest.raises(ECMError, match="initial point 9999"):
        empirical_cubature(None, G, w_fe, gpts, tolerance=tol, initial_points=[9999])


# -- round trip --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bar(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("enrich")
    F.enrichment_setup(d)
    return d


def _copy_model(bar: Path, name: str) -> Path:
    d = bar / name
    d.mkdir()
    shutil.copy2(bar / "model.h5", d / "model.h5")
    return d / "model.h5"


@pytest.mark.mpi
def test_enrich_round_trip_1_and_2_ranks(bar):
    """One enrichment brings the flagged loading below the tolerance, publishes version 2 (v1 kept byte
    for byte under versions/), keeps the old reduced points, and gives the same model on 1 and 2 ranks."""
    from structrom.api.registry import model_card
    from structrom.rom import model_file
    from structrom.rom.online import ReducedModel

    original = (bar / "model.h5").read_bytes()
    v1 = model_file.load(bar / "model.h5")
    res = {}
    for n in (1, 2):
        path = _copy_model(bar, f"ranks{n}")
        res[n] = run_program(n, "enrich_ranks.py", str(path), str(bar / "loadings.json"))
        r = res[n]["result"]
        assert r["enriched"] == ["new_1"], r  # new_0 is trusted: no HF solve
        screened = {s["name"]: s for s in r["screened"]}
        assert screened["new_1"]["indicator"] > F.ENRICH_TOLERANCE >= screened["new_0"]["indicator"]
        assert r["after"]["new_1"] <= F.ENRICH_TOLERANCE and r["version"] == 2
        assert (path.parent / "versions" / "model.v1.h5").read_bytes() == original
        hist = res[n]["versions"]
        assert [h["version"] for h in hist] == [1, 2] and hist[1]["parent"] == 1
        assert [a["name"] for a in hist[1]["loadings_added"]] == ["new_1"]
        assert set(v1.point.tolist()) <= set(res[n]["points"])
        assert np.all(np.array(res[n]["weights"]) >= 0)
        # the new model answers the flagged loading within the tolerance; the card lists the history
        model = ReducedModel.load(path)
        loading = {k: v for k, v in F.query_loading(*F.NEW[1], "x").items() if k != "name"}
        assert model.solve(loading, extrapolate=True).trusted.all()
        assert [h["version"] for h in model_card("model", path)["versions"]] == [1, 2]
    # the same model for any rank count (points exactly, weights to the round-off of the modes)
    assert res[2]["points"] == res[1]["points"]
    assert np.allclose(res[2]["singular_values"], res[1]["singular_values"], rtol=1e-9)
    assert np.allclose(res[2]["weights"], res[1]["weights"], rtol=1e-6, atol=1e-7 * max(res[1]["weights"]))


# -- failures ----------------------------------------------------------------------------------------------
class _FailingSolver:
    name = "failing"

    def solve(self, loading, output):
        raise RuntimeError("ccx exited with code 3")


class _NaNSolver:
    """Writes a snapshot file with NaN displacements (a diverged solve that 'succeeded')."""

    name = "nan"

    def __init__(self, template: Path) -> None:
        self.template = template

    def solve(self, loading, output):
        shutil.copy2(self.template, output)
        with h5py.File(output, "r+") as f:
            f["fields/displacement"][-1, 0, 0] = np.nan


@pytest.mark.parametrize("kind", ["raises", "nan"])
def test_failed_hf_solve_leaves_the_model_byte_identical(bar, kind):
    from mpi4py import MPI

    from structrom.rom.offline.enrich import EnrichError, enrich, read_loadings

    path = _copy_model(bar, f"fail_{kind}")
    before = path.read_bytes()
    solver = _FailingSolver() if kind == "raises" else _NaNSolver(bar / "train" / "case_0.h5")
    with pytest.raises(EnrichError, match=r"loading 'new_1'.*unchanged"):
        enrich(path, read_loadings(bar / "loadings.json"), solver, MPI.COMM_SELF, log=lambda *a: None)
    assert path.read_bytes() == before
    assert not (path.parent / "versions").exists()
    assert sorted(p.name for p in path.parent.iterdir() if p.is_file()) == ["model.h5"]


def test_cli_failed_ccx_and_bad_input(bar, tmp_path):
    """`structrom enrich --solver calculix` with a ccx that exits non-zero: exit 2, one line naming the
    loading, the model untouched; a bad loadings file: exit 2 naming the file."""
    path = _copy_model(bar, "cli")
    before = path.read_bytes()
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ccx").write_text("#!/bin/sh\necho 'fake ccx: *ERROR in a deck' >&2\nexit 3\n")
    (fake / "ccx").chmod(0o755)
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "enrich", str(path), "--loadings",
                           str(bar / "loadings.json"), "--solver", "calculix"], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "new_1" in proc.stderr and "unchanged" in proc.stderr and "Traceback" not in proc.stderr
    assert path.read_bytes() == before
    bad = tmp_path / "bad.json"
    bad.write_text('{"loadings": []}')
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "enrich", str(path), "--loadings", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "bad.json" in proc.stderr and "Traceback" not in proc.stderr
