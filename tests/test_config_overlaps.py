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
from structrom.rom.loading import Amplitude, ImposedDisplacement, Loading, LoadingError
from structrom.rom.loading_dict import loading_from_dict
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


# -- the reduced model's side: training cases, lifted sets, query values -------------------------------------
def _case(displacements, path="case_0.h5"):
    from pathlib import Path

    from structrom.rom.offline.snapshots import TrainingCase

    loading = Loading(times=np.array([0.0, 1.0]), displacements=tuple(displacements))
    return TrainingCase(Path(path), loading, [], [], loading.times[1:], "", {})


def test_training_case_with_conflicting_dirichlet_sets_is_refused(mesh):
    """A snapshot from elsewhere (a CalculiX deck, an older HF run) whose prescribed sets disagree on shared nodes."""
    from structrom.rom.offline.lifting import check_overlaps, unit_fields
    from structrom.rom.offline.snapshots import SnapshotError

    cases = [_case([ImposedDisplacement("xmin", (0, 1, 2)), ImposedDisplacement("ymin", (0,), 0.1)])]
    with pytest.raises(SnapshotError, match=r"case_0.h5: boundary 'xmin' \(xyz\) and boundary 'ymin' \(x\) both "
                                            r"prescribe x at node 0"):
        check_overlaps(mesh, cases, unit_fields(cases))


def test_lifted_sets_sharing_nodes_are_refused_and_fixed_ones_accepted(mesh):
    """Two lifted sets with the same training history on an edge: online, two query values could not be kept
    apart (the elastic extensions give the edge to the later set)."""
    from structrom.rom.offline.lifting import check_overlaps, unit_fields
    from structrom.rom.offline.snapshots import SnapshotError

    fixed = [ImposedDisplacement("xmin", (0, 1, 2)), ImposedDisplacement("ymin", (1,))]  # share an edge, both 0
    cases = [_case(fixed + [ImposedDisplacement("xmax", (0,), 0.1)])]
    check_overlaps(mesh, cases, unit_fields(cases))
    fixed = [ImposedDisplacement("xmin", (0, 1))]
    cases = [_case(fixed + [ImposedDisplacement("xmax", (2,), 0.1), ImposedDisplacement("zmax", (2,), 0.1)])]
    with pytest.raises(SnapshotError, match=r"prescribed sets 'xmax' and 'zmax' both prescribe z at node .* "
                                            r"prescribe the shared nodes in one \[\[boundary\]\]"):
        check_overlaps(mesh, cases, unit_fields(cases))


def _lifting():
    from structrom.rom.lifting import Lifting

    fields = [{"name": f"xmax.{a}", "node_set": "xmax", "components": [c], "component": c}
              for c, a in ((0, "x"), (2, "z"))]
    return Lifting(fields=fields, reduced=np.zeros((1, 6, 2)))


def test_query_setting_one_prescribed_set_twice_with_different_values_is_refused():
    """`xmax.z` and `xmax` with components ["z"] name the same lifted set: the later value replaced the earlier."""
    lifting = _lifting()
    twice = {"times": [0, 1], "displacement": {"xmax.z": 0.1, "xmax": {"components": ["z"], "amplitude": 0.2}}}
    with pytest.raises(LoadingError, match=r"loading.displacement.xmax.z and loading.displacement.xmax both set the "
                                           r"prescribed set 'xmax.z' with different values: give it once"):
        lifting.match(loading_from_dict(twice))
    same = {"times": [0, 1], "displacement": {"xmax.z": [[0, 0], [1, 0.2]],
                                              "xmax": {"components": ["z"], "amplitude": [[0, 0], [2, 0.4]]}}}
    assert sorted(lifting.match(loading_from_dict(same)).values()) == ["xmax.z", "xmax.z"]


def test_hf_case_of_a_query_setting_one_boundary_twice_is_refused():
    from structrom.rom.hifi_protocol import prescribed_boundary

    boundary = [{"node_set": "xmin", "components": ["x", "y", "z"], "value": 0.0, "amplitude": 1.0},
                {"node_set": "xmax", "components": ["z"], "value": 0.1, "amplitude": 1.0}]
    twice = loading_from_dict({"times": [0, 1], "displacement": {"xmax.z": 0.3, "xmax": 0.2}})
    with pytest.raises(LoadingError, match=r"both set the \[\[boundary\]\] entry xmax.z with different values"):
        prescribed_boundary(boundary, twice.displacements)
    once = loading_from_dict({"times": [0, 1], "displacement": {"xmax.z": 0.3, "xmax": {"amplitude": 0.3}}})
    entry = prescribed_boundary(boundary, once.displacements)[1]
    assert (entry["value"], entry["amplitude"]) == (1.0, [[0.0, 0.3]])


