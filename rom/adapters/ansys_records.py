"""What the Ansys import and field readers take from a result file (``.rst``) beside its mesh and displacements,
read in the reader's process and returned as plain arrays.

The functions here are the ``records`` argument of :func:`structrom.rom.adapters.ansys.read_ansys_result`: they run
in the process of ansys-mapdl-reader (it crashes natively on a damaged record) and announce each record before
reading it (:func:`~.reader_process.stage`), so a crash there is an :class:`~.ansys.AnsysError` naming the file,
the result set and the record. The caller aligns the arrays to its mesh; it never calls the reader.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ansys import AnsysError
from .reader_process import stage

__all__ = ["ANALYSIS_TYPES", "NODAL_QUANTITIES", "FieldRecords", "LoadRecords", "field_records", "load_records"]

#: Ansys analysis types (result header ``kan``)
ANALYSIS_TYPES = {0: "static", 1: "buckling", 2: "modal", 3: "harmonic", 4: "transient", 7: "substructure",
                  8: "spectrum"}

#: our name -> (reader method, number of columns kept, OUTRES item that writes it).
NODAL_QUANTITIES = {
    "stress": ("nodal_stress", 6, "S"),
    "elastic_strain": ("nodal_elastic_strain", 6, "EPEL"),
    "plastic_strain": ("nodal_plastic_strain", 6, "EPPL"),
    "temperature": ("nodal_temperature", 1, "BFEM (nodal temperatures)"),
}
_COMPONENT = {"UX": 0, "UY": 1, "UZ": 2, "FX": 0, "FY": 1, "FZ": 2}
_RECORD = {"D": ("nodal_boundary_conditions", "the constraint (D) records"),
           "F": ("nodal_input_force", "the force (F) records")}

#: Per result set: ``(node numbers (k,), component (k,) 0/1/2 for x/y/z or -1 for another dof, values (k,))``.
NodalRecords = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class LoadRecords:
    """The import's records of one result file: ``analysis`` (header ``kan``), ``load_steps`` (the largest load
    step number), ``materials`` ``{number: {property: value}}``, per result set the ``constraints`` (``D``) and
    ``forces`` (``F``) (:data:`NodalRecords`; None for a set without such records) and ``temperatures``
    ``(node numbers (k,), values (k,))`` (None: the file has no temperature records)."""

    analysis: int
    load_steps: int
    materials: dict
    constraints: list[NodalRecords | None] = field(default_factory=list)
    forces: list[NodalRecords | None] = field(default_factory=list)
    temperatures: list[tuple[np.ndarray, np.ndarray]] | None = None


@dataclass
class FieldRecords:
    """Per requested quantity of :data:`NODAL_QUANTITIES`, per result set ``(node numbers (k,), values (k, ncol))``
    (None: not in the file); ``element_stress`` per set ``(element numbers (m,), values (m, n_corners, 6), corner
    node numbers (m, n_corners))`` (None: not requested or mixed element types); ``available``: the reader's list
    of the file's results."""

    available: str
    nodal: dict[str, list[tuple[np.ndarray, np.ndarray]] | None] = field(default_factory=dict)
    element_stress: list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None


def _read(path: str, k: int, what: str, call):
    """``call()`` announced as ``what`` of set ``k``; the reader's exceptions become :class:`AnsysError` naming
    the file, the set and ``what``."""
    stage(f"result set {k + 1}: {what}")
    try:
        return call()
    except (AnsysError, IndexError, ValueError):
        raise
    except Exception as exc:  # the reader raises assorted types
        raise AnsysError(f"{path}: result set {k + 1}: cannot read {what} ({type(exc).__name__}: {exc}): the file is "
                         "damaged in that record; write it again") from None


def _absent(exc: ValueError) -> bool:
    return "not available" in str(exc) or "contains no" in str(exc)


def _nodal_records(res, path: str, k: int, kind: str) -> NodalRecords | None:
    method, what = _RECORD[kind]
    try:
        nnum, dof, values = _read(path, k, what, lambda: getattr(res, method)(k))
    except IndexError:  # (the reader's way of saying the set has no such records)
        return None
    except ValueError as exc:
        raise AnsysError(f"{path}: result set {k + 1}: cannot read {what} ({exc})") from None
    labels = list(_read(path, k, "the degrees of freedom (DOFS)", lambda: res.result_dof(k))) \
        if callable(getattr(res, "result_dof", None)) else ["UX", "UY", "UZ"]
    dof = np.asarray(dof, np.int64).reshape(-1)
    known = (dof >= 1) & (dof <= len(labels))
    rename = (lambda n: n.replace("F", "U")) if kind == "D" else (lambda n: n.replace("U", "F"))
    # (component of each dof label, then of each record by its dof number; the last entry: an unknown dof)
    of_label = np.array([_COMPONENT.get(rename(str(n)), -1) for n in labels] + [-1], np.int64)
    component = of_label[np.where(known, dof - 1, len(labels))]
    return np.asarray(nnum, np.int64).reshape(-1), component, np.asarray(values, float).reshape(-1)


