"""Hostile and realistic-but-wrong input to `structrom offline` and `structrom hifi`: one clear error naming the
file or field before any computation, never a traceback, a hang or an overwritten input."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from mpi4py import MPI

from mpi_helpers import ROOT, mpirun
from offline_fixtures import TRAINING, hifi_config, offline_config, run_training, write_mesh
from structrom.rom.adapters.calculix import write_mesh_inp
from structrom.rom.config import ConfigError
from structrom.rom.fem.mesh import CellBlock, Mesh
from structrom.rom.fem.structured import box
from structrom.rom.hifi.config import load_config
from structrom.rom.hifi.run import run_hifi
from structrom.rom.offline.config import load_offline_config
from structrom.rom.offline.pipeline import run_offline
from structrom.rom.offline.snapshots import SnapshotError


@pytest.fixture(scope="module")
def training(tmp_path_factory) -> Path:
    """Three HF cases of the clamped bar: case_0 and case_1 yield, case_2 stays elastic."""
    d = tmp_path_factory.mktemp("hostile")
    write_mesh(d)
    run_training(d, cases=TRAINING[:3])
    return d


def _copy(training: Path, tmp_path: Path, files: str = '["train/case_*.h5"]', **kw) -> Path:
    shutil.copy(training / "bar.inp", tmp_path)
    shutil.copytree(training / "train", tmp_path / "train")
    cfg = offline_config(tmp_path, **kw)
    cfg.write_text(cfg.read_text().replace('files = ["train/case_*.h5"]', f"files = {files}"))
    return cfg


def _offline(cfg: Path) -> Path:
    return run_offline(load_offline_config(cfg), MPI.COMM_SELF, log=lambda *a: None)


def _edit(path: Path, edit) -> None:
    with h5py.File(path, "r+") as f:
        edit(f)


def _meta(f: h5py.File, change) -> None:
    meta = json.loads(f.attrs["metadata"])
    change(meta)
    f.attrs["metadata"] = json.dumps(meta)


def _si(meta: dict) -> None:
    meta["units"] = meta["config"]["units"] = {"length": "m", "force": "N", "stress": "Pa", "mass": "kg",
                                               "time": "s", "temperature": "K"}


@pytest.mark.parametrize("files, edit, expected", [
    ('["train"]', None, "train: is a directory, not a snapshot file"),
    ('["train/case_0.h5", "train/case_1.h5", "train/case_0.h5"]', None, "(listed twice in snapshots.files, or a copy)"),
    ('["train/case_*.h5"]', lambda f: f["fields/displacement"].__setitem__((2, 5, 1), 1e300),
     "case_1.h5: a displacement of 1e+300 for a mesh of size"),
    ('["train/case_*.h5"]', lambda f: f.attrs.__delitem__("metadata"), "case_1.h5: no readable metadata attribute"),
    ('["train/case_*.h5"]', lambda f: f.__delitem__("increments/time"), "case_1.h5: no increments/time dataset"),
    ('["train/case_*.h5"]', lambda f: [f[k].resize(4, axis=0) for k in ("fields/displacement", "increments/time")],
     "case_1.h5: stored increment times [0.25, 0.5, 0.75, 1.0] differ from the configured loading times"),
    ('["train/case_*.h5"]', lambda f: _meta(f, lambda m: m["config"]["solver"].update(newton_rtol="x")),
     "case_1.h5: metadata config: solver.newton_rtol"),
    ('["train/case_*.h5"]', lambda f: _meta(f, _si), "case_1.h5: units {'length': 'm'"),
])
def test_bad_snapshot_files_are_named(training, tmp_path, files, edit, expected):
    cfg = _copy(training, tmp_path, files)
    if edit is not None:
        _edit(tmp_path / "train" / "case_1.h5", edit)
    with pytest.raises(SnapshotError) as err:
        _offline(cfg)
    assert expected in str(err.value)
    assert not (tmp_path / "model.h5").exists()


def test_offline_output_may_not_overwrite_a_snapshot(training, tmp_path):
    cfg = _copy(training, tmp_path, out="train/case_1.h5")
    before = (tmp_path / "train" / "case_1.h5").read_bytes()
    with pytest.raises(ConfigError, match=r"output.file .*case_1.h5: is an input of this run"):
        _offline(cfg)
    assert (tmp_path / "train" / "case_1.h5").read_bytes() == before


def test_offline_output_in_an_unwritable_place_is_refused_first(training, tmp_path):
    (tmp_path / "blocker").write_text("a file where the output's directory should be")
    cfg = _copy(training, tmp_path, out="blocker/model.h5")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"output.file .*blocker/model.h5: cannot write in"):
        _offline(cfg)
    assert time.perf_counter() - t0 < 5.0  # before the POD, replay and cubature, not after


def test_infinite_indicator_tolerance_is_refused(training, tmp_path):
    cfg = _copy(training, tmp_path)
    cfg.write_text(cfg.read_text().replace("[indicator]\ntolerance = 0.05", "[indicator]\ntolerance = inf"))
    with pytest.raises(ConfigError, match="indicator.tolerance: Input should be a finite number"):
        load_offline_config(cfg)


def test_a_plastic_and_an_elastic_case_calibrate(training, tmp_path):
    """Leaving the one case that yields out leaves no plastic strain to reduce (an empty dual basis): the
    fold's model is built all the same and the calibration sees its full error."""
    with h5py.File(training / "train" / "case_2.h5", "r") as f:
        assert f["fields/cumulated_plastic_strain"][()].max() == 0.0  # elastic
    cfg = _copy(training, tmp_path, '["train/case_0.h5", "train/case_2.h5"]')
    out = _offline(cfg)
    with h5py.File(out, "r") as f:
        cases = json.loads(f["indicator/calibration"].attrs["cases"])
    left_out_plastic = next(c for c in cases if c["case"] == "case_0")
    assert left_out_plastic["errors"]["cumulated_plastic_strain"] == pytest.approx(1.0)


