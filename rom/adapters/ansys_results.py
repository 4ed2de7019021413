"""Stresses, strains and temperatures of an Ansys result file (``.rst``) on our mesh.

Through ``ansys-mapdl-reader`` (a core dependency), on the mesh and numbering of
:func:`structrom.rom.adapters.ansys.read_ansys_result`:

* nodal (averaged) results per result set: ``stress`` (``SX SY SZ SXY SYZ SXZ`` = our Voigt order
  ``xx yy zz xy yz zx``), ``elastic_strain`` and ``plastic_strain`` (Ansys strains have engineering
  shears, as ours; the equivalent-strain column is dropped), ``temperature`` (``BFE``/nodal temperature);
* element nodal results (``element_stress``): the unaveraged values of every element at its corner
  nodes, ``(n_elements, n_corners, 6)`` per set, elements in our order;
* a quantity absent from the file (e.g. plastic strains of an elastic run) raises :class:`AnsysError`
  naming it and the ``OUTRES`` item that writes it; the ``.rst`` holds no integration-point values.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ansys import AnsysError, AnsysResult, _reader, check_magnitudes, read_ansys_result

__all__ = ["AnsysFields", "read_ansys_fields", "NODAL_QUANTITIES"]

#: our name -> (reader method, number of columns kept, OUTRES item that writes it).
NODAL_QUANTITIES = {
    "stress": ("nodal_stress", 6, "S"),
    "elastic_strain": ("nodal_elastic_strain", 6, "EPEL"),
    "plastic_strain": ("nodal_plastic_strain", 6, "EPPL"),
    "temperature": ("nodal_temperature", 1, "BFEM (nodal temperatures)"),
}


@dataclass
class AnsysFields:
    """Displacements (``result``) and the quantities of :data:`NODAL_QUANTITIES` present in the file:
    ``nodal[name]`` ``(n_sets, n_nodes, k)`` (``(n_sets, n_nodes)`` for temperature, NaN at nodes without
    a value), ``element_stress`` ``(n_sets, n_elements, n_corners, 6)`` (None for mixed element types)
    with ``element_corner_ids`` ``(n_elements, n_corners)`` Ansys node numbers."""

    result: AnsysResult
    nodal: dict[str, np.ndarray] = field(default_factory=dict)
    element_stress: np.ndarray | None = None
    element_corner_ids: np.ndarray | None = None

    def __getattr__(self, name: str):
        if name in NODAL_QUANTITIES:
            nodal = self.__dict__.get("nodal", {})
            if name not in nodal:
                raise AnsysError(f"{self.result.path}: no {name} in this result file; Ansys writes it with "
                                 f"OUTRES,{NODAL_QUANTITIES[name][2]}")
            return nodal[name]
        raise AttributeError(name)


def _align(nnum: np.ndarray, values: np.ndarray, node_ids: np.ndarray) -> np.ndarray:
    out = np.full((len(node_ids),) + values.shape[1:], np.nan)
    order = np.argsort(nnum)
    pos = np.minimum(np.searchsorted(nnum[order], node_ids), len(nnum) - 1)
    hit = nnum[order][pos] == node_ids
    out[hit] = values[order[pos[hit]]]
    return out


def read_ansys_fields(path: str | os.PathLike, quantities: tuple[str, ...] = tuple(NODAL_QUANTITIES),
                      element_results: bool = True) -> AnsysFields:
    """Mesh, displacements and the requested nodal ``quantities`` (those the file has) of every result set,
    plus the element nodal stresses. Raises :class:`AnsysError` naming the file and the set on read errors."""
    unknown = sorted(set(quantities) - set(NODAL_QUANTITIES))
    if unknown:
        raise AnsysError(f"unknown Ansys quantities {unknown}; use {sorted(NODAL_QUANTITIES)}")
    base = read_ansys_result(path)
    reader = _reader()
    path = Path(path)
    res = reader.read_binary(str(path))
    available = str(getattr(res, "available_results", ""))
    out = AnsysFields(base)
    n_sets = len(base.times)
    for name in quantities:
        method, ncol, _ = NODAL_QUANTITIES[name]
        data = []
        for k in range(n_sets):
            try:
                nnum, values = getattr(res, method)(k)
            except ValueError as exc:
                if "not available" in str(exc):
                    data = None
                    break
                raise AnsysError(f"{path}: result set {k + 1}: cannot read {name} ({exc})") from exc
            except Exception as exc:
                raise AnsysError(f"{path}: result set {k + 1}: cannot read {name} "
                                 f"({type(exc).__name__}: {exc})") from exc
            values = np.asarray(values, dtype=float)
            values = values.reshape(len(values), -1)[:, :ncol]
            check_magnitudes(values, f"{path}: result set {k + 1}: {name}", np.asarray(nnum, np.int64))
            data.append(_align(np.asarray(nnum, np.int64), values, base.node_ids))
        if data is not None and (name != "temperature" or "EPT" in available or "temperature" in available.lower()):
            arr = np.array(data)
            out.nodal[name] = arr[..., 0] if ncol == 1 else arr
    if element_results:
        corners, sets = None, []
        for k in range(n_sets):
            try:
                enum, values, enode = res.element_stress(k)
            except Exception as exc:
                raise AnsysError(f"{path}: result set {k + 1}: cannot read element stresses "
                                 f"({type(exc).__name__}: {exc})") from exc
            enum = np.asarray(enum, np.int64)
            sizes = {np.asarray(v).shape for v in values}
            if len(sizes) != 1:
                break  # mixed element types: per-element arrays differ in size
            stack = np.array([np.asarray(v, float)[:, :6] for v in values])
            check_magnitudes(stack, f"{path}: result set {k + 1}: element nodal stresses", enum)
            pos = np.searchsorted(enum, base.element_ids) if np.all(np.diff(enum) > 0) else \
                np.array([int(np.flatnonzero(enum == e)[0]) for e in base.element_ids])
            sets.append(stack[pos])
            corners = np.array([np.asarray(enode[i], np.int64) for i in pos])
        if len(sets) == n_sets:
            out.element_stress, out.element_corner_ids = np.array(sets), corners
    return out
