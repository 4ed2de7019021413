"""`structrom hifi` end to end under mpirun: same snapshots for 1, 2 and 3 ranks; clear errors on bad input."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpi_helpers import ROOT, mpirun
from structrom.rom.adapters.calculix import write_mesh_inp
from structrom.rom.fem.structured import box

pytestmark = pytest.mark.mpi

CONFIG = """
[units]
length = "mm"
force = "N"
stress = "MPa"
mass = "t"

[mesh]
file = "bar.inp"

[[material]]
law = {{ type = "j2_plasticity", elastic = {{ young = {{ temperatures = [20.0, 500.0], values = [200000.0, 150000.0] }}, poisson = 0.3, expansion = 1.2e-5, reference_temperature = 20.0, density = 7.8e-9 }}, hardening = {{ type = "linear", yield_stress = {{ temperatures = [20.0, 500.0], values = [300.0, 150.0] }}, modulus = 2000.0 }} }}

[[boundary]]
node_set = "xmin"
components = ["x", "y", "z"]

[loading]
times = [0.0, 0.5, 1.0, 1.5]
temperature = {{ type = "hot_spot", center = [5.0, 1.0, 2.0], radius = 2.0, intensity = 450.0, reference = 20.0, amplitude = [[0.0, 0.0], [1.0, 1.0], [1.5, 0.5]] }}
pressure = [{{ surface = "zmax", amplitude = [[0.0, 0.0], [1.0, 5.0], [1.5, 0.0]] }}]
centrifugal = {{ omega = [[0.0, 0.0], [1.0, 300.0]], axis_direction = [0.0, 1.0, 0.0] }}

[solver]
newton_rtol = 1e-9
linear = {{ rtol = 1e-12 }}

