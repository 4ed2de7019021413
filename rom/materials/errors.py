"""The single exception type of the constitutive-law package."""
from __future__ import annotations
from structrom.mpi.errors import StructromError


class MaterialError(StructromError, ValueError):
    """Invalid material data or input to a constitutive law.

    Messages name the offending parameter and say how to fix it.
    """
