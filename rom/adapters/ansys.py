"""Ansys MAPDL result (``.rst``) and archive (``.cdb``) files through ``ansys-mapdl-reader``.

``ansys-mapdl-reader`` is a core dependency (it brings pyvista); if its import fails (a broken install),
the readers raise :class:`ImportError` naming the package and the pip command.

Numbering:

* nodes: our node ``i`` is the ``i``-th node of the reader's quadratic VTK grid (``quadgrid`` for results,
  ``grid`` for archives), whose ``ansys_node_num`` point array gives the Ansys node number (returned as
  ``node_ids``); nodes no supported element uses are dropped. Displacements are aligned by node number
  (the reader returns them sorted by number);
* elements: one block per element type in order of first appearance (as :func:`structrom.rom.fem.io.mesh_from_meshio`),
  Ansys element numbers in ``element_ids``; VTK orderings of ``tetra``/``tetra10``/``hexahedron``/
  ``hexahedron20`` are CalculiX's (SOLID185 -> C3D8, SOLID186 -> C3D20, SOLID187 -> C3D10, SOLID285 -> C3D4);
  meshing and surface-effect elements (MESH200, SURF154...) are skipped with an :class:`~.ansys_elements.AnsysWarning`;
  SOLID185 bricks degenerated into prisms (K = L, O = P) -> C3D6, renumbered into CalculiX's orientation
  (the reader hands them as VTK wedges of negative volume; :func:`structrom.rom.fem.elements.orient_wedges`);
  contact, shells, beams, 15-node prisms (degenerate SOLID186), pyramids... are refused: :class:`AnsysError` names the
  file, the ``ETYPE`` number and element name, the first Ansys element numbers and the fix
  (:mod:`.ansys_elements`);
* node and element components become node and element sets;
* integration points: the ``.rst`` stores element *nodal* results (extrapolated), not integration-point
  values, so no integration-point mapping is offered.

Every call into the reader runs in a process of its own (:func:`read_isolated`; the reader crashes natively on
damaged records): the mesh and displacements, and what a caller asks for beside them (``records``: a function of the
reader's result object run in that process, returning plain arrays), so that the caller never calls the reader.
"""
from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..fem.elements import orient_wedges
from ..fem.mesh import CellBlock, Mesh
from .ansys_elements import VTK_TO_ELEMENT, AnsysWarning, kept_cells
from .magnitudes import ABSURD, beyond
from structrom.mpi.errors import StructromError

#: Ansys binary files by the ``file format`` of their standard header.
_BINARY_FORMATS = {2: "an element matrix file (.emat)", 4: "an assembled matrix file (.full)",
                   12: "a result file (.rst/.rth)"}

__all__ = ["AnsysError", "AnsysResult", "AnsysWarning", "read_ansys_archive", "read_ansys_result", "VTK_TO_ELEMENT"]

#: Seconds a reader's process may take: this base plus :data:`READER_SECONDS_PER_MB` per megabyte of the file
#: (the reader parses hundreds of MB/s; the margin is for slow disks), or ``STRUCTROM_READER_TIMEOUT`` when set.
READER_TIMEOUT_BASE = 120.0
READER_SECONDS_PER_MB = 1.0


class AnsysError(StructromError, ValueError):
    """An Ansys file cannot be converted; the message names the file and the block."""


def check_magnitudes(values: np.ndarray, what: str, node_ids: np.ndarray | None = None) -> None:
    """:class:`AnsysError` naming ``what`` (file, set and quantity), the first offending row (its Ansys node number
    when ``node_ids`` gives one per row) and the value when ``values`` ``(n, ...)`` holds an infinite entry or one of
    magnitude above :data:`ABSURD`. NaN (no value) passes: the callers treat missing entries themselves."""
    v = np.asarray(values, dtype=float)
    bad = beyond(v, nan_ok=True)
    if bad.any():
        row = int(np.argwhere(bad)[0][0]) if v.ndim else 0
        node = f"node {int(node_ids[row])}" if node_ids is not None and row < len(node_ids) else f"row {row}"
        raise AnsysError(f"{what}: value {float(v[bad][0]):.6g} at {node} is infinite or above {ABSURD:g} in "
                         "magnitude: not a result of a converged run (a damaged file or a diverged solve); export "
                         "the run again")


def _reader():
    try:
        from ansys.mapdl import reader
    except ImportError as exc:
        raise ImportError(
            "reading Ansys .rst/.cdb files needs the package 'ansys-mapdl-reader' "
            f"(pip install ansys-mapdl-reader): {exc}"
        ) from exc
    return reader