# -- structrom hifi ------------------------------------------------------------------------------------------
def _hifi_case(tmp_path: Path, out: str = "out/bar.h5") -> Path:
    write_mesh(tmp_path)
    cfg = hifi_config(tmp_path, "case", *TRAINING[0])
    cfg.write_text(cfg.read_text().replace('file = "train/case.h5"', f'file = "{out}"'))
    return cfg


def test_hifi_output_may_not_overwrite_the_mesh(tmp_path):
    cfg = _hifi_case(tmp_path, out="bar.inp")
    before = (tmp_path / "bar.inp").read_text()
    with pytest.raises(ConfigError, match=r"output.file .*bar.inp: is an input of this run"):
        run_hifi(load_config(cfg), MPI.COMM_SELF, log=lambda *a: None)
    assert (tmp_path / "bar.inp").read_text() == before


def test_hifi_without_supports_is_refused(tmp_path):
    cfg = _hifi_case(tmp_path)
    cfg.write_text(cfg.read_text().replace('[[boundary]]\nnode_set = "xmin"\ncomponents = ["x", "y", "z"]\n', ""))
    with pytest.raises(ConfigError, match=r"no \[\[boundary\]\] prescribes x, y, z on the mesh: the stiffness is "
                                          "singular"):
        run_hifi(load_config(cfg), MPI.COMM_SELF, log=lambda *a: None)


def test_hifi_disconnected_part_without_supports_is_refused(tmp_path):
    """A second body 10 mm away with no boundary: a direct solver gave it an arbitrary rigid-body position."""
    cfg = _hifi_case(tmp_path)
    bar = box((10.0, 2.0, 2.0), (10, 2, 2), element="C3D20R")
    cube = box((2.0, 2.0, 2.0), (1, 1, 1), element="C3D20R")
    mesh = Mesh(np.vstack([bar.points, cube.points + [20.0, 0.0, 0.0]]),
                [bar.blocks[0], CellBlock("C3D20R", cube.blocks[0].connectivity + bar.n_nodes)],
                node_sets=bar.node_sets, surface_sets=bar.surface_sets)
    write_mesh_inp(tmp_path / "bar.inp", mesh)
    with pytest.raises(ConfigError, match=r"prescribes x, y, z on part 2 of 2 disconnected parts of the mesh "
                                          r"\(20 nodes, one at \(20.0, 0.0, 0.0\)\)"):
        run_hifi(load_config(cfg), MPI.COMM_SELF, log=lambda *a: None)


