"""A new CalculiX deck with an imposed displacement (``*BOUNDARY, AMPLITUDE=`` with a nonzero value on the
model's prescribed set) answered by a reduced model built from imported ccx runs: ``structrom predict``
(its .frd) and the REST deck route against ccx's own run of that deck; nonzero values elsewhere are refused
by node id and component."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from test_lifting_calculix import DECK

from structrom.rom.adapters.calculix import run_ccx, write_mesh_inp
from structrom.rom.adapters.frd import read_frd_file
from structrom.rom.fem.structured import box

TRAINING = [(0.1, -1.0), (0.14, -1.0), (0.14, 0.0)]  # (end deflection [mm], load ratio of the second half)
UNSEEN = (0.12, -1.0)

pytestmark = [pytest.mark.calculix,
              pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")]


@pytest.fixture(scope="module")
def lifted(tmp_path_factory):
    from structrom.rom.adapters.calculix_import import import_calculix

    tmp = tmp_path_factory.mktemp("deck_lifting")
    runs = tmp / "runs"
    runs.mkdir()
    write_mesh_inp(runs / "mesh.inp", box((10.0, 2.0, 2.0), (8, 2, 2), element="C3D8"), all_nset="NALL",
                   all_elset="EALL")
    for i, (value, ratio) in enumerate(TRAINING):
        (runs / f"r{i:02d}.inp").write_text(DECK.format(value=value, ratio=ratio))
        run_ccx(runs, f"r{i:02d}", timeout=300, require=("frd", "dat"))
    new = tmp / "new"
    new.mkdir()
    shutil.copy(runs / "mesh.inp", new / "mesh.inp")
    # initial increment 0.0625: the model answers at those 32 increment ends; ccx's automatic incrementation
    # cuts some of them (with DIRECT fixed increments ccx diverges at the reversal), so the comparison is at
    # the output times both have
    # (and the reaction resultant on the imposed end printed by ccx)
    (new / "unseen.inp").write_text(DECK.format(value=UNSEEN[0], ratio=UNSEEN[1]).replace(
        "0.25, 2, 1e-4, 0.25", "0.0625, 2, 1e-4, 0.0625").replace(
        "*END STEP", "*NODE PRINT, NSET=xmax, TOTALS=ONLY\nRF\n*END STEP"))
    run_ccx(new, "unseen", timeout=300, require=("frd", "dat"))
    import_calculix(runs / "r00.inp", runs, tmp / "m")
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "offline", str(tmp / "m" / "offline.toml")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return tmp


def _disp(path):
    f = read_frd_file(path)
    return f, np.array([inc.nodal("DISP", f.node_ids) for inc in f.increments])


def _error_at_common_times(rom, ccx) -> tuple[float, int]:
    """Relative displacement error of a predicted .frd against ccx's at the output times both have."""
    tr, tc = np.asarray(rom.times), np.asarray(ccx.times)
    pairs = [(int(np.argmin(np.abs(tr - t))), i) for i, t in enumerate(tc) if np.abs(tr - t).min() < 1e-9]
    u_rom = np.array([rom.increments[i].nodal("DISP", ccx.node_ids) for i, _ in pairs])
    u_ccx = np.array([ccx.increments[j].nodal("DISP", ccx.node_ids) for _, j in pairs])
    return float(np.linalg.norm(u_rom - u_ccx) / np.linalg.norm(u_ccx)), len(pairs)


def test_predict_deck_with_a_new_imposed_amplitude(lifted):
    tmp = lifted
    out = tmp / "pred"
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "predict", str(tmp / "m" / "model.h5"), "--deck",
                           str(tmp / "new" / "unseen.inp"), "--out", str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    ccx, u_ccx = _disp(tmp / "new" / "unseen.frd")
    rom, u_rom = _disp(out / "unseen.frd")
    assert len(rom.times) == 32
    # measured 1.9e-5 over 17 common times (ccx: 38 increments); the .frd's 6 digits and ccx's own Newton
    # tolerance are below 1e-5, the remainder is the reduced basis (3 training runs, 2 varying parameters)
    err, n = _error_at_common_times(rom, ccx)
    assert n >= 10 and err <= 1e-3, (err, n)
    # the reaction history, next to the .frd
    table = np.loadtxt(out / "unseen_reactions.csv", delimiter=",", skiprows=1)
    assert table.shape == (32, 2)
    assert (out / "unseen_reactions.csv").read_text().splitlines()[0] == "time,PRESCRIBED_1_Z.z"
    np.testing.assert_allclose(table[:, 0], rom.times)
    # the imposed dofs carry the deck's value (up to the .frd's 6 digits)
    assert np.abs(u_ccx[..., 2]).max() == pytest.approx(UNSEEN[0], rel=1e-5)
    assert np.abs(u_rom[..., 2]).max() == pytest.approx(UNSEEN[0], rel=1e-5)


