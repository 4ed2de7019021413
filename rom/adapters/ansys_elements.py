"""Ansys element types of a ``.cdb``/``.rst`` mesh: which ones the conversion keeps, skips or refuses, by the names
an Ansys user knows (``ETYPE`` reference number and element name, e.g. ``ETYPE 3 = SHELL181``).

ansys-mapdl-reader gives each cell of its grid the element's ``ETYPE`` reference number (``ansys_etype``) and its
element type (``ansys_elem_type_num``: 181 for SHELL181); it has no table of names, hence :data:`ELEMENT_NAMES`.

* kept: solid tetrahedra and hexahedra (SOLID185/186 bricks, SOLID187, SOLID285, and the older SOLID45/92/95...)
  and linear prisms (SOLID185 bricks degenerated into wedges);
* skipped with an :class:`AnsysWarning` naming them (:data:`SKIPPED`): elements that add no stiffness to the solid
  in a linear static run and whose own loads the import never takes from them: MESH200 (meshing aid, no degrees of
  freedom of its own) and the surface-effect elements SURF154/156/159 (they exist to carry surface loads: pressures
  on them are read only as ``SFE`` loads of the ``--cdb`` archive, and one on a skipped element is refused there by
  its element number; give the pressure on the solid face instead);
* refused: contact and target elements (CONTA17x, TARGE169/170): bonded contact ties the parts together (dropping it
  disconnects them) and a TARGE170 pilot node carries a remote load or constraint (dropping it drops the load);
  shells, solid-shells (SOLSH190), beams, links, springs, masses, MPC184 (they carry stiffness or mass the reduced
  solid model does not have, or another formulation); degenerate bricks of other shapes (15-node prisms, pyramids);
  any other type.
"""
from __future__ import annotations

import numpy as np

#: VTK cell type id -> our element type.
VTK_TO_ELEMENT = {10: "C3D4", 24: "C3D10", 12: "C3D8", 25: "C3D20", 13: "C3D6"}
#: Ansys solid element types whose non-degenerate shapes convert (:data:`VTK_TO_ELEMENT`).
_SOLIDS = {45, 92, 95, 185, 186, 187, 285}
_VTK_NAMES = {1: "vertex", 3: "line", 5: "triangle", 9: "quad", 10: "tetra", 12: "hexahedron", 13: "wedge",
              14: "pyramid", 21: "quadratic_edge", 22: "quadratic_triangle", 23: "quadratic_quad",
              24: "quadratic_tetra", 25: "quadratic_hexahedron", 26: "quadratic_wedge", 27: "quadratic_pyramid"}

#: Ansys element type -> name (the types of structural decks; others are named by number).
ELEMENT_NAMES = {
    21: "MASS21", 45: "SOLID45", 92: "SOLID92", 95: "SOLID95", 14: "COMBIN14", 39: "COMBIN39", 40: "COMBIN40",
    180: "LINK180", 181: "SHELL181", 182: "PLANE182", 183: "PLANE183", 184: "MPC184", 185: "SOLID185",
    186: "SOLID186", 187: "SOLID187", 188: "BEAM188", 189: "BEAM189", 190: "SOLSH190", 200: "MESH200",
    208: "SHELL208", 209: "SHELL209", 281: "SHELL281", 285: "SOLID285", 288: "PIPE288", 289: "PIPE289",
    152: "SURF152", 153: "SURF153", 154: "SURF154", 156: "SURF156", 159: "SURF159",
    169: "TARGE169", 170: "TARGE170", 171: "CONTA171", 172: "CONTA172", 173: "CONTA173", 174: "CONTA174",
    175: "CONTA175", 176: "CONTA176", 177: "CONTA177", 178: "CONTA178",
}

#: Element types skipped with a warning (no stiffness of their own in a linear static run; see the module doc).
SKIPPED = {200, 154, 156, 159}
_CONTACT = {169, 170, 171, 172, 173, 174, 175, 176, 177, 178}
_SHELLS_BEAMS = {181, 208, 209, 281, 188, 189, 288, 289, 180, 182, 183, 190, 14, 39, 40, 21, 184}


class AnsysWarning(UserWarning):
    """Elements of an Ansys mesh skipped by the conversion (named in the message)."""


def element_name(kind: int) -> str:
    """``SHELL181`` for 181; ``element type 123`` for a type :data:`ELEMENT_NAMES` does not name."""
    return ELEMENT_NAMES.get(int(kind), f"element type {int(kind)}")


def _why(kind: int) -> str:
    if kind in _CONTACT:
        return ("contact/target elements: bonded contact ties the parts together and a TARGE170 pilot node carries "
                "a remote load or constraint, so dropping them changes the model; the reduced model has no contact: "
                "mesh the parts with shared nodes (shared topology) and apply remote loads as nodal forces (F) on "
                "the solid's nodes, or delete the contact pairs that are not active in the run before exporting")
    if kind in _SHELLS_BEAMS:
        return ("shells, beams, links, springs, masses and MPC elements carry stiffness or mass the reduced solid "
                "model does not have: mesh that part with solid elements")
    return ("not an element type the import converts: supported are the solid tetrahedra, hexahedra and linear prisms "
            "SOLID185/186 (bricks), SOLID185 (prisms), SOLID187, SOLID285 (and the older SOLID45/92/95)")


