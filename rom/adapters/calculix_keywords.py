"""The CalculiX 2.20 keywords a deck import meets, and what :mod:`.calculix_deck` does with each.

Every keyword card of a deck is either *mapped* onto the project's objects, *ignored* with the reason
given here (cards that only request output or tune ccx's own solver), or *refused*: the import stops
with ``not supported: *KEYWORD, file:line`` and the reason. A keyword not in this table (a typo, or a
keyword of another code) is refused as unknown. The table covers the keywords of the CalculiX 2.20
manual (chapter 7); parameters of mapped keywords are checked by :mod:`.calculix_deck` (e.g.
``*STEP, NLGEOM`` and ``*ELASTIC, TYPE=ORTHO`` are refused there).
"""
from __future__ import annotations

MAPPED = {
    "HEADING": "title (kept as text)",
    "INCLUDE": "file read in place",
    "NODE": "mesh nodes", "ELEMENT": "mesh elements (C3D4, C3D10, C3D8, C3D20, C3D20R, C3D6, C3D15)",
    "NSET": "node set", "ELSET": "element set", "SURFACE": "surface (TYPE=ELEMENT); TYPE=NODE surfaces (contact only in ccx) are read, not used",
    "MATERIAL": "material", "ELASTIC": "young/poisson tables (TYPE=ISO)", "EXPANSION": "expansion table (TYPE=ISO)",
    "DENSITY": "density", "PLASTIC": "tabulated hardening (isotropic; kinematic/combined if the law registry has them)",
    "CYCLIC HARDENING": "isotropic part of HARDENING=COMBINED",
    "CREEP": "Norton viscoplasticity (LAW=NORTON with m = 0)",
    "SOLID SECTION": "material assignment to an element set",
    "AMPLITUDE": "time history (TIME=STEP TIME or TOTAL TIME)",
    "INITIAL CONDITIONS": "initial nodal temperatures (TYPE=TEMPERATURE)",
    "BOUNDARY": "fixed (value 0) or prescribed displacements, with amplitude",
    "CLOAD": "concentrated forces (if the loading family has them)",
    "DLOAD": "pressure Pn, centrifugal CENTRIF, gravity GRAV",
    "DSLOAD": "pressure P on a surface",
    "TEMPERATURE": "nodal temperatures at the step end",
    "STEP": "a step (times accumulate)", "STATIC": "step time period", "VISCO": "step time period (creep)",
    "END STEP": "end of a step",
    # Abaqus's parts and assemblies, read as the flat deck (abaqus_assembly.py)
    "PART": "Abaqus part: its nodes, elements, sets, surfaces and sections, copied into each instance of it",
    "END PART": "end of a part", "ASSEMBLY": "Abaqus assembly: its instances and sets",
    "END ASSEMBLY": "end of the assembly",
    "INSTANCE": "a part placed in the assembly (translation, rotation); ids offset after the instances before it, "
                "its sets named 'instance.set'",
    "END INSTANCE": "end of an instance",
}

_OUTPUT = "output request: the results are read from the result files given to the import"
IGNORED = {
    "NODE FILE": _OUTPUT, "EL FILE": _OUTPUT, "NODE PRINT": _OUTPUT, "EL PRINT": _OUTPUT,
    "NODE OUTPUT": _OUTPUT, "ELEMENT OUTPUT": _OUTPUT, "CONTACT FILE": _OUTPUT, "CONTACT PRINT": _OUTPUT,
    "CONTACT OUTPUT": _OUTPUT, "SECTION PRINT": _OUTPUT, "OUTPUT": _OUTPUT,
    "TIME POINTS": "output times: the loading's times are the increment times found in the result files",
    "CONTROLS": "ccx's Newton controls: the HF solver and the reduced model have their own ([solver] settings)",
    "RESTART": "ccx restart files are not used",
    "SOLID SECTION ORIENTATION": "orientation of isotropic materials has no effect",
    "PHYSICAL CONSTANTS": "absolute zero / Stefan-Boltzmann constant: no effect on a mechanical analysis",
    "PREPRINT": "Abaqus's echo of the input in its .dat: no effect on the analysis",
    # material data of other analyses (material libraries hold them): no effect on *STATIC/*VISCO steps, and the
    # steps that use them (*HEAT TRANSFER, *DYNAMIC...) are refused
    "CONDUCTIVITY": "thermal conductivity: no effect on *STATIC/*VISCO steps (give temperatures with *TEMPERATURE)",
    "SPECIFIC HEAT": "specific heat: no effect on *STATIC/*VISCO steps (give temperatures with *TEMPERATURE)",
    "DAMPING": "material damping: no effect on *STATIC/*VISCO steps (dynamics is not modelled)",
}

