"""Tests of structrom.rom.materials: analytic material-point solutions, consistent tangents, errors, configs."""
from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest

from structrom.rom.materials import (J2Plasticity, LinearElastic, LinearHardening, MaterialError,
                           NortonViscoplasticity, TabulatedHardening, Table, VoceHardening,
                           law_from_config, mixed_control, simple_shear, uniaxial_stress,
                           uniaxial_stress_control)
from structrom.rom.voigt import von_mises

E, NU, SY, H = 200e3, 0.3, 250.0, 2000.0  # MPa
G = E / (2 * (1 + NU))
T_REF = 20.0


def elastic(temp_dep: bool = False) -> LinearElastic:
    if not temp_dep:
        return LinearElastic(E, NU, 1.2e-5, reference_temperature=T_REF, density=7.85e-9)
    return LinearElastic(Table([20.0, 500.0], [E, 150e3]), Table([20.0, 500.0], [0.3, 0.33]),
                         Table([20.0, 300.0, 500.0], [1.2e-5, 1.4e-5, 1.5e-5]),
                         reference_temperature=T_REF, density=7.85e-9)


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


# ---------------------------------------------------------------------------------------- tables
def test_table_interpolates_linearly_and_extrapolates_constant():
    t = Table([0.0, 100.0, 300.0], [1.0, 2.0, 0.0])
    np.testing.assert_allclose(t(np.array([-50.0, 0.0, 50.0, 100.0, 200.0, 300.0, 1e4])),
                               [1.0, 1.0, 1.5, 2.0, 1.0, 0.0, 0.0], rtol=0, atol=1e-15)
    c = Table.constant(3.5)
    assert c.is_constant and c(np.zeros((2, 3))).shape == (2, 3) and np.all(c(np.ones(4)) == 3.5)
    assert Table(None, 2.0)(np.array([7.0]))[0] == 2.0
    for cfg in (c.to_config(), t.to_config()):
        assert Table.from_config(json.loads(json.dumps(cfg))) == Table.from_config(cfg)


@pytest.mark.parametrize("temps, vals, match", [
    ([0.0, 100.0, 50.0], [1.0, 2.0, 3.0], "strictly increasing"),
    ([0.0, 0.0], [1.0, 2.0], "strictly increasing"),
    ([0.0, 100.0], [1.0, 2.0, 3.0], "2 temperatures but 3 values"),
    ([0.0, np.nan], [1.0, 2.0], "temperatures must be finite"),
    ([0.0, 1.0], [1.0, np.inf], "values must be finite"),
])
def test_table_rejects_bad_data(temps, vals, match):
    with pytest.raises(MaterialError, match=match):
        Table(temps, vals, name="young")


# ------------------------------------------------------------------------------------ elasticity
def test_elastic_uniaxial_stress_and_temperature_dependent_young():
    law = elastic(temp_dep=True)
    eps = np.linspace(0.0, 1e-3, 5)
    for temp in (20.0, 140.0, 500.0, 800.0):
        e_t = np.interp(temp, [20.0, 500.0], [E, 150e3])
        nu_t = np.interp(temp, [20.0, 500.0], [0.3, 0.33])
        s, strain, _ = uniaxial_stress(law, eps, temp, np.arange(5.0))
        eth = law.thermal_strain(np.array([temp]))[0, 0]
        assert rel(s[:, 0], e_t * (eps - eth)) < 1e-12
        assert rel(strain[:, 1] - eth, -nu_t * (eps - eth)) < 1e-12
        assert np.allclose(strain[:, 2], strain[:, 1], rtol=1e-13, atol=0)
        assert np.abs(s[:, 1:]).max() < 1e-9 * np.abs(s[:, 0]).max() + 1e-12


