"""The online J2 fast path (structrom.rom.online.radial_return) against the generic reduced system driving the law
itself (structrom.rom.online.newton.ReducedSystem + J2Plasticity.integrate): stresses, states, tangents and reduced
stiffness agree to rounding, with temperature-dependent tables and points yielding or not."""
from __future__ import annotations

import numpy as np
import pytest

from structrom.rom.materials import law_from_config
from structrom.rom.online.newton import ReducedSystem, Region, State
from structrom.rom.online.radial_return import RadialReturnSystem

#: Every parameter depends on temperature, so no constant is shared between increments.
LAW_T = {
    "type": "j2_plasticity",
    "elastic": {"young": {"temperatures": [0.0, 500.0], "values": [200e3, 150e3]},
                "poisson": {"temperatures": [0.0, 500.0], "values": [0.30, 0.33]},
                "expansion": {"temperatures": [0.0, 500.0], "values": [1.2e-5, 1.6e-5]},
                "reference_temperature": 20.0},
    "hardening": {"type": "linear", "yield_stress": {"temperatures": [0.0, 500.0], "values": [300.0, 180.0]},
                  "modulus": {"temperatures": [0.0, 500.0], "values": [2e3, 1e3]}},
}


def systems(law_cfg, n=80, N=7, seed=0):
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, 6, N))
    w = rng.uniform(0.5, 1.5, n)
    w[:8] = 0.0  # zero-weight (dual) points
    law = law_from_config(law_cfg)
    regions = [Region(law, np.arange(n))]
    return ReducedSystem(B, w, regions), RadialReturnSystem(B, w, regions), law, rng


def old_state(law, rng, n, N):
    """A converged state with plastic history at half of the points."""
    st = law.initial_state(n)
    st[::2, :6] = rng.normal(scale=1e-4, size=(len(st[::2]), 6))
    st[::2, :3] -= st[::2, :3].mean(1, keepdims=True)  # plastic flow is deviatoric
    st[::2, 6] = rng.uniform(0.0, 5e-3, len(st[::2]))
    return State(0.0, np.zeros(N), rng.normal(scale=1e-3, size=(n, 6)), np.zeros((n, 6)),
                 rng.uniform(20.0, 400.0, n), [st])


@pytest.mark.parametrize("scale", [1e-4, 4.5e-4])  # all elastic; a mix of elastic and yielding points
def test_fast_path_matches_the_law(scale):
    generic, fast, law, rng = systems(LAW_T)
    n, N = generic.n_points, generic.n_modes
    old = old_state(law, rng, n, N)
    temperature = rng.uniform(20.0, 450.0, n)
    q = rng.normal(scale=scale, size=N)
    strain = generic.strain(q)
    s0, C0, st0 = generic.integrate(old, strain, temperature, 1.0, {})
    s1, C1, st1 = fast.integrate(old, strain, temperature, 1.0, {})
    n_plastic = len(C1.plastic)
    assert (n_plastic == 0) if scale < 2e-4 else (10 < n_plastic < n - 10)
    smax = np.abs(s0).max()
    assert np.allclose(s1, s0, rtol=0, atol=1e-12 * smax)
    assert np.allclose(st1[0], st0[0], rtol=0, atol=1e-13 * max(1.0, np.abs(st0[0]).max()))
    assert np.allclose(C1.dense(), C0, rtol=0, atol=1e-12 * np.abs(C0).max())
    K0, K1 = generic.stiffness(C0), fast.stiffness(C1)
    assert np.allclose(K1, K0, rtol=0, atol=1e-12 * np.abs(K0).max())
    K1b = fast.stiffness(C1)  # the elastic part is kept: same result
    assert np.array_equal(K1b, K1)
    f0, f1 = generic.internal_force(s0), fast.internal_force(s1)
    assert np.allclose(f1, f0, rtol=0, atol=1e-12 * np.abs(f0).max())
    scale = generic.force_scale(s0)  # || sum_k w_k |B_k|^T |sigma_k| ||, and its cheap upper bound
    full = np.linalg.norm(np.einsum("k,kin,ki->n", generic.weights, np.abs(generic.integrator), np.abs(s0)))
    assert scale == pytest.approx(full, rel=1e-12) and generic.force_scale_bound(s0) >= scale


def test_constant_tables_are_evaluated_once():
    """Temperature-independent moduli and hardening: the same arrays at every temperature (so the elastic
    reduced stiffness is kept between increments); the thermal strain still follows the temperature."""
    cfg = {"type": "j2_plasticity",
           "elastic": {"young": 1000.0, "poisson": 0.3, "expansion": 1e-3, "reference_temperature": 0.0},
           "hardening": {"type": "linear", "yield_stress": 1.0, "modulus": 100.0}}
    _, fast, law, rng = systems(cfg)
    a, b = fast.constants(np.full(fast.n_points, 10.0)), fast.constants(np.full(fast.n_points, 50.0))
    assert a.shear is b.shear and a.yield_stress is b.yield_stress
    assert np.allclose(b.thermal, 1e-3 * 50.0) and np.allclose(a.thermal, 1e-3 * 10.0)