REFUSED = {
    # interactions and constraints
    "CONTACT PAIR": "contact is not modelled", "SURFACE INTERACTION": "contact is not modelled",
    "SURFACE BEHAVIOR": "contact is not modelled", "FRICTION": "contact is not modelled",
    "GAP": "gap elements are not modelled", "GAP CONDUCTANCE": "contact is not modelled",
    "GAP HEAT GENERATION": "contact is not modelled", "CONTACT DAMPING": "contact is not modelled",
    "CLEARANCE": "contact is not modelled", "TIE": "tied surfaces (MPCs) are not modelled",
    "EQUATION": "linear constraints (MPCs) are not modelled", "MPC": "MPCs are not modelled",
    "RIGID BODY": "rigid bodies are not modelled", "COUPLING": "couplings are not modelled",
    "DISTRIBUTING": "couplings are not modelled", "DISTRIBUTING COUPLING": "couplings are not modelled",
    "KINEMATIC": "couplings are not modelled", "PRE-TENSION SECTION": "pre-tension is not modelled",
    "TRANSFORM": "local coordinate systems for boundary conditions are not modelled",
    "TRANSFORMF": "local coordinate systems are not modelled", "NORMAL": "shell normals: shells are not modelled",
    "CYCLIC SYMMETRY MODEL": "cyclic symmetry is not modelled", "SUBMODEL": "submodels are not modelled",
    "MODEL CHANGE": "element activation is not modelled",
    # elements other than solids
    "SHELL SECTION": "only solid elements (C3D4, C3D10, C3D8, C3D20, C3D20R, C3D6, C3D15) are supported",
    "BEAM SECTION": "only solid elements are supported", "MEMBRANE SECTION": "only solid elements are supported",
    "BEAM GENERAL SECTION": "only solid elements are supported", "FLUID SECTION": "only solid elements are supported",
    "NODAL THICKNESS": "only solid elements are supported", "SPRING": "springs are not modelled",
    "DASHPOT": "dashpots are not modelled", "MASS": "point masses are not modelled",
    "USER ELEMENT": "user elements are not modelled", "USER SECTION": "user sections are not modelled",
    "ORIENTATION": "anisotropic material orientations are not modelled",
    # materials
    "HYPERELASTIC": "hyperelasticity is not a law of the material registry",
    "HYPERFOAM": "hyperelasticity is not a law of the material registry",
    "DEFORMATION PLASTICITY": "Ramberg-Osgood deformation plasticity is not a law of the material registry",
    "USER MATERIAL": "user materials (umat) are not laws of the material registry",
    "DEPVAR": "user materials (umat) are not laws of the material registry",
    "ELECTRICAL CONDUCTIVITY": "electromagnetics is not modelled", "MAGNETIC PERMEABILITY": "electromagnetics is not modelled",
    "FLUID CONSTANTS": "fluids are not modelled", "SPECIFIC GAS CONSTANT": "fluids are not modelled",
"MODAL DAMPING": "dynamics is not modelled",
    # step-dependent changes
    "CHANGE MATERIAL": "material changes between steps are not modelled",
    "CHANGE PLASTIC": "material changes between steps are not modelled",
    "CHANGE SOLID SECTION": "section changes between steps are not modelled",
    "CHANGE SURFACE BEHAVIOR": "contact is not modelled", "CHANGE FRICTION": "contact is not modelled",
    "CHANGE CONTACT TYPE": "contact is not modelled",
    # procedures other than quasi-static mechanics
    "FREQUENCY": "only *STATIC and *VISCO steps are imported", "BUCKLE": "only *STATIC and *VISCO steps are imported",
    "DYNAMIC": "only *STATIC and *VISCO steps are imported", "MODAL DYNAMIC": "only *STATIC and *VISCO steps are imported",
    "STEADY STATE DYNAMICS": "only *STATIC and *VISCO steps are imported",
    "COMPLEX FREQUENCY": "only *STATIC and *VISCO steps are imported",
    "HEAT TRANSFER": "only *STATIC and *VISCO steps are imported (give temperatures with *TEMPERATURE)",
    "COUPLED TEMPERATURE-DISPLACEMENT": "only *STATIC and *VISCO steps are imported",
    "UNCOUPLED TEMPERATURE-DISPLACEMENT": "only *STATIC and *VISCO steps are imported",
    "ELECTROMAGNETICS": "only *STATIC and *VISCO steps are imported", "CFD": "only *STATIC and *VISCO steps are imported",
    "GREEN": "only *STATIC and *VISCO steps are imported", "SENSITIVITY": "only *STATIC and *VISCO steps are imported",
    "NO ANALYSIS": "a deck without analysis has no loading", "MATRIX ASSEMBLE": "only *STATIC and *VISCO steps are imported",
    "SUBSTRUCTURE GENERATE": "only *STATIC and *VISCO steps are imported",
    "RETAINED NODAL DOFS": "substructures are not modelled", "SUBSTRUCTURE MATRIX OUTPUT": "substructures are not modelled",
    "SELECT CYCLIC SYMMETRY MODES": "cyclic symmetry is not modelled", "BASE MOTION": "dynamics is not modelled",
    "FEASIBLE DIRECTION": "optimization is not modelled", "DESIGN VARIABLES": "optimization is not modelled",
    "DESIGN RESPONSE": "optimization is not modelled", "OBJECTIVE": "optimization is not modelled",
    "CONSTRAINT": "optimization is not modelled", "FILTER": "optimization is not modelled",
    "GEOMETRIC CONSTRAINT": "optimization is not modelled", "ROBUST DESIGN": "optimization is not modelled",
    "CRACK PROPAGATION": "crack propagation is not modelled", "REFINE MESH": "mesh refinement is not modelled",
    # loads other than the mapped ones
    "CFLUX": "heat transfer is not modelled", "DFLUX": "heat transfer is not modelled", "FILM": "heat transfer is not modelled",
    "RADIATE": "heat transfer is not modelled", "VIEWFACTOR": "heat transfer is not modelled",
    "VALUES AT INFINITY": "heat transfer is not modelled", "MASS FLOW": "fluids are not modelled",
    "SUBMODEL BOUNDARY": "submodels are not modelled", "DSFLUX": "heat transfer is not modelled",
    "ELECTRICAL CONDUCTIVITY ANISO": "electromagnetics is not modelled",
    "INITIAL STRAIN INCREASE": "initial strains are not modelled",
}


