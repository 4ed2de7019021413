"""Runs given as decks without results: solved by the in-house HF solver during ``structrom import calculix``
(against ccx's results of the same decks, the offline stage on the family, one rank against two)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mpi_helpers import mpirun
from test_calculix_import import MODEL, STEPS, _write

from structrom.rom.adapters.calculix import CalculixError, read_inp, run_ccx
from structrom.rom.adapters.calculix_import import import_calculix

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")

#: The two bricks with E(T) and thermal expansion, elastic (ccx's solution is then its one linear solve: the
#: comparison is at the .frd's print precision, not at ccx's Newton tolerance).
ELASTIC = MODEL.replace("*PLASTIC\n200,0,20\n300,0.1,20\n", "")
#: Three runs: the force, its direction and the pressure differ.
RUNS = {"a": STEPS, "b": STEPS.replace("LOAD,1,60", "LOAD,1,40\nLOAD,2,-25"),
        "c": STEPS.replace("LOAD,1,60", "LOAD,1,-30").replace("2,P4,10.", "2,P4,25.")}


def _snapshot(path):
    with h5py.File(path, "r") as f:
        return (f["increments/time"][()], f["fields/displacement"][()],
                json.loads(f.attrs["metadata"])["config"])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "structrom.api.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=600)


@needs_ccx
@pytest.mark.calculix
def test_decks_without_results_are_solved_like_ccx_and_build_a_model(tmp_path):
    """A family of three decks without results imports through the HF solver: its snapshots have the times,
    loading and displacements of the same decks imported with ccx's results (to the .frd's six digits); the
    offline stage builds a model of it that replays a training run. A family mixing runs with and without
    results is refused naming them; a deck the HF solver cannot take is refused before any solve."""
    ccx, decks = tmp_path / "ccx", tmp_path / "decks"
    for name, steps in RUNS.items():
        _write(ccx.mkdir(exist_ok=True) or ccx, ELASTIC + steps, f"{name}.inp")
        _write(decks.mkdir(exist_ok=True) or decks, ELASTIC + steps, f"{name}.inp")
        run_ccx(ccx, name, timeout=120)
    (decks / "notes.inp").write_text("*NODE\n99,0,0,0\n")  # (an include without *STEP: no run)
    import_calculix(ccx / "a.inp", ccx, tmp_path / "m_ccx")
    proc = _cli("import", "calculix", decks / "a.inp", "--runs", decks, "--out", tmp_path / "m")
    assert proc.returncode == 0, proc.stderr
    assert "no results (.frd/.dat) beside the 3 run decks: solving them with the in-house HF solver" in proc.stdout
    assert "[3/3] c: done" in proc.stdout and "next: structrom offline" in proc.stdout
    assert "ignored: *NODE FILE, " in proc.stdout and "the HF solver writes displacements" in proc.stdout
    assert json.loads((tmp_path / "m" / "family.json").read_text())["runs"] == ["a", "b", "c"]
    for name in RUNS:
        t_ccx, u_ccx, cfg_ccx = _snapshot(tmp_path / "m_ccx" / "train" / f"{name}.h5")
        t_hf, u_hf, cfg_hf = _snapshot(tmp_path / "m" / "train" / f"{name}.h5")
        assert np.allclose(t_hf, t_ccx, rtol=1e-12) and len(t_hf) == 2  # ccx: one increment per step of a linear problem
        assert cfg_hf["boundary"] == cfg_ccx["boundary"] and cfg_hf["material"] == cfg_ccx["material"]
        for key in ("times", "pressure", "force"):
            assert cfg_hf["loading"][key] == cfg_ccx["loading"][key], key
        # the .frd prints 6 significant digits (half a unit of the last: 5e-6 of each value); the HF solve of
        # this linear problem is exact to its linear tolerance (1e-10)
        assert np.all(np.abs(u_hf - u_ccx) <= 5e-6 * np.abs(u_ccx) + 1e-12 * np.abs(u_ccx).max()), name
        assert np.abs(u_ccx).max() > 1e-4
    # the offline stage on the family (unchanged offline.toml), and its model replays run b
    proc = _cli("offline", tmp_path / "m" / "offline.toml")
    assert proc.returncode == 0, proc.stderr
    from structrom.rom.offline.snapshots import read_training_case
    from structrom.rom.online import ReducedModel

    case = read_training_case(tmp_path / "m" / "train" / "b.h5", read_inp(tmp_path / "m" / "mesh.inp")[0])
    u = ReducedModel.load(tmp_path / "m" / "model.h5").solve(case.loading).displacement(increment=None)
    assert np.linalg.norm(u - case.displacements()) <= 1e-6 * np.linalg.norm(case.displacements())
    # a family mixing runs with and without results: refused, naming both
    shutil.copy(ccx / "a.frd", decks / "a.frd")
    with pytest.raises(CalculixError, match=r"runs b, c have no results \(.frd/.dat\) beside their decks while runs "
                                            r"a have: .* --solve hf"):
        import_calculix(decks / "a.inp", decks, tmp_path / "mixed")
    # ... or solved alike with --solve hf (the results beside a are not read)
    lines = []
    res = import_calculix(decks / "a.inp", decks, tmp_path / "all", solve="hf", log=lines.append)
    assert any("the results beside a are not read" in ln for ln in lines)
    assert np.array_equal(_snapshot(res.snapshots[0])[1], _snapshot(tmp_path / "m" / "train" / "a.h5")[1])
    # a deck the HF solver cannot take (y and z free: the stiffness is singular) is refused by name before any solve
    bad = tmp_path / "bad"
    for name, steps in RUNS.items():
        _write(bad.mkdir(exist_ok=True) or bad, ELASTIC.replace("FIX,1,3", "FIX,1,1") + steps, f"{name}.inp")
    proc = _cli("import", "calculix", bad / "a.inp", "--runs", bad, "--out", tmp_path / "m_bad")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"structrom: error: run a ({bad / 'a.inp'}): the in-house HF solver cannot solve it: boundary: no " \
           "[[boundary]] prescribes y, z on the mesh" in proc.stderr
    assert not list((tmp_path / "m_bad" / "train").glob("*.h5")) and not (tmp_path / "m_bad" / "offline.toml").exists()


def test_decks_solved_on_two_and_three_ranks_as_on_one(tmp_path):
    """`mpirun -n 2` and `-n 3 structrom import calculix ... --solve hf`: each run solved on every rank,
    the snapshots (plastic bricks) those of the serial import to the Newton tolerance; a deck the HF solver cannot
    take refused once, on every rank, before any solve."""
    # two bricks for 2 ranks; a third brick (the load moved to its end face) for 3 ranks, one element each
    three = MODEL.replace("12,2,1,1\n", "12,2,1,1\n13,3,0,0\n14,3,1,0\n15,3,0,1\n16,3,1,1\n").replace(
        "2,2,9,10,3,6,11,12,7\n", "2,2,9,10,3,6,11,12,7\n3,9,13,14,10,11,15,16,12\n").replace(
        "*NSET,NSET=LOAD\n9,10,11,12\n", "*NSET,NSET=LOAD\n13,14,15,16\n")
    for model, decks in ((MODEL, tmp_path / "decks"), (three, tmp_path / "decks3")):
        decks.mkdir()
        for name, steps in list(RUNS.items())[:2]:
            _write(decks, model + steps, f"{name}.inp")
        # (GAMG has no coarse problem on two elements: Jacobi-preconditioned CG, as a user passes it)
        import_calculix(decks / "a.inp", decks, tmp_path / f"one_{decks.name}",
                        solver={"linear": {"pc_type": "jacobi"}})
    decks = tmp_path / "decks"
    # the HF [solver] table from a file (--solver): a tighter Newton tolerance, Jacobi given there this time
    (tmp_path / "solver.toml").write_text('[solver]\nnewton_rtol = 1e-10\n[solver.linear]\npc_type = "jacobi"\n')
    for ranks, given in ((2, "decks"), (3, "decks3")):
        proc = mpirun(ranks, ["-m", "structrom.api.cli", "import", "calculix", str(tmp_path / given / "a.inp"),
                              "--runs", str(tmp_path / given), "--out", str(tmp_path / f"ranks_{given}"), "--solve",
                              "hf", "--solver", str(tmp_path / "solver.toml")])
        assert f"[1/2] a: HF solve of 5 increments on {ranks} ranks" in proc.stdout
        assert proc.stdout.count("next: structrom") == 1
    for name, given in (("a", "decks"), ("b", "decks"), ("a", "decks3"), ("b", "decks3")):
        with h5py.File(tmp_path / f"one_{given}" / "train" / f"{name}.h5") as f1, \
                h5py.File(tmp_path / f"ranks_{given}" / "train" / f"{name}.h5") as f2:
            assert json.loads(f2.attrs["metadata"])["n_ranks"] == {"decks": 2, "decks3": 3}[given]
            assert '"newton_rtol": 1e-10' in f2.attrs["metadata"] and '"pc_type": "jacobi"' in f2.attrs["metadata"]
            u1, u2 = f1["fields/displacement"][()], f2["fields/displacement"][()]
            p1, p2 = f1["fields/cumulated_plastic_strain"][()], f2["fields/cumulated_plastic_strain"][()]
        # Newton stops at a residual 1e-8 of the load's: the displacements agree to ~1e-8 of their size
        assert np.linalg.norm(u1 - u2) <= 1e-7 * np.linalg.norm(u1), name
        assert np.abs(p1 - p2).max() <= 1e-7 * np.abs(p1).max() and p1.max() > 1e-4, name
    # a deck the solver cannot take: refused on every rank before any solve, reported once, exit code 2, no hang
    bad = tmp_path / "bad"
    bad.mkdir()
    _write(bad, MODEL.replace("FIX,1,3", "FIX,1,1") + STEPS, "a.inp")
    with pytest.raises(AssertionError, match=r"failed \(2\)") as failed:
        mpirun(2, ["-m", "structrom.api.cli", "import", "calculix", str(bad / "a.inp"), "--runs", str(bad), "--out",
                   str(tmp_path / "bad_out")], timeout=120)
    assert str(failed.value).count("the in-house HF solver cannot solve it: boundary: no [[boundary]]") == 1
    # a misspelt key of the solver file is named before anything is read or solved
    (tmp_path / "typo.toml").write_text("[solver]\nnewton_rtoll = 1e-10\n")
    typo = subprocess.run([sys.executable, "-m", "structrom.api.cli", "import", "calculix", str(decks / "a.inp"),
                           "--runs", str(decks), "--out", str(tmp_path / "typo_out"), "--solve", "hf", "--solver",
                           str(tmp_path / "typo.toml")], capture_output=True, text=True, timeout=120)
    assert typo.returncode == 2 and "typo.toml: solver.newton_rtoll: unknown key; did you mean 'newton_rtol'" in \
        typo.stderr, typo.stderr
    assert "Traceback" not in str(failed.value) and not list((tmp_path / "bad_out" / "train").glob("*.h5"))
