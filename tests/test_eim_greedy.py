"""EIM greedy: exact agreement with a textbook reference, stopping, symmetric / rectangular variants,
DEIM / Q-DEIM and input errors."""
import math
import warnings

import numpy as np
import pytest
import scipy.linalg as sla

from structrom.eim.deim import deim, qdeim
from structrom.eim.errors import EIMError, EIMWarning
from structrom.eim.greedy import ROUNDOFF, eim_greedy
from structrom.eim.rectangular import RectangularInterpolant
from structrom.eim.symmetric import SymmetricInterpolant

EPS = np.finfo(float).eps


# ------------------------------------------------------------------------------ textbook reference
def reference_eim(data, norm="max", weights=None, max_terms=None, tol=0.0):
    """Textbook EIM with plain Python loops over floats (obviously correct, slow).

    y_k = argmax_y ||f(., y) - I_{k-1} f(., y)|| (first index among unselected parameters on ties),
    x_k = argmax_x |f(x, y_k) - I_{k-1} f(x, y_k)| (first index on ties),
    q_k = residual(., y_k) / residual(x_k, y_k); I_{k-1} f(x, y) = sum_j q_j(x) beta_j(y) with beta by
    forward substitution on B_ij = q_j(x_i). Norms: max |r|, sqrt(fsum r*r), sqrt(fsum w*r*r).
    Stops on tolerance, count, exact zero, or the round-off floor ROUNDOFF * errors[0] (pivot floor
    ROUNDOFF * max |f|), like the implementation's documented rules.
    """
    f = [[float(v) for v in row] for row in data]
    n, m = len(f), len(f[0])
    w = None if weights is None else [float(v) for v in weights]
    fmax = max(abs(v) for row in f for v in row)
    cap = min(n, m) if max_terms is None else min(n, m, max_terms)
    q, pts, prm, errors, pivots = [], [], [], [], []
    while True:
        k = len(pts)
        res = [[0.0] * m for _ in range(n)]
        for y in range(m):
            beta = []
            for i in range(k):
                b = f[pts[i]][y]
                for j in range(i):
                    b = b - q[j][pts[i]] * beta[j]
                beta.append(b)
            for x in range(n):
                r = f[x][y]
                for j in range(k):
                    r = r - q[j][x] * beta[j]
                res[x][y] = r
        norms = []
        for y in range(m):
            col = [res[x][y] for x in range(n)]
            if norm == "max":
                norms.append(max(abs(v) for v in col))
            elif norm == "l2":
                norms.append(math.sqrt(math.fsum(v * v for v in col)))
            else:
                norms.append(math.sqrt(math.fsum(w[x] * col[x] * col[x] for x in range(n))))
        err = max(norms)
        errors.append(err)
        if err == 0.0 or err <= tol or err <= ROUNDOFF * errors[0] or k == cap:
            break
        best = None
        for y in range(m):
            if y not in prm and (best is None or norms[y] > norms[best]):
                best = y
        xb = 0
        for x in range(n):
            if abs(res[x][best]) > abs(res[xb][best]):
                xb = x
        pivot = res[xb][best]
        if abs(pivot) <= ROUNDOFF * fmax:
            break
        q.append([res[x][best] / pivot for x in range(n)])
        pts.append(xb)
        prm.append(best)
        pivots.append(pivot)
    return pts, prm, errors, pivots, q


def datasets():
    x = np.linspace(0.0, 1.0, 30)
    y = np.linspace(0.5, 3.0, 24)
    smooth = 1.0 / (1.0 + np.outer(x, y) ** 2) + np.sin(np.add.outer(x, 0.3 * y))
    rng = np.random.default_rng(3)
    integers = rng.integers(-3, 4, size=(26, 20)).astype(float)  # many exact ties
    g = np.linspace(-1.0, 1.0, 21)
    symmetric = np.abs(np.subtract.outer(g, g))  # symmetric in x <-> y: tied column norms
    rank3 = rng.standard_normal((28, 3)) @ rng.standard_normal((3, 18))  # reaches round-off at 3 terms
    dup = np.hstack([smooth[:, :6], smooth[:, :6], 2.0 * smooth[:, 3:5]])  # duplicated/scaled columns
    dup = np.vstack([dup, dup[:5]])  # duplicated rows
    return {"smooth": smooth, "integers": integers, "symmetric": symmetric, "rank3": rank3, "dup": dup}