@dataclass
class AnsysResult:
    """An Ansys result file read onto our mesh.

    ``node_ids`` ``(n_nodes,)``/``element_ids`` ``(n_elements,)``: Ansys numbers of our nodes/elements;
    ``times`` ``(n_sets,)``: the result sets' time values; ``displacement`` ``(n_sets, n_nodes, 3)``
    (UX, UY, UZ; other dofs ignored; NaN where a node has no result); ``records``: what the ``records`` function
    given to :func:`read_ansys_result` read (None without one); ``skipped``: the skipped elements, one phrase per
    element type (``"ETYPE 2 = SURF154: 12 elements (first 41, 42, ...)"``).
    """

    path: Path
    mesh: Mesh
    node_ids: np.ndarray
    element_ids: np.ndarray
    times: np.ndarray
    displacement: np.ndarray
    records: Any = None
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Grid:
    """The parts of the reader's VTK grid the conversion uses, as plain arrays (they cross processes):
    ``points`` ``(n_points, 3)``, ``celltypes`` ``(n_cells,)`` VTK ids, ``cell_connectivity`` (flat) with
    ``cell_offsets`` ``(n_cells + 1,)``, ``point_data``/``cell_data`` holding ``ansys_node_num``/``ansys_elem_num``
    and (cell data) the ``ETYPE`` reference ``ansys_etype`` and element type ``ansys_elem_type_num`` (185...);
    ``dropped``: the same three arrays for the elements the reader made no cell of (types it has no VTK shape
    for: MPC184, MESH200 without KEYOPT(1), user elements...)."""

    points: np.ndarray
    celltypes: np.ndarray
    cell_connectivity: np.ndarray
    cell_offsets: np.ndarray
    point_data: dict
    cell_data: dict
    dropped: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        return len(self.celltypes)


def _plain_grid(grid, elements=None) -> _Grid | None:
    """:class:`_Grid` of a reader's (pyvista) grid; None when the reader gave no cells. ``elements``: the reader's
    mesh (its ``enum``, ``_ans_etype``, ``etype`` list every element, those without a cell too)."""
    if grid is None or getattr(grid, "n_cells", 0) == 0:
        return None
    offsets = grid.cell_offsets if hasattr(grid, "cell_offsets") else grid.offset
    pick = (lambda data, *keys: {k: np.asarray(data[k], dtype=np.int64) for k in keys if k in data})  # (numbers)
    out = _Grid(np.asarray(grid.points, dtype=float), np.asarray(grid.celltypes),
                np.asarray(grid.cell_connectivity, dtype=np.int64), np.asarray(offsets, dtype=np.int64),
                pick(grid.point_data, "ansys_node_num"),
                pick(grid.cell_data, "ansys_elem_num", "ansys_etype", "ansys_elem_type_num"))
    try:
        every = {"ansys_elem_num": elements.enum, "ansys_etype": elements._ans_etype,
                 "ansys_elem_type_num": elements.etype}
        every = {k: np.asarray(v, np.int64).reshape(-1) for k, v in every.items()}
    except Exception:  # (no element list from this reader: the cells are all we know)
        return out
    if "ansys_elem_num" in out.cell_data and len({len(v) for v in every.values()}) == 1:
        missing = ~np.isin(every["ansys_elem_num"], out.cell_data["ansys_elem_num"])
        out.dropped = {k: v[missing] for k, v in every.items()}
    return out


def _components(obj, name: str) -> dict:
    """``{component: (k,) Ansys numbers}`` of the reader's ``node_components``/``element_components``."""
    return {str(k): np.asarray(v, dtype=np.int64) for k, v in (getattr(obj, name, None) or {}).items()}


def check_binary_kind(path: str, expected: int, what: str) -> None:
    """In the reader's process: :class:`AnsysError` unless ``path`` is a non-empty Ansys binary file of ``file
    format`` ``expected`` (``what``: the file's role, for the message), or is shorter than its header declares."""
    from ansys.mapdl.reader.common import read_standard_header

    size = os.path.getsize(path)
    if size == 0:
        raise AnsysError(f"{path}: the file is empty (0 bytes): the run or the copy did not finish; give {what}")
    try:
        kind = int(read_standard_header(path)["file format"])
    except Exception:  # (a text file, or another format: the reader cannot find the record structure)
        raise AnsysError(f"{path}: not an Ansys binary file (a text file such as an archive, or a damaged copy): "
                         f"give {what}") from None
    if kind != expected:
        raise AnsysError(f"{path}: {_BINARY_FORMATS.get(kind, f'an Ansys binary file of format {kind}')} was "
                         f"given where {what} is expected: check the file name in the command or configuration")