def test_free_thermal_expansion_uses_secant_coefficient():
    law = elastic(temp_dep=True)
    temps = np.array([20.0, 100.0, 300.0, 450.0, 600.0])
    s, strain, _ = mixed_control(law, np.zeros((5, 6)), temps, np.arange(5.0),
                                 prescribed=np.zeros(6, bool))
    alpha = np.interp(temps, [20.0, 300.0, 500.0], [1.2e-5, 1.4e-5, 1.5e-5])
    expected = alpha * (temps - T_REF)
    for i in range(3):
        assert rel(strain[:, i], expected) < 1e-12
    assert np.abs(strain[:, 3:]).max() < 1e-18 and np.abs(s).max() < 1e-8
    # fully clamped heating: sigma = -E alpha dT / (1 - 2 nu) on each normal component
    law_c = elastic()
    res = law_c.integrate(np.zeros((1, 6)), np.zeros((1, 6)), 20.0, 120.0, 1.0, np.zeros((1, 0)))
    np.testing.assert_allclose(res.stress[0, :3], -E * 1.2e-5 * 100.0 / (1 - 2 * NU), rtol=1e-13)


# ------------------------------------------------------------------------------ J2 plasticity
def test_j2_linear_hardening_uniaxial_matches_analytic():
    law = J2Plasticity(elastic(), LinearHardening(SY, H))
    eps = np.linspace(0.0, 0.02, 41)
    s, strain, state = uniaxial_stress(law, eps, T_REF, np.arange(41.0))
    ey = SY / E
    expected = np.where(eps <= ey, E * eps, SY + E * H / (E + H) * (eps - ey))
    assert rel(s[:, 0], expected) < 1e-10
    # incompressible plastic flow: eps_p = diag(p, -p/2, -p/2) in uniaxial tension
    p = state[:, 6]
    assert rel(state[:, 0], p) < 1e-12 and rel(state[:, 1], -0.5 * p) < 1e-12
    assert rel(law.cumulated_plastic_strain(state[-1:]), [(expected[-1] - SY) / H]) < 1e-10


def test_j2_pure_shear_yield_and_hardening_slope():
    law = J2Plasticity(elastic(), LinearHardening(SY, H))
    gam = np.linspace(0.0, 0.01, 51)
    s, strain, state = simple_shear(law, gam, T_REF, np.arange(51.0))
    tau = s[:, 3]
    tau_y = SY / np.sqrt(3.0)
    gam_y = tau_y / G
    expected = np.where(gam <= gam_y, G * gam, tau_y + G * H / (H + 3 * G) * (gam - gam_y))
    assert rel(tau, expected) < 1e-10
    assert np.abs(s[:, [0, 1, 2, 4, 5]]).max() < 1e-9 * np.abs(tau).max()
    # p = gamma_p / sqrt(3) and q = sqrt(3) tau = R(p)
    assert rel(state[:, 6], state[:, 3] / np.sqrt(3.0)) < 1e-12
    assert rel(von_mises(s)[gam > gam_y], SY + H * state[gam > gam_y, 6]) < 1e-10
    # constrained (kinematic) simple shear gives the same answer isothermally
    s2, _, _ = simple_shear(law, gam, T_REF, np.arange(51.0), constrained=True)
    assert rel(s2[:, 3], expected) < 1e-10


def test_j2_cyclic_isotropic_hardening_and_cumulated_plastic_strain():
    law = J2Plasticity(elastic(), LinearHardening(SY, H))
    e1 = 0.01
    s1 = SY + E * H / (E + H) * (e1 - SY / E)
    p1 = (s1 - SY) / H
    e_rev = e1 - 2 * s1 / E  # strain at which reverse yielding must start
    path = np.concatenate([np.linspace(0, e1, 11), np.linspace(e1, e_rev, 6)[1:],
                           np.linspace(e_rev, -e1, 21)[1:], np.linspace(-e1, 0.0, 11)[1:]])
    s, strain, state = uniaxial_stress(law, path, T_REF, np.arange(path.size, dtype=float))
    i_rev = 15
    assert path[i_rev] == e_rev
    assert abs(s[i_rev, 0] + (SY + H * p1)) < 1e-10 * s1  # reverse yield at -(sy0 + H p1)
    assert state[i_rev, 6] == pytest.approx(p1, rel=1e-12)
    assert state[i_rev + 1, 6] > p1  # yields again right after
    # in the compressive plastic branch, sigma = -(sy0 + H p)
    i_end = 35
    assert path[i_end] == -e1
    comp = slice(i_rev + 1, i_end + 1)
    assert rel(s[comp, 0], -(SY + H * state[comp, 6])) < 1e-10
    # p accumulates |d eps_p| and never decreases
    assert np.all(np.diff(state[:, 6]) >= 0)
    assert rel(state[-1, 6], np.abs(np.diff(state[:, 0])).sum()) < 1e-12
    # closed form at -e1: -e1 = -(sy0 + H p2) / E + eps_p_xx, eps_p_xx = p1 - (p2 - p1)
    p2 = (e1 + 2 * p1 - SY / E) / (1 + H / E)
    assert state[i_end, 6] == pytest.approx(p2, rel=1e-10)
    assert s[i_end, 0] == pytest.approx(-(SY + H * p2), rel=1e-10)
    # back to zero strain: yields again in tension at +(sy0 + H p)
    assert s[-1, 0] == pytest.approx(SY + H * state[-1, 6], rel=1e-10)