@pytest.mark.parametrize("name", list(datasets()))
@pytest.mark.parametrize("norm", ["max", "l2", "weighted_l2"])
def test_greedy_matches_textbook_reference_exactly(name, norm):
    data = datasets()[name]
    w = np.linspace(0.5, 1.5, data.shape[0]) if norm == "weighted_l2" else None
    res = eim_greedy(data, norm=norm, weights=w, max_terms=15)
    pts, prm, errors, pivots, q = reference_eim(data, norm, w, max_terms=15)
    assert res.point_ids.tolist() == pts
    assert res.param_indices.tolist() == prm
    assert np.array_equal(res.errors, np.array(errors))  # bitwise
    assert np.array_equal(res.pivots, np.array(pivots))
    assert np.array_equal(res.basis_local, np.array(q).T.reshape(data.shape[0], -1))
    if name == "rank3":
        assert res.n_terms == 3 and res.stop_reason == "round-off"


def test_ties_break_to_smallest_indices():
    data = np.ones((5, 4))
    res = eim_greedy(data)
    assert res.point_ids.tolist() == [0] and res.param_indices.tolist() == [0] and res.stop_reason == "exact"
    data = np.array([[1.0, -2.0, 2.0], [2.0, 0.5, -2.0], [-2.0, 1.0, 0.0]])
    res = eim_greedy(data, max_terms=1)
    assert res.param_indices[0] == 0 and res.point_ids[0] == 1  # |2| ties: first column, first row


def test_reports_lebesgue_and_conditions_and_stops_by_tolerance_or_count():
    data = datasets()["smooth"]
    res = eim_greedy(data, rtol=1e-6)
    assert res.stop_reason == "tolerance" and res.errors[-1] <= 1e-6 * res.errors[0] < res.errors[-2]
    assert len(res.lebesgue) == len(res.cond_B) == len(res.cond_F) == res.n_terms
    # Lebesgue constant from the explicit Lagrange functions Q B^-1.
    lag = res.basis_local @ np.linalg.inv(res.B)
    assert np.isclose(res.lebesgue[-1], np.abs(lag).sum(axis=1).max(), rtol=1e-10)
    assert np.allclose(res.lagrange_local, lag, atol=1e-10)
    assert res.lebesgue[0] >= 1.0 and np.all(res.cond_B >= 1.0)
    assert np.isclose(res.cond_F[-1], np.linalg.cond(data[res.point_ids][:, res.param_indices]))
    # B is unit lower triangular with q_j(x_i).
    assert np.allclose(np.diag(res.B), 1.0) and np.allclose(np.triu(res.B, 1), 0.0)
    assert eim_greedy(data, max_terms=4).n_terms == 4
    # The error bound of the interpolation: ||f - I f||_inf <= errors[d] on the training set.
    interp = res.interpolate_local(data[res.point_ids])
    assert np.abs(interp - data).max() == pytest.approx(res.errors[-1], rel=1e-6)


def test_symmetric_formulation_equals_classical_and_is_symmetric():
    data = datasets()["smooth"]
    res = eim_greedy(data, max_terms=10)
    sym = SymmetricInterpolant.from_greedy(res)
    classical = res.interpolate_local(data[res.point_ids])
    symmetric = sym.evaluate(data[:, res.param_indices], data[res.point_ids])
    assert np.abs(classical - symmetric).max() <= 1e-12 * np.abs(data).max()
    # Swapping the roles of x and y gives the transposed approximation.
    t = sym.transpose()
    swapped = t.evaluate(data.T[:, t.param_indices], data.T[t.point_ids])
    assert np.abs(swapped.T - symmetric).max() <= 1e-12 * np.abs(data).max()