def _result_end(res) -> int:
    """Bytes the result header declares for the file (its ``ptrend`` pointer, in 4-byte words); 0 if unknown."""
    header = getattr(res, "_resultheader", None) or {}
    return 4 * int(header.get("ptrend", 0) or 0)


def reader_timeout(path: Path) -> float:
    """Seconds the reader's process may take on ``path`` (:data:`READER_TIMEOUT_BASE`)."""
    fixed = os.environ.get("STRUCTROM_READER_TIMEOUT")
    if fixed is not None and fixed.strip():
        try:
            seconds = float(fixed)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):  # (NaN or inf broke the wait, 0 or less killed every read)
            raise AnsysError(f"STRUCTROM_READER_TIMEOUT={fixed!r} is not a positive number of seconds: set it to the "
                             "seconds a read may take (e.g. 600), or unset it for 120 s + 1 s per MB of the file")
        return seconds
    return READER_TIMEOUT_BASE + READER_SECONDS_PER_MB * os.path.getsize(path) / 1e6


def read_isolated(fn: Callable[..., Any], path: Path, what: str, *args,
                  locate: Callable[[Path, int], str | None] | None = None):
    """``fn(str(path), *args)`` in the reader's own process (:func:`~.reader_process.run_isolated`: the reader
    crashes natively on truncated or damaged files) within :func:`reader_timeout`; its errors, crashes and time-outs
    become :class:`AnsysError` naming ``path``, ``what`` (the file's role) and the record it was reading (the
    last :func:`~.reader_process.stage` of ``fn``; after a time-out, also ``locate(path, byte offset)``: the
    block of the file its reads had got to, e.g. :func:`archive_block_at`)."""
    from .reader_process import ReaderStopped, run_isolated

    timeout = reader_timeout(path)
    try:
        return run_isolated(fn, str(path), *args, crashed=None, timeout=timeout)
    except ReaderStopped as stop:
        where = f" reading {stop.stage}" if stop.stage else " reading it"
        offset = stop.offsets.get(os.path.realpath(path))
        block = locate(path, offset) if locate is not None and offset is not None else None
        where += f", in {block}" if block else ""
        if stop.timed_out:
            raise AnsysError(f"{path}: ansys-mapdl-reader did not finish{where} within {timeout:g} s and was "
                             "stopped: the file is damaged (a corrupted record the reader loops on) or on a stalled "
                             "file system; check the file, or allow more time with STRUCTROM_READER_TIMEOUT=<seconds>"
                             ) from None
        raise AnsysError(f"{path}: ansys-mapdl-reader stopped abnormally ({stop.why}: a native crash){where}: the "
                         f"file is truncated, damaged{' in that record' if stop.stage else ''} or not {what}; write "
                         "it again") from None
    except (AnsysError, ImportError):
        raise
    except Exception as exc:  # the reader raises assorted types
        raise AnsysError(f"{path}: ansys-mapdl-reader could not read it ({type(exc).__name__}: {str(exc)[:200]}): "
                         f"the file is truncated, damaged or not {what}") from None


#: What the blocks of an archive (``.cdb``) hold, for messages (:func:`archive_block_at`).
_ARCHIVE_BLOCKS = {"NBLOCK": "nodes", "EBLOCK": "elements", "CMBLOCK": "a component", "SFEBLOCK": "surface loads",
                   "SFE": "a surface load", "MPDATA": "material properties", "ET": "an element type",
                   "RLBLOCK": "real constants", "KEYOP": "element key options", "D": "constraints", "F": "forces",
                   "BFBLOCK": "body loads", "BFEBLOCK": "element body loads", "CE": "constraint equations"}


def archive_block_at(path: Path, offset: int) -> str | None:
    """The block of the archive ``path`` (text) that byte ``offset`` lies in: ``"the EBLOCK (elements) at line
    12"``, from the last command line (a line starting with a letter: block data lines hold numbers and Fortran
    formats) before ``offset``; None when none is. Reads the file up to ``offset`` only (an error path)."""
    last, number, read = None, 0, 0
    try:
        with open(path, "rb") as f:
            for number, line in enumerate(f, start=1):
                if read >= offset:
                    break
                read += len(line)
                if line[:1].isalpha():
                    last = (line.split(b",", 1)[0].strip().decode("ascii", "replace").upper(), number)
    except OSError:
        return None
    if last is None:
        return None
    name, at = last
    what = _ARCHIVE_BLOCKS.get(name)
    return f"the {name}{f' ({what})' if what else ''} at line {at}, the last command before byte {offset}"