def test_tabulated_hardening_reproduces_table_then_perfectly_plastic():
    eps_p = np.array([0.0, 0.002, 0.01, 0.03])
    sig = np.array([250.0, 300.0, 340.0, 360.0])
    law = J2Plasticity(elastic(), TabulatedHardening(eps_p, sig))
    targets = sig / E + eps_p
    path = np.sort(np.concatenate([np.linspace(0, 0.05, 26), targets]))
    s, strain, state = uniaxial_stress(law, path, T_REF, np.arange(path.size, dtype=float))
    for e_t, s_t, p_t in zip(targets, sig, eps_p):
        i = np.flatnonzero(path == e_t)[0]
        assert s[i, 0] == pytest.approx(s_t, rel=1e-10)
        assert state[i, 6] == pytest.approx(p_t, rel=1e-10, abs=1e-14)
    beyond = path > targets[-1]
    assert np.allclose(s[beyond, 0], sig[-1], rtol=1e-10)
    # between table points: piecewise linear in p
    plastic = state[:, 6] > 0
    assert rel(s[plastic, 0], np.interp(state[plastic, 6], eps_p, sig)) < 1e-10
    assert "250.0, 0.0" in law.hardening.calculix_lines()[0]


def test_tabulated_hardening_temperature_interpolation_matches_calculix_semantics():
    hard = TabulatedHardening([[0.0, 0.01, 0.02], [0.0, 0.01]], [[200.0, 300.0, 320.0],
                                                                 [100.0, 150.0]],
                              temperatures=[20.0, 420.0])
    p = np.array([0.0, 0.005, 0.01, 0.015, 0.05])
    r_lo, d_lo = hard(p, np.full(5, 0.0))  # below the first temperature: first curve
    np.testing.assert_allclose(r_lo, [200.0, 250.0, 300.0, 310.0, 320.0])
    np.testing.assert_allclose(d_lo, [1e4, 1e4, 2e3, 2e3, 0.0])
    r_hi, d_hi = hard(p, np.full(5, 500.0))  # above the last: last curve
    np.testing.assert_allclose(r_hi, [100.0, 125.0, 150.0, 150.0, 150.0])
    r_mid, d_mid = hard(p, np.full(5, 220.0))  # halfway, on the common strain range [0, 0.01]
    np.testing.assert_allclose(r_mid, [150.0, 187.5, 225.0, 225.0, 225.0])
    np.testing.assert_allclose(d_mid, [7500.0, 7500.0, 0.0, 0.0, 0.0])


def test_voce_hardening_saturates():
    q_sat, b = 150.0, 200.0
    law = J2Plasticity(elastic(), VoceHardening(SY, q_sat, b))
    eps = np.linspace(0.0, 0.1, 101)
    s, strain, state = uniaxial_stress(law, eps, T_REF, np.arange(101.0))
    p = state[:, 6]
    plastic = p > 0
    # uniaxial: sigma = R(p) on the plastic branch and eps = sigma / E + p
    assert rel(s[plastic, 0], SY + q_sat * (1 - np.exp(-b * p[plastic]))) < 1e-10
    assert rel(eps, s[:, 0] / E + p) < 1e-10
    assert s[-1, 0] == pytest.approx(SY + q_sat, rel=1e-6)
    assert np.all(np.diff(s[:, 0]) > 0)