#: The table's keywords by their blank-free spelling.
_BLANK_FREE = {k.replace(" ", ""): k for table in (MAPPED, IGNORED, REFUSED) for k in table}


def canonical(keyword: str) -> str:
    """The table's spelling of ``keyword`` (upper case, without ``*``): ccx removes the blanks of a keyword before
    it compares (``*SOLIDSECTION`` is ``*SOLID SECTION``), so a keyword of the table written without, or with other,
    blanks is that keyword; other keywords are returned unchanged."""
    return _BLANK_FREE.get(keyword.replace(" ", ""), keyword)


def classify(keyword: str) -> tuple[str, str]:
    """``("mapped" | "ignored" | "refused", reason)`` of a keyword (upper case, without ``*``)."""
    if keyword in MAPPED:
        return "mapped", MAPPED[keyword]
    if keyword in IGNORED:
        return "ignored", IGNORED[keyword]
    if keyword in REFUSED:
        return "refused", REFUSED[keyword]
    return "refused", "not a keyword of the CalculiX 2.20 static/creep subset (a typo, or another code's keyword?)"


def markdown_table() -> str:
    """The table as Markdown (for docs/adapters.md)."""
    rows = ["| keyword | import | what / why |", "| --- | --- | --- |"]
    for what, table in (("mapped", MAPPED), ("ignored", IGNORED), ("refused", REFUSED)):
        rows += [f"| `*{k}` | {what} | {v} |" for k, v in sorted(table.items())]
    return "\n".join(rows)
