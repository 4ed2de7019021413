"""Configuration input that was dropped without a word: two [[boundary]] tables on the same node and component
with different values (the last one won), loads given twice on one set, keys of a loading dict that were
ignored. Unit-level: configuration and loading objects on a one-element-thick box, no HF solve."""
from __future__ import annotations

import numpy as np
import pytest

from structrom.mpi.linear_solver import LinearSolverOptions
from structrom.rom.config import ConfigError, parse
from structrom.rom.fem.structured import box
from structrom.rom.hifi.config import HifiConfig
from structrom.rom.hifi.run import check_boundary_overlaps
from structrom.rom.hifi.solver import HifiSolver
from structrom.rom.loading import Amplitude, ImposedDisplacement, Loading, LoadingError, loading_from_dict
from structrom.rom.materials import LinearElastic

DIRECT = LinearSolverOptions(ksp_type="preonly", pc_type="lu", petsc_options={"pc_factor_mat_solver_type": "mumps"})
LAW = {"type": "linear_elastic", "young": 200000.0, "poisson": 0.3}


@pytest.fixture(scope="module")
def mesh():
    return box((2.0, 1.0, 1.0), (2, 1, 1), "C3D8")


def config(boundary: list[dict], **loading) -> HifiConfig:
    data = {"mesh": {"file": "box.inp"}, "material": [{"law": LAW}], "boundary": boundary,
            "loading": {"times": [0.0, 0.5, 1.0], **loading}}
    return parse(data, HifiConfig, "case.toml")


# -- [[boundary]] tables on shared nodes ---------------------------------------------------------------------
@pytest.mark.parametrize("boundary", [
    # two symmetry faces sharing an edge, both 0
    [{"node_set": "xmin", "components": ["x", "y", "z"]}, {"node_set": "ymin", "components": ["x", "y"]}],
    # the same history written two ways
    [{"node_set": "xmin"}, {"node_set": "xmax", "components": ["x"], "value": 0.2, "amplitude": [[0, 0], [1, 1]]},
     {"node_set": "ymin", "components": ["y"]},
     {"node_set": "xmax", "components": ["x"], "value": 1.0, "amplitude": [[0, 0], [1, 0.2]]}],
    # the same node set, other components
    [{"node_set": "xmin", "components": ["x"]}, {"node_set": "xmin", "components": ["y", "z"], "value": 0.1}],
])
def test_boundaries_sharing_nodes_with_one_value_are_accepted(mesh, boundary):
    check_boundary_overlaps(mesh, config(boundary))


def test_boundaries_sharing_nodes_with_different_values_are_refused(mesh):
    """xmin clamped and ymin moved along x by 0.1: the edge x = y = 0 took 0.1 (the last table) without a word."""
    cfg = config([{"node_set": "xmin", "components": ["x", "y", "z"]},
                  {"node_set": "ymin", "components": ["x"], "value": 0.1}])
    with pytest.raises(ConfigError, match=r"boundary: boundary\[0\] \(node_set 'xmin'\) and boundary\[1\] "
                                          r"\(node_set 'ymin'\) both prescribe x at node 0 \(0.0, 0.0, 0.0\) "
                                          r"with different values \(0 and 0.1 at t=0.5\).*remove the shared nodes"):
        check_boundary_overlaps(mesh, cfg)


def test_histories_that_differ_between_loading_times_are_refused(mesh):
    """Equal at the loading times 0 and 1 but not at t = 0.5, where a cut-back increment would end."""
    cfg = parse({"mesh": {"file": "box.inp"}, "material": [{"law": LAW}], "loading": {"times": [0.0, 1.0]},
                 "boundary": [{"node_set": "xmax", "components": ["x"], "value": 0.2, "amplitude": [[0, 0], [1, 1]]},
                              {"node_set": "xmax", "components": ["x"], "value": 0.2,
                               "amplitude": [[0, 0], [0.5, 0.9], [1, 1]]}]},
                HifiConfig, "case.toml")
    with pytest.raises(ConfigError, match=r"boundary\[0\] \(node_set 'xmax'\) and boundary\[1\] .* at t=0.5\)"):
        check_boundary_overlaps(mesh, cfg)


def test_hifi_solver_refuses_overlapping_displacements_of_a_loading(mesh):
    loading = Loading(times=np.array([0.0, 1.0]), displacements=(
        ImposedDisplacement("xmin", (0, 1, 2)), ImposedDisplacement("zmin", (2,), 0.05, Amplitude.from_config(1.0))))
    with pytest.raises(LoadingError, match=r"loading.displacements\[0\] \(node set 'xmin'\) and "
                                           r"loading.displacements\[1\] \(node set 'zmin'\) both prescribe z"):
        HifiSolver(mesh, [(None, LinearElastic(200000.0, 0.3))], loading, linear=DIRECT, log=lambda *a: None)