# -- loads given twice on one set ----------------------------------------------------------------------------
def test_loads_given_twice_on_one_set_add_up():
    """[[loading.pressure]] twice on `xmax`: the second table replaced the first without a word. They add, as
    CalculiX adds the loads of a step on one face or node."""
    cfg = config([{"node_set": "xmin"}],
                 pressure=[{"surface": "xmax", "amplitude": 1.0}, {"surface": "xmax", "amplitude": [[0, 0], [1, 2]]},
                           {"surface": "ymax", "amplitude": 3.0}],
                 traction=[{"surface": "zmax", "vector": [1.0, 0.0, 0.0]},
                           {"surface": "zmax", "vector": [[0, 0, 0, 0], [2, 0, 4, 2]]}],
                 force=[{"node_set": "xmax", "vector": [0.0, 0.0, -1.0]}, {"node_set": "xmax", "vector": [0.0, 0.0, -2.0]}])
    loading = cfg.build_loading()
    assert sorted(loading.pressures) == ["xmax", "ymax"]
    assert loading.pressures["xmax"](np.array([0.0, 0.5, 1.0, 3.0])).tolist() == [1.0, 2.0, 3.0, 3.0]
    assert loading.pressures["ymax"](0.5) == 3.0
    assert loading.tractions["zmax"](1.0).tolist() == [1.0, 2.0, 1.0]
    assert loading.tractions["zmax"](5.0).tolist() == [1.0, 4.0, 2.0]
    assert loading.forces["xmax"](0.3).tolist() == [0.0, 0.0, -3.0]


# -- loading dicts (REST queries, enrichment and greedy loadings): every key read or refused -----------------
@pytest.mark.parametrize("d, match", [
    # before: end_time and increments ignored without a word
    ({"times": [0, 1], "end_time": 5, "increments": 2}, r"loading: give times, or end_time and increments, not both"),
    ({"times": [0, 1], "increments": 3}, r"loading: give times, or end_time and increments, not both"),
    # before: 2.7 increments were 2
    ({"end_time": 1, "increments": 2.7}, r"loading.increments must be a whole number >= 1, got 2.7"),
    ({"end_time": 1, "increments": "x"}, r"loading.increments must be a whole number >= 1, got 'x'"),
    ({"end_time": "x", "increments": 2}, r"loading.end_time must be a number, got 'x'"),
    ({"times": "abc"}, r"loading.times must be a list of numbers"),
    # before: the inline nodal temperature ignored every other key
    ({"times": [0, 1], "temperature": {"type": "nodal", "values": [[1, 2], [3, 4]], "amplitude": 5}},
     r"temperature: \['amplitude'\] not known for a 'nodal' temperature.*scale the values"),
    ({"times": [0, 1], "temperature": {"type": "nodal", "values": [[1, 2], [3, 4]], "file": "t.npy"}},
     r"temperature: \['file'\] not known for a 'nodal' temperature with inline values"),
    ({"times": [0, 1], "temperature": "hot"}, r"loading.temperature must be a table"),
    ({"times": [0, 1], "centrifugal": {"axis_point": [0, 0, 0]}}, r"loading.centrifugal needs 'omega'"),
    ({"times": [0, 1], "centrifugal": {"omega": 3, "axis_point": [0, 0]}},
     r"loading.centrifugal.axis_point must be 3 finite numbers \[x, y, z\], got \[0, 0\]"),
    ({"times": [0, 1], "centrifugal": {"omega": 3, "axis_direction": [0, 0, 0]}},
     r"loading.centrifugal.axis_direction must be a non-zero vector"),
    ({"times": [0, 1], "centrifugal": [3]}, r"loading.centrifugal must be a table"),
    ({"times": [0, 1], "gravity": "abc"}, r"loading.gravity must be three finite numbers"),
    ({"times": [0, 1], "gravity": 3}, r"loading.gravity must be three finite numbers"),
    ({"times": [0, 1], "pressure": [1, 2]}, r"loading.pressure must map set names to amplitudes"),
    ({"times": [0, 1], "pressure": {"a": {"amplitude": 1}}}, r"loading.pressure.a: give a number or a list of"),
    ({"times": [0, 1], "pressure": {"a": "x"}}, r"loading.pressure.a: give a number or a list of"),
    ({"times": [0, 1], "displacement": {"a": "x"}}, r"loading.displacement.a: give a number or a list of"),
])
def test_bad_loading_dicts_are_named(d, match):
    with pytest.raises(LoadingError, match=match):
        loading_from_dict(d)


def test_nodal_temperature_file_with_an_amplitude_is_refused(tmp_path):
    """The amplitude of a nodal temperature file was read and dropped: the file's values were used unscaled."""
    from structrom.rom.loading_dict import temperature_from_config

    np.save(tmp_path / "t.npy", np.ones((2, 4)))
    with pytest.raises(LoadingError, match=r"temperature: \['amplitude'\] not known for a 'nodal' temperature"):
        temperature_from_config({"type": "nodal", "file": "t.npy", "times": [0, 1], "amplitude": [[0, 0], [1, 5]]},
                                str(tmp_path))


