"""Run decks solved by CalculiX during ``structrom import calculix --solve ccx``: the snapshots of the same decks
run through ccx beforehand; a failing run, a missing ccx and mpirun refused by name."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from mpi_helpers import mpirun
from test_calculix_import import MODEL, STEPS, _write
from test_calculix_import_hf import RUNS

from structrom.rom.adapters.calculix import CalculixError, run_ccx
from structrom.rom.adapters.calculix_import import import_calculix

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")


def _snapshot(path):
    with h5py.File(path, "r") as f:
        fields = {k: v[()] for k, v in f["fields"].items() if isinstance(v, h5py.Dataset)}
        return f["increments/time"][()], fields, json.loads(f.attrs["metadata"])["config"]


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "structrom.api.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=env)


@needs_ccx
@pytest.mark.calculix
def test_solve_ccx_gives_the_snapshots_of_decks_run_beforehand(tmp_path):
    """Three plastic two-brick decks (mesh and material in an *INCLUDE file) imported with --solve ccx: the
    snapshots (times, displacements, ccx's integration-point stress and PEEQ, HifiConfig) are those of the same
    decks run through ccx beforehand and imported with their results; nothing is written beside the decks. A
    deck ccx fails on is named with ccx's error and the tail of its .sta."""
    ccx, decks = tmp_path / "ccx", tmp_path / "decks"
    for d in (ccx, decks):
        d.mkdir()
        _write(d, MODEL, "bricks.inp")  # (no *STEP: an include, not a run)
    for name, steps in RUNS.items():
        _write(ccx, MODEL + steps, f"{name}.inp")
        _write(decks, "*INCLUDE, INPUT=bricks.inp\n" + steps, f"{name}.inp")
        run_ccx(ccx, name, timeout=120)
    before = sorted(p.name for p in decks.iterdir())
    import_calculix(ccx / "a.inp", ccx, tmp_path / "m_ccx")
    proc = _cli("import", "calculix", decks / "a.inp", "--runs", decks, "--out", tmp_path / "m", "--solve", "ccx")
    assert proc.returncode == 0, proc.stderr
    assert "c: ccx done in" in proc.stdout and "next: structrom offline" in proc.stdout
    assert "ignored: *NODE FILE, " in proc.stdout and "the deck given to ccx requests *NODE FILE U" in proc.stdout
    assert sorted(p.name for p in decks.iterdir()) == before  # (ccx ran in OUT/ccx/<run>/)
    assert (tmp_path / "m" / "ccx" / "b" / "b.frd").exists() and "*INCLUDE" not in \
        (tmp_path / "m" / "ccx" / "b" / "b.inp").read_text()
    for name in RUNS:
        t0, f0, cfg0 = _snapshot(tmp_path / "m_ccx" / "train" / f"{name}.h5")
        t1, f1, cfg1 = _snapshot(tmp_path / "m" / "train" / f"{name}.h5")
        assert np.array_equal(t1, t0) and len(t0) > 2  # (ccx's increments of both steps)
        assert cfg1["material"] == cfg0["material"] and cfg1["boundary"] == cfg0["boundary"]
        assert {k: v for k, v in cfg1["loading"].items() if k != "temperature"} == \
            {k: v for k, v in cfg0["loading"].items() if k != "temperature"}
        assert np.array_equal(f1["temperature"], f0["temperature"])
        # the same deck solved by the same ccx: its printed values, digit for digit
        assert np.array_equal(f1["displacement"], f0["displacement"]) and np.abs(f0["displacement"]).max() > 1e-4
        assert np.array_equal(f1["stress"], f0["stress"], equal_nan=True)
        assert np.array_equal(f1["cumulated_plastic_strain"], f0["cumulated_plastic_strain"], equal_nan=True)
        assert np.nanmax(f0["cumulated_plastic_strain"]) > 1e-4
    # a deck ccx fails on (one increment allowed, the step needs two): the run named, ccx's error, its .sta tail
    _write(decks, "*INCLUDE, INPUT=bricks.inp\n" + STEPS.replace("*STEP\n", "*STEP,INC=1\n", 1), "b.inp")
    with pytest.raises(CalculixError) as failed:
        import_calculix(decks / "a.inp", decks, tmp_path / "m_bad", solve="ccx")
    msg = str(failed.value)
    assert msg.startswith(f"run b ({decks / 'b.inp'}): ccx failed on {tmp_path / 'm_bad' / 'ccx' / 'b' / 'b.inp'}")
    assert "*ERROR in nonlingeo: max. # of increments reached" in msg and "last lines of" in msg and "b.sta" in msg
    assert not (tmp_path / "m_bad" / "train").exists()  # (ccx runs before any snapshot is written)
    # a run past --ccx-timeout (a microsecond: ccx cannot even start) is named
    with pytest.raises(CalculixError, match=r"^run a \(.*a\.inp\): ccx on .*a\.inp did not finish within 1e-06 s"):
        import_calculix(decks / "a.inp", decks, tmp_path / "m_slow", solve="ccx", ccx_timeout=1e-6)


def test_solve_ccx_refusals(tmp_path):
    """ccx not on PATH, an mpirun launch, HF-only options: refused naming the fix, before anything is run."""
    decks = tmp_path / "decks"
    decks.mkdir()
    _write(decks, MODEL + STEPS, "a.inp")
    base = {k: v for k, v in os.environ.items() if k != "CCX_NPROC_EQUATION_SOLVER"}
    args = ("import", "calculix", decks / "a.inp", "--runs", decks, "--out", tmp_path / "m", "--solve", "ccx")
    proc = _cli(*args, env=dict(base, OMP_NUM_THREADS="two"))
    assert proc.returncode == 2 and "OMP_NUM_THREADS='two': expected a positive integer (ccx's threads)" in proc.stderr
    proc = _cli(*args, env=dict(os.environ, PATH=str(tmp_path)))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--solve ccx: CalculiX's 'ccx' is not on PATH: install it (e.g. apt-get install calculix-ccx)" in \
        proc.stderr and "--solve hf" in proc.stderr
    # under `mpirun -n 2` every rank would run every deck: refused once (rank 0 says why), exit code 2, no hang
    with pytest.raises(AssertionError, match=r"failed \(2\)") as failed:
        mpirun(2, ["-m", "structrom.api.cli", *map(str, args)], timeout=120)
    assert str(failed.value).count("--solve ccx runs ccx once per deck in one process") == 1
    proc = _cli(*args, "--solver", tmp_path / "s.toml")
    assert proc.returncode == 2 and "ccx reads its controls from the decks" in proc.stderr
    proc = _cli(*args, "-ksp_type", "preonly")
    assert proc.returncode == 2 and "unknown arguments" in proc.stderr
    proc = _cli(*args[:-2], "--ccx-timeout", "10")
    assert proc.returncode == 2 and "--ccx-timeout bounds the ccx runs of --solve ccx" in proc.stderr
    proc = _cli("import", "ansys", tmp_path / "r.rst", "--out", tmp_path / "m", "--ccx-timeout", "10")
    assert proc.returncode == 2 and "import ansys reads no --ccx-timeout (an option of import calculix)" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_ccx_deck_keeps_the_users_sets_and_steps(tmp_path):
    """The deck given to ccx: the user's output requests replaced in every step, the all-elements set under a name the
    deck does not use (a user's set of that name keeps its members)."""
    from structrom.rom.adapters.calculix_import_ccx import ALL_ELEMENTS, write_ccx_deck

    deck = _write(tmp_path, MODEL.replace("EALL", ALL_ELEMENTS) + STEPS, "a.inp")
    text = write_ccx_deck(deck, tmp_path / "out.inp", np.array([1, 2])).read_text()
    assert text.count(f"*ELSET, ELSET={ALL_ELEMENTS}_\n1, 2,\n") == 1
    assert text.count(f"*EL PRINT, ELSET={ALL_ELEMENTS}_\nS, E, PEEQ\n*END STEP") == 2
    assert text.count("*NODE FILE\nU\n") == 2 and "*NODE PRINT" not in text and "*EL FILE" not in text
    assert f"*ELSET, ELSET={ALL_ELEMENTS}\n" not in text
