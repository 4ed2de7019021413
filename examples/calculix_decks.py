"""User-style CalculiX decks of ``examples/calculix_import.py --imposed``: a cyclic J2 cantilever driven by an
imposed end deflection (a nonzero ``*BOUNDARY`` on the free end's node set with an ``*AMPLITUDE``).

A loading is ``(D, R, I)``: deflection amplitude ``D`` [mm] of the free end (z), load ratio ``R`` (the
deflection goes 0 -> D -> R D -> D -> R D -> D -> 0, one ``*STATIC`` step per branch: two and a half cycles),
hot-spot intensity ``I`` [K] (a Gaussian hot spot near the clamp, nodal ``*TEMPERATURE`` in the first step,
kept in the others).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

CENTER = np.array([2.0, 1.0, 2.0])
RADIUS = 2.0
#: branch ends of the deflection history, in units of D (R stands for the load ratio); one step each
BRANCHES = (1.0, "R", 1.0, "R", 1.0, 0.0)
#: (D [mm], R [-], I [K]): the 8 corners, the 6 face centres and the centre of the box
IMPOSED_TRAINING = [(d, r, i) for d in (0.10, 0.14) for r in (-1.0, -0.4) for i in (300.0, 450.0)] + [
    (0.10, -0.7, 375.0), (0.14, -0.7, 375.0), (0.12, -1.0, 375.0), (0.12, -0.4, 375.0), (0.12, -0.7, 300.0),
    (0.12, -0.7, 450.0), (0.12, -0.7, 375.0)]
IMPOSED_TESTS = [(0.11, -0.8, 340.0), (0.13, -0.5, 410.0), (0.125, -0.9, 360.0), (0.105, -0.6, 430.0),
                 (0.135, -0.75, 320.0)]

#: the material of every J2 variant of the example: tabulated E(T), isotropic *PLASTIC curves at 20 and 500 C
#: (ccx 2.20's HARDENING=KINEMATIC/COMBINED are not imported: its geometrically linear kinematic path is
#: defective and NLGEOM steps are refused, see docs/rom_accuracy.md)
MATERIAL = """*MATERIAL, NAME=STEEL
*ELASTIC
200000., 0.3, 20.
150000., 0.3, 500.
*EXPANSION, ZERO=20.
1.2E-5
*PLASTIC
300., 0.0, 20.
500., 0.1, 20.
150., 0.0, 500.
350., 0.1, 500.
*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL
"""


def hot_spot(mesh, intensity: float) -> np.ndarray:
    """Nodal temperatures ``(n_nodes,)`` [C] of the Gaussian hot spot of intensity ``intensity`` [K]."""
    d = mesh.points - CENTER
    return 20.0 + intensity * np.exp(-(d * d).sum(1) / (2 * RADIUS**2))


def write_imposed_deck(path: Path, mesh, deflection: float, ratio: float, intensity: float,
                       increments: int = 8) -> None:
    """The cyclic deck of the loading ``(deflection, ratio, intensity)`` (module docstring): clamp on XMIN,
    ``*BOUNDARY, AMPLITUDE=CYCLE`` on XMAX (z), ``increments`` increments per branch; ``*NODE PRINT`` of the
    reaction total on XMAX and ``*EL PRINT`` of the integration-point stress and PEEQ in every step."""
    ends = [ratio if b == "R" else b for b in BRANCHES]
    amp = [f"{t:g}., {v!r}" for t, v in zip(range(len(ends) + 1), [0.0, *ends])]
    lines = ["*HEADING", f"Cyclic cantilever: end deflection D={deflection:g} mm, ratio R={ratio:g}, "
             f"hot spot I={intensity:g} K", "*INCLUDE, INPUT=mesh.inp", MATERIAL.rstrip(),
             "*INITIAL CONDITIONS, TYPE=TEMPERATURE", "NALL, 20.", "*BOUNDARY", "XMIN, 1, 3",
             "*AMPLITUDE, NAME=CYCLE, TIME=TOTAL TIME", *(", ".join(amp[i:i + 4]) for i in range(0, len(amp), 4))]
    out = ["*NODE FILE", "U, NT", "*EL FILE", "S, E, PEEQ", "*NODE PRINT, NSET=XMAX, TOTALS=ONLY", "RF",
           "*EL PRINT, ELSET=EALL", "S, E, PEEQ"]
    for k in range(len(ends)):
        lines += [f"** branch {k + 1}: the end deflection to {ends[k]:g} D", "*STEP, INC=1000", "*STATIC",
                  f"{1.0 / increments!r}, 1., 1e-5, {1.0 / increments!r}",
                  "*BOUNDARY, AMPLITUDE=CYCLE", f"XMAX, 3, 3, {deflection!r}"]
        if k == 0:
            lines += ["*TEMPERATURE"] + [f"{i + 1}, {t:.6f}" for i, t in enumerate(hot_spot(mesh, intensity))]
        lines += out + ["*END STEP"]
    path.write_text("\n".join(lines) + "\n")
