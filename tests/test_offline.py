"""Offline stage: the same reduced model for any rank count; clear errors on bad input."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import offline_fixtures as F
from mpi_helpers import ROOT, run_program


@pytest.fixture(scope="module")
def training(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("offline")
    F.write_mesh(d)
    F.run_training(d)
    F.offline_config(d)
    return d


@pytest.mark.mpi
def test_same_model_for_1_2_3_ranks(training):
    res = {n: run_program(n, "offline_ranks.py", str(training / "offline.toml"), str(training / f"model{n}.h5"))
           for n in (1, 2, 3)}
    ref = res[1]
    assert 3 <= len(ref["singular_values"]) < 4 * 6  # compresses 24 snapshots
    for n in (2, 3):
        r = res[n]
        assert r["points"] == ref["points"]
        # the ECM runs on rotated stress snapshots (the default): the kept subspace of the Allreduced matrix C moves
        # with the partition's round-off (relative eigen-gap at the truncation ~4e-12 here, Davis-Kahan); the weights
        # then agree to about 1e-7 (measured 9e-8; 2e-9 on all stress snapshots), as with the row compression
        assert np.allclose(r["weights"], ref["weights"], rtol=1e-6, atol=0)
        assert np.allclose(r["singular_values"], ref["singular_values"], rtol=1e-10)
        assert np.abs(np.array(r["modes"]) - np.array(ref["modes"])).max() <= 1e-10 * np.abs(ref["modes"]).max()
        assert np.allclose(r["integrator"], ref["integrator"], rtol=1e-8, atol=1e-10 * np.abs(ref["integrator"]).max())
        assert np.allclose(r["pressure"], ref["pressure"], rtol=1e-10, atol=1e-12 * np.abs(ref["pressure"]).max())
        # the indicator's validation points and calibration (leave-one-out folds solved on rank 0)
        assert r["validation_points"] == ref["validation_points"]
        assert np.allclose(r["validation_weights"], ref["validation_weights"], rtol=1e-6,
                           atol=1e-8 * np.abs(ref["validation_weights"]).max())
        assert np.allclose(r["calibration_factors"], ref["calibration_factors"], rtol=1e-5,
                           atol=1e-8 * np.abs(ref["calibration_factors"]).max())


def test_model_file_is_valid_and_compact(training):
    from structrom.rom import model_file

    out = training / "model1.h5"
    if not out.exists():
        run_program(1, "offline_ranks.py", str(training / "offline.toml"), str(out))
    data = model_file.load(out, mesh=True)
    n_points = sum(len(b) for b in data.mesh.blocks) * 8  # C3D20R: 8 points per element
    n_rows = data.n_modes * 24  # integrand rows: modes x snapshots
    assert data.provenance["ecm"]["points"] <= n_rows + 1  # Caratheodory
    assert data.n_reduced_points < n_points / 2
    assert np.all(data.weights >= 0) and data.weights.sum() == pytest.approx(40.0, rel=1e-3)  # bar volume
    assert set(data.duals) == {"cumulated_plastic_strain", "stress"}
    assert data.provenance["snapshots"][0]["sha256"] and data.loading_schema["temperature"]["type"] == "hot_spot"
    assert not (training / "model1.h5.partial").exists()
    # indicator reference: the largest training norm of the indicator quantity at the reduced points
    import h5py

    q = data.indicator_quantity
    norms = []
    for f in sorted((training / "train").glob("case_*.h5")):
        with h5py.File(f, "r") as h:
            v = h[f"fields/{q}"][()]  # (n_inc, n_points[, 6]) as the HF solver computed it
        norms += list(np.linalg.norm(v[:, data.point].reshape(len(v), -1), axis=1))
    assert data.indicator_reference == pytest.approx(max(norms), rel=1e-6)


def test_every_point_rule_is_the_fe_quadrature(training):
    """``[ecm] selection = "all"``: no hyper-reduction, the reduced model integrates at every point with the FE
    weights (the Galerkin ROM with the FE quadrature), and on its training loadings it is as accurate as the
    hyper-reduced model at the same POD tolerance."""
    import h5py

    from structrom.rom import model_file
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.hifi.config import load_config
    from structrom.rom.online import ReducedModel

    cfg = training / "all.toml"
    cfg.write_text(F.OFFLINE.format(out="all.h5", pod_tol=1e-5, ecm_tol=1e-5).replace(
        "[ecm]\ntolerance = 1e-05\n", '[ecm]\nselection = "all"\n'))  # (a tolerance is refused: "all" reads none)
    proc = run_cli(cfg)
    assert proc.returncode == 0, proc.stderr
    data = model_file.load(training / "all.h5", mesh=True)
    fe = Discretization(data.mesh).point_weights
    assert np.array_equal(np.sort(data.point), np.arange(len(fe)))
    assert np.array_equal(data.weights[np.argsort(data.point)], fe)  # (the gathered FE weights, bit for bit)
    assert data.provenance["ecm"]["points"] == len(fe)
    model = ReducedModel.load(training / "all.h5")
    for case in sorted((training / "train").glob("case_*.h5"))[:2]:
        with h5py.File(case, "r") as f:
            ref = f["fields/displacement"][()]
        u = model.solve(load_config(training / f"{case.stem}.toml").build_loading()).displacement(increment=None)
        # the Galerkin ROM on its own training loadings: within the POD's bound on the training set, sqrt(1e-5) =
        # 3.2e-3 relative (measured 1.1e-4 and 1.7e-5)
        assert np.linalg.norm(u - ref) <= np.sqrt(1e-5) * np.linalg.norm(ref), case.name


def run_cli(cfg: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "structrom.api.cli", "offline", str(cfg)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_bad_inputs_give_clear_errors(training, tmp_path):
    bad = training / "bad.toml"
    bad.write_text(F.OFFLINE.format(out="bad.h5", pod_tol=2.0, ecm_tol=1e-5))
    proc = run_cli(bad)
    assert proc.returncode == 2 and "pod.tolerance" in proc.stderr and "Traceback" not in proc.stderr

    bad.write_text(F.OFFLINE.format(out="bad.h5", pod_tol=1e-5, ecm_tol=1e-5).replace("case_*", "nothing_*"))
    proc = run_cli(bad)
    assert proc.returncode == 2 and "matches no file" in proc.stderr

    # Snapshots that do not match the mesh: a case computed on another mesh.
    other = tmp_path / "other"
    other.mkdir()
    F.write_mesh(other, divisions=(8, 2, 2))
    F.run_training(other, cases=F.TRAINING[:1])
    (training / "train" / "case_9.h5").write_bytes((other / "train" / "case_0.h5").read_bytes())
    try:
        bad.write_text(F.OFFLINE.format(out="bad.h5", pod_tol=1e-5, ecm_tol=1e-5))
        proc = run_cli(bad)
        assert proc.returncode == 2 and "case_9.h5" in proc.stderr and "do not match the mesh" in proc.stderr, \
            proc.stderr
        assert not (training / "bad.h5").exists() and not (training / "bad.h5.partial").exists()
    finally:
        (training / "train" / "case_9.h5").unlink()


def test_qdeim_pivots_match_lapack_and_break_ties_by_row():
    """The banded Q-DEIM of the dual points (eim.deim.qdeim with tie_rtol) gives LAPACK's column-pivoted QR
    pivots on a generic basis, and on rows equal up to rounding (a symmetric mesh) always the lowest row,
    whatever the perturbation."""
    import scipy.linalg as la
    from mpi4py import MPI

    from structrom.eim.deim import qdeim
    from structrom.rom.offline.cubature import QDEIM_TIE_RTOL

    def qdeim_rows(X):
        return qdeim(X, comm=MPI.COMM_SELF, tie_rtol=QDEIM_TIE_RTOL).point_ids

    rng = np.random.default_rng(5)
    X, _ = np.linalg.qr(rng.normal(size=(400, 10)) * np.logspace(0, -4, 10))
    _, _, piv = la.qr(X.T, mode="economic", pivoting=True)
    assert np.array_equal(qdeim_rows(X), piv[:10])
    Y = np.vstack([X, X])  # rows i and i + 400 tie
    for sign in (1.0, -1.0):
        Z = Y.copy()
        Z[400:] *= 1.0 + sign * 1e-13
        assert np.all(qdeim_rows(Z) < 400)


@pytest.mark.mpi
@pytest.mark.parametrize("n", [2, 3])
def test_no_rank_holds_a_full_size_distributed_array(training, n):
    """On 2 and 3 ranks every distributed array the stages record (snapshots, modes, their strains, stress
    snapshots, dual bases, the integrand's factors) has on each rank a part of the rows only: the rows are a partition
    (points) or a partition plus interface dofs, and the largest part is near 1 / n of the whole."""
    import h5py
    import json

    out = training / f"model{n}.h5"
    if not out.exists():
        run_program(n, "offline_ranks.py", str(training / "offline.toml"), str(out))
    with h5py.File(out, "r") as f:
        stages = json.loads(f.attrs["provenance"])["stages"]
    seen = set()
    for st in stages:
        assert len(st.get("peak_rss_gib_per_rank", [0] * n)) == n
        for name, a in st.get("arrays", {}).items():
            rows, total = a["rows_per_rank"], a["global_rows"]
            assert len(rows) == n and total > 0
            assert max(rows) < total, (name, rows, total)
            assert max(rows) <= (1.0 / n + 0.2) * total, (name, rows, total)  # near 1/n (interface dofs)
            assert sum(rows) >= total, (name, rows, total)  # together they hold every row
            seen.add(name)
    assert {"snapshots", "modes", "mode strains", "stress snapshots",
            "dual basis stress", "dual basis cumulated_plastic_strain"} <= seen
    assert any(k.startswith("integrand") for k in seen)  # the integrand (matrix or factors)


def test_spilled_rows_are_written_by_bounded_row_blocks(tmp_path):
    """Rows spilled in any order come back by row blocks of the requested size and form the array; the
    model file's dataset written from them equals the array."""
    import h5py
    from mpi4py import MPI

    from structrom.rom.model_file import _write_rows
    from structrom.rom.offline.row_blocks import remove_spill, spill_rows

    rng = np.random.default_rng(0)
    A = rng.normal(size=(1000, 7))
    keep = rng.permutation(1000)[:900]  # 100 rows held by nobody: zeros
    sp = spill_rows(MPI.COMM_SELF, tmp_path / "rows", "a", keep, A[keep], 1000)
    blocks = list(sp.blocks(block_bytes=8 * 7 * 64))
    assert [len(b) for _, b in blocks] == [64] * 15 + [40]
    want = np.zeros_like(A)
    want[keep] = A[keep]
    assert np.array_equal(sp.to_array(), want)
    with h5py.File(tmp_path / "m.h5", "w") as f:
        _write_rows(f, "modes/full", sp)
        assert np.array_equal(f["modes/full"][()], want)
    remove_spill(tmp_path / "rows")
    assert not (tmp_path / "rows").exists()