[output]
file = "{out}"
"""


def bar_case(tmp_path_factory, element: str) -> Path:
    """The bar of :data:`CONFIG` meshed with ``element`` (10 x 2 x 2 cells), one configuration per rank count."""
    d = tmp_path_factory.mktemp(f"hifi_{element}")
    write_mesh_inp(d / "bar.inp", box((10.0, 2.0, 2.0), (10, 2, 2), element=element))
    for n in (1, 2, 3):
        (d / f"cfg{n}.toml").write_text(CONFIG.format(out=f"out{n}/bar.h5"))
    return d


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    return bar_case(tmp_path_factory, "C3D20")


@pytest.mark.parametrize("mesh", ["C3D20", "C3D15"])
def test_snapshots_do_not_depend_on_rank_count(case, tmp_path_factory, mesh):
    # (C3D15: 15-node wedges, the pressure on their triangular and quadrilateral faces alike)
    case = case if mesh == "C3D20" else bar_case(tmp_path_factory, mesh)
    for n in (1, 2, 3):
        proc = mpirun(n, ["-m", "structrom.api.cli", "hifi", str(case / f"cfg{n}.toml")], cwd=ROOT)
        assert "increment 3/3" in proc.stdout
    files = [h5py.File(case / f"out{n}" / "bar.h5", "r") for n in (1, 2, 3)]
    u1, p1, s1 = (files[0][f"fields/{k}"][()] for k in ("displacement", "cumulated_plastic_strain", "stress"))
    assert u1.shape[0] == 3 and p1.max() > 1e-4  # the hot spot and the pressure yield the bar
    assert p1[2].max() >= p1[1].max()  # p never decreases
    for f in files[1:]:
        assert np.linalg.norm(f["fields/displacement"][()] - u1) <= 1e-8 * np.linalg.norm(u1)
        assert np.abs(f["fields/cumulated_plastic_strain"][()] - p1).max() <= 1e-8 * p1.max()
        assert np.abs(f["fields/stress"][()] - s1).max() <= 1e-7 * np.abs(s1).max()
    assert (case / "out2" / "bar.xdmf").exists() and not (case / "out2" / "bar.h5.partial").exists()
    for f in files:
        f.close()


def run_cli(cfg: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "structrom.api.cli", "hifi", str(cfg)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c.replace('stress = "MPa"', 'stress = "Pa"'), "units.stress 'Pa' is inconsistent"),
    (lambda c: c.replace('node_set = "xmin"', 'node_set = "clamp"'), "node set 'clamp' is not in the mesh"),
    (lambda c: c.replace('surface = "zmax"', 'surface = "top"'), "surface set 'top' is not in the mesh"),
    (lambda c: c.replace("intensity = 450.0", "intensity = nan"), "temperature at t=0 is non-finite"),
    (lambda c: c.replace('type = "j2_plasticity"', 'type = "j3"'), "material type 'j3' is unknown"),
    (lambda c: c.replace('file = "bar.inp"', 'file = "missing.inp"'), "mesh file not found"),
])
def test_bad_input_gives_one_clear_line(case, edit, expected):
    cfg = case / "bad.toml"
    cfg.write_text(edit(CONFIG.format(out="bad/bar.h5")))
    proc = run_cli(cfg)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr, proc.stderr
    assert not (case / "bad" / "bar.h5").exists()


def test_unknown_element_type_names_the_file(case):
    (case / "tri.inp").write_text(textwrap.dedent("""\
        *NODE
        1, 0, 0, 0
        2, 1, 0, 0
        3, 0, 1, 0
        *ELEMENT, TYPE=S3, ELSET=E
        1, 1, 2, 3
        """))
    cfg = case / "tri.toml"
    cfg.write_text(CONFIG.format(out="tri/out.h5").replace('file = "bar.inp"', 'file = "tri.inp"'))
    proc = run_cli(cfg)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "tri.inp" in proc.stderr and "S3" in proc.stderr, proc.stderr


def test_newton_failure_names_increment_and_remedy(case):
    cfg = case / "diverge.toml"
    cfg.write_text(CONFIG.format(out="diverge/bar.h5").replace(
        "newton_rtol = 1e-9", "newton_rtol = 1e-9\nnewton_max_iterations = 1\nmax_cutbacks = 1"))
    proc = run_cli(cfg)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    # which increment fails first depends on the linear tolerance (inexact Newton): any, named with its end time
    assert re.search(r"increment ending at t=[0-9.]+ failed after 1 cutbacks", proc.stderr), proc.stderr
    assert "Newton did not converge in 1 iterations" in proc.stderr and "smaller time increments" in proc.stderr
    assert not (case / "diverge" / "bar.h5").exists() and (case / "diverge" / "bar.h5.partial").exists()


def test_xdmf_opens_in_vtk_like_paraview(case):
    """ParaView's reader (VTK's vtkXdmfReader) sees every increment with the stored fields."""
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    h5 = case / "out2" / "bar.h5"
    if not h5.exists():
        mpirun(2, ["-m", "structrom.api.cli", "hifi", str(case / "cfg2.toml")], cwd=ROOT)
    reader = vtk.vtkXdmfReader()
    reader.SetFileName(str(h5.with_suffix(".xdmf")))
    reader.UpdateInformation()
    steps = reader.GetOutputInformation(0).Get(vtk.vtkStreamingDemandDrivenPipeline.TIME_STEPS())
    assert np.allclose(steps, [0.5, 1.0, 1.5])
    reader.UpdateTimeStep(steps[1])
    out = reader.GetOutputDataObject(0)  # one uniform grid per increment (a multiblock for older layouts)
    grid = out.GetBlock(0) if out.IsA("vtkMultiBlockDataSet") else out
    with h5py.File(h5, "r") as f:
        u = f["fields/displacement"][1]
        vm = f["fields/element_average/von_mises"][1]
        assert grid.GetNumberOfPoints() == u.shape[0] and grid.GetNumberOfCells() == vm.shape[0]
    assert np.allclose(vtk_to_numpy(grid.GetPointData().GetArray("displacement")), u)
    assert np.allclose(vtk_to_numpy(grid.GetCellData().GetArray("von_mises")), vm)


def test_petsc_options_from_the_command_line_take_effect(case):
    """`-ksp_type preonly -pc_type lu` on the command line: one 'iteration' per linear solve (direct)."""
    cfg = case / "direct.toml"
    cfg.write_text(CONFIG.format(out="direct/bar.h5"))
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "hifi", str(cfg), "-ksp_type", "preonly",
                           "-pc_type", "lu"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    its = [int(i) for m in re.findall(r"linear its \[([0-9, ]+)\]", proc.stdout) for i in m.split(",")]
    assert its and set(its) == {1}, proc.stdout
    assert "never read" not in proc.stdout + proc.stderr


def test_misspelt_petsc_options_are_named_not_ignored(case):
    """A PETSc option no solver object reads (misspelt, or of a type this run does not use), on the command line or
    in ``solver.linear.petsc_options``, had no effect without a word: one warning names each after the first solve;
    the options that are read are not named."""
    cfg = case / "misspelt.toml"
    text = CONFIG.format(out="misspelt/bar.h5").replace(
        "linear = { rtol = 1e-12 }",
        'linear = { rtol = 1e-12, petsc_options = { pc_gamg_threshold = "0.01", pc_gamg_thresold = "0.01" } }')
    assert "pc_gamg_thresold" in text
    cfg.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "hifi", str(cfg), "-ksp_rtoll", "1e-3",
                           "-ksp_max_it", "400"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stdout.splitlines() if "never read" in line]
    assert len(warnings) == 1, proc.stdout
    assert "-pc_gamg_thresold" in warnings[0] and "-ksp_rtoll" in warnings[0], warnings
    assert "-pc_gamg_threshold," not in warnings[0] and "-ksp_max_it" not in warnings[0], warnings