def test_rest_deck_route_and_refusals(lifted):
    import api_fixtures as af

    from structrom.api.client import ApiError, Client
    from structrom.rom.adapters.calculix import CalculixError, read_dat
    from structrom.rom.adapters.calculix_predict import loading_from_deck

    tmp = lifted
    models = tmp / "models"
    models.mkdir(exist_ok=True)
    shutil.copy(tmp / "m" / "model.h5", models / "lift.h5")
    deck = (tmp / "new" / "unseen.inp").read_text().replace("*INCLUDE, INPUT=mesh.inp\n",
                                                              (tmp / "new" / "mesh.inp").read_text())
    ccx, u_ccx = _disp(tmp / "new" / "unseen.frd")
    with af.ServerProcess(models) as srv, Client(srv.url) as c:
        out = c.solve_deck("lift", deck.encode())
        assert out["loading"]["displacement"] == ["PRESCRIBED_1_Z"]
        # reaction resultant on the imposed end against ccx's RF total (TOTALS=ONLY) at the common times:
        # measured 2.3e-5
        dat = read_dat(tmp / "new" / "unseen.dat")
        r = np.array(out["reactions"]["PRESCRIBED_1_Z.z"])
        times = np.array(out["times"])
        pairs = [(int(np.argmin(np.abs(times - t))), t) for t in sorted(dat) if np.abs(times - t).min() < 1e-9]
        r_ccx = np.array([dat[t]["RF_TOTAL"].values[0, 2] for _, t in pairs])
        assert len(pairs) >= 10 and np.abs(r_ccx).max() > 1.0
        assert np.linalg.norm(r[[i for i, _ in pairs]] - r_ccx) <= 1e-3 * np.linalg.norm(r_ccx)
        frd = c.solve_deck("lift", deck.encode(), format="frd")
        (tmp / "rest.frd").write_bytes(frd)
        err, n = _error_at_common_times(read_frd_file(tmp / "rest.frd"), ccx)
        assert n >= 10 and err <= 1e-3, (err, n)
        # a nonzero value on the clamped end: the model prescribes nothing there
        bad = deck.replace("xmin, 1, 3\n", "xmin, 1, 3\nxmin, 2, 2, 0.01\n")
        with pytest.raises(ApiError) as e:
            c.solve_deck("lift", bad.encode())
        assert e.value.status == 422 and "outside the model's prescribed sets" in e.value.message
        assert "component y" in e.value.message and "PRESCRIBED_1_Z" in e.value.message
    # the import directory as target: the same mapping
    loading = loading_from_deck(tmp / "m", tmp / "new" / "unseen.inp")
    assert [(d.node_set, d.components) for d in loading.displacements] == [("PRESCRIBED_1_Z", (2,))]
    assert np.abs(loading.displacements[0].amplitude(loading.times)).max() == pytest.approx(UNSEEN[0])
    (tmp / "new" / "bad.inp").write_text(bad)
    with pytest.raises(CalculixError, match="outside the model's prescribed sets"):
        loading_from_deck(tmp / "m" / "model.h5", tmp / "new" / "bad.inp")
    # one node of the prescribed set moved differently from the others: named by set
    from structrom.rom.adapters.calculix import read_inp

    mesh, ids = read_inp(tmp / "new" / "unseen.inp")
    node = int(ids.node_ids[mesh.node_sets["xmax"][0]])
    (tmp / "new" / "split.inp").write_text(deck.replace(f"xmax, 3, 3, {UNSEEN[0]}\n",
                                                        f"xmax, 3, 3, {UNSEEN[0]}\n{node}, 3, 3, 0.05\n"))
    with pytest.raises(CalculixError, match="differ between the dofs of the model's prescribed set PRESCRIBED_1_Z"):
        loading_from_deck(tmp / "m" / "model.h5", tmp / "new" / "split.inp")