def test_applies_only_to_one_closed_form_j2_law():
    B, w = np.zeros((4, 6, 2)), np.ones(4)
    j2 = law_from_config(LAW_T)
    voce = law_from_config({**LAW_T, "hardening": {"type": "voce", "yield_stress": 300.0, "saturation": 100.0,
                                                   "rate": 10.0}})
    elastic = law_from_config(LAW_T["elastic"] | {"type": "linear_elastic"})
    assert RadialReturnSystem.applies([Region(j2, np.arange(4))], 4)
    assert not RadialReturnSystem.applies([Region(voce, np.arange(4))], 4)  # local Newton: generic path
    assert not RadialReturnSystem.applies([Region(elastic, np.arange(4))], 4)
    assert not RadialReturnSystem.applies([Region(j2, np.arange(2)), Region(j2, np.arange(2, 4))], 4)
    with pytest.raises(ValueError, match="one rate-independent J2 law"):
        RadialReturnSystem(B, w, [Region(voce, np.arange(4))])


# -- kinematic hardening -----------------------------------------------------------------------------------
KINEMATIC = {
    "prager_linear": {"type": "prager", "modulus": {"temperatures": [0.0, 500.0], "values": [20e3, 8e3]}},
    "af_voce": {"type": "armstrong_frederick", "modulus": {"temperatures": [0.0, 500.0], "values": [40e3, 25e3]},
                "recall": {"temperatures": [0.0, 500.0], "values": [300.0, 150.0]}},
}
VOCE = {"type": "voce", "yield_stress": {"temperatures": [0.0, 500.0], "values": [300.0, 180.0]},
        "saturation": 80.0, "rate": 12.0}


def kinematic_systems(name, n=80, N=7, seed=1):
    from structrom.rom.online.radial_return import KinematicReturnSystem
    cfg = {**LAW_T, "kinematic": KINEMATIC[name]}
    if name == "af_voce":
        cfg["hardening"] = VOCE
    rng = np.random.default_rng(seed)
    B = rng.normal(size=(n, 6, N))
    w = rng.uniform(0.5, 1.5, n)
    w[:8] = 0.0
    law = law_from_config(cfg)
    regions = [Region(law, np.arange(n))]
    assert not RadialReturnSystem.applies(regions, n) and KinematicReturnSystem.applies(regions, n)
    return ReducedSystem(B, w, regions), KinematicReturnSystem(B, w, regions), law, rng


@pytest.mark.parametrize("name", list(KINEMATIC))
@pytest.mark.parametrize("scale", [1e-4, 3e-4])  # all elastic; a mix of elastic and yielding points
def test_kinematic_fast_path_matches_the_law(name, scale):
    """The reduced return with a back stress at all points at once (closed form for Prager + linear, Newton on
    dp for Armstrong-Frederick + Voce) = the law's own integrate and dense tangent; the factored reduced
    stiffness (unsymmetric for Armstrong-Frederick) = sum_k w_k B_k^T C_k B_k."""
    generic, fast, law, rng = kinematic_systems(name)
    n, N = generic.n_points, generic.n_modes
    old = old_state(law, rng, n, N)
    st = old.law_states[0]
    x = rng.normal(scale=10.0, size=(len(st[::2]), 6))
    st[::2, 7:13] = x - x[:, :3].mean(1, keepdims=True) * np.array([1, 1, 1, 0, 0, 0])  # deviatoric back stress
    temperature = rng.uniform(20.0, 450.0, n)
    strain = generic.strain(rng.normal(scale=scale, size=N))
    s0, C0, st0 = generic.integrate(old, strain, temperature, 1.0, {})
    s1, C1, st1 = fast.integrate(old, strain, temperature, 1.0, {})
    n_plastic = len(C1.plastic)
    assert (n_plastic == 0) if scale < 2e-4 else (10 < n_plastic < n - 10)
    assert np.allclose(s1, s0, rtol=0, atol=1e-12 * np.abs(s0).max())
    assert np.allclose(st1[0], st0[0], rtol=0, atol=1e-12 * max(1.0, np.abs(st0[0]).max()))
    assert np.allclose(C1.dense(), C0, rtol=0, atol=1e-12 * np.abs(C0).max())
    K0, K1 = generic.stiffness(C0), fast.stiffness(C1)
    assert np.allclose(K1, K0, rtol=0, atol=1e-12 * np.abs(K0).max())
    if n_plastic and name == "af_voce":
        assert np.abs(K1 - K1.T).max() > 1e-8 * np.abs(K1).max()  # the recall term makes it unsymmetric


def test_kinematic_dual_quantity_is_the_back_stress():
    from structrom.rom.online.model import DUAL_QUANTITIES, dual_values
    generic, fast, law, rng = kinematic_systems("af_voce")
    old = old_state(law, rng, generic.n_points, generic.n_modes)
    old.law_states[0][:, 7:13] = rng.normal(size=(generic.n_points, 6))
    assert DUAL_QUANTITIES["back_stress"] == 6
    assert np.array_equal(dual_values("back_stress", fast.regions, old), old.law_states[0][:, 7:13])
    iso = law_from_config(LAW_T)  # no back stress: zero
    assert not dual_values("back_stress", [Region(iso, np.arange(3))],
                           State(0.0, np.zeros(1), np.zeros((3, 6)), np.zeros((3, 6)), np.zeros(3),
                                 [iso.initial_state(3)])).any()