# ------------------------------------------------------------------------------------- Norton
def test_norton_constant_stress_creep_rate():
    k, n, sy = 500.0, 4.0, 100.0
    law = NortonViscoplasticity(elastic(), LinearHardening(sy, 0.0), K=k, n=n)
    sig0 = 300.0
    times = np.linspace(0.0, 100.0, 21)
    s, strain, state = uniaxial_stress_control(law, np.full(21, sig0), T_REF, times)
    rate = ((sig0 - sy) / k) ** n
    assert rel(s[:, 0], np.full(21, sig0)) < 1e-12
    assert strain[0, 0] == pytest.approx(sig0 / E, rel=1e-8)  # instantaneous jump is elastic
    assert rel(np.diff(strain[:, 0]) / np.diff(times), np.full(20, rate)) < 1e-9
    assert rel(np.diff(strain[:, 1]) / np.diff(times), np.full(20, -0.5 * rate)) < 1e-9


def _relaxation_error(n_steps: int) -> float:
    k = 2.0e5  # MPa s  (n = 1): relaxation time K / E = 1 s
    law = NortonViscoplasticity(elastic(), LinearHardening(0.0, 0.0), K=k, n=1.0)
    e0 = 2e-3
    times = np.linspace(0.0, 1.0, n_steps + 1)
    s, _, _ = uniaxial_stress(law, np.full(n_steps + 1, e0), T_REF, times)
    exact = E * e0 * np.exp(-E * times / k)
    return np.abs(s[:, 0] - exact).max() / (E * e0)


def test_norton_relaxation_n1_first_order_convergence():
    e1, e2, e3 = _relaxation_error(20), _relaxation_error(40), _relaxation_error(80)
    assert e1 < 0.02
    assert np.log2(e1 / e2) == pytest.approx(1.0, abs=0.1)
    assert np.log2(e2 / e3) == pytest.approx(1.0, abs=0.05)


def test_norton_rate_dependence_and_rate_independent_limit():
    eps = np.linspace(0.0, 0.01, 21)
    hard = LinearHardening(SY, H)
    stresses = []
    for duration in (1e3, 1.0, 1e-3):
        law = NortonViscoplasticity(elastic(), hard, K=100.0, n=5.0)
        s, _, _ = uniaxial_stress(law, eps, T_REF, np.linspace(0.0, duration, 21))
        stresses.append(s[-1, 0])
    assert stresses[0] < stresses[1] < stresses[2]
    s_j2, _, _ = uniaxial_stress(J2Plasticity(elastic(), hard), eps, T_REF, np.arange(21.0))
    errs = []
    for k in (10.0, 1.0, 0.1):
        law = NortonViscoplasticity(elastic(), hard, K=k, n=5.0)
        s, _, _ = uniaxial_stress(law, eps, T_REF, np.arange(21.0))
        errs.append(np.abs(s[:, 0] - s_j2[:, 0]).max())
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-3 * SY
    # viscous overstress at K -> 0 scales like K
    assert errs[1] / errs[2] == pytest.approx(10.0, rel=0.05)


def test_norton_large_exponent_converges():
    law = NortonViscoplasticity(elastic(), VoceHardening(SY, 100.0, 50.0), K=300.0, n=30.0)
    rng = np.random.default_rng(3)
    n = 200
    deps = rng.normal(size=(n, 6)) * rng.uniform(1e-5, 5e-2, size=(n, 1))
    for dt in (1e-6, 1.0, 1e6):
        res = law.integrate(np.zeros((n, 6)), deps, T_REF, T_REF, dt, law.initial_state(n))
        assert np.all(np.isfinite(res.stress)) and np.all(np.isfinite(res.tangent))
        p = res.state[:, 6]
        plastic = p > 0
        q = von_mises(res.stress)
        r, _ = law.hardening(p, np.full(n, T_REF))
        # backward-Euler flow rule: dp/dt = ((q - R) / K)^n
        np.testing.assert_allclose(p[plastic] / dt, ((q - r)[plastic] / 300.0) ** 30.0,
                                   rtol=1e-8)


