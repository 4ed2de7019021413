"""The content of a reduced model file in memory (:class:`ReducedModelData`), its format identifiers and its error.

Format ``structrom-reduced-model`` (the layout, path by path, is in :mod:`structrom.rom.model_file`). Shapes:
``N`` displacement modes, ``n_rp`` reduced integration points, ``n_tn`` temperature nodes, ``m_q`` modes of
dual quantity ``q``, ``c`` components per point of a dual quantity (1 or 6), ``n_points`` integration points
of the full mesh, ``n_dofs = 3 n_nodes``. Full-size arrays (modes, full dual bases) may be lazy h5py
datasets. Written by :mod:`structrom.rom.model_writer`, read and checked by :mod:`structrom.rom.model_reader`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from structrom.mpi.errors import StructromError

FORMAT = "structrom-reduced-model"
SCHEMA_VERSION = 2
#: The version of files with a ``/lifting`` (prescribed displacements, :mod:`structrom.rom.lifting`): code that
#: reads version 2 only refuses them instead of solving without the prescribed motion.
LIFTING_SCHEMA_VERSION = 3
#: Versions :func:`load` reads (version 1: no validation set, no calibration; version 3: a lifting).
READABLE_VERSIONS = (1, 2, 3)
#: Values of the root attribute ``kind`` (absent: ``"hyper_reduced"``, files written before kinds existed).
KINDS = ("hyper_reduced", "separated")


class ModelFileError(StructromError, ValueError):
    """A reduced model file is missing, foreign, truncated or inconsistent."""


@dataclass
class DualBasis:
    """Gappy-POD basis of a dual quantity with ``components`` values per point (1 or 6)."""

    components: int
    reduced_basis: np.ndarray  # (n_rp * c, m)
    singular_values: np.ndarray  # (m,)
    basis: Any = None  # (n_points * c, m) array or lazily-read h5py dataset; None if not loaded


@dataclass
class ReducedModelData:
    """Everything in a reduced model file (full-size arrays may be lazy h5py datasets)."""

    units: dict
    materials: list[dict]
    loading_schema: dict
    dirichlet: list[dict]
    provenance: dict
    singular_values: np.ndarray
    element: np.ndarray
    point: np.ndarray
    weights: np.ndarray
    coordinates: np.ndarray
    material: np.ndarray
    integrator: np.ndarray
    temperature_nodes: np.ndarray
    temperature_coordinates: np.ndarray
    temperature_interpolation: sp.csr_matrix
    pressure: dict[str, np.ndarray]
    centrifugal: np.ndarray | None = None
    centrifugal_axis: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    gravity: np.ndarray | None = None
    traction: dict[str, np.ndarray] = field(default_factory=dict)  # surface -> (N, 3)
    force: dict[str, np.ndarray] = field(default_factory=dict)  # node set -> (N, 3)
    duals: dict[str, DualBasis] = field(default_factory=dict)
    indicator_quantity: str = "cumulated_plastic_strain"
    indicator_tolerance: float = 1e-2
    #: Largest norm of the indicator quantity at the reduced points over the training snapshots (0: none).
    indicator_reference: float = 0.0
    #: Version history (see the layout in :mod:`structrom.rom.model_file`); ``[]`` for a model never enriched
    #: (version 1).
    versions: list[dict] = field(default_factory=list)
    modes: Any = None  # (n_dofs, N): array or h5py dataset
    mesh: Any = None  # structrom.rom.fem.mesh.Mesh when loaded with mesh=True
    #: structrom.rom.online.indicator.ValidationSet (points kept out of the reduced set) or None
    validation: Any = None
    #: structrom.rom.online.indicator.Calibration of the error indicator, or None (uncalibrated)
    calibration: Any = None
    #: structrom.rom.lifting.Lifting of the prescribed displacements, or None (homogeneous Dirichlet only)
    lifting: Any = None

    @property
    def n_modes(self) -> int:
        return self.integrator.shape[2]

    @property
    def n_reduced_points(self) -> int:
        return len(self.weights)

    @property
    def version(self) -> int:
        """The model's version number (1 for a model never enriched)."""
        return int(self.versions[-1]["version"]) if self.versions else 1
