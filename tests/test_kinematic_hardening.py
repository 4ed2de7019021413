"""Kinematic hardening of the J2 laws (structrom.rom.materials.kinematic): closed-form uniaxial responses
(Prager, Armstrong-Frederick), the Bauschinger effect, the consistent tangent and the back-stress update
against finite differences / sub-stepping, bad input."""
from __future__ import annotations

import tomllib

import numpy as np
import pytest

from structrom.rom.materials import (J2Plasticity, KinematicHardening, LinearElastic, LinearHardening,
                                     MaterialError, NortonViscoplasticity, Table, VoceHardening,
                                     law_from_config, uniaxial_stress)

E, NU, SY = 200e3, 0.3, 250.0


def _uniaxial_back_stress(state):
    """``X_xx - X_yy`` (the back stress of a uniaxial test) from the state columns ``X_xx, X_yy``."""
    return state[:, 7] - state[:, 8]


def _path(*corners, per_branch=6):
    """Strain history through ``corners`` (first 0), ``per_branch`` increments per branch."""
    pts = [np.zeros(1)]
    for a, b in zip((0.0,) + corners[:-1], corners):
        pts.append(np.linspace(a, b, per_branch + 1)[1:])
    return np.concatenate(pts)


@pytest.mark.parametrize("h_iso", [0.0, 1500.0])
def test_prager_uniaxial_cycle_matches_closed_form_and_bauschinger(h_iso):
    """Prager + linear isotropic hardening: bilinear branches with the tangent modulus ``E (H + C) / (E + H + C)``;
    after loading to ``sigma_max = sigma_y + (H + C) p1`` the reverse yield stress is
    ``sigma_max - 2 R(p1) = C p1 - sigma_y - H p1`` (``sigma_max - 2 sigma_y`` for pure kinematic hardening:
    the elastic range keeps its size 2 R and moves with the back stress ``C p1``)."""
    c = 20000.0
    law = J2Plasticity(LinearElastic(E, NU), LinearHardening(SY, h_iso), KinematicHardening(c))
    eps = _path(0.006, -0.004, 0.005, per_branch=8)
    s, strain, state = uniaxial_stress(law, eps, 20.0, np.arange(len(eps)))
    hp = h_iso + c
    et = E * hp / (E + hp)
    # analytic piecewise-linear response, branch by branch
    sig = np.zeros_like(eps)
    x_u, p, sigma, eps_prev = 0.0, 0.0, 0.0, 0.0
    for k in range(1, len(eps)):
        trial = sigma + E * (eps[k] - eps_prev)
        r = SY + h_iso * p
        f = abs(trial - x_u) - r
        if f > 0:
            nu = np.sign(trial - x_u)
            dp = f / (E + hp)
            sigma = trial - E * nu * dp
            x_u += c * nu * dp
            p += dp
        else:
            sigma = trial
        sig[k], eps_prev = sigma, eps[k]
    assert np.max(np.abs(s[:, 0] - sig)) <= 1e-10 * np.max(np.abs(sig))
    # the reverse yield point of the first unloading: Bauschinger
    p1 = state[8, 6]
    sigma_max = SY + hp * p1
    assert abs(s[8, 0] - sigma_max) <= 1e-10 * sigma_max
    reverse_yield = c * p1 - SY - h_iso * p1
    if h_iso == 0.0:
        assert abs(reverse_yield - (sigma_max - 2 * SY)) <= 1e-9 * SY
    k_rev = next(k for k in range(9, 17) if state[k, 6] > p1)  # first reversed increment that flows
    # with the yield crossed inside increment k_rev, the stress lies on the reverse branch through the yield point
    eps_rev = eps[8] - (sigma_max - reverse_yield) / E
    assert abs(s[k_rev, 0] - (reverse_yield + et * (eps[k_rev] - eps_rev))) <= 1e-9 * SY
    assert abs(reverse_yield) < SY  # reverse yielding well before -sigma_y: the Bauschinger effect
    # the back stress is deviatoric and uniaxial: X_xx - X_yy = C eps_p_xx
    assert np.allclose(_uniaxial_back_stress(state), c * state[:, 0], rtol=0, atol=1e-9 * SY)
    assert np.allclose(state[:, 7:10].sum(1), 0.0, atol=1e-12 * SY)


