"""Assembled stiffness and mass matrices exported by ccx (``*FREQUENCY, SOLVER=MATRIXSTORAGE``).

:func:`write_matrix_deck` writes a deck that only exports them, :func:`read_matrix_storage` reads them,
:func:`matrix_dofs_to_ours` and :func:`expand_matrix` put them in our dof numbering ``3 node + c``.

Facts (ccx 2.20, checked against our assembly of the same mesh to 1e-14):

* a deck whose last step is ``*FREQUENCY, SOLVER=MATRIXSTORAGE`` writes ``<job>.sti`` (stiffness),
  ``<job>.mas`` (mass) and ``<job>.dof`` and stops without an eigenvalue solve;
* ``.sti``/``.mas``: one ``row col value`` line per stored entry, 1-based, upper triangle only
  (``row <= col``, column after column), explicit zeros of the pattern included;
* ``.dof``: one ``node.direction`` line per matrix row (``2.3``: node id 2, z); the dofs fixed by
  ``*BOUNDARY`` (zero or not) are not in the matrices, nor are dofs of nodes without elements;
* the material is evaluated at the ``*INITIAL CONDITIONS, TYPE=TEMPERATURE`` values (a ``*TEMPERATURE``
  card inside the ``*FREQUENCY`` step does not change the matrices); ccx refuses the step without a
  ``*DENSITY`` ("no density was assigned").
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..fem.mesh import Mesh
from .calculix_cards import exact_ids
from .calculix_error import CalculixError
from .magnitudes import ABSURD, beyond
from .calculix_static_deck import _g, _table_lines
from .inp import InpIds
from .inp_writer import _number_strings, write_mesh_inp

__all__ = ["read_matrix_storage", "matrix_dofs_to_ours", "expand_matrix", "write_matrix_deck"]


def _read_triplets(path: Path, n: int) -> "sp.csr_matrix":
    import scipy.sparse as sp

    text = _read_text(path)
    lines = text.splitlines()
    try:
        vals = np.array(text.split(), dtype=float)
        if vals.size != 3 * len([ln for ln in lines if ln.strip()]):
            raise ValueError
    except ValueError:
        for number, ln in enumerate(lines, start=1):
            parts = ln.split()
            if ln.strip() and (len(parts) != 3 or not all(_is_number(p) for p in parts)):
                raise CalculixError(f"{path}:{number}: expected 'row col value', got {ln[:60]!r}") from None
        raise CalculixError(f"{path}: not a ccx matrix file") from None
    vals = vals.reshape(-1, 3)
    line_of = np.array([number for number, ln in enumerate(lines, start=1) if ln.strip()], dtype=np.int64)
    wrong = np.flatnonzero(~exact_ids(vals[:, :2]).all(axis=1) | beyond(vals[:, 2]))
    if wrong.size:
        raise CalculixError(f"{path}:{line_of[wrong[0]]}: expected integer 'row col' and a finite value below "
                            f"{ABSURD:g} in magnitude, got {lines[line_of[wrong[0]] - 1][:60]!r}: the file is damaged")
    rows, cols = vals[:, 0].astype(np.int64) - 1, vals[:, 1].astype(np.int64) - 1
    bad = np.flatnonzero((rows < 0) | (cols < 0) | (rows >= n) | (cols >= n))
    if bad.size:
        raise CalculixError(
            f"{path}:{line_of[bad[0]]}: index ({rows[bad[0]] + 1}, {cols[bad[0]] + 1}) outside the {n} dofs of the .dof "
            "file: the files come from different runs or are truncated"
        )
    lower = np.flatnonzero(rows > cols)
    if lower.size:
        raise CalculixError(
            f"{path}:{line_of[lower[0]]}: entry ({rows[lower[0]] + 1}, {cols[lower[0]] + 1}) below the diagonal: ccx "
            "stores the upper triangle only; this is not a ccx 2.20 MATRIXSTORAGE file"
        )
    key = rows * n + cols
    order = np.argsort(key, kind="stable")
    twice = order[1:][key[order[1:]] == key[order[:-1]]]
    if twice.size:
        k = int(twice.min())
        raise CalculixError(f"{path}:{line_of[k]}: entry ({rows[k] + 1}, {cols[k] + 1}) is listed a second time (it "
                            "would be summed): the file is damaged")
    diagonal = np.zeros(n)
    on = rows == cols
    diagonal[rows[on]] = vals[on, 2]
    missing = np.flatnonzero(~(diagonal > 0))
    if missing.size:
        raise CalculixError(f"{path}: no positive diagonal entry for row {missing[0] + 1} ({missing.size} rows of {n}): "
                            "ccx writes one for every free dof; the file is truncated or damaged")
    upper = sp.coo_matrix((vals[:, 2], (rows, cols)), shape=(n, n)).tocsr()
    full = (upper + upper.T - sp.diags(upper.diagonal())).tocsr()
    full.sort_indices()
    return full


def _read_text(path: Path) -> str:
    """The text of an exported ``.sti``/``.mas``/``.dof`` file (ASCII), :class:`CalculixError` naming it otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CalculixError(
            f"cannot read {str(path)!r} ({exc}); ccx writes it when the deck's last step is "
            "'*FREQUENCY, SOLVER=MATRIXSTORAGE' (see write_matrix_deck)"
        ) from None
    if raw[:2] == b"\x1f\x8b":
        raise CalculixError(f"{path}: the file is gzip-compressed; decompress it (gunzip) and give ccx's plain file")
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CalculixError(f"{path}:{line}: not ASCII text (byte {raw[exc.start]:#04x}): not the file ccx wrote, or "
                            "a damaged copy") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def read_matrix_storage(jobdir: str | os.PathLike, jobname: str):
    """Read the matrices ccx exported with ``*FREQUENCY, SOLVER=MATRIXSTORAGE``.

    Returns ``(K, M, dofs)``: ``K`` and ``M`` full symmetric :class:`scipy.sparse.csr_matrix` (ccx stores
    the upper triangle; ``M`` is None when there is no ``.mas`` file) and ``dofs`` ``(n, 2)`` int64, the
    ccx node id and direction (1, 2, 3 = x, y, z) of each row. Dofs fixed by ``*BOUNDARY`` are absent
    (not rows of the matrices); :func:`matrix_dofs_to_ours` maps the rows onto our numbering ``3 node +
    c`` and :func:`expand_matrix` embeds the matrices into it.
    """
    jobdir = Path(jobdir)
    dof_path = jobdir / f"{jobname}.dof"
    lines = _read_text(dof_path).splitlines()
    dofs = []
    seen: dict[tuple[int, int], int] = {}
    for number, ln in enumerate(lines, start=1):
        if not ln.strip():
            continue
        node, dot, direction = ln.strip().partition(".")
        if not (dot and node.isdigit() and direction.isdigit() and direction in ("1", "2", "3")) or int(node) < 1:
            raise CalculixError(f"{dof_path}:{number}: expected 'node.direction' (node id >= 1, direction 1-3), got "
                                f"{ln[:40]!r}")
        dof = (int(node), int(direction))
        if dof in seen:
            raise CalculixError(f"{dof_path}:{number}: dof {ln.strip()!r} is listed a second time (first at line "
                                f"{seen[dof]}): the file is damaged")
        seen[dof] = number
        dofs.append(dof)
    if not dofs:
        raise CalculixError(f"{dof_path}: no dofs: the model has no free degree of freedom, or the run failed")
    dofs = np.array(dofs, dtype=np.int64)
    n = len(dofs)
    K = _read_triplets(jobdir / f"{jobname}.sti", n)
    mas = jobdir / f"{jobname}.mas"
    M = _read_triplets(mas, n) if mas.exists() else None
    return K, M, dofs


