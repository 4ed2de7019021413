"""Plots and validation reports of a reduced model (structrom.rom.report, ``structrom report``), progress
bars (structrom.rom.progress), and the examples' child processes surviving a first interrupt."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import offline_fixtures as F

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A model of the offline fixtures' bar (in-process offline stage, which writes its plots) and one HF
    run of a loading outside the training set."""
    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.pipeline import run_offline

    d = tmp_path_factory.mktemp("report")
    F.write_mesh(d)
    F.run_training(d)
    model = run_offline(load_offline_config(F.offline_config(d, pod_tol=1e-4, ecm_tol=1e-4)), log=lambda *a: None)
    (d / "val").mkdir()
    cfg = F.hifi_config(d, "unseen", 4.5, 380.0, 6.5)
    cfg.write_text(cfg.read_text().replace('file = "train/unseen.h5"', 'file = "val/unseen.h5"'))
    unseen = run_hifi(load_config(cfg), log=lambda *a: None)
    return d, model, unseen


def test_offline_stage_writes_the_model_plots(built):
    d, model, _ = built
    for name in ("pod_decay", "reduced_points"):
        assert (d / "model_plots" / f"{name}.png").read_bytes()[:8] == PNG
        assert (d / "model_plots" / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def test_pod_decay_data_and_truncation(built):
    """The model file keeps every singular value above round-off; the plot marks the kept ones."""
    from structrom.rom import model_file
    from structrom.rom.report import model_figures

    _, model, _ = built
    data = model_file.load(model)
    s_all = np.array(data.provenance["pod"]["singular_values_all"])
    n = data.n_modes
    assert np.all(np.diff(s_all) <= 0) and len(s_all) > n
    np.testing.assert_allclose(s_all[:n], data.singular_values, rtol=1e-10)
    # the truncation criterion of structrom.rom.pod: discarded energy <= tolerance^2 of the total
    tol = data.provenance["config"]["pod"]["tolerance"]
    energy = s_all**2
    assert energy[n:].sum() <= tol**2 * energy.sum() < energy[n - 1:].sum()
    ax = model_figures(model)["pod_decay"].axes[0]
    vlines = [ln.get_xdata()[0] for ln in ax.lines if len(set(ln.get_xdata())) == 1]
    assert vlines == [n + 0.5]


def report(capsys, *args: str) -> tuple[int, str, str]:
    """``structrom report ARGS`` in-process: exit code, stdout, stderr."""
    from structrom.api.cli import main

    capsys.readouterr()
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_report_command_with_validation(built, tmp_path, capsys):
    d, model, unseen = built
    out = tmp_path / "rep"
    code, stdout, stderr = report(capsys, str(model), "--validation", str(d / "train" / "case_0.h5"), str(unseen),
                                  "--out", str(out))
    assert code == 0, stderr
    for name in ("pod_decay", "reduced_points", "indicator_vs_error", "response_curves"):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG
        assert (out / f"{name}.svg").exists()
    rows = {r["name"]: r for r in json.loads((out / "validation.json").read_text())}
    assert set(rows) == {"case_0", "unseen"} and "| unseen |" in stdout
    # a training loading is reproduced within the POD + ECM tolerances' reach; the unseen one less well
    assert rows["case_0"]["error_u"] < 1e-2
    assert rows["unseen"]["error_u"] < 0.05
    for r in rows.values():
        assert r["trusted"] == (r["indicator"] <= r["tolerance"])
    # what "trusted" promises is printed with the table (the model card's guarantee), not left to be guessed
    from structrom.rom.online import ReducedModel

    guarantee = ReducedModel.load(model).card()["indicator"]["guarantee"]
    assert f"trusted: {guarantee}" in stdout and f"trusted: {guarantee}" in (out / "validation.md").read_text()


def test_validation_curves_are_the_hf_and_rom_answers(built):
    from structrom.rom.online import ReducedModel
    from structrom.rom.report import validate
    from structrom.rom.voigt import von_mises

    _, model, unseen = built
    (case,) = validate(model, [unseen])
    with h5py.File(unseen, "r") as f:
        np.testing.assert_allclose(case.hf_max_von_mises, von_mises(f["fields/stress"][()]).max(axis=1))
        np.testing.assert_allclose(case.hf_max_p, f["fields/cumulated_plastic_strain"][()].max(axis=1))
        times = f["increments/time"][()]
    np.testing.assert_allclose(case.times, times)
    from structrom.rom.offline.snapshots import read_training_case
    from structrom.rom import model_file

    res = ReducedModel.load(model).solve(read_training_case(unseen, model_file.load(model, mesh=True).mesh).loading,
                                         extrapolate=True)
    np.testing.assert_allclose(case.rom_max_von_mises, res.max_von_mises(), rtol=1e-10)
    assert case.indicator == pytest.approx(float(res.indicator.max()))


def test_report_bad_input(built, tmp_path, capsys):
    d, model, _ = built
    out = ["--out", str(tmp_path / "x")]
    code, _, err = report(capsys, str(tmp_path / "nope.h5"), *out)
    assert code == 2 and "file not found" in err and "nope.h5" in err
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    code, _, err = report(capsys, str(tmp_path / "junk.h5"), *out)
    assert code == 2 and "junk.h5" in err
    code, _, err = report(capsys, str(model), "--validation", str(model), *out)  # a model is not a HF snapshot file
    assert code == 2 and "model.h5" in err, err


def _stderr_on_a_tty(code: str, env: dict) -> str:
    """Run ``python -c code`` with stderr on a pseudo-terminal; its stderr text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 x 100, as a terminal
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=slave, stdout=subprocess.DEVNULL, cwd=REPO,
                            env={**os.environ, **env})
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_progress_bars_on_a_terminal_only():
    code = ("from structrom.rom.progress import bar\n"
            "with bar(3, 'stage X', 'step') as b:\n"
            "    [b.update(1) for _ in range(3)]\n")
    env = {k: v for k, v in os.environ.items() if k != "STRUCTROM_QUIET"}
    assert "stage X" in _stderr_on_a_tty(code, {**env, "STRUCTROM_QUIET": ""})
    assert "stage X" not in _stderr_on_a_tty(code, {"STRUCTROM_QUIET": "1"})
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)  # not a TTY
    assert p.returncode == 0 and p.stderr == ""


CHILD_SCRIPT = """
import sys, time
sys.path.insert(0, {examples!r})
import rom_plate
rom_plate.CHILDREN.install()
try:
    for k in range(2):
        rom_plate.CHILDREN.run([sys.executable, "-c",
                                "import time, pathlib; pathlib.Path({flag!r} + 'started').touch(); time.sleep(3); "
                                "pathlib.Path({flag!r} + str(%d)).write_text('done')" % k])
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("interrupts", [1, 2])
def test_examples_children_survive_a_first_interrupt(tmp_path, interrupts):
    """A Ctrl-C (SIGINT to the script's process group, as a terminal sends it) lets the running child
    finish and starts no new one; a second one stops the child."""
    flag = str(tmp_path / "child")
    proc = subprocess.Popen([sys.executable, "-c", CHILD_SCRIPT.format(examples=str(REPO / "examples"), flag=flag)],
                            cwd=REPO, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not Path(flag + "started").exists():  # the first child runs
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    for _ in range(interrupts):
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(0.3)
    assert proc.wait(timeout=30) == 130
    err = proc.stderr.read()
    if interrupts == 1:
        assert Path(flag + "0").read_text() == "done"  # the running child finished
        assert "interrupt again" in err
    else:
        assert not Path(flag + "0").exists()  # stopped by the second interrupt
    assert not Path(flag + "1").exists()  # no new child after an interrupt