@pytest.mark.parametrize("iso", ["perfect", "voce"])
def test_armstrong_frederick_uniaxial_cycles_match_closed_form(iso):
    """Uniaxial Armstrong-Frederick: on a plastic branch of direction nu = +-1 starting at (eps_p0, X0),
    ``X(eps_p) = nu C / gamma + (X0 - nu C / gamma) exp(-nu gamma (eps_p - eps_p0))`` (X: ``X_xx - X_yy``), and
    ``sigma = X + nu R(p)``; five strain-controlled cycles with only 5 increments per branch agree to 1e-8
    (the update is exact at fixed flow direction), and the back stress saturates at ``C / gamma``."""
    c = Table([0.0, 500.0], [40000.0, 30000.0])
    gamma = Table([0.0, 500.0], [300.0, 200.0])
    temp = 250.0
    c_t, g_t = float(c(temp)), float(gamma(temp))
    hard = LinearHardening(SY, 0.0) if iso == "perfect" else VoceHardening(SY, 80.0, 15.0)
    law = J2Plasticity(LinearElastic(E, NU), hard, KinematicHardening(c, gamma))
    eps = _path(*([0.012, -0.012] * 5), per_branch=5)
    s, _, state = uniaxial_stress(law, eps, temp, np.arange(len(eps)))
    x_u, ep, p = _uniaxial_back_stress(state), state[:, 0], state[:, 6]
    flows = np.flatnonzero(np.diff(p) > 0) + 1
    assert len(flows) >= 40  # most increments are plastic
    worst = 0.0
    start = 0  # the state at the start of the current plastic branch
    for k in flows:
        nu = np.sign(ep[k] - ep[k - 1])
        if k - 1 not in flows or np.sign(ep[k - 1] - ep[k - 2]) != nu:
            start = k - 1
        sat = nu * c_t / g_t
        x_exact = sat + (x_u[start] - sat) * np.exp(-nu * g_t * (ep[k] - ep[start]))
        worst = max(worst, abs(x_u[k] - x_exact) / (c_t / g_t))
        r = float(hard(np.array([p[k]]), np.array([temp]))[0][0])
        assert abs(s[k, 0] - (x_u[k] + nu * r)) <= 1e-9 * r
    assert worst <= 1e-8, worst
    assert abs(abs(x_u[-1]) - c_t / g_t) <= 0.02 * c_t / g_t  # saturated


def _laws():
    el = LinearElastic(Table([20.0, 500.0], [E, 150e3]), Table([20.0, 500.0], [0.3, 0.33]),
                       Table([20.0, 500.0], [1.2e-5, 1.5e-5]), reference_temperature=20.0)
    lin = LinearHardening(Table([20.0, 500.0], [SY, 180.0]), 1000.0)
    voce = VoceHardening(SY, Table([20.0, 500.0], [100.0, 60.0]), 12.0)
    af = KinematicHardening(Table([20.0, 500.0], [40000.0, 25000.0]), Table([20.0, 500.0], [250.0, 150.0]))
    return {
        "prager_linear": J2Plasticity(el, lin, KinematicHardening(Table([20.0, 500.0], [20000.0, 10000.0]))),
        "prager_voce": J2Plasticity(el, voce, KinematicHardening(15000.0)),
        "af_linear": J2Plasticity(el, lin, af),
        "af_voce": J2Plasticity(el, voce, af),
        "norton_af": NortonViscoplasticity(el, lin, 400.0, 6.0, af),
    }


def _two_increments(law, n=12, seed=5):
    """A first increment far beyond yield (random directions), then a second one in another direction
    (non-proportional), with a temperature change; returns the arguments of the second increment."""
    rng = np.random.default_rng(seed)
    d1 = rng.normal(size=(n, 6))
    d1 /= np.linalg.norm(d1, axis=1, keepdims=True)
    d2 = rng.normal(size=(n, 6))
    d2 /= np.linalg.norm(d2, axis=1, keepdims=True)
    t0 = rng.uniform(20.0, 300.0, n)
    t1 = t0 + rng.uniform(10.0, 150.0, n)
    eps1 = 6e-3 * d1
    r1 = law.integrate(np.zeros((n, 6)), eps1, t0, t0, 0.5, law.initial_state(n))
    return eps1, 3e-3 * d2, t0, t1, 0.5, r1.state


@pytest.mark.parametrize("name", list(_laws()))
def test_kinematic_tangent_matches_finite_differences(name):
    """The consistent tangent (unsymmetric for Armstrong-Frederick) against central differences of the
    stress, at points where the back stress is non-zero and the flow direction turns."""
    law = _laws()[name]
    eps1, deps, t0, t1, dt, state = _two_increments(law)
    r2 = law.integrate(eps1, deps, t0, t1, dt, state)
    assert np.all(r2.state[:, 6] > state[:, 6])  # every point flows in the second increment
    h = 1e-8
    fd = np.zeros_like(r2.tangent)
    for j in range(6):
        e = np.zeros(6)
        e[j] = h
        fd[:, :, j] = (law.integrate(eps1, deps + e, t0, t1, dt, state).stress
                       - law.integrate(eps1, deps - e, t0, t1, dt, state).stress) / (2 * h)
    err = np.linalg.norm(r2.tangent - fd, axis=(1, 2)) / np.linalg.norm(fd, axis=(1, 2))
    assert err.max() <= 1e-6, err
    asym = np.abs(r2.tangent - r2.tangent.transpose(0, 2, 1)).max()
    assert (asym == 0.0) == law.kinematic.linear  # Prager: symmetric; Armstrong-Frederick: not