def test_broken_sensor_rectangular_approximation():
    """Drop one of the d selected points: the rectangular (least-squares) interpolant with the d fields
    on the d + 2 - 1 remaining points keeps the d-term accuracy, and the (d - 1) x d minimum-norm one
    keeps a usable one; the square EIM of d - 1 terms (dropping the field too) is much worse."""
    x = np.linspace(0.0, 1.0, 200)
    mu = np.linspace(1.0, 10.0, 60)
    data = np.exp(-np.outer(x, mu)) + np.sin(np.outer(x, 0.3 * mu))
    test = np.exp(-np.outer(x, mu + 0.07)) + np.sin(np.outer(x, 0.3 * (mu + 0.07)))
    d = 8
    res = eim_greedy(data, max_terms=d + 2)
    square = RectangularInterpolant.from_greedy(res, n_points=d, n_params=d)
    over = RectangularInterpolant.from_greedy(res, n_points=d + 2, n_params=d)
    cols = data[:, res.param_indices[:d]]

    def err(interp):
        return np.abs(interp.evaluate(cols, test[interp.point_ids]) - test).max()

    e_square = err(square)
    broken = int(res.point_ids[2])
    e_drop_over = err(over.drop_points([broken]))
    e_drop_min_norm = err(square.drop_points([broken]))
    short = RectangularInterpolant.from_greedy(res, n_points=d - 1, n_params=d - 1)
    e_short = np.abs(short.evaluate(data[:, res.param_indices[:d - 1]], test[short.point_ids]) - test).max()
    print(f"\nbroken sensor: square d={d}: {e_square:.2e}; LS after drop ({d + 1} pts, {d} fields): "
          f"{e_drop_over:.2e}; min-norm ({d - 1} pts, {d} fields): {e_drop_min_norm:.2e}; "
          f"square d-1: {e_short:.2e}")
    assert e_drop_over <= 10 * e_square
    assert e_drop_over < 0.1 * e_short
    assert broken not in over.drop_points([broken]).point_ids
    assert over.drop_points([broken]).F.shape == (d + 1, d)
    with pytest.raises(EIMError, match="not interpolation points"):
        over.drop_points([10 ** 6])


def test_deim_and_qdeim():
    x = np.linspace(0.0, 1.0, 400)
    mu = np.linspace(1.0, 10.0, 50)
    snaps = np.exp(-np.outer(x, mu)) / (1.0 + np.outer(x ** 2, mu))
    U = np.linalg.svd(snaps, full_matrices=False)[0][:, :12]
    q = qdeim(U)
    assert q.point_ids.tolist() == sla.qr(U.T, pivoting=True)[2][:12].tolist()
    d = deim(U)
    # Textbook DEIM with explicit solves.
    p = [int(np.argmax(np.abs(U[:, 0])))]
    for l in range(1, 12):
        c = np.linalg.solve(U[p, :l], U[p, l])
        p.append(int(np.argmax(np.abs(U[:, l] - U[:, :l] @ c))))
    assert d.point_ids.tolist() == p
    for r in (d, q):
        assert np.isclose(r.error_constant, np.linalg.norm(np.linalg.inv(U[r.point_ids]), 2))
        f = snaps[:, 7]
        approx = U @ r.coefficients(f[r.point_ids])
        proj = U @ (U.T @ f)
        assert np.linalg.norm(f - approx) <= r.error_constant * np.linalg.norm(f - proj) * (1 + 1e-8)
    assert q.error_constant < d.error_constant * 2


def test_bad_inputs_name_the_cause():
    data = datasets()["smooth"]
    bad = data.copy()
    bad[3, 5] = np.nan
    with pytest.raises(EIMError, match="NaN first at local row 3, parameter 5"):
        eim_greedy(bad)
    params = np.linspace(0, 1, data.shape[1])
    params[4] = np.nan
    with pytest.raises(EIMError, match="parameter values contain NaN.*training parameter 4"):
        eim_greedy(data, parameters=params)
    with pytest.raises(EIMError, match="2-D"):
        eim_greedy(data[0])
    with pytest.raises(EIMError, match="norm must be one of"):
        eim_greedy(data, norm="l1")
    with pytest.raises(EIMError, match="needs weights"):
        eim_greedy(data, norm="weighted_l2")
    with pytest.raises(EIMError, match="ids contain duplicates"):
        eim_greedy(data, ids=np.zeros(data.shape[0], dtype=np.int64))
    with pytest.raises(EIMError, match="tol must be"):
        eim_greedy(data, tol=-1.0)
    with pytest.warns(EIMWarning, match="below the round-off level"):
        res = eim_greedy(data, rtol=1e-18)
    assert res.stop_reason == "round-off"
    with pytest.warns(EIMWarning, match="not reached"):
        eim_greedy(data, rtol=1e-10, max_terms=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eim_greedy(data, rtol=1e-6)  # reachable: no warning
