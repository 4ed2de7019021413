"""Point-data names of legacy VTK files (``.vtk``, versions up to 5.1) checked unique while meshio reads them.

meshio's legacy reader stores each ``SCALARS`` / ``VECTORS`` / ``TENSORS`` array and each array of a ``FIELD`` block
of a ``POINT_DATA`` section in one dictionary: a second array of the same name silently replaces the first. Its data
sections (ASCII or big-endian binary) cannot be skipped without parsing them as meshio does, so the check wraps
meshio's own section reader (``_read_subsection`` of ``meshio.vtk._vtk_42`` and ``_vtk_51``): after each point-data
section it counts the arrays the section added against the arrays it declares, and raises
:class:`DuplicatePointData` when fewer came in. :func:`install` puts the wrapper in place once (it keeps meshio's
behaviour otherwise and holds no state, so concurrent reads are safe); on a meshio without these functions it does
nothing.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

#: Sections that add one array, named by the header's second word.
_ONE_ARRAY = ("SCALARS", "VECTORS", "TENSORS")


class DuplicatePointData(Exception):
    """Two point-data arrays of one name in a legacy VTK file (``where``: the section's header line)."""

    def __init__(self, where: str, name: str | None) -> None:
        self.where, self.name = where, name
        super().__init__(where if name is None else f"{where}: {name!r}")


def _checked(read_subsection: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    @functools.wraps(read_subsection)
    def read(f, info):
        section = str(getattr(info, "section", ""))
        if getattr(info, "active", None) != "POINT_DATA" or section not in (*_ONE_ARRAY, "FIELD"):
            return read_subsection(f, info)
        data = info.point_data
        before = set(data)
        split = list(getattr(info, "split", []))
        try:
            declared = 1 if section in _ONE_ARRAY else int(split[2])
        except (IndexError, ValueError):  # (a malformed header: meshio's own error follows)
            return read_subsection(f, info)
        out = read_subsection(f, info)
        if len(data) - len(before) < declared:
            header = " ".join(split)[:120]
            # (a FIELD block's arrays are read into one dictionary first: which name repeats is not known)
            raise DuplicatePointData(header, split[1] if section in _ONE_ARRAY and len(split) > 1 else None)
        return out

    read.structrom_checked = True  # type: ignore[attr-defined]
    return read


def install() -> None:
    """Wrap meshio's legacy VTK section readers (once; nothing when meshio has none)."""
    try:
        from meshio.vtk import _vtk_42, _vtk_51
    except ImportError:  # pragma: no cover (other meshio layouts)
        return
    for module in (_vtk_42, _vtk_51):
        original = getattr(module, "_read_subsection", None)
        if callable(original) and not getattr(original, "structrom_checked", False):
            module._read_subsection = _checked(original)
