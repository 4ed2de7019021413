"""Distributed assembly and solve give the serial answer for 1, 2 and 3 ranks."""
import numpy as np
import pytest

from mpi_helpers import run_program

pytestmark = pytest.mark.mpi


def test_assembly_matches_serial_for_any_rank_count():
    results = {n: run_program(n, "assembly_solve.py") for n in (1, 2, 3)}
    for n, res in results.items():
        assert res["error"] < 1e-10, (n, res["error"])
    x1 = np.array(results[1]["x"])
    for n in (2, 3):
        assert np.linalg.norm(np.array(results[n]["x"]) - x1) <= 1e-10 * np.linalg.norm(x1)


def test_recursive_bisection_balances_odd_part_counts():
    from structrom.mpi.partition import recursive_bisection

    pts = np.random.default_rng(0).random((1000, 3))
    for p in (1, 2, 3, 5, 7):
        part = recursive_bisection(pts, p)
        counts = np.bincount(part, minlength=p)
        assert counts.sum() == 1000 and counts.max() - counts.min() <= 1
        assert np.array_equal(part, recursive_bisection(pts, p))  # deterministic