# ------------------------------------------------------------------------ consistent tangents
def _laws():
    el = elastic(temp_dep=True)
    lin = LinearHardening(Table([20.0, 500.0], [250.0, 180.0]), Table([20.0, 500.0], [2e3, 1e3]))
    voce = VoceHardening(Table([20.0, 500.0], [250.0, 180.0]), Table([20.0, 500.0], [150.0, 80.0]),
                         Table([20.0, 500.0], [200.0, 300.0]))
    tab = TabulatedHardening([[0.0, 0.003, 0.01, 0.5], [0.0, 0.002, 0.02, 0.4]],
                             [[250.0, 290.0, 330.0, 400.0], [180.0, 200.0, 240.0, 260.0]],
                             temperatures=[20.0, 500.0])
    kk = Table([20.0, 500.0], [400.0, 250.0])
    nn = Table([20.0, 500.0], [3.0, 6.0])
    return {
        "elastic": el,
        "j2_linear": J2Plasticity(el, lin),
        "j2_voce": J2Plasticity(el, voce),
        "j2_tabulated": J2Plasticity(el, tab),
        "norton_linear": NortonViscoplasticity(el, lin, kk, nn),
        "norton_voce": NortonViscoplasticity(el, voce, kk, nn),
        "norton_tabulated": NortonViscoplasticity(el, tab, kk, nn),
        "norton_n1": NortonViscoplasticity(el, lin, 1e4, 1.0),
        "norton_n25": NortonViscoplasticity(el, voce, 300.0, 25.0),
    }


def _fd_tangent(law, eps, deps, t0, t1, dt, state, h):
    n = eps.shape[0]
    d = np.zeros((n, 6, 6))
    for j in range(6):  # loop over strain components (not points)
        e = np.zeros(6)
        e[j] = h
        sp = law.integrate(eps, deps + e, t0, t1, dt, state).stress
        sm = law.integrate(eps, deps - e, t0, t1, dt, state).stress
        d[:, :, j] = (sp - sm) / (2 * h)
    return d


@pytest.mark.parametrize("name", list(_laws()))
def test_consistent_tangent_matches_finite_differences(name):
    law = _laws()[name]
    rng = np.random.default_rng(7)
    n = 12
    direction = rng.normal(size=(n, 6))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    t0 = rng.uniform(20.0, 300.0, n)
    t1 = t0 + rng.uniform(10.0, 150.0, n)
    dt = 0.5
    # first increment: loads 2/3 of the points well beyond yield
    amp = np.where(np.arange(n) % 3 == 0, 2e-4, 6e-3)[:, None]
    r1 = law.integrate(np.zeros((n, 6)), amp * direction, t0, t0, dt, law.initial_state(n))
    eps1 = amp * direction
    # second increment: continued loading (plastic) or reversal (elastic unloading)
    # (unloading removes 80 % of the elastic strain, so that viscous laws stop flowing too)
    kinds = np.arange(n) % 3
    eps_el = np.linalg.solve(law.elastic_tangent(t0), r1.stress[..., None])[..., 0]
    deps = np.where(kinds[:, None] == 2, -0.8 * eps_el, 0.3 * amp * direction)
    deps = deps + 1e-5 * rng.normal(size=(n, 6))
    r2 = law.integrate(eps1, deps, t0, t1, dt, r1.state)
    if law.n_state:
        dp = law.cumulated_plastic_strain(r2.state) - law.cumulated_plastic_strain(r1.state)
        assert np.all(dp[kinds == 1] > 0)  # plastic loading points
        assert np.all(dp[kinds == 2] == 0) and np.all(r1.state[kinds == 2, 6] > 0)  # unloading
    d_fd = _fd_tangent(law, eps1, deps, t0, t1, dt, r1.state, h=1e-8)
    err = np.linalg.norm(r2.tangent - d_fd, axis=(1, 2)) / np.linalg.norm(d_fd, axis=(1, 2))
    assert err.max() <= 1e-6, err
    # the algorithmic tangent of plastic points differs from the elastic one (non-trivial test)
    if law.n_state:
        c = law.elastic_tangent(t1)
        assert np.all(np.linalg.norm(r2.tangent - c, axis=(1, 2))[kinds == 1] > 1e-3 * G)


