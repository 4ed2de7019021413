"""Mesh files read by meshio, with the failures a user's file can cause turned into :class:`MeshError`.

HDF5-based formats (:data:`HDF5_SUFFIXES`) are read in a process of their own (HDF5 can crash natively on a
damaged file), a VTU's sections are checked for two arrays of one name first
(:func:`structrom.rom.fem.vtu_fields.check_unique_vtu_fields`), and a legacy VTK's point data while meshio reads it
(:mod:`structrom.rom.fem.vtk_fields`).
"""
from __future__ import annotations

import os
from pathlib import Path

import meshio

from .mesh import MeshError
from .vtk_fields import DuplicatePointData, install as _check_legacy_vtk_names
from .vtu_fields import check_unique_vtu_fields

_check_legacy_vtk_names()

#: Mesh formats whose data HDF5 holds (read by :func:`read_meshio` in a process of their own).
HDF5_SUFFIXES = (".xdmf", ".xmf", ".h5", ".hdf5", ".hdf", ".med", ".h5m")


def read_meshio(path: str | os.PathLike) -> "meshio.Mesh":
    """``meshio.read(path)``, HDF5-based formats (:data:`HDF5_SUFFIXES`) in a process of their own (HDF5 can crash
    natively on a damaged file); any failure is a :class:`MeshError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise MeshError(f"mesh file {str(path)!r} does not exist")
    try:
        if path.suffix.lower() in HDF5_SUFFIXES:
            from structrom.rom.adapters.reader_process import run_isolated

            return run_isolated(meshio.read, str(path), crashed=lambda: MeshError(
                f"{path}: reading it crashed HDF5 (a native crash): the file or its .h5 data is damaged; write it "
                "again"))
        if path.suffix.lower() == ".vtu":
            check_unique_vtu_fields(path)
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
