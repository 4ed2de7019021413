"""An imported CalculiX deck driven by an imposed displacement (``*BOUNDARY, AMPLITUDE=`` with a nonzero
value) builds a reduced model with a lifting that reproduces the ccx displacements."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from structrom.rom.adapters.calculix import run_ccx, write_mesh_inp
from structrom.rom.fem.structured import box

DECK = """*INCLUDE, INPUT=mesh.inp
*MATERIAL, NAME=STEEL
*ELASTIC
200000, 0.3
*PLASTIC
250, 0
350, 0.05
*SOLID SECTION, ELSET=EALL, MATERIAL=STEEL
*AMPLITUDE, NAME=A1
0, 0, 1, 1, 2, {ratio}
*BOUNDARY
xmin, 1, 3
*STEP
*STATIC
0.25, 2, 1e-4, 0.25
*BOUNDARY, AMPLITUDE=A1
xmax, 3, 3, {value}
*NODE FILE
U
*EL FILE
S, E, PEEQ
*NODE PRINT, NSET=NALL
U
*EL PRINT, ELSET=EALL
S, PEEQ
*END STEP
"""


@pytest.mark.calculix
@pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")
def test_imported_imposed_displacement_deck_builds_a_lifted_model(tmp_path):
    from structrom.rom.adapters.calculix_import import import_calculix
    from structrom.rom.offline.snapshots import read_training_case
    from structrom.rom.adapters.calculix import read_inp
    from structrom.rom.online import ReducedModel

    runs = tmp_path / "runs"
    runs.mkdir()
    write_mesh_inp(runs / "mesh.inp", box((10.0, 2.0, 2.0), (8, 2, 2), element="C3D8"), all_nset="NALL",
                   all_elset="EALL")
    for i, (value, ratio) in enumerate([(0.1, -1.0), (0.14, 0.0)]):
        (runs / f"r{i:02d}.inp").write_text(DECK.format(value=value, ratio=ratio))
        run_ccx(runs, f"r{i:02d}", timeout=300, require=("frd", "dat"))
    import_calculix(runs / "r00.inp", runs, tmp_path / "m")
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "offline", str(tmp_path / "m" / "offline.toml")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    model = ReducedModel.load(tmp_path / "m" / "model.h5")
    assert model.data.lifting is not None
    mesh = read_inp(tmp_path / "m" / "mesh.inp")[0]
    case = read_training_case(tmp_path / "m" / "train" / "r01.h5", mesh)
    u = case.displacements()
    # measured 2.0e-6 (the .frd's 6 digits): the homogeneous part of the snapshots is set to zero on the
    # Dirichlet dofs (before that fix, the rounding of the prescribed values entered small modes: 2.2e-3)
    res = model.solve(case.loading)
    assert [f["name"] for f in model.data.lifting.fields] == ["PRESCRIBED_1_Z"]
    assert np.linalg.norm(res.displacement(increment=None) - u) <= 1e-4 * np.linalg.norm(u)
    face = mesh.node_set("PRESCRIBED_1_Z")
    np.testing.assert_allclose(res.displacement(increment=None)[:, face, 2], u[:, face, 2], rtol=0,
                               atol=1e-5 * np.abs(u).max())