# ------------------------------------------------------------------------------------ errors
def test_bad_material_data_raises_named_errors():
    with pytest.raises(MaterialError, match="poisson"):
        LinearElastic(E, 0.5, 0.0)
    with pytest.raises(MaterialError, match="poisson"):
        LinearElastic(E, Table([0.0, 100.0], [0.3, 0.55]), 0.0)
    with pytest.raises(MaterialError, match="young"):
        LinearElastic(-1.0, 0.3, 0.0)
    with pytest.raises(MaterialError, match="young: temperatures must be strictly increasing"):
        LinearElastic({"temperatures": [100.0, 20.0], "values": [1.0, 2.0]}, 0.3)
    with pytest.raises(MaterialError, match="density"):
        LinearElastic(E, 0.3, density=-1.0)
    with pytest.raises(MaterialError, match="modulus"):
        LinearHardening(SY, -10.0)
    with pytest.raises(MaterialError, match="plastic_strain must start at 0"):
        TabulatedHardening([0.001, 0.01], [250.0, 300.0])
    with pytest.raises(MaterialError, match="plastic_strain .*strictly increasing"):
        TabulatedHardening([0.0, 0.01, 0.01], [250.0, 300.0, 310.0])
    with pytest.raises(MaterialError, match="one curve per temperature"):
        TabulatedHardening([[0.0, 0.01]], [[250.0, 300.0]], temperatures=[20.0, 100.0])
    with pytest.raises(MaterialError, match="K"):
        NortonViscoplasticity(elastic(), LinearHardening(SY), K=0.0, n=3.0)


def test_bad_increment_inputs_raise():
    law = J2Plasticity(elastic(), LinearHardening(SY, H))
    n = 5
    temp = np.full(n, 20.0)
    temp[[0, 2, 4]] = np.nan
    args = (np.zeros((n, 6)), np.zeros((n, 6)), np.full(n, 20.0))
    with pytest.raises(MaterialError, match="temperature.*contains NaN at 3 integration points"):
        law.integrate(*args, temp, 1.0, law.initial_state(n))
    with pytest.raises(MaterialError, match="state_old must have shape"):
        law.integrate(*args, 20.0, 1.0, np.zeros((n, 3)))
    bad = np.zeros((n, 6))
    bad[1, 2] = np.inf
    with pytest.raises(MaterialError, match="deps contains inf at 1 integration points"):
        law.integrate(args[0], bad, 20.0, 20.0, 1.0, law.initial_state(n))
    with pytest.raises(MaterialError, match="temperature contains NaN"):
        law.thermal_strain(np.array([np.nan]))
    visco = NortonViscoplasticity(elastic(), LinearHardening(SY), K=100.0, n=3.0)
    with pytest.raises(MaterialError, match="dt"):
        visco.integrate(*args, 20.0, 0.0, visco.initial_state(n))


def test_bad_configs_raise():
    with pytest.raises(MaterialError, match="unknown"):
        law_from_config({"type": "hyperelastic"})
    with pytest.raises(MaterialError, match="unknown key.*'yung'"):
        law_from_config({"type": "linear_elastic", "yung": 1.0, "young": 1.0, "poisson": 0.3})
    with pytest.raises(MaterialError, match="missing key.*poisson"):
        law_from_config({"type": "linear_elastic", "young": 1.0})
    with pytest.raises(MaterialError, match="hardening type"):
        law_from_config({"type": "j2_plasticity", "elastic": elastic().to_config(),
                         "hardening": {"type": "swift"}})


# ------------------------------------------------------------------------- config round-trip
@pytest.mark.parametrize("name", list(_laws()))
def test_config_round_trip_gives_identical_responses(name):
    law = _laws()[name]
    cfg = json.loads(json.dumps(law.to_config()))
    law2 = law_from_config(cfg)
    assert type(law2) is type(law) and law2.to_config() == law.to_config()
    assert law2.density == law.density and law2.state_names == law.state_names
    rng = np.random.default_rng(1)
    n = 20
    eps = rng.normal(size=(n, 6)) * 3e-3
    t = rng.uniform(0.0, 600.0, n)
    a = law.integrate(np.zeros((n, 6)), eps, t, t + 10, 0.3, law.initial_state(n))
    b = law2.integrate(np.zeros((n, 6)), eps, t, t + 10, 0.3, law2.initial_state(n))
    for x, y in ((a.stress, b.stress), (a.tangent, b.tangent), (a.state, b.state)):
        assert np.array_equal(x, y)