def load_records(res, path: str) -> LoadRecords:
    """In the reader's process: the analysis type, materials, ``D``/``F`` records and temperatures of every set
    (:class:`LoadRecords`). Non-static and large-deflection runs are refused before their records are read."""
    stage("the result header")
    header = getattr(res, "_resultheader", {}) or {}
    kan, nlgeom = int(header.get("kan", 0)), int(header.get("nlgeom", 0))
    if kan != 0:
        raise AnsysError(f"{path}: a {ANALYSIS_TYPES.get(kan, f'type {kan}')} analysis (ANTYPE); only static "
                         "results (ANTYPE,STATIC) are training cases of the reduced model")
    if nlgeom:
        raise AnsysError(f"{path}: NLGEOM,ON (large deflection): the reduced model is geometrically linear")
    steps = np.asarray(header.get("ls_table", np.zeros((0, 3))))
    load_steps = int(steps.reshape(-1, 3)[:, 0].max()) if steps.size else 0
    stage("the materials (MPDATA)")
    materials = {int(m): {str(p): (float(v) if np.size(v) == 1 else np.asarray(v, float)) for p, v in props.items()}
                 for m, props in dict(getattr(res, "materials", None) or {}).items()}
    out = LoadRecords(kan, load_steps, materials)
    n_sets = int(getattr(res, "nsets", 0) or len(np.asarray(getattr(res, "time_values", []))))
    temperatures = []
    for k in range(n_sets):
        out.constraints.append(_nodal_records(res, path, k, "D"))
        out.forces.append(_nodal_records(res, path, k, "F"))
        if temperatures is not None:
            try:
                nnum, v = _read(path, k, "the nodal temperatures (EPT/BF records)", lambda: res.nodal_temperature(k))
                temperatures.append((np.asarray(nnum, np.int64), np.asarray(v, float).reshape(-1)))
            except ValueError as exc:
                if not _absent(exc):
                    raise AnsysError(f"{path}: result set {k + 1}: cannot read the nodal temperatures "
                                     f"({exc})") from None
                temperatures = None  # no temperature records: the reference temperature throughout
    out.temperatures = temperatures
    return out


def field_records(res, path: str, quantities: tuple[str, ...], element_results: bool) -> FieldRecords:
    """In the reader's process: the nodal ``quantities`` and (``element_results``) the element nodal stresses of
    every set (:class:`FieldRecords`)."""
    out = FieldRecords(str(getattr(res, "available_results", "")))
    n_sets = int(res.nsets)
    for name in quantities:
        method, ncol, _ = NODAL_QUANTITIES[name]
        data = []
        for k in range(n_sets):
            try:
                what = f"the nodal {name.replace('_', ' ')} records ({NODAL_QUANTITIES[name][2]})"
                nnum, values = _read(path, k, what, lambda: getattr(res, method)(k))
            except ValueError as exc:
                if _absent(exc):
                    data = None
                    break
                raise AnsysError(f"{path}: result set {k + 1}: cannot read {name} ({exc})") from None
            values = np.asarray(values, dtype=float)
            data.append((np.asarray(nnum, np.int64), values.reshape(len(values), -1)[:, :ncol]))
        out.nodal[name] = data
    if element_results:
        sets = []
        for k in range(n_sets):
            try:
                enum, values, enode = _read(path, k, "the element nodal stresses", lambda: res.element_stress(k))
            except ValueError as exc:
                raise AnsysError(f"{path}: result set {k + 1}: cannot read element stresses ({exc})") from None
            if len({np.asarray(v).shape for v in values}) != 1:
                break  # mixed element types: per-element arrays differ in size
            sets.append((np.asarray(enum, np.int64), np.array([np.asarray(v, float)[:, :6] for v in values]),
                         np.array([np.asarray(e, np.int64) for e in enode])))
        out.element_stress = sets if len(sets) == n_sets else None
    return out
