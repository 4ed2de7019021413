"""Greedy training: candidates of the declared family, the next HF solve where the indicator is largest,
until every candidate is within the tolerance or the budget is spent."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import offline_fixtures as F

GREEDY = """
[greedy]
hifi = "case_0.toml"
budget = {budget}
points = 2
[greedy.parameters]
cx = [2.0, 8.0]
intensity = [300.0, 450.0]
[greedy.loading]
times = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0]
temperature = {{ type = "hot_spot", center = ["$cx", 1.0, 2.0], radius = 2.0, intensity = "$intensity", reference = 20.0, amplitude = [[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]] }}
pressure = {{ zmax = [[0.0, 0.0], [1.0, 5.0], [2.0, 0.0]] }}
"""


def _config(d, budget: int, extra: str = ""):
    cfg = F.offline_config(d, pod_tol=1e-5, ecm_tol=1e-5)
    cfg.write_text(cfg.read_text().replace("tolerance = 0.05", f"tolerance = {F.ENRICH_TOLERANCE}")
                   + GREEDY.format(budget=budget) + extra)
    return cfg


def test_candidates_grid_and_latin_hypercube(tmp_path):
    from structrom.rom.config import ConfigError
    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.greedy import candidates

    (tmp_path / "train").mkdir()
    F.hifi_config(tmp_path, "case_0", *F.TRAINING[0])  # greedy.hifi, read with the offline configuration
    g = load_offline_config(_config(tmp_path, 3)).greedy
    c = candidates(g)
    assert [p for _, p, _ in c] == [{"cx": a, "intensity": b} for a in (2.0, 8.0) for b in (300.0, 450.0)]
    assert c[1][2]["temperature"]["center"] == [2.0, 1.0, 2.0] and c[1][2]["temperature"]["intensity"] == 450.0
    g.sampling, g.points = "latin_hypercube", 7
    lhs = np.array([[p["cx"], p["intensity"]] for _, p, _ in candidates(g)])
    assert lhs.shape == (7, 2) and np.all((lhs >= [2.0, 300.0]) & (lhs <= [8.0, 450.0]))
    # one sample per stratum of each parameter (Latin hypercube)
    assert sorted(np.floor((lhs[:, 0] - 2.0) / 6.0 * 7).astype(int)) == list(range(7))
    bad = _config(tmp_path, 3)
    bad.write_text(bad.read_text().replace('"$intensity"', '"$intensty"'))
    with pytest.raises(ConfigError, match=r"greedy.*\$intensty"):
        load_offline_config(bad)


def test_greedy_training_reaches_the_tolerance_within_the_budget(tmp_path):
    """From one training case, the greedy stage enriches with the worst candidate round after round; every
    pick is recorded in the version history with the indicator that chose it, the indicators that chose
    them are above the tolerance, and at the end every candidate is within the tolerance."""
    from mpi4py import MPI

    from structrom.rom.offline.config import load_offline_config
    from structrom.rom.offline.enrich import screen
    from structrom.rom.offline.greedy import candidates
    from structrom.rom.offline.pipeline import run_offline

    F.write_mesh(tmp_path)
    F.run_training(tmp_path, cases=F.TRAINING[:1])
    cfg = load_offline_config(_config(tmp_path, 4))
    out = run_offline(cfg, MPI.COMM_SELF, log=lambda *a, **k: None)
    with h5py.File(out, "r") as f:
        history = json.loads(f.attrs["versions"])
    added = [a for h in history[1:] for a in h["loadings_added"]]
    assert 1 <= len(added) <= 4 and [h["version"] for h in history] == list(range(1, len(added) + 2))
    assert all(a["indicator"] > F.ENRICH_TOLERANCE for a in added)
    names = [n for n, _, _ in candidates(cfg.greedy)]
    assert len({a["name"] for a in added}) == len(added) and {a["name"] for a in added} <= set(names)
    final = screen(out, [(n, d) for n, _, d in candidates(cfg.greedy)])
    assert max(s.indicator for s in final) <= F.ENRICH_TOLERANCE
