"""A complete ccx 2.20 deck for a quasi-static small-strain problem given by our mesh, law and loading.

:func:`write_static_deck` writes the mesh (:func:`.inp_writer.write_mesh_inp`), the material cards, one
``*STEP`` per loading increment with amplitudes, boundary conditions, loads, temperatures and output
requests; the HF solver protocol and the agreement tests run ccx on it.

Facts about ccx 2.20's analysis this module relies on (checked against ccx 2.20 runs): a ``*STEP`` without
``NLGEOM`` is geometrically linear, also with ``*PLASTIC`` (which only makes the step materially
nonlinear); ``*STATIC, DIRECT`` keeps fixed increments; the default ``*CONTROLS`` field ratios (0.005
residual, 0.01 correction) leave Newton errors of ~1e-4; thermal strains are relative to the initial
temperature; the point temperature of ``C3D8`` is the element mean and that of ``C3D20`` a trilinear fit
(``C3D4``, ``C3D10``, ``C3D20R``, ``C3D6``, ``C3D15``: shape functions).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..fem.mesh import Mesh
from .calculix_error import CalculixError
from .inp_writer import _number, write_mesh_inp

__all__ = ["write_static_deck"]


def _g(x: float) -> str:
    """A float for a deck data field (at most 20 characters, exact when the repr fits)."""
    return _number(x)


def _table_lines(tables: list) -> list[str]:
    """``v1, v2, ..., T`` lines of temperature tables on the union of their temperatures (piecewise-linear
    tables with constant extrapolation are represented exactly), or one ``v1, v2, ...`` line if all are
    constant."""
    if all(t.is_constant for t in tables):
        return [", ".join(_g(t.values[0]) for t in tables)]
    temps = np.unique(np.concatenate([t.temperatures for t in tables if not t.is_constant]))
    return [", ".join([_g(t(temp)) for t in tables] + [_g(temp)]) for temp in temps]


def _material_cards(law, mat_name: str, p_big: float) -> list[str]:
    from ..materials import J2Plasticity, LinearElastic, LinearHardening, NortonViscoplasticity, Table

    if isinstance(law, NortonViscoplasticity):
        raise CalculixError(
            "write_static_deck: NortonViscoplasticity is not supported (CalculiX's *CREEP is a different "
            "law: strain hardening, no yield stress); use LinearElastic or J2Plasticity"
        )
    if isinstance(law, J2Plasticity):
        elastic, hardening = law.elastic, law.hardening
    elif isinstance(law, LinearElastic):
        elastic, hardening = law, None
    else:
        raise CalculixError(
            f"write_static_deck: law {type(law).__name__} is not supported; use LinearElastic or J2Plasticity"
        )
    out = [f"*MATERIAL, NAME={mat_name}", "*ELASTIC"]
    out += _table_lines([elastic.young, elastic.poisson])
    if not (elastic.expansion.is_constant and elastic.expansion.values[0] == 0.0):
        out.append(f"*EXPANSION, ZERO={_g(elastic.reference_temperature)}")
        out += _table_lines([elastic.expansion])
    if elastic.density > 0.0:
        out += ["*DENSITY", _g(elastic.density)]
    if hardening is None:
        return out
    kinematic = getattr(law, "kinematic", None)
    if kinematic is None:
        return out + ["*PLASTIC"] + _isotropic_lines(hardening, p_big)
    # ccx 2.20 (plastics.f, cyclichardenings.f, incplas.f): HARDENING=KINEMATIC|COMBINED reads the *PLASTIC
    # table as the kinematic curve (back stress grows with its slope: linear kinematic, Prager, C = slope);
    # KINEMATIC takes the yield stress from that curve's first point, COMBINED from the isotropic curve of
    # *CYCLIC HARDENING (same layout as an isotropic *PLASTIC table). No Armstrong-Frederick recall term.
    if not kinematic.linear:
        raise CalculixError(
            "write_static_deck: Armstrong-Frederick kinematic hardening (recall gamma > 0) has no ccx 2.20 "
            "*PLASTIC equivalent (linear kinematic hardening only); use a Prager rule (gamma = 0) to compare")
    c_mod = kinematic.modulus
    perfect = isinstance(hardening, LinearHardening) and np.all(hardening.modulus.values == 0.0)
    sy = hardening.yield_stress if perfect else Table.constant(0.0)
    out.append("*PLASTIC, HARDENING=" + ("KINEMATIC" if perfect else "COMBINED"))
    out += _linear_curve_lines(sy, c_mod, p_big)
    if not perfect:
        out += ["*CYCLIC HARDENING"] + _isotropic_lines(hardening, p_big)
    return out


def _linear_curve_lines(sy, h, p_big: float) -> list[str]:
    """``stress, plastic strain[, T]`` lines of the curve ``sy(T) + h(T) p`` (two points per temperature,
    exact while p <= ``p_big``)."""
    if sy.is_constant and h.is_constant:
        s0, hh = sy.values[0], h.values[0]
        return [f"{_g(s0)}, 0.0", f"{_g(s0 + hh * p_big)}, {_g(p_big)}"]
    out = []
    for temp in np.unique(np.concatenate([t.temperatures for t in (sy, h) if not t.is_constant])):
        s0, hh = float(sy(temp)), float(h(temp))
        out += [f"{_g(s0)}, 0.0, {_g(temp)}", f"{_g(s0 + hh * p_big)}, {_g(p_big)}, {_g(temp)}"]
    return out


def _isotropic_lines(hardening, p_big: float) -> list[str]:
    """Data lines of an isotropic hardening curve (``*PLASTIC`` or ``*CYCLIC HARDENING``)."""
    from ..materials import LinearHardening, TabulatedHardening

    if isinstance(hardening, TabulatedHardening):
        if max(len(e) for e in hardening.plastic_strain) > 200 or len(
                np.unique(np.concatenate(hardening.plastic_strain))) > 200:
            raise CalculixError(
                "write_static_deck: a *PLASTIC curve with more than 200 distinct plastic strains is "
                "resampled by CalculiX; use at most 200 points"
            )
        return hardening.calculix_lines()
    if isinstance(hardening, LinearHardening):
        return _linear_curve_lines(hardening.yield_stress, hardening.modulus, p_big)
    raise CalculixError(
        f"write_static_deck: {type(hardening).__name__} is not supported by *PLASTIC; tabulate it as a "
        "TabulatedHardening (piecewise-linear, as CalculiX interpolates) or use LinearHardening"
    )


def _amplitude_lines(name: str, times: np.ndarray, values: np.ndarray) -> list[str]:
    pairs = [f"{_g(t)}, {_g(v)}" for t, v in zip(times, values)]
    return [f"*AMPLITUDE, NAME={name}, TIME=TOTAL TIME"] + [
        ", ".join(pairs[i : i + 4]) for i in range(0, len(pairs), 4)
    ]


def write_static_deck(
    path: str | os.PathLike,
    mesh: Mesh,
    law,
    loading,
    *,
    increments: int | None = None,
    outputs: tuple[str, ...] = ("U", "S", "E", "PEEQ"),
    field_tolerances: tuple[float, float] | None = (1e-7, 1e-5),
    p_big: float = 10.0,
    nlgeom: bool | None = None,
) -> np.ndarray:
    """Write a complete ccx 2.20 deck for a quasi-static small-strain problem given by our objects.

    ``law`` (one :class:`~structrom.rom.materials.ConstitutiveLaw` on every element) and ``loading``
    (:class:`structrom.rom.loading.Loading`) are translated as follows:

    * mesh: :func:`write_mesh_inp` (sets ``Nall``/``Eall``); ``*SOLID SECTION, ELSET=Eall``;
    * :class:`~structrom.rom.materials.LinearElastic`: ``*ELASTIC`` (``E, nu[, T]`` on the union of the tables'
      temperatures: exact, since both interpolate linearly and extrapolate constantly), ``*EXPANSION,
      ZERO=reference_temperature`` (secant coefficient, as ours) when the expansion is not 0, ``*DENSITY``
      when the density is > 0;
    * :class:`~structrom.rom.materials.J2Plasticity` adds ``*PLASTIC`` (isotropic hardening):
      :class:`~structrom.rom.materials.TabulatedHardening` via its ``calculix_lines()`` (same semantics);
      :class:`~structrom.rom.materials.LinearHardening` as the two points ``(sigma_y, 0)`` and
      ``(sigma_y + H p_big, p_big)`` per temperature (exact while p <= ``p_big``; ccx is perfectly plastic
      beyond). Not supported (:class:`CalculixError`): ``VoceHardening`` (tabulate it),
      ``NortonViscoplasticity`` (ccx's ``*CREEP`` is another law);
    * Prager kinematic hardening (``law.kinematic``, C(T)): ``*PLASTIC, HARDENING=KINEMATIC`` with the curve
      ``(sigma_y, 0), (sigma_y + C p_big, p_big)`` per temperature when the isotropic part is perfectly plastic
      (LinearHardening with modulus 0), otherwise ``*PLASTIC, HARDENING=COMBINED`` with ``(0, 0),
      (C p_big, p_big)`` and the isotropic curve under ``*CYCLIC HARDENING``; Armstrong-Frederick (gamma > 0)
      is not supported (ccx 2.20 has linear kinematic hardening only);
    * ``ImposedDisplacement`` -> ``*BOUNDARY`` (zero values fixed; other values with an ``*AMPLITUDE``);
      where several entries constrain the same dof the last one wins, as in our solver;
    * forces on node sets -> ``*CLOAD`` ``set, dof, 1.`` per non-zero component with that component's
      amplitude (ccx applies it at each node, as we do); tractions are refused (:class:`CalculixError`);
    * pressures -> ``*DLOAD`` ``element, P<face>, 1.`` lines with the pressure's amplitude; centrifugal ->
      ``Eall, CENTRIF, 1., point, axis`` with the amplitude ``omega(t)^2``; gravity -> ``Eall, GRAV`` with a
      constant amplitude (our solver applies gravity in full from the first increment);
    * temperature (written unless it is 0 at every node and time and the expansion is 0):
      ``*INITIAL CONDITIONS, TYPE=TEMPERATURE`` with the nodal values at ``times[0]`` and a ``*TEMPERATURE``
      card with the nodal values at the end of every step.

    Time: ccx's total time is ``t - times[0]``. Every loading increment is one ``*STEP`` (``*STATIC, DIRECT``,
    ``increments`` fixed ccx increments per step, default 1) so ccx ends increments exactly at our times;
    all amplitudes are tables in ``TIME=TOTAL TIME`` sampled at the loading times (every load and
    non-zero displacement has one, so nothing is ramped from zero at a step start). Loads are given only in
    the first step (ccx keeps them, ``OP=MOD``). ``*STEP`` has no ``NLGEOM`` (but see ``nlgeom``): ccx's default for
    ``*STATIC`` is geometrically linear (``*PLASTIC`` makes the step materially nonlinear,
    ``iperturb(1) = 3``, without switching NLGEOM on). With ``field_tolerances = (R_n, C_n)`` a nonlinear
    problem gets ``*CONTROLS, PARAMETERS=FIELD`` with these residual / correction ratios (ccx's defaults
    0.005 / 0.01 stop Newton early enough to be visible at the 1e-4 level).

    ``nlgeom``: write ``*STEP, NLGEOM``; default (None): only for kinematic hardening, because ccx 2.20's
    geometrically linear path uses the back stress of the previous increment with the wrong sign (a
    monotonic uniaxial test then depends on the increment count and softens), while its finite-strain path
    (Simo 1988, ``incplas.f``) is right and tends to our small-strain law as the strains go to zero: compare
    at strains of ~1e-6 (relative differences of that order).

    Facts about ccx 2.20 to keep in mind when comparing:

    * ccx's thermal strain is relative to the *initial* temperature, ``alpha(T) (T - ZERO) -
      alpha(T_0) (T_0 - ZERO)``, ours to ``reference_temperature`` only; they agree only when the thermal
      strain at ``times[0]`` is zero, so this writer raises otherwise;
    * ccx evaluates the temperature at integration points (for E(T), alpha(T), the yield curve and the
      thermal strain) with the element's shape functions, EXCEPT for ``C3D8``, which uses the mean of its 8
      nodal values at every point, and ``C3D20`` (full integration), which uses the trilinear function
      through the quadratic field's values at the 2x2x2 Gauss points (``lintemp.f``); C3D4, C3D10,
      C3D20R and the wedges C3D6, C3D15 interpolate as we do (``e_c3d.f``).

    Outputs: ``*NODE PRINT``/``*NODE FILE`` for the node quantities in ``outputs`` (``U``, ``RF``) on
    ``Nall`` and ``*EL PRINT``/``*EL FILE`` for the element ones (``S``, ``E``, ``PEEQ``, ``ENER``) on
    ``Eall`` (``PEEQ`` is dropped for elastic laws), in every step. Returns the ccx total times at the
    ends of the loading increments, ``times[1:] - times[0]`` (the keys of :func:`read_dat` for them).
    """
    from ..materials import J2Plasticity, LinearElastic

    path = Path(path)
    times = np.asarray(loading.times, dtype=float)
    ccx_times = times - times[0]
    n_inc = 1 if increments is None else int(increments)
    if n_inc < 1:
        raise CalculixError(f"write_static_deck: increments must be >= 1, got {increments!r}")
    nonlinear = isinstance(law, J2Plasticity)
    if nlgeom is None:
        nlgeom = getattr(law, "kinematic", None) is not None
    lines = _material_cards(law, "MAT", p_big)
    elastic = law.elastic if isinstance(law, J2Plasticity) else law
    if not isinstance(elastic, LinearElastic):  # pragma: no cover - _material_cards raised already
        raise CalculixError("unsupported law")

    # Temperatures at every loading time.
    temps = np.array([loading.nodal_temperature(float(t), mesh.points) for t in times])
    has_expansion = not (elastic.expansion.is_constant and elastic.expansion.values[0] == 0.0)
    thermal = bool(np.any(temps != 0.0)) or has_expansion
    if has_expansion:
        eps0 = elastic.expansion(temps[0]) * (temps[0] - elastic.reference_temperature)
        if np.any(np.abs(eps0) > 1e-14):
            raise CalculixError(
                "write_static_deck: the thermal strain at times[0] is not zero (initial temperature differs "
                "from reference_temperature where the expansion is non-zero); ccx measures thermal strain "
                "from the initial temperature, our solver from reference_temperature: start the loading at "
                "the reference temperature"
            )
    lines.append("*SOLID SECTION, ELSET=Eall, MATERIAL=MAT")

    # Amplitudes (all in total time, sampled at the loading times).
    amps: list[str] = []

    def amplitude(values: np.ndarray) -> str:
        name = f"A{len(amps) + 1}"
        amps.append(name)
        lines.extend(_amplitude_lines(name, ccx_times, values))
        return name

    # Boundary conditions: last definition of a dof wins.
    owner: dict[tuple[int, int], int] = {}
    for i, d in enumerate(loading.displacements):
        comps = tuple(int(c) for c in d.components)
        if any(c not in (0, 1, 2) for c in comps):
            raise CalculixError(f"write_static_deck: displacement components must be 0, 1, 2, got {comps}")
        for n in mesh.node_set(d.node_set).tolist():
            for c in comps:
                owner[(n, c)] = i
    step_cards: list[str] = []
    for i, d in enumerate(loading.displacements):
        nodes = mesh.node_set(d.node_set)
        amp_vals = np.array([float(d.amplitude(t)) for t in times])
        moving = d.value != 0.0 and np.any(amp_vals != 0.0)
        head = f"*BOUNDARY, AMPLITUDE={amplitude(amp_vals)}" if moving else "*BOUNDARY"
        body = []
        for c in sorted(set(int(c) for c in d.components)):
            mine = np.array([owner[(n, c)] == i for n in nodes.tolist()], dtype=bool)
            value = f", {_g(d.value)}" if moving else ""
            if mine.all():
                body.append(f"{d.node_set}, {c + 1}, {c + 1}{value}")
            else:
                body += [f"{n + 1}, {c + 1}, {c + 1}{value}" for n in nodes[mine].tolist()]
        if body:
            step_cards += [head] + body

    # Distributed loads.
    for name, amp in loading.pressures.items():
        faces = mesh.surface_set(name)
        a = amplitude(np.array([float(amp(t)) for t in times]))
        step_cards.append(f"*DLOAD, AMPLITUDE={a}")
        step_cards += [f"{e + 1}, P{f + 1}, 1." for e, f in faces.tolist()]
    if loading.tractions:
        raise CalculixError(f"write_static_deck: tractions {sorted(loading.tractions)} are not written (ccx 2.20 has "
                            "no uniform surface traction card without a user subroutine); use nodal forces")
    for name, vec in loading.forces.items():  # *CLOAD on a node set: the value at each node, as ours
        mesh.node_set(name)
        for c, comp in enumerate(vec.components):
            values = np.array([float(comp(t)) for t in times])
            if np.any(values != 0.0):
                step_cards += [f"*CLOAD, AMPLITUDE={amplitude(values)}", f"{name}, {c + 1}, 1."]
    if loading.centrifugal is not None:
        c = loading.centrifugal
        a = amplitude(np.array([float(c.omega(t)) ** 2 for t in times]))
        d = np.asarray(c.axis_direction, float)
        if not np.linalg.norm(d) > 0:
            raise CalculixError("write_static_deck: centrifugal axis_direction must be non-zero")
        d = d / np.linalg.norm(d)
        pt = np.asarray(c.axis_point, float)
        step_cards += [f"*DLOAD, AMPLITUDE={a}",
                       "Eall, CENTRIF, 1., " + ", ".join(_g(x) for x in [*pt, *d])]
    if loading.gravity is not None:
        g = np.asarray(loading.gravity, float)
        gn = float(np.linalg.norm(g))
        if gn > 0:
            a = amplitude(np.ones(len(times)))
            step_cards += [f"*DLOAD, AMPLITUDE={a}",
                           "Eall, GRAV, " + ", ".join(_g(x) for x in [gn, *(g / gn)])]

    # Output requests.
    outputs = tuple(o.upper() for o in outputs)
    unknown = [o for o in outputs if o not in ("U", "RF", "S", "E", "PEEQ", "ENER")]
    if unknown:
        raise CalculixError(
            f"write_static_deck: outputs {unknown} not supported (use U, RF, S, E, PEEQ, ENER)"
        )
    node_out = [o for o in outputs if o in ("U", "RF")]
    el_out = [o for o in outputs if o in ("S", "E", "PEEQ", "ENER") and (nonlinear or o != "PEEQ")]
    out_cards = []
    if node_out:
        out_cards += ["*NODE PRINT, NSET=Nall", ", ".join(node_out), "*NODE FILE", ", ".join(node_out)]
    if el_out:
        out_cards += ["*EL PRINT, ELSET=Eall", ", ".join(el_out), "*EL FILE", ", ".join(el_out)]

    if thermal:
        lines.append("*INITIAL CONDITIONS, TYPE=TEMPERATURE")
        lines += [f"{n + 1}, {_g(v)}" for n, v in enumerate(temps[0])]
    for k in range(1, len(times)):
        dt = float(times[k] - times[k - 1])
        lines.append("*STEP, INC=%d" % max(100, 2 * n_inc) + (", NLGEOM" if nlgeom else ""))
        lines += ["*STATIC, DIRECT", f"{_g(dt / n_inc)}, {_g(dt)}"]
        if nonlinear and field_tolerances is not None:
            r_n, c_n = field_tolerances
            lines += ["*CONTROLS, PARAMETERS=FIELD", f"{_g(r_n)}, {_g(c_n)}"]
        if k == 1:
            lines += step_cards
        if thermal:
            lines.append("*TEMPERATURE")
            lines += [f"{n + 1}, {_g(v)}" for n, v in enumerate(temps[k])]
        lines += out_cards
        lines.append("*END STEP")

    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        write_mesh_inp(f, mesh)
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return ccx_times[1:]

