"""The units table of a model: the solver never converts, it only checks consistency.

A configuration declares ``[units]`` (length, force, stress, mass, time, temperature). The numbers in
the model must be in those units, and the units must form a coherent system: stress = force/length^2
and force = mass * length / time^2 (e.g. m-N-Pa-kg-s or mm-N-MPa-t-s).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, model_validator

LENGTH = {"m": 1.0, "cm": 1e-2, "mm": 1e-3, "um": 1e-6, "in": 0.0254, "ft": 0.3048}
FORCE = {"N": 1.0, "kN": 1e3, "MN": 1e6, "mN": 1e-3, "lbf": 4.4482216152605}
STRESS = {"Pa": 1.0, "kPa": 1e3, "MPa": 1e6, "GPa": 1e9, "psi": 6894.757293168, "ksi": 6894757.293168}
MASS = {"kg": 1.0, "g": 1e-3, "t": 1e3, "lbm": 0.45359237, "slinch": 175.126835}
TIME = {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0}
TEMPERATURE = ("K", "degC", "degF")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b))


class Units(BaseModel):
    """A coherent units system; ``Units()`` is SI (m, N, Pa, kg, s, K)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    length: str = "m"
    force: str = "N"
    stress: str = "Pa"
    mass: str = "kg"
    time: str = "s"
    temperature: str = "K"

    @model_validator(mode="after")
    def _coherent(self) -> "Units":
        for name, table in (("length", LENGTH), ("force", FORCE), ("stress", STRESS), ("mass", MASS),
                            ("time", TIME)):
            value = getattr(self, name)
            if value not in table:
                raise ValueError(f"units.{name} {value!r} is unknown; use one of {', '.join(table)}")
        if self.temperature not in TEMPERATURE:
            raise ValueError(f"units.temperature {self.temperature!r} is unknown; use one of {', '.join(TEMPERATURE)}")
        length, force = LENGTH[self.length], FORCE[self.force]
        stress, mass, time = STRESS[self.stress], MASS[self.mass], TIME[self.time]
        if not _close(stress, force / length**2):
            want = [k for k, v in STRESS.items() if _close(v, force / length**2)]
            hint = f"use stress = {want[0]!r}" if want else "choose force and length whose ratio is a stress unit"
            raise ValueError(
                f"units.stress {self.stress!r} is inconsistent with force {self.force!r} per length "
                f"{self.length!r} squared: {hint}"
            )
        if not _close(force, mass * length / time**2):
            want = [k for k, v in MASS.items() if _close(v, force * time**2 / length)]
            hint = f"use mass = {want[0]!r}" if want else "choose a coherent mass unit"
            raise ValueError(
                f"units.mass {self.mass!r} is inconsistent with force {self.force!r} = mass x "
                f"{self.length!r} / {self.time!r}^2: {hint}"
            )
        return self