# -- [[boundary]] tables that prescribe nothing they seem to ------------------------------------------------
@pytest.mark.parametrize("boundary, match", [
    # before: value defaulted to 0: u = 0 x amplitude(t) = 0 and the amplitude table was dropped
    ({"node_set": "xmax", "components": ["x"], "amplitude": [[0, 0], [1, 0.2]]},
     r"boundary.1: amplitude without value: the prescribed displacement is value x amplitude\(t\) and value "
     r"defaults to 0; give value \(1.0 to take the amplitude's values as displacements\)"),
    # before: a table that prescribed nothing
    ({"node_set": "xmax", "components": []}, r"boundary.1.components: List should have at least 1 item"),
])
def test_boundary_that_would_prescribe_nothing_is_refused(boundary, match):
    with pytest.raises(ConfigError, match=match):
        config([{"node_set": "xmin"}, boundary])


def test_boundary_amplitude_with_a_value_or_held_at_zero_is_accepted():
    cfg = config([{"node_set": "xmin"}, {"node_set": "xmax", "components": ["x"], "value": 0.0,
                                         "amplitude": [[0, 0], [1, 0.2]]},
                  {"node_set": "ymin", "components": ["y"], "amplitude": 0.0},
                  {"node_set": "xmax", "components": ["y"], "value": 1.0, "amplitude": [[0, 0], [1, 0.2]]}])
    assert cfg.build_loading().displacements[3].amplitude(1.0) == 0.2
    # a dumped configuration (snapshot metadata) reads back
    parse(cfg.model_dump(mode="json"), HifiConfig, "dump")


def test_centrifugal_axis_of_zero_direction_is_refused_when_read():
    with pytest.raises(ConfigError, match=r"loading.centrifugal.axis_direction: must be a non-zero vector"):
        config([{"node_set": "xmin"}], centrifugal={"omega": 1.0, "axis_direction": [0, 0, 0]})


# -- nodal temperature files that do not fit the mesh or the loading -----------------------------------------
def _nodal_config(tmp_path, rows: int, nodes: int, temp_times: list[float], times=(0.0, 0.5, 1.0)) -> HifiConfig:
    np.save(tmp_path / "temp.npy", np.full((rows, nodes), 20.0))
    cfg = config([{"node_set": "xmin"}], temperature={"type": "nodal", "file": "temp.npy", "times": temp_times})
    cfg.loading.times = list(times)
    cfg.base_dir = str(tmp_path)
    return cfg


def test_nodal_temperature_file_of_another_node_count_is_named(tmp_path, mesh):
    from structrom.rom.hifi.run import check_temperature

    cfg = _nodal_config(tmp_path, 2, mesh.n_nodes + 1, [0.0, 1.0])
    with pytest.raises(ConfigError, match=rf"temp.npy: loading.temperature.file has {mesh.n_nodes + 1} values per "
                                          rf"row but the mesh has {mesh.n_nodes} nodes: write one column per mesh node"):
        check_temperature(mesh, cfg)
    check_temperature(mesh, _nodal_config(tmp_path, 2, mesh.n_nodes, [0.0, 1.0]))


def test_nodal_temperature_file_of_another_row_count_is_named(tmp_path, mesh):
    cfg = _nodal_config(tmp_path, 3, mesh.n_nodes, [0.0, 1.0])
    with pytest.raises(ConfigError, match=r"temp.npy.*has 3 rows for 2 times in loading.temperature.times: give one "
                                          r"row per time"):
        cfg.build_loading()


def test_nodal_temperature_times_short_of_the_loading_are_refused(tmp_path, mesh):
    """Rows up to t = 1 for a loading to t = 2: the temperature was held at the last row without a word."""
    from structrom.rom.hifi.run import check_temperature

    cfg = _nodal_config(tmp_path, 2, mesh.n_nodes, [0.0, 1.0], times=(0.0, 1.0, 2.0))
    with pytest.raises(ConfigError, match=r"temp.npy: loading.temperature.times \[0, 1\] do not cover the loading "
                                          r"times \[0, 2\].*up to t=2"):
        check_temperature(mesh, cfg)
    check_temperature(mesh, _nodal_config(tmp_path, 1, mesh.n_nodes, [0.0], times=(0.0, 1.0, 2.0)))  # constant


# -- [[material]] tables that get no element ----------------------------------------------------------------
def _materials(mesh, *sets):
    from structrom.rom.hifi.run import check_material_sets

    cfg = parse({"mesh": {"file": "box.inp"}, "boundary": [{"node_set": "xmin"}], "loading": {"times": [0, 1]},
                 "material": [{"law": LAW} if s is None else {"element_set": s, "law": LAW} for s in sets]},
                HifiConfig, "case.toml")
    check_material_sets(mesh, cfg)


def test_material_tables_that_get_no_element_are_refused():
    mesh = box((2.0, 1.0, 1.0), (2, 1, 1), "C3D8")
    mesh.element_sets.update(empty=np.zeros(0, np.int64), left=np.array([0]), right=np.array([1]))
    _materials(mesh, "left", None)  # the default takes the rest
    with pytest.raises(ConfigError, match=r"material\[1\] \(element_set 'empty'\) holds no element"):
        _materials(mesh, "all", "empty")
    with pytest.raises(ConfigError, match=r"material\[2\] \(no element_set: the elements no other table holds\) gets "
                                          r"no element: material\[0\], material\[1\] hold all 2.*remove it"):
        _materials(mesh, "left", "right", None)