def matrix_dofs_to_ours(dofs: np.ndarray, ids: "InpIds | None" = None) -> np.ndarray:
    """Our global dof indices ``3 node + c`` of ccx matrix rows ``dofs`` ``(n, 2)`` (node id, direction).

    ``ids``: the file ids of the mesh (:func:`read_inp`); None means the decks we write (node ``i`` has
    id ``i + 1``).
    """
    dofs = np.asarray(dofs, dtype=np.int64)
    nodes = dofs[:, 0] - 1 if ids is None else ids.node_index(dofs[:, 0])
    return 3 * nodes + dofs[:, 1] - 1


def expand_matrix(A, our_dofs: np.ndarray, n_dofs: int):
    """``A`` (rows/columns = ``our_dofs``) embedded in our numbering: ``(n_dofs, n_dofs)`` CSR, zero rows
    and columns at the dofs ccx removed (fixed by ``*BOUNDARY``)."""
    import scipy.sparse as sp

    coo = sp.coo_matrix(A)
    our_dofs = np.asarray(our_dofs, dtype=np.int64)
    return sp.csr_matrix((coo.data, (our_dofs[coo.row], our_dofs[coo.col])), shape=(n_dofs, n_dofs))


def write_matrix_deck(
    path: str | os.PathLike,
    mesh: Mesh,
    law,
    *,
    fixed: dict[str, tuple[int, ...]] | None = None,
    temperature: np.ndarray | None = None,
    density: float | None = None,
) -> None:
    """A ccx deck that only exports the assembled stiffness and mass matrices (read them with
    :func:`read_matrix_storage`).

    ``law``: :class:`~structrom.rom.materials.LinearElastic` (or the elastic part of a J2 law) on every element,
    written with ``*ELASTIC`` (temperature tables kept); ``fixed``: node set -> components (0, 1, 2) fixed
    with ``*BOUNDARY`` (these dofs are removed from the matrices); ``temperature``: ``(n_nodes,)`` nodal
    temperature written as ``*INITIAL CONDITIONS, TYPE=TEMPERATURE`` (the one ccx evaluates ``E(T)``
    at); ``density`` overrides the law's (ccx needs one: 1.0 when the law has none, so ``M`` is then the
    unit-density mass matrix). The only step is ``*FREQUENCY, SOLVER=MATRIXSTORAGE``.
    """
    from ..materials import J2Plasticity, LinearElastic

    elastic = law.elastic if isinstance(law, J2Plasticity) else law
    if not isinstance(elastic, LinearElastic):
        raise CalculixError(f"write_matrix_deck: law {type(law).__name__} is not supported; use LinearElastic")
    rho = float(density if density is not None else (elastic.density if elastic.density > 0 else 1.0))
    lines = ["*MATERIAL, NAME=MAT", "*ELASTIC"] + _table_lines([elastic.young, elastic.poisson])
    lines += ["*DENSITY", _g(rho), "*SOLID SECTION, ELSET=Eall, MATERIAL=MAT"]
    for name, comps in (fixed or {}).items():
        mesh.node_set(name)
        lines.append("*BOUNDARY")
        lines += [f"{name}, {c + 1}, {c + 1}" for c in sorted(set(int(c) for c in comps))]
    if temperature is not None:
        temperature = np.asarray(temperature, dtype=float)
        if temperature.shape != (mesh.n_nodes,) or not np.all(np.isfinite(temperature)):
            raise CalculixError(f"write_matrix_deck: temperature must be ({mesh.n_nodes},) finite values, "
                                f"got shape {temperature.shape}")
        lines.append("*INITIAL CONDITIONS, TYPE=TEMPERATURE")
        lines += [f"{n + 1}, {v}" for n, v in zip(range(mesh.n_nodes), _number_strings(temperature).tolist())]
    lines += ["*STEP", "*FREQUENCY, SOLVER=MATRIXSTORAGE", "*END STEP"]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        write_mesh_inp(f, mesh)
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