def describe(kinds: np.ndarray, etype_refs: np.ndarray, element_numbers: np.ndarray, mask: np.ndarray) -> list[str]:
    """One phrase per (``ETYPE`` reference, element type) among the cells of ``mask``: ``"ETYPE 3 = SHELL181: 12
    elements (first 5, 6, 7, 8, 9)"``; ``kinds``/``etype_refs``/``element_numbers`` ``(n_cells,)``."""
    pairs = np.stack([etype_refs[mask], kinds[mask]], axis=1)
    numbers = element_numbers[mask]
    out = []
    for ref, kind in np.unique(pairs, axis=0).tolist():
        these = numbers[(pairs[:, 0] == ref) & (pairs[:, 1] == kind)]
        out.append(f"ETYPE {ref} = {element_name(kind)}: {len(these)} element{'s' * (len(these) != 1)} (first "
                   f"{', '.join(map(str, these[:5].tolist()))})")
    return out


def refusal(kinds: np.ndarray, etype_refs: np.ndarray, element_numbers: np.ndarray, mask: np.ndarray) -> str:
    """The reasons and fixes for the refused cells of ``mask``, grouped by kind (contact, shells/beams, other)."""
    parts = []
    for group, why in ((np.isin(kinds, list(_CONTACT)), _why(170)), (np.isin(kinds, list(_SHELLS_BEAMS)), _why(181)),
                       (~np.isin(kinds, list(_CONTACT | _SHELLS_BEAMS)), _why(0))):
        if (mask & group).any():
            parts.append(f"{'; '.join(describe(kinds, etype_refs, element_numbers, mask & group))}: {why}")
    return ". ".join(parts)


def kept_cells(celltypes: np.ndarray, cell_data: dict, dropped: dict) -> tuple[np.ndarray, list[str], str]:
    """``(mask, skipped, refused)``: ``(n_cells,)`` mask of the cells converted, the phrases naming the skipped
    elements (among the cells and the reader's ``dropped`` elements, see the module doc) and the sentence naming the
    refused ones by ``ETYPE`` and element name with the fix ("" when none is). ``celltypes`` ``(n_cells,)`` VTK ids;
    ``cell_data``/``dropped``: ``ansys_elem_num``, ``ansys_etype``, ``ansys_elem_type_num`` arrays."""
    celltypes = np.asarray(celltypes)
    n = len(celltypes)
    enum = np.asarray(cell_data["ansys_elem_num"], dtype=np.int64)
    shape_ok = np.isin(celltypes, list(VTK_TO_ELEMENT))
    if "ansys_elem_type_num" not in cell_data or "ansys_etype" not in cell_data:
        if not shape_ok.all():  # (a reader without element types: by VTK shape only)
            names = [_VTK_NAMES.get(k, f"VTK type {k}") for k in sorted(set(celltypes[~shape_ok].tolist()))]
            return shape_ok, [], (f"{int((~shape_ok).sum())} elements are of unsupported shape(s) {names} (first "
                                  f"Ansys elements {enum[~shape_ok][:5].tolist()}); supported: solid tetrahedra, "
                                  "hexahedra and linear prisms (SOLID185/186 bricks, SOLID185 prisms, SOLID187, "
                                  "SOLID285)")
        return shape_ok, [], ""
    dropped = dropped or {k: np.zeros(0, np.int64) for k in ("ansys_elem_num", "ansys_etype",
                                                                   "ansys_elem_type_num")}
    kinds = np.concatenate([cell_data["ansys_elem_type_num"], dropped["ansys_elem_type_num"]])
    refs = np.concatenate([cell_data["ansys_etype"], dropped["ansys_etype"]])
    numbers = np.concatenate([enum, dropped["ansys_elem_num"]])
    shape_ok = np.concatenate([shape_ok, np.zeros(len(numbers) - n, bool)])
    skip = np.isin(kinds, list(SKIPPED))
    solid = np.isin(kinds, list(_SOLIDS))
    refused = ~skip & ~(solid & shape_ok)
    if refused.any():
        collapsed = refused & solid  # solid elements of a shape we do not convert (collapsed bricks)
        parts = [refusal(kinds, refs, numbers, refused & ~solid)] if (refused & ~solid).any() else []
        if collapsed.any():
            shapes = sorted({_VTK_NAMES.get(k, f"VTK type {k}") for k in celltypes[collapsed[:n]].tolist()})
            parts.append(f"{'; '.join(describe(kinds, refs, numbers, collapsed))}: degenerate (collapsed) elements "
                         f"of shape {', '.join(shapes) or 'unknown'}: supported are solid tetrahedra, hexahedra and "
                         "linear prisms (SOLID185/186 bricks, SOLID185 prisms, SOLID187, SOLID285); mesh prism layers "
                         "with SOLID185, or the volume with SOLID187, without pyramids")
        return ~skip[:n] & ~refused[:n], [], f"{int(refused.sum())} elements cannot be converted: " + ". ".join(parts)
    return ~skip[:n], describe(kinds, refs, numbers, skip) if skip.any() else [], ""