def test_law_from_toml_text():
    text = """
    type = "norton_viscoplasticity"
    K = 300.0
    n = {temperatures = [20.0, 500.0], values = [4.0, 6.0]}
    [elastic]
    young = {temperatures = [20.0, 500.0], values = [200000.0, 150000.0]}
    poisson = 0.3
    expansion = 1.2e-5
    reference_temperature = 20.0
    density = 7.85e-9
    [hardening]
    type = "tabulated"
    temperatures = [20.0, 500.0]
    plastic_strain = [[0.0, 0.01], [0.0, 0.01, 0.02]]
    yield_stress = [[250.0, 300.0], [150.0, 170.0, 175.0]]
    """
    law = law_from_config(tomllib.loads(text))
    assert isinstance(law, NortonViscoplasticity) and law.density == 7.85e-9
    assert law.n(np.array([260.0]))[0] == pytest.approx(5.0)
    assert law_from_config(law.to_config()).to_config() == law.to_config()


# -------------------------------------------------------------------------------- driver
def test_driver_is_vectorized_over_points():
    law = J2Plasticity(elastic(temp_dep=True), LinearHardening(Table([20.0, 500.0], [250.0, 150.0]),
                                                               1e3))
    eps = np.linspace(0.0, 0.01, 11)
    temps = np.array([20.0, 200.0, 480.0])
    hist = np.repeat(eps[:, None], 3, axis=1) * np.array([1.0, 0.5, 1.5])
    s_all, e_all, x_all = uniaxial_stress(law, hist, np.broadcast_to(temps, (11, 3)),
                                          np.arange(11.0))
    assert s_all.shape == (11, 3, 6) and x_all.shape == (11, 3, 7)
    for i in range(3):
        s, e, x = uniaxial_stress(law, hist[:, i], temps[i], np.arange(11.0))
        np.testing.assert_allclose(s_all[:, i], s, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(x_all[:, i], x, rtol=1e-12, atol=1e-15)


def test_closed_form_return_and_elastic_memo_match_the_general_path():
    """Linear hardening uses the closed-form radial return; the general bracketed local Newton gives the
    same stresses, tangents and states to rounding. The elastic-property memo (same temperatures across
    Newton iterations) returns what a fresh evaluation gives, and its arrays are read-only."""
    rng = np.random.default_rng(3)
    law = J2Plasticity(LinearElastic({"temperatures": [20.0, 600.0], "values": [210e3, 160e3]}, 0.3,
                                     {"temperatures": [20.0, 600.0], "values": [1.2e-5, 1.4e-5]}, 20.0),
                       LinearHardening({"temperatures": [20.0, 600.0], "values": [350.0, 200.0]}, 3000.0))
    assert law._closed_form
    n = 200
    eps = rng.normal(scale=3e-3, size=(n, 6))
    temp = rng.uniform(20.0, 600.0, n)
    state = law.initial_state(n)
    state[:, 6] = rng.uniform(0.0, 0.01, n)
    closed = law.integrate(np.zeros((n, 6)), eps, temp, temp, 1.0, state)
    law._closed_form = False
    general = law.integrate(np.zeros((n, 6)), eps, temp, temp, 1.0, state)
    assert (closed.state[:, 6] > state[:, 6]).sum() > n // 4  # many points yield
    for a, b in ((closed.stress, general.stress), (closed.tangent, general.tangent), (closed.state, general.state)):
        assert np.allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())
    props = law.elastic.properties(temp)
    assert props is law.elastic.properties(temp.copy())  # memo hit on equal temperatures
    fresh = LinearElastic(law.elastic.young, 0.3, law.elastic.expansion, 20.0).properties(temp)
    assert np.array_equal(props.tangent, fresh.tangent) and np.array_equal(props.thermal_strain, fresh.thermal_strain)
    assert law.elastic.properties(temp + 1.0).temperature[0] == temp[0] + 1.0  # a new temperature: recomputed
    with pytest.raises(ValueError):
        props.tangent[0, 0, 0] = 1.0
