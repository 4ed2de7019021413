"""Small models of the separated and dictionary kinds, shared by their own tests and the REST tests.

* :func:`matrix_market_problem` / :func:`build_separated`: the plate of ``examples/separated_thermoelastic.py``
  on a ``6 x 2 x 2`` C3D10 mesh, its stiffness at 6 training parameters exported as Matrix Market files by our
  own kernel (fixed dofs removed), a different load per parameter; the separated model with interpolated
  entries (seconds, no CalculiX).
* :func:`build_dictionary`: the ROM-net dictionary of a bar whose hot spot moves from the clamp to the free end
  (6 HF training runs, 2 clusters; tens of seconds), plus HF runs at :data:`DICTIONARY_TESTS`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import offline_fixtures as F
from mpi_helpers import ROOT

#: (hot-spot x, intensity, pressure): the hot spot near the clamp (x <= 4) or near the free end (x >= 6)
DICTIONARY_CASES = [(cx, 450.0, 6.0) for cx in (1.0, 2.0, 3.0, 7.0, 8.0, 9.0)]
DICTIONARY_TESTS = [(2.5, 450.0, 6.0), (7.5, 450.0, 6.0)]
DICTIONARY = "\n[dictionary]\nclusters = 2\nsubspace_dim = 3\nsensors = 16\n"


def matrix_market_problem(directory: Path, m: int = 6) -> Path:
    """Exported systems as Matrix Market files from our own kernel (fixed dofs removed), per-mu loads; returns
    the offline configuration (output ``mm.h5``)."""
    import scipy.io

    sys.path.insert(0, str(ROOT / "examples"))
    import separated_thermoelastic as ex
    from structrom.rom.eim_entries import StiffnessEntries

    mesh, f = ex.make_problem((6, 2, 2))
    free = np.setdiff1d(np.arange(mesh.n_dofs), (3 * mesh.node_set("xmin")[:, None] + np.arange(3)).ravel())
    kernel = StiffnessEntries(mesh, ex.law(), ex.hot_spot)
    mus = ex.training_grid(2, m // 2)
    lines = ['kind = "separated"', "[separated]", 'format = "matrix_market"',
             'parameter_names = ["intensity", "x_center"]', "[separated.eim]", "rtol = 1e-12",
             "[separated.basis]", "tolerance = 1e-8", "[separated.estimator]", "reference = 1"]
    for j, mu in enumerate(mus):
        K = kernel.assemble(mu)[free][:, free]
        scipy.io.mmwrite(str(directory / f"A{j}.mtx"), K, symmetry="symmetric")
        np.save(directory / f"b{j}.npy", f[free] * (1.0 + 0.1 * j) + 0.05 * j * j * np.roll(f[free], 7))
        lines += ["[[separated.training]]", f"mu = [{mu[0]}, {mu[1]}]", f'matrix = "A{j}.mtx"', f'rhs = "b{j}.npy"']
    lines += ["[output]", 'file = "mm.h5"']
    (directory / "mm.toml").write_text("\n".join(lines) + "\n")
    return directory / "mm.toml"


def build_separated(directory: Path) -> Path:
    """The separated model of :func:`matrix_market_problem` (serial offline stage); its path."""
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.separated import run_separated_offline

    return Path(run_separated_offline(load_offline_config(matrix_market_problem(directory)), log=lambda *a: None))


def write_dictionary_config(d: Path) -> Path:
    F.offline_config(d, out="dictionary.h5")
    cfg = d / "dictionary.toml"
    # three cases per local model are too few for a leave-one-out calibration of the indicator: the local
    # models answer with the Gappy indicator, whose trust flags these tests assert
    text = (d / "offline.toml").read_text().replace("[indicator]\n", "[indicator]\ncalibrate = false\n", 1)
    cfg.write_text(text + DICTIONARY)
    return cfg


def build_dictionary(d: Path) -> Path:
    """HF training runs, HF runs at :data:`DICTIONARY_TESTS` (``test_<i>``) and the dictionary (one rank)."""
    from mpi4py import MPI

    from structrom.rom.hifi.config import load_config
    from structrom.rom.hifi.run import run_hifi
    from structrom.rom.offline.dictionary import load_dictionary_config, run_dictionary

    F.write_mesh(d)
    F.run_training(d, DICTIONARY_CASES)
    for i, (cx, it, pr) in enumerate(DICTIONARY_TESTS):
        run_hifi(load_config(F.hifi_config(d, f"test_{i}", cx, it, pr)), log=lambda *a: None)
    return Path(run_dictionary(load_dictionary_config(write_dictionary_config(d)), MPI.COMM_SELF, log=lambda *a: None))
