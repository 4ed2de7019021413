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

The reader runs in a process of its own (:mod:`.ansys_records`): a file damaged in a stress, strain or temperature
record is refused naming the file, the set and the record.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from .ansys import AnsysError, AnsysResult, check_magnitudes, read_ansys_result
from .ansys_records import NODAL_QUANTITIES, field_records

__all__ = ["AnsysFields", "read_ansys_fields", "NODAL_QUANTITIES"]


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
    path = Path(path)
    base = read_ansys_result(path, records=partial(field_records, quantities=tuple(quantities),
                                                   element_results=element_results))
    read = base.records
    base.records = None
    out = AnsysFields(base)
    for name in quantities:
        ncol = NODAL_QUANTITIES[name][1]
        sets = read.nodal[name]
        if sets is None or (name == "temperature" and "EPT" not in read.available
                            and "temperature" not in read.available.lower()):
            continue
        data = []
        for k, (nnum, values) in enumerate(sets):
            check_magnitudes(values, f"{path}: result set {k + 1}: {name}", nnum)
            data.append(_align(nnum, values, base.node_ids))
        arr = np.array(data)
        out.nodal[name] = arr[..., 0] if ncol == 1 else arr
    if read.element_stress is not None:
        stacks, corners = [], None
        for k, (enum, stack, enode) in enumerate(read.element_stress):
            check_magnitudes(stack, f"{path}: result set {k + 1}: element nodal stresses", enum)
            order = np.argsort(enum, kind="stable")
            pos = order[np.minimum(np.searchsorted(enum[order], base.element_ids), len(enum) - 1)]
            if not np.array_equal(enum[pos], base.element_ids):
                missing = base.element_ids[enum[pos] != base.element_ids][:5].tolist()
                raise AnsysError(f"{path}: result set {k + 1}: no element stresses for elements {missing}")
            stacks.append(stack[pos])
            corners = enode[pos]
        out.element_stress, out.element_corner_ids = np.array(stacks), corners
    return out