MPI_ENV = dict(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def _mpirun2(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(["mpirun", "-n", "2", "--bind-to", "none", sys.executable, *args], capture_output=True,
                          text=True, cwd=ROOT, env=dict(os.environ, **MPI_ENV), timeout=120)
    return proc, time.perf_counter() - t0


@pytest.mark.mpi
def test_an_inverted_element_is_reported_once_on_two_ranks(tmp_path):
    """The element is found by the rank that owns it only; before, the other rank waited forever in its next
    collective."""
    cfg = _hifi_case(tmp_path)
    mesh = box((10.0, 2.0, 2.0), (10, 2, 2), element="C3D20R")
    conn = mesh.blocks[0].connectivity.copy()
    conn[3] = conn[3][[4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 16, 17, 18, 19]]  # mirrored
    write_mesh_inp(tmp_path / "bar.inp", Mesh(mesh.points, [CellBlock("C3D20R", conn)], node_sets=mesh.node_sets,
                                              surface_sets=mesh.surface_sets))
    proc, seconds = _mpirun2(["-m", "structrom.api.cli", "hifi", str(cfg)])
    assert proc.returncode == 2 and seconds < 60 and "Traceback" not in proc.stderr
    assert proc.stderr.count("has a non-positive Jacobian determinant") == 1, proc.stderr
    assert not (tmp_path / "out" / "bar.h5").exists()


@pytest.mark.mpi
def test_an_error_on_one_rank_stops_every_rank_with_its_message(tmp_path):
    """A command whose rank 1 fails alone while rank 0 waits in a collective: rank 1's message, then every
    rank stopped within the handshake's wait, not a hang."""
    program = tmp_path / "alone.py"
    program.write_text(
        "import sys\n"
        "from mpi4py import MPI\n"
        "from structrom.api import cli\n"
        "from structrom.rom.config import ConfigError\n"
        "def offline(args, rest):\n"
        "    cli._watch_failures(MPI.COMM_WORLD)\n"
        "    if MPI.COMM_WORLD.Get_rank() == 1:\n"
        "        raise ConfigError('only rank 1 sees this')\n"
        "    MPI.COMM_WORLD.bcast(None, root=1)  # waits for rank 1 forever\n"
        "    return 0\n"
        "cli._offline = offline\n"
        "sys.exit(cli.main(['offline', 'x.toml']))\n")
    proc, seconds = _mpirun2([str(program)])
    assert proc.returncode != 0 and seconds < cli_wait() + 30, (seconds, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "structrom: error: rank 1: only rank 1 sees this" in proc.stderr, proc.stderr
    assert "rank 1 failed alone: stopping all 2 ranks" in proc.stderr


def cli_wait() -> float:
    from structrom.api.cli import ALONE_AFTER_SECONDS

    return ALONE_AFTER_SECONDS


def test_one_case_says_that_the_indicator_is_not_calibrated(training, tmp_path):
    cfg = _copy(training, tmp_path, '["train/case_0.h5"]')
    lines = []
    run_offline(load_offline_config(cfg), MPI.COMM_SELF, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert any("indicator.calibrate needs at least 2 training cases and there is 1" in line for line in lines)


def test_hifi_misspelt_temperature_key_is_refused(tmp_path):
    """`referance = 20` silently left the hot spot's reference at 0: a bar 20 degrees colder than meant."""
    cfg = _hifi_case(tmp_path)
    cfg.write_text(cfg.read_text().replace("reference = 20.0, amplitude", "referance = 20.0, amplitude"))
    with pytest.raises(ConfigError, match=r"temperature: \['referance'\] not known for a 'hot_spot' temperature"):
        run_hifi(load_config(cfg), MPI.COMM_SELF, log=lambda *a: None)


def test_dictionary_classifier_with_a_one_loading_cluster():
    """Three loadings in clusters of 2 and 1: the leave-one-out fold without the lone loading has one class
    left (scikit-learn's "needs samples of at least 2 classes" ended `structrom dictionary` before)."""
    from structrom.rom.offline.dictionary import fit_classifier

    X = np.array([[0.0, 1.0], [0.2, 1.1], [5.0, -2.0]])
    classifier, accuracy = fit_classifier(X, np.array([0, 0, 1]), 2, 1.0)
    assert accuracy["training_accuracy"] == 1.0
    assert accuracy["leave_one_out_accuracy"] == pytest.approx(2 / 3)  # the lone loading is misclassified


def test_hifi_times_and_end_time_together_are_refused(tmp_path):
    cfg = _hifi_case(tmp_path)
    cfg.write_text(cfg.read_text().replace("[loading]\n", "[loading]\nend_time = 5.0\nincrements = 3\n"))
    with pytest.raises(ConfigError, match="give loading.times, or loading.end_time and loading.increments, not both"):
        load_config(cfg)


def test_hifi_two_materials_on_the_same_elements_are_refused(tmp_path):
    """The first [[material]] took the elements and the second was ignored there without a word."""
    cfg = _hifi_case(tmp_path)
    text = cfg.read_text()
    law = text[text.index("[[material]]"):text.index("[[boundary]]")]
    cfg.write_text(text.replace(law, law.replace("law = ", 'element_set = "Eall"\nlaw = ')
                                + law.replace("law = ", 'element_set = "all"\nlaw = ')))
    with pytest.raises(ConfigError, match=r"material\[0\] \(element_set 'Eall'\) and material\[1\] \(element_set "
                                          r"'all'\) both hold 40 elements"):
        run_hifi(load_config(cfg), MPI.COMM_SELF, log=lambda *a: None)


def test_greedy_hifi_configuration_is_read_with_the_offline_configuration(training, tmp_path):
    """A missing [greedy] hifi file was found only after the whole offline stage."""
    cfg = _copy(training, tmp_path)
    cfg.write_text(cfg.read_text() + '\n[greedy]\nhifi = "missing.toml"\n[greedy.parameters]\np = [4.0, 8.0]\n'
                   '[greedy.loading]\ntimes = [0.0, 1.0]\npressure = { zmax = [[0.0, 0.0], [1.0, "$p"]] }\n')
    with pytest.raises(ConfigError, match="missing.toml: configuration file not found"):
        load_offline_config(cfg)


def test_more_ranks_than_elements_is_a_known_error():
    """`mpirun -n 2 structrom hifi` on a one-element mesh: one line, not a ValueError traceback."""
    from structrom.mpi.errors import StructromError
    from structrom.mpi.partition import recursive_bisection

    with pytest.raises(StructromError, match="cannot split 1 elements into 2 parts: use fewer MPI ranks"):
        recursive_bisection(np.zeros((1, 3)), 2)


def test_offline_output_may_not_overwrite_its_configuration(training, tmp_path):
    cfg = _copy(training, tmp_path, out="offline.toml")
    before = cfg.read_text()
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "offline", str(cfg)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "output.file is this configuration file and would overwrite it" in proc.stderr, proc.stderr
    assert cfg.read_text() == before


def test_hifi_unknown_krylov_type_is_named(tmp_path):
    """PETSc's error 86 came out as a traceback."""
    from structrom.mpi.linear_solver import LinearSolverError

    cfg = _hifi_case(tmp_path)
    cfg.write_text(cfg.read_text().replace('ksp_type = "preonly"', 'ksp_type = "foo"'))
    with pytest.raises(LinearSolverError, match="solver.linear.ksp_type 'foo': Unable to find requested KSP type foo"):
        run_hifi(load_config(cfg), MPI.COMM_SELF, log=lambda *a: None)


def _orphan_run(tmp_path: Path, ranks: int, orphan: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """The bar's HF run on ``ranks`` ranks, with a node of no element added to its mesh file first (``orphan``):
    ``(points (n_nodes, 3), displacements (n_inc, n_nodes, 3), output)``."""
    tmp_path.mkdir()
    cfg = _hifi_case(tmp_path)
    if orphan:
        inp = tmp_path / "bar.inp"
        inp.write_text(inp.read_text().replace("*NODE\n", "*NODE\n9999,50,50,50\n", 1))
    proc = mpirun(ranks, ["-m", "structrom.api.cli", "hifi", str(cfg)], cwd=ROOT)
    with h5py.File(tmp_path / "out" / "bar.h5", "r") as f:
        return f["mesh/points"][()], f["fields/displacement"][()], proc.stdout + proc.stderr


@pytest.mark.mpi
def test_hifi_node_of_no_element_is_held_at_zero(tmp_path):
    """A node no element uses (a leftover *NODE line, a geometry point): PETSc stopped on a missing diagonal entry
    (a traceback), then the run was refused. It has no stiffness: it is held at zero displacement, as CalculiX reports
    it, with a warning naming it, and the other nodes move as without it, on 1 and 2 ranks."""
    points, u, _ = _orphan_run(tmp_path / "plain", 1, False)
    for ranks in (1, 2):
        points_o, u_o, out = _orphan_run(tmp_path / f"orphan{ranks}", ranks, True)
        assert "warning: bar.inp: 1 nodes belong to no element (one at (50.0, 50.0, 50.0))" in out, out
        assert "held at zero displacement" in out
        far = np.all(points_o == [50.0, 50.0, 50.0], axis=1)
        assert np.count_nonzero(far) == 1 and np.all(u_o[:, far] == 0.0)
        # the same nodes (by coordinates) move alike: to the linear solver's tolerance (1e-10 relative)
        order, order_o = np.lexsort(points.T), np.lexsort(points_o[~far].T)
        assert np.array_equal(points[order], points_o[~far][order_o])
        a, b = u[:, order], u_o[:, ~far][:, order_o]
        assert np.abs(a - b).max() <= 1e-8 * np.abs(a).max(), np.abs(a - b).max() / np.abs(a).max()


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.mkdir(), "is a directory, not a configuration file"),
    (lambda p: p.write_bytes(b'a = "\xff\xfe"\n'), r"not a TOML text file \(not UTF-8"),
])
def test_configuration_path_that_is_no_text_file(tmp_path, make, expected):
    """A directory or a non-UTF-8 file given as the configuration: IsADirectoryError / UnicodeDecodeError
    tracebacks before."""
    path = tmp_path / "offline.toml"
    make(path)
    with pytest.raises(ConfigError, match=expected):
        load_offline_config(path)
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_enrich_base_configuration_from_a_damaged_snapshot_is_named(training, tmp_path):
    from structrom.rom.offline.enrich import hifi_base_config

    model = _offline(_copy(training, tmp_path, '["train/case_0.h5", "train/case_1.h5"]'))
    _edit(tmp_path / "train" / "case_0.h5", lambda f: f.attrs.__delitem__("metadata"))
    with pytest.raises(ConfigError, match=r"case_0.h5: the model's training snapshot holds no readable HF "
                                          r"configuration \(KeyError\): pass .* \(--config base.toml\)"):
        hifi_base_config(model)


@pytest.mark.parametrize("tables, expected", [
    ('[ecm]\nselection = "greedy"\nblock_size = 32\n',
     r'ecm.block_size: not read with selection = "greedy" \(only selection = "block" reads it\): remove block_size, or '
     r'choose selection = "block"'),
    ('[ecm]\nselection = "all"\ntolerance = 1e-5\nremoval = "lawson_hanson"\n',
     r'ecm.removal: not read with selection = "all".*\n.*ecm.tolerance: not read with selection = "all"'),
    ('[ecm]\nmax_rows = 8192\n', r'ecm.max_rows: not read with selection = "block", integrand = "factored" \(only '
                                 r'integrand = "assembled"'),
    ('[ecm]\nintegrand = "assembled"\nstress_compression = false\n',
     r'ecm.stress_compression: not read with selection = "block", integrand = "assembled"'),
    ('[ecm]\nstress_compression = false\nrow_tolerance = 1e-6\n', r"ecm.row_tolerance: not read with .*"
                                                                   r"stress_compression = false"),
    ('[ecm]\nshortlist = 0\nfull_scores_every = 2\n', r'ecm.full_scores_every: not read with selection = "block", '
                                                      r'shortlist = 0 \(only selection = "block" with shortlist > 0'),
    ("[indicator]\ncalibrate = false\nmargin = 1.5\n", r"indicator.margin: not read with calibrate = false \(only "
                                                       r"calibrate = true reads it\)"),
])
def test_keywords_the_chosen_mode_does_not_read_are_refused(tmp_path, tables, expected):
    """A keyword given for a mode that does not read it was ignored without a word (the run was not what the file
    said); the defaults never count, and the keywords the mode reads pass."""
    from structrom.rom.offline.config import GreedyConfig
    from structrom.rom.config import unread_keywords
    from structrom.rom.offline.unread_keywords import READ_WHEN

    cfg = tmp_path / "offline.toml"
    cfg.write_text('[snapshots]\nfiles = ["train/*.h5"]\n' + tables)
    with pytest.raises(ConfigError, match=rf"offline.toml: {expected}"):
        load_offline_config(cfg)
    for fine in ('[ecm]\nselection = "all"\n', '[ecm]\nselection = "greedy"\nremoval = "lawson_hanson"\n',
                 '[ecm]\nintegrand = "assembled"\nmax_rows = 10\nrow_tolerance = 1e-6\n',
                 "[ecm]\nshortlist = 10\nfull_scores_every = 2\n", "[indicator]\nmargin = 1.5\n"):
        cfg.write_text('[snapshots]\nfiles = ["train/*.h5"]\n' + fine)
        load_offline_config(cfg)
    # a configuration dumped with every field (a model's provenance, read back by the enrichment) is not checked
    from types import SimpleNamespace

    from structrom.rom.offline.config import OfflineConfig
    from structrom.rom.offline.update import model_settings

    built = OfflineConfig(snapshots={"files": ["-"]}, ecm={"selection": "all"})
    assert model_settings(SimpleNamespace(provenance={"config": built.model_dump(mode="json")})).ecm.selection == "all"
    greedy = GreedyConfig(hifi="h.toml", parameters={"p": (0.0, 1.0)}, loading={"x": "$p"}, seed=3)
    assert unread_keywords(greedy, READ_WHEN["greedy"]) == ["seed"]
    cfg.write_text('kind = "dictionary"\n[snapshots]\nfiles = ["train/*.h5"]\n[dictionary]\nclusters = 1\n'
                   'overlap = 0.5\n')
    with pytest.raises(ConfigError, match=r"dictionary.overlap: not read with clusters = 1 \(only clusters > 1"):
        load_offline_config(cfg)


def test_separated_fe_kernel_keywords_with_interpolated_entries_are_refused(tmp_path):
    """``[separated.online]`` material, temperature and time build the FE kernel's entries only: with
    ``entries = "interpolation"`` they were ignored without a word."""
    cfg = tmp_path / "separated.toml"
    cfg.write_text('kind = "separated"\n[separated]\nparameter_names = ["a"]\nrhs = "b.npy"\n'
                   '[[separated.training]]\nmu = [1.0]\nmatrix = "m1"\n[[separated.training]]\nmu = [2.0]\n'
                   'matrix = "m2"\n[separated.online]\ntime = 2.0\n')
    with pytest.raises(ConfigError, match=r'separated.toml: separated.online.time: not read with entries = '
                                          r'"interpolation" \(only entries = "fe_kernel" reads it\)'):
        load_offline_config(cfg)


def test_hifi_eta_max_without_the_inexact_newton_is_refused(tmp_path):
    """``eta_max`` caps the Eisenstat-Walker forcing terms: with ``eisenstat_walker = false`` it was ignored."""
    cfg = _hifi_case(tmp_path)
    text = cfg.read_text()
    cfg.write_text(text.replace('ksp_type = "preonly"', 'ksp_type = "preonly", eisenstat_walker = false, eta_max = 0.1'))
    with pytest.raises(ConfigError, match=r"case.toml: solver.linear.eta_max: not read with eisenstat_walker = false "
                                          r"\(only eisenstat_walker = true reads it\)"):
        load_config(cfg)
    cfg.write_text(text.replace('ksp_type = "preonly"', 'ksp_type = "preonly", eta_max = 0.1'))
    assert load_config(cfg).solver.linear.eta_max == 0.1
