"""Mesh files read by meshio, with the failures a user's file can cause turned into :class:`MeshError`.

HDF5-based formats (:data:`HDF5_SUFFIXES`) are read in a process of their own (HDF5 can crash natively on a
damaged file), a VTU's sections are checked for two arrays of one name first
(:func:`structrom.rom.fem.vtu_fields.check_unique_vtu_fields`), and a legacy VTK's point data while meshio reads it
(:mod:`structrom.rom.fem.vtk_fields`).
"""
from __future__ import annotations

import mmap
import os
import re
from pathlib import Path

import meshio
import numpy as np

from .mesh import MeshError
from .vtk_fields import DuplicatePointData, install as _check_legacy_vtk_names
from .vtu_fields import check_unique_vtu_fields

_check_legacy_vtk_names()

#: Mesh formats whose data HDF5 holds (read by :func:`read_meshio` in a process of their own).
HDF5_SUFFIXES = (".xdmf", ".xmf", ".h5", ".hdf5", ".hdf", ".med", ".h5m")


def _check_gmsh_end(path: Path) -> None:
    """:class:`MeshError` when a Gmsh ``.msh`` file does not end with the ``$End<Name>`` line of a section it opened
    (``$<Name>``): a file cut short, which meshio reads without the sections after the cut."""
    with open(path, "rb") as f:
        if not f.read(64).lstrip().startswith(b"$MeshFormat"):
            return  # (not Gmsh's: meshio's readers decide)
        size = f.seek(0, 2)
        f.seek(max(size - 256, 0))
        tail = f.read().rstrip()
    last = tail.rsplit(b"\n", 1)[-1].strip()
    m = re.fullmatch(rb"\$End(\w+)", last)
    if m is None or not _opens(path, b"$" + m.group(1)):
        shown = repr(last[-40:].decode()) if last[-40:].isascii() and last[-40:].decode().isprintable() else \
            "binary data"
        raise MeshError(f"{path}: the file ends with {shown}, not with the '$End...' line of a section it opened: it "
                        "is truncated (or has data after its last section); copy or write it again")


def _check_gmsh_node_data(path: Path) -> None:
    """:class:`MeshError` when two ``$NodeData`` sections of a Gmsh file share a name (the time steps of a view: meshio
    keeps the last one only), or when a ``$NodeData`` section of an ASCII file (2.2 or 4.1) lists its nodes in
    another order than ``$Nodes``: meshio drops the node tags of ``$NodeData`` and pairs the values with the nodes by
    position, which attaches them to the wrong nodes. (Binary files: meshio itself refuses tags other than 1, 2, ...)"""
    with open(path, "rb") as f:
        raw = f.read()
    names = [m.group(1).decode("latin-1") for m in re.finditer(rb'(?m)^\$NodeData\r?\n\d+\r?\n"([^"\r\n]*)"', raw)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MeshError(f"{path}: {names.count(twice[0])} $NodeData sections are named {twice[0]!r} (the time steps of a "
                        "Gmsh view, or a section copied twice): meshio keeps only the last one; write one file per time "
                        "step and read them as a series (a list of files or a glob pattern)")
    lines = raw.decode("latin-1").splitlines()
    try:
        fmt = lines[lines.index("$MeshFormat") + 1].split()
        if fmt[1] != "0":
            return
        start = lines.index("$Nodes") + 1
        if fmt[0].startswith("4"):
            n_blocks = int(lines[start].split()[0])
            tags, k = [], start + 1
            for _ in range(n_blocks):
                n = int(lines[k].split()[3])
                tags += [int(t) for t in lines[k + 1:k + 1 + n]]
                k += 1 + 2 * n
        else:
            n = int(lines[start])
            tags = [int(ln.split(None, 1)[0]) for ln in lines[start + 1:start + 1 + n]]
    except (ValueError, IndexError):  # (a layout meshio refuses itself)
        return
    order = np.asarray(tags, dtype=np.int64)
    for k, ln in enumerate(lines):
        if ln.strip() != "$NodeData":
            continue
        try:
            j = k + 1
            n_str = int(lines[j])
            name = lines[j + 1].strip().strip('"') if n_str else "?"
            j += 1 + n_str
            j += 1 + int(lines[j])
            n_int = int(lines[j])
            n_items = int(lines[j + 3]) if n_int >= 3 else -1
            j += 1 + n_int
            listed = np.array([int(r.split(None, 1)[0]) for r in lines[j:j + n_items]], dtype=np.int64)
        except (ValueError, IndexError):
            continue
        if len(listed) == len(order) and not np.array_equal(listed, order):
            at = int(np.flatnonzero(listed != order)[0])
            raise MeshError(f"{path}:{j + at + 1}: $NodeData {name!r} lists node {listed[at]} where $Nodes has node "
                            f"{order[at]}: meshio pairs the values with the nodes by position (it drops these node "
                            "numbers) and would attach them to the wrong nodes; write the data in the order of $Nodes")


def _opens(path: Path, opener: bytes) -> bool:
    """Whether a line of the file is ``opener`` (a memory map: no copy of the file)."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return re.search(rb"(?m)^" + re.escape(opener) + rb"\r?$", mm) is not None


def read_meshio(path: str | os.PathLike) -> "meshio.Mesh":
    """``meshio.read(path)``, HDF5-based formats (:data:`HDF5_SUFFIXES`) in a process of their own (HDF5 can crash
    natively on a damaged file); any failure is a :class:`MeshError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise MeshError(f"mesh file {str(path)!r} does not exist")
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            if not head and path.is_file():
                raise MeshError(f"{path}: the file is empty (0 bytes); copy or write it again")
            if head == b"\x1f\x8b":
                raise MeshError(f"{path}: the file is gzip-compressed; decompress it (gunzip) and give the plain "
                                "mesh file")
    except OSError as exc:
        raise MeshError(f"{path}: cannot read it ({exc})") from None
    try:
        if path.suffix.lower() in HDF5_SUFFIXES:
            from structrom.rom.adapters.reader_process import run_isolated

            return run_isolated(meshio.read, str(path), crashed=lambda: MeshError(
                f"{path}: reading it crashed HDF5 (a native crash): the file or its .h5 data is damaged; write it "
                "again"))
        if path.suffix.lower() == ".vtu":
            declared = check_unique_vtu_fields(path)
            mesh = meshio.read(path)
            lost = sorted(declared - set(map(str, mesh.point_data)))
            if lost:
                raise MeshError(f"{path}: its <PointData> array {lost[0]!r} could not be read (its values do not fit "
                                "its NumberOfComponents or NumberOfTuples: a damaged array); meshio would drop it: "
                                "write the file again")
            return mesh
        if path.suffix.lower() == ".msh":
            _check_gmsh_end(path)
            _check_gmsh_node_data(path)
        return meshio.read(path)
    except MeshError:
        raise
    except DuplicatePointData as exc:
        what = f"two arrays named {exc.name!r}" if exc.name is not None else \
            "fewer arrays than it declares (two of them share a name, or share one with an earlier array)"
        raise MeshError(f"{path}: its POINT_DATA section {exc.where!r} holds {what}; meshio would keep only one of "
                        "them: rename one and write the file again") from None
    except (Exception, SystemExit) as exc:  # meshio raises assorted types (and exits when no reader fits)
        raise MeshError(f"{path}: meshio could not read it ({type(exc).__name__}: {exc})") from None
