"""Constitutive laws evaluated in vectorized batches of integration points.

Conventions: :mod:`structrom.rom.voigt`. Public API:

* :class:`Table` - temperature tables; :class:`MaterialError` - the error type;
* :class:`ConstitutiveLaw`, :class:`MaterialResponse` - the interface used by the solvers;
* laws :class:`LinearElastic`, :class:`J2Plasticity`, :class:`NortonViscoplasticity`;
* hardening :class:`LinearHardening`, :class:`TabulatedHardening`, :class:`VoceHardening`;
  kinematic hardening :class:`KinematicHardening` (Prager, Armstrong-Frederick);
* :func:`law_from_config` / ``law.to_config()``; material-point drivers in :mod:`.driver`.
"""
from .base import ConstitutiveLaw, MaterialResponse
from .driver import DriverResult, mixed_control, simple_shear, uniaxial_stress, uniaxial_stress_control
from .elastic import LinearElastic
from .errors import MaterialError
from .hardening import (Hardening, LinearHardening, TabulatedHardening, VoceHardening,
                        hardening_from_config)
from .kinematic import KinematicHardening, kinematic_from_config
from .plasticity import J2Plasticity, RadialReturnLaw
from .registry import LAW_TYPES, law_from_config
from .tables import Table
from .viscoplasticity import NortonViscoplasticity

__all__ = [
    "ConstitutiveLaw", "MaterialResponse", "MaterialError", "Table",
    "LinearElastic", "J2Plasticity", "NortonViscoplasticity", "RadialReturnLaw",
    "Hardening", "LinearHardening", "TabulatedHardening", "VoceHardening", "hardening_from_config",
    "KinematicHardening", "kinematic_from_config",
    "law_from_config", "LAW_TYPES",
    "DriverResult", "mixed_control", "uniaxial_stress", "uniaxial_stress_control", "simple_shear",
]