def load_archive(path: str) -> tuple[_Grid | None, dict, dict]:
    """In the reader's process: ``(grid, node components, element components)`` of an archive (``.cdb``), each step
    announced (:func:`~.reader_process.stage`): the reader parses the NBLOCK nodes, EBLOCK elements and CMBLOCK
    components in one pass (the block it stopped in is named from its read offset, :func:`archive_block_at`), then
    makes the cells and the components."""
    from .reader_process import stage

    stage("its blocks (one pass of the reader's parser over NBLOCK nodes, EBLOCK elements, CMBLOCK components)")
    archive = _reader().Archive(path, parse_vtk=False)
    stage("the mesh (the EBLOCK elements made cells on the NBLOCK nodes)")
    grid = _plain_grid(archive.grid, archive)
    stage("the components (CMBLOCK)")
    return grid, _components(archive, "node_components"), _components(archive, "element_components")


def _load_result(path: str, records: Callable[[Any, str], Any] | None = None):
    """In the reader's process: ``(grid, node components, element components, displacements, times, records)`` of a
    result file, ``displacements`` one ``(node numbers (k,), values (k, n_dof))`` per result set, ``records`` what
    ``records(reader's result, path)`` returns (None without it)."""
    from .reader_process import stage

    stage("the file's headers")
    check_binary_kind(path, 12, "an Ansys result file (.rst)")
    res = _reader().read_binary(path)
    end, size = _result_end(res), os.path.getsize(path)
    if end > size:
        raise AnsysError(f"{path}: the file has {size} bytes, its header declares {end}: it is truncated (an "
                         "unfinished copy or run); copy it again")
    stage("the mesh (nodes and elements)")
    grid = _plain_grid(res.quadgrid if getattr(res, "quadgrid", None) is not None else res.grid,
                       getattr(res, "mesh", None))
    disp = []
    for k in range(int(res.nsets)):
        stage(f"result set {k + 1}: the nodal displacements")
        try:
            nnum, values = res.nodal_displacement(k)
        except Exception as exc:
            raise AnsysError(f"{path}: result set {k + 1}: cannot read nodal displacements "
                             f"({type(exc).__name__}: {exc})") from None
        disp.append((np.asarray(nnum, dtype=np.int64), np.asarray(values, dtype=float)))
    times = np.asarray(res.time_values, dtype=float)
    extra = records(res, path) if records is not None else None
    return grid, _components(res, "node_components"), _components(res, "element_components"), disp, times, extra


