"""EIM on a temperature-dependent elastic stiffness, small meshes (< 20 s)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import eim_thermoelastic as ex  # noqa: E402
from structrom.rom.eim_entries import StiffnessEntries, eliminate_fixed  # noqa: E402
from structrom.rom.fem.structured import box  # noqa: E402
from structrom.rom.loading import HotSpotTemperature  # noqa: E402
from structrom.rom.materials.elastic import LinearElastic  # noqa: E402
from structrom.rom.materials.tables import Table  # noqa: E402


def _law():
    return LinearElastic(young=Table(*ex.E_TABLE, name="young"), poisson=0.3)


@pytest.mark.parametrize("element,divisions", [("C3D8", (20, 8, 3)), ("C3D10", (6, 3, 2)), ("C3D20", (6, 3, 2))])
def test_entries_equal_full_assembly(element, divisions):
    mesh = box(ex.LENGTHS, divisions, element)
    fixed = (3 * mesh.node_set("xmin")[:, None] + np.arange(3)).ravel()
    ev = StiffnessEntries(mesh, _law(), ex.hot_spot, fixed)
    rng = np.random.default_rng(3)
    A0 = ev.assemble((500.0, 40.0)).tocoo()
    k = rng.choice(A0.nnz, 300, replace=False)
    free = np.setdiff1d(np.arange(mesh.n_dofs), fixed)
    # stored entries (some in fixed rows/cols), fixed diagonals, entries outside the pattern, repeats
    rows = np.r_[A0.row[k], fixed[:4], fixed[0], free[0], free[0], A0.row[k[:5]]]
    cols = np.r_[A0.col[k], fixed[:4], free[0], fixed[0], mesh.n_dofs - 1, A0.col[k[:5]]]
    for mu in [(500.0, 40.0), (780.0, 15.0), (200.0, 85.0)]:
        A = ev.assemble(mu)
        ref = np.asarray(A[rows, cols]).ravel()
        got = ev.entries(mu, rows, cols)
        assert np.max(np.abs(got - ref)) <= 1e-12 * np.abs(A.data).max()
    assert len(ev.plans) == 1  # one element subset for the repeated (rows, cols) request
    plan = next(iter(ev.plans.values()))
    assert len(plan.disc.elements) <= mesh.n_elements
    assert got[300:304] == pytest.approx(1.0) and got[304] == 0.0 and got[305] == 0.0


def test_eliminate_fixed_keeps_pattern():
    mesh = box((1.0, 1.0, 1.0), (2, 2, 2), "C3D8")
    law = LinearElastic(young=1000.0, poisson=0.3)
    ev = StiffnessEntries(mesh, law, lambda mu: HotSpotTemperature((0.5, 0.5, 0.5), 0.3, mu))
    K = ev.assemble(100.0)
    fixed = np.array([0, 1, 2, 5])
    A = eliminate_fixed(K, fixed)
    assert A.nnz == K.nnz
    D = A.toarray()
    assert np.all(D[fixed][:, np.setdiff1d(np.arange(len(D)), fixed)] == 0.0)
    assert np.allclose(np.diag(D)[fixed], 1.0)
    keep = np.setdiff1d(np.arange(len(D)), fixed)
    assert np.array_equal(D[np.ix_(keep, keep)], K.toarray()[np.ix_(keep, keep)])


def test_separation_and_reduced_solution_decay():
    out = ex.run(divisions=(20, 8, 3), n_intensity=4, n_x=10, n_test=3, max_terms=20, verbose=False)
    assert out["n_dofs"] == 21 * 9 * 4 * 3
    me, se = out["mat_err"], out["sol_err"]
    assert me[-1] < me[0] / 500
    # monotone-ish: each error at most 2x the best one seen at fewer terms
    assert np.all(me <= 2.0 * np.minimum.accumulate(me))
    assert se[-1] < 1e-4 and se[-1] < se[0] / 1000
    # the online entries touch only part of the mesh
    assert out["subset_elements"] < out["n_elements"]
