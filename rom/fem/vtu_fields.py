"""Field names of VTK XML unstructured grids (``.vtu``) checked unique before meshio reads them.

meshio keeps one array per name: a file whose ``<PointData>`` (or ``<CellData>``) holds two ``<DataArray>`` of the
same ``Name`` would silently lose one of them. The scan reads the XML part of the file only (up to
``<AppendedData>``, whose raw bytes are not XML), through a memory map: no copy of the file.
"""
from __future__ import annotations

import mmap
import re
from pathlib import Path

from .mesh import MeshError

#: The tags that matter, in file order: section starts and ends, named data arrays, and the binary tail.
_TAGS = re.compile(rb"<(/?)(PointData|CellData|Piece)\b|<DataArray\b[^>]*?\bName\s*=\s*\"([^\"]*)\"|<AppendedData\b")


def check_unique_vtu_fields(path: Path) -> set[str]:
    """:class:`MeshError` naming ``path``, the piece, the section and the name when a ``<PointData>`` or
    ``<CellData>`` section of a piece holds two data arrays of one name; else the names the ``<PointData>``
    sections declare (to check that meshio read every one: it skips an array whose values do not fit its
    ``NumberOfComponents`` with a warning only)."""
    point_names: set[str] = set()
    with open(path, "rb") as f:
        if not f.seek(0, 2):
            return point_names
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            piece, section, names = -1, None, set()
            for m in _TAGS.finditer(mm):
                closing, tag, name = m.group(1), m.group(2), m.group(3)
                if tag is None and name is None:  # <AppendedData>: binary from here
                    return point_names
                if tag == b"Piece":
                    piece += 0 if closing else 1
                    section = None
                elif tag is not None:
                    section, names = (None, set()) if closing else (tag.decode(), set())
                elif section is not None:
                    if name in names:
                        shown = name.decode("utf-8", "replace")[:80]
                        raise MeshError(f"{path}: piece {max(piece, 0)}: <{section}> holds two arrays named "
                                        f"{shown!r}; meshio would keep only one of them: rename one and write the "
                                        "file again")
                    names.add(name)
                    if section == "PointData":
                        point_names.add(name.decode("utf-8", "replace"))
    return point_names