@pytest.mark.parametrize("name", ["prager_voce", "af_voce"])
def test_back_stress_update_converges_to_the_rate_equations(name):
    """One non-proportional increment split into 2^k sub-increments: the state converges at first order
    (the scheme is consistent with the rate equations; errors halve with the sub-increment), and each
    result lies on the yield surface ``q(s - X) = R(p)`` with a deviatoric back stress."""
    law = _laws()[name]
    eps1, deps, t0, t1, dt, state = _two_increments(law, n=6)
    results = []
    for k in range(2, 9):
        m = 2 ** k
        st, eps = state, eps1
        for i in range(m):
            # the temperature jumps in the first sub-increment (parameters are taken at the end), then stays
            r = law.integrate(eps, deps / m, t0 if i == 0 else t1, t1, dt / m, st)
            st, eps = r.state, eps + deps / m
        results.append(st[:, 7:13])
        s = r.stress
        xi = s - s[:, :3].mean(1, keepdims=True) * np.array([1, 1, 1, 0, 0, 0]) - st[:, 7:13]
        q = np.sqrt(1.5 * (xi * xi * np.array([1, 1, 1, 2, 2, 2])).sum(1))
        r_p = law.hardening(st[:, 6], t1)[0]
        assert np.allclose(q, r_p, rtol=1e-10)
        assert np.allclose(st[:, 7:10].sum(1), 0.0, atol=1e-10 * r_p.max())
    diffs = [np.abs(a - b).max() for a, b in zip(results[:-1], results[1:])]
    rates = np.log2(np.array(diffs[:-1]) / np.array(diffs[1:]))
    assert np.all(np.abs(rates[-3:] - 1.0) < 0.15), rates


def test_isotropic_laws_keep_their_state_layout():
    law = J2Plasticity(LinearElastic(E, NU), LinearHardening(SY, 1000.0))
    assert law.n_state == 7 and law.kinematic is None and "kinematic" not in law.to_config()
    kin = J2Plasticity(LinearElastic(E, NU), LinearHardening(SY, 1000.0), KinematicHardening(1e4, 50.0))
    assert kin.n_state == 13 and kin.state_names[7:] == ("X_xx", "X_yy", "X_zz", "X_xy", "X_yz", "X_zx")
    assert J2Plasticity(LinearElastic(E, NU), LinearHardening(SY)).n_state == 7  # class attribute untouched


@pytest.mark.parametrize("name", list(_laws()))
def test_kinematic_config_round_trip(name):
    law = _laws()[name]
    again = law_from_config(law.to_config())
    args = _two_increments(law, n=5)
    a, b = law.integrate(*args), again.integrate(*args)
    assert np.array_equal(a.stress, b.stress) and np.array_equal(a.state, b.state)


def test_kinematic_from_toml():
    text = """
type = "j2_plasticity"
[elastic]
young = 200000.0
poisson = 0.3
[hardening]
type = "voce"
yield_stress = 250.0
saturation = 80.0
rate = 10.0
[kinematic]
type = "armstrong_frederick"
modulus = {temperatures = [20.0, 600.0], values = [40000.0, 20000.0]}
recall = 200.0
"""
    law = law_from_config(tomllib.loads(text))
    assert isinstance(law.kinematic, KinematicHardening) and not law.kinematic.linear
    np.testing.assert_allclose(law.kinematic(np.array([310.0]))[0], [30000.0])


@pytest.mark.parametrize("cfg, match", [
    ({"type": "prager", "modulus": -1000.0}, r"kinematic modulus C must be >= 0"),
    ({"type": "armstrong_frederick", "modulus": {"temperatures": [0.0, 100.0], "values": [1e4, -5.0]},
      "recall": 10.0}, r"kinematic modulus C must be >= 0"),
    ({"type": "armstrong_frederick", "modulus": 1e4, "recall": -3.0}, r"recall gamma must be >= 0"),
    ({"type": "armstrong_frederick", "recall": 50.0}, r"missing key\(s\) \['modulus'\]"),
    ({"type": "armstrong_frederick", "modulus": 0.0, "recall": 50.0}, r"recall gamma > 0 with modulus C = 0"),
    ({"type": "prager", "modulus": 1e4, "recall": 5.0}, r"'recall' \(gamma\) is an Armstrong-Frederick"),
    ({"type": "chaboche", "modulus": 1e4}, r"kinematic hardening type 'chaboche' is unknown; use one of"),
    ({"modulus": 1e4}, r"kinematic hardening type None is unknown"),
    ({"type": "prager", "modulus": 1e4, "C": 3.0}, r"unknown key\(s\) \['C'\]"),
    ("prager", r"kinematic must be a dict"),
])
def test_bad_kinematic_input_is_named(cfg, match):
    base = {"type": "j2_plasticity", "elastic": {"young": E, "poisson": NU},
            "hardening": {"type": "linear", "yield_stress": SY}, "kinematic": cfg}
    with pytest.raises(MaterialError, match=match):
        law_from_config(base)


def test_unknown_isotropic_hardening_type_is_named():
    with pytest.raises(MaterialError, match=r"hardening type 'kinematic' is unknown; use one of"):
        law_from_config({"type": "j2_plasticity", "elastic": {"young": E, "poisson": NU},
                         "hardening": {"type": "kinematic", "yield_stress": SY}})