def _mesh_from_grid(grid: _Grid | None, source: str, node_components=None, element_components=None):
    """``(mesh, node_ids, element_ids, skipped)`` of the reader's grid (:func:`_plain_grid`: None without cells);
    ``skipped``: phrases naming the elements left out (:func:`~.ansys_elements.kept_cells`), also given as an
    :class:`AnsysWarning`."""
    if grid is None:
        raise AnsysError(f"{source}: no mesh read (no NBLOCK/EBLOCK nodes and elements): the file is cut short, "
                         "damaged or not an Ansys archive/result")
    celltypes = np.asarray(grid.celltypes)
    if "ansys_node_num" not in grid.point_data or "ansys_elem_num" not in grid.cell_data:
        raise AnsysError(f"{source}: the reader's grid has no ansys_node_num/ansys_elem_num arrays")
    enum = np.asarray(grid.cell_data["ansys_elem_num"], dtype=np.int64)
    kept, skipped, refused = kept_cells(grid.celltypes, grid.cell_data, grid.dropped)
    if refused:
        raise AnsysError(f"{source}: {refused}")
    if not kept.any():
        raise AnsysError(f"{source}: no solid elements, only {'; '.join(skipped)}")
    if skipped:
        warnings.warn(f"{source}: skipped (no stiffness of their own; loads on them are not read): "
                      f"{'; '.join(skipped)}", AnsysWarning, stacklevel=3)
    conn_flat, offsets = grid.cell_connectivity, grid.cell_offsets
    kept_types, first = np.unique(celltypes[kept], return_index=True)
    order = kept_types[np.argsort(first)].tolist()  # (element types in order of first appearance)
    blocks, element_ids = [], []
    for t in order:
        cells = np.flatnonzero((celltypes == t) & kept)
        k = offsets[cells[0] + 1] - offsets[cells[0]]
        idx = offsets[cells][:, None] + np.arange(k)
        conn = conn_flat[idx]
        repeated = (np.diff(np.sort(conn, axis=1), axis=1) == 0).any(axis=1)
        if repeated.any():
            rep = cells[repeated]
            raise AnsysError(f"{source}: degenerate {VTK_TO_ELEMENT[t]} elements (repeated nodes; Ansys elements "
                             f"{enum[rep][:5].tolist()}): collapsed bricks are not supported")
        if VTK_TO_ELEMENT[t] == "C3D6":
            conn = orient_wedges(np.asarray(grid.points, dtype=float), conn)
        blocks.append((VTK_TO_ELEMENT[t], conn, cells))
        element_ids.append(enum[cells])
    points = np.asarray(grid.points, dtype=float)
    nnum = np.asarray(grid.point_data["ansys_node_num"], dtype=np.int64)
    used = np.zeros(len(points), dtype=bool)
    for _, conn, _ in blocks:
        used[conn.ravel()] = True
    old_to_new = np.cumsum(used) - 1
    cell_order = np.concatenate([c for _, _, c in blocks])
    new_of_cell = np.zeros(len(celltypes), dtype=np.int64)
    new_of_cell[cell_order] = np.arange(len(cell_order))
    node_sets, element_sets = {}, {}
    for name, ids in (node_components or {}).items():
        node_sets[str(name)] = old_to_new[np.flatnonzero(np.isin(nnum, np.asarray(ids)) & used)]
    for name, ids in (element_components or {}).items():
        element_sets[str(name)] = np.sort(new_of_cell[np.flatnonzero(np.isin(enum, np.asarray(ids)) & kept)])
    mesh = Mesh(points[used], [CellBlock(e, old_to_new[c]) for e, c, _ in blocks],
                node_sets=node_sets, element_sets=element_sets)
    return mesh, nnum[used], np.concatenate(element_ids), skipped


def read_ansys_archive(path: str | os.PathLike) -> tuple[Mesh, np.ndarray, np.ndarray]:
    """The mesh of an Ansys archive (``.cdb``): ``(mesh, node_ids, element_ids)`` (see the module doc). The reader
    runs in a process of its own (it crashes natively on an archive cut inside a block)."""
    _reader()
    path = Path(path)
    if not path.exists():
        raise AnsysError(f"Ansys archive {str(path)!r} does not exist")
    grid, ncomp, ecomp = read_isolated(load_archive, path, "an Ansys archive (.cdb, CDWRITE)", locate=archive_block_at)
    return _mesh_from_grid(grid, str(path), ncomp, ecomp)[:3]


def read_ansys_result(path: str | os.PathLike, records: Callable[[Any, str], Any] | None = None) -> AnsysResult:
    """Mesh and nodal displacements of every result set of an Ansys result file (``.rst``), read in a process of
    its own (the reader aborts natively on truncated files), and ``records(reader's result, path)`` read there
    (a picklable function returning plain arrays; :func:`~.reader_process.stage` names each record it reads) as
    ``AnsysResult.records``."""
    _reader()
    path = Path(path)
    if not path.exists():
        raise AnsysError(f"Ansys result file {str(path)!r} does not exist")
    grid, ncomp, ecomp, sets, times, extra = read_isolated(_load_result, path, "an Ansys result file (.rst)", records)
    mesh, node_ids, element_ids, skipped = _mesh_from_grid(grid, str(path), ncomp, ecomp)
    n_sets = len(sets)
    disp = np.full((n_sets, mesh.n_nodes, 3), np.nan)
    for k, (nnum, values) in enumerate(sets):
        if values.ndim != 2 or values.shape[1] < 3:
            raise AnsysError(f"{path}: result set {k + 1}: displacements have shape {values.shape}, expected (n, >=3)")
        order = np.argsort(nnum)
        pos = np.searchsorted(nnum[order], node_ids)
        pos = np.minimum(pos, len(nnum) - 1)
        hit = nnum[order][pos] == node_ids
        disp[k, hit] = values[order[pos[hit]], :3]
        check_magnitudes(disp[k], f"{path}: result set {k + 1}: nodal displacements", node_ids)
    times = times[:n_sets]
    if times.shape != (n_sets,) or not np.all(np.isfinite(times)):
        raise AnsysError(f"{path}: result times {times.tolist()[:8]} are not one finite time per result set")
    return AnsysResult(path, mesh, node_ids, element_ids, times, disp, extra, skipped)
