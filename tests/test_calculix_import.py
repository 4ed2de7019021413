"""CalculiX deck import: .frd/.dat readers, deck parsing (every error named), histories against ccx,
``structrom import calculix`` end to end, C3D8 point temperatures against ccx."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from structrom.rom.adapters.calculix import CalculixError, read_dat, read_inp, run_ccx, write_mesh_inp
from structrom.rom.adapters.calculix_deck import read_deck
from structrom.rom.adapters.calculix_keywords import IGNORED, MAPPED, REFUSED, classify
from structrom.rom.adapters.calculix_materials import norton_from_calculix
from structrom.rom.adapters.frd import read_frd_file
from structrom.rom.fem.structured import box

needs_ccx = pytest.mark.skipif(shutil.which("ccx") is None, reason="CalculiX ccx not installed")
ROOT = Path(__file__).resolve().parent.parent

MODEL = """*HEADING
two C3D8 bricks
*NODE, NSET=NALL
1,0,0,0
2,1,0,0
3,1,1,0
4,0,1,0
5,0,0,1
6,1,0,1
7,1,1,1
8,0,1,1
9,2,0,0
10,2,1,0
11,2,0,1
12,2,1,1
*ELEMENT, TYPE=C3D8, ELSET=EALL
1,1,2,3,4,5,6,7,8
2,2,9,10,3,6,11,12,7
*NSET,NSET=FIX
1,4,5,8
*NSET,NSET=LOAD
9,10,11,12
*MATERIAL,NAME=STEEL
*ELASTIC
200000,0.3,20
150000,0.3,600
*EXPANSION,ZERO=20
1.2e-5
*PLASTIC
200,0,20
300,0.1,20
*SOLID SECTION,ELSET=EALL,MATERIAL=STEEL
*INITIAL CONDITIONS,TYPE=TEMPERATURE
NALL,20
*AMPLITUDE,NAME=A1
0,0,1,1,2,0.5
*AMPLITUDE,NAME=TOT,TIME=TOTAL TIME
0,0,2,1
*BOUNDARY
FIX,1,3
"""
STEPS = """*STEP
*STATIC
0.5,1
*CLOAD,AMPLITUDE=A1
LOAD,1,60
*DLOAD,AMPLITUDE=TOT
2,P4,10.
*TEMPERATURE
1,20
2,220
3,220
4,20
5,20
6,220
7,220
8,20
9,420
10,420
11,420
12,420
*NODE FILE
U,NT
*EL FILE
S,E,PEEQ
*NODE PRINT,NSET=LOAD,TOTALS=ONLY
RF
*NODE PRINT,NSET=NALL
U
*EL PRINT,ELSET=EALL
S,PEEQ
*END STEP
*STEP
*STATIC
0.5,1.5
*TEMPERATURE
9,20
*DLOAD,OP=NEW
*END STEP
"""


def _write(tmp_path, text, name="job.inp"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- .frd / .dat -----------------------------------------------------------------------------------------
@needs_ccx
@pytest.mark.calculix
@pytest.mark.parametrize("redefine", [False, True])
def test_frd_and_dat_against_each_other_and_deck_histories(tmp_path, redefine):
    """The .frd (6 digits) and .dat (7 digits) of one ccx run agree; ccx's nodal temperatures and total
    load equal the deck's histories: ramps, step- and total-time amplitudes, a load not given again keeps
    its end value (not its amplitude), OP=NEW removes the others at once and ramps the ones given again
    from their old values."""
    steps = STEPS.replace("*DLOAD,OP=NEW\n", "*DLOAD,OP=NEW\n2,P4,20.\n*CLOAD\nLOAD,1,30\n") if redefine else STEPS
    path = _write(tmp_path, MODEL + steps)
    run_ccx(tmp_path, "job", timeout=120)
    frd = read_frd_file(tmp_path / "job.frd")
    dat = read_dat(tmp_path / "job.dat")
    mesh, ids = read_inp(path)
    assert np.array_equal(frd.node_ids, ids.node_ids) and np.array_equal(frd.element_ids, ids.element_ids)
    assert np.allclose(frd.coordinates, mesh.points)
    assert all(np.array_equal(c, mesh.blocks[0].connectivity[i] + 1) for i, c in enumerate(frd.connectivity))
    assert np.allclose(frd.times[:2], [0.5, 1.0]) and np.isclose(frd.times[-1], 2.5)
    deck = read_deck(path)
    temps = deck.history("temperature", frd.times)
    for k, inc in enumerate(frd.increments):
        u_dat = dat[sorted(dat)[k]]["U"].values
        assert np.allclose(inc.nodal("DISP", ids.node_ids), u_dat, rtol=1e-5, atol=1e-5 * np.abs(u_dat).max())
        assert set(inc.fields) >= {"DISP", "NDTEMP", "STRESS", "TOSTRAIN", "PE"}
        assert inc.fields["STRESS"].shape == (12, 6) and inc.fields["PE"].shape == (12,)
        assert np.allclose(inc.fields["NDTEMP"], temps[k], rtol=1e-5)  # ramped, then node 9 back to 20
        # TOTALS=ONLY: the force total on the set LOAD (the face x = 2) is the applied force minus the
        # pressure on that face (face 4 of element 2, area 1): both histories as the deck says
        total = dat[sorted(dat)[k]]["RF_TOTAL"].values[0, 0]
        cload = deck.history("cload", frd.times[k:k + 1])[0].reshape(-1, 3)[:, 0].sum()
        pressure = deck.history("pressure", frd.times[k:k + 1])[0, 0]
        assert abs(total - (cload - pressure)) <= 1e-5 * abs(cload)
    p = deck.history("pressure", np.array([0.5, 1.0, 1.5, 2.5]))[:, 0]
    assert np.allclose(p, [2.5, 5.0, 5.0 + 15.0 / 3, 20.0] if redefine else [2.5, 5.0, 0.0, 0.0])


@needs_ccx
@pytest.mark.calculix
def test_loads_given_twice_in_a_step_add_up_as_in_ccx(tmp_path):
    """ccx 2.20 adds the loads a step gives one node dof or face more than once (two lines, two cards, a set listing
    a member twice, an OP=NEW card that is not the step's first of its kind, which ccx ignores); the deck's
    histories do too: ccx's total force on the loaded face (applied forces minus the pressure on face 4 of element
    2, area 1) equals theirs to the .dat's 7 digits. Boundary values given twice take the last one."""
    steps = """*NSET,NSET=LOAD2
LOAD,9
*ELSET,ELSET=E22
2,2
*STEP
*STATIC
*CLOAD
LOAD,1,6.
9,1,1.
*CLOAD,OP=NEW
LOAD2,1,0.5
*DLOAD
2,P4,1.
*DLOAD,OP=NEW
E22,P4,0.5
*BOUNDARY
1,1,1,0.001
1,1,1,0.
*NODE PRINT,NSET=LOAD,TOTALS=ONLY
RF
*END STEP
"""
    path = _write(tmp_path, MODEL + steps)
    run_ccx(tmp_path, "job", timeout=120)
    total = read_dat(tmp_path / "job.dat")[1.0]["RF_TOTAL"].values[0, 0]
    deck = read_deck(path)
    cload = deck.history("cload", np.array([1.0]))[0].reshape(-1, 3)[:, 0]
    pressure = deck.history("pressure", np.array([1.0]))[0]
    assert cload.sum() == pytest.approx(4 * 6.0 + 1.0 + 4 * 0.5 + 0.5) and pressure.tolist() == [2.0]
    assert abs(total - (cload.sum() - pressure.sum())) <= 1e-6 * cload.sum()
    assert deck.history("boundary", np.array([1.0]))[0, 0] == 0.0
    assert [k for k, _, _ in deck.ignored if "OP=NEW" in k] == ["CLOAD, OP=NEW", "DLOAD, OP=NEW"]
    amplitude = steps.replace("*DLOAD,OP=NEW", "*DLOAD,AMPLITUDE=A1")
    with pytest.raises(CalculixError, match=r"job.inp:\d+: \*DLOAD: a face loaded earlier in this step with another "
                                            r"amplitude: ccx adds"):
        read_deck(_write(tmp_path, MODEL + amplitude))


@needs_ccx
@pytest.mark.calculix
@pytest.mark.parametrize("delayed", [False, True])
def test_amplitudes_going_on_in_later_steps_as_in_ccx(tmp_path, delayed):
    """A load not given again in a later step keeps its end value, except that ccx 2.20 goes on with a total-time
    amplitude (loads, boundary values, temperatures) and with a temperature's step-time amplitude (in the later
    step's time); a card's TIME DELAY shifts its amplitude; parameters are read without their blanks
    (TIME=TOTALTIME, TIMEDELAY): ccx's total force on LOAD and its nodal temperatures equal the deck's histories."""
    steps = """*STEP
*STATIC
0.5,1
*CLOAD,AMPLITUDE=TOT
LOAD,1,6.
*TEMPERATURE,AMPLITUDE=A1
LOAD,120.
*NODE FILE
U,NT
*NODE PRINT,NSET=LOAD,TOTALS=ONLY
RF
*END STEP
*STEP
*STATIC
0.5,1
*END STEP
"""
    model = MODEL
    if delayed:
        model = MODEL.replace("*BOUNDARY\nFIX", "*AMPLITUDE,NAME=TOT2,TIME=TOTALTIME\n0,0,2,1\n*BOUNDARY\nFIX")
        steps = steps.replace("*CLOAD,AMPLITUDE=TOT", "*CLOAD,AMPLITUDE=TOT2,TIME DELAY=0.5").replace(
            "*TEMPERATURE,AMPLITUDE=A1", "*TEMPERATURE,AMPLITUDE=A1,TIMEDELAY=0.25")
    path = _write(tmp_path, model + steps)
    run_ccx(tmp_path, "job", timeout=120)
    deck = read_deck(path)
    frd, dat = read_frd_file(tmp_path / "job.frd"), read_dat(tmp_path / "job.dat")
    assert np.isclose(frd.times[-1], 2.0) and np.any(frd.times > 1.2)
    temps = deck.history("temperature", frd.times)
    for k, inc in enumerate(frd.increments):
        assert np.allclose(inc.fields["NDTEMP"], temps[k], rtol=1e-5)
        total = dat[sorted(dat)[k]]["RF_TOTAL"].values[0, 0]
        cload = deck.history("cload", frd.times[k:k + 1])[0].reshape(-1, 3)[:, 0].sum()
        assert abs(total - cload) <= 1e-5 * 24.0
    force, temperature = (6.0 * 0.5, [30.0, 90.0]) if delayed else (6.0 * 0.75, [60.0, 120.0])
    assert deck.history("cload", np.array([1.5]))[0].reshape(-1, 3)[8, 0] == pytest.approx(force)
    assert deck.history("temperature", np.array([1.5, 2.0]))[:, 8] == pytest.approx(temperature)


def test_rotations_of_solid_nodes_are_ignored_as_ccx_does(tmp_path):
    # '*BOUNDARY / FIX,1,6' (as written for shells and beams) is valid for ccx on solids: dofs 4-6 do not exist
    base = read_deck(_write(tmp_path, MODEL + STEPS))
    deck = read_deck(_write(tmp_path, MODEL.replace("*BOUNDARY\nFIX,1,3", "*BOUNDARY\nFIX,1,6\nFIX,5,5,0.1") + STEPS))
    assert sorted(deck.boundary.keys) == sorted(base.boundary.keys)
    assert [(k, w.rsplit(":", 1)[1]) for k, w, _ in deck.ignored if k == "BOUNDARY"] == [("BOUNDARY", "40"), ("BOUNDARY", "41")]


@needs_ccx
@pytest.mark.calculix
def test_run_with_a_node_of_no_element_is_imported(tmp_path):
    """A node no element uses (a geometry point of a mesher, a reference node) is valid for ccx, which writes no
    result there: the import gives it a zero displacement and the others ccx's."""
    from structrom.rom.adapters.calculix_import import import_calculix
    from structrom.rom.offline.snapshots import read_training_case

    runs = tmp_path / "runs"
    runs.mkdir()
    _write(runs, MODEL.replace("12,2,1,1\n", "12,2,1,1\n99,5,5,5\n") + STEPS, "a.inp")
    run_ccx(runs, "a", timeout=120)
    import_calculix(runs / "a.inp", runs, tmp_path / "m")
    mesh = read_inp(tmp_path / "m" / "mesh.inp")[0]
    u = read_training_case(tmp_path / "m" / "train" / "a.h5", mesh).displacements()
    frd = read_frd_file(runs / "a.frd")
    assert 99 not in frd.node_ids and np.all(u[:, 12] == 0.0)
    assert np.array_equal(u[:, :12], np.array([inc.nodal("DISP", np.arange(1, 13)) for inc in frd.increments]))


@needs_ccx
@pytest.mark.calculix
def test_prepomax_step_conventions(tmp_path):
    """PrePoMax starts every step with '*Boundary, op=New', '*Cload, op=New', '*Dload, op=New' and gives the
    conditions again ('FIX, 1, 6, 0' on solids): the same histories as the deck without them; a boundary value
    given again after OP=NEW ramps from its old value, as ccx's displacements show."""
    renew = "*Boundary, op=New\n*Boundary\nFIX, 1, 6, 0\n9, 1, 1, {}\n*Cload, op=New\n*Dload, op=New\n"
    steps = STEPS.replace("*CLOAD,AMPLITUDE=A1", renew.format(0.0005) + "*CLOAD,AMPLITUDE=A1", 1).replace(
        "*TEMPERATURE\n9,20\n*DLOAD,OP=NEW\n", renew.format(0.001) + "*Node file\nU\n")
    plain = STEPS.replace("*CLOAD,AMPLITUDE=A1", "*BOUNDARY\n9,1,1,0.0005\n*CLOAD,AMPLITUDE=A1", 1).replace(
        "*TEMPERATURE\n9,20\n*DLOAD,OP=NEW\n", "*BOUNDARY\n9,1,1,0.001\n*CLOAD,OP=NEW\n*DLOAD,OP=NEW\n")
    path = _write(tmp_path, MODEL + steps)
    deck, base = read_deck(path), read_deck(_write(tmp_path, MODEL + plain, "plain.inp"))
    times = np.linspace(0.0, 2.5, 11)
    for name in ("boundary", "cload", "pressure", "temperature"):
        assert np.array_equal(deck.history(name, times), base.history(name, times)), name
    run_ccx(tmp_path, "job", timeout=120)
    frd = read_frd_file(tmp_path / "job.frd")
    u9 = np.array([inc.nodal("DISP", np.array([9]))[0, 0] for inc in frd.increments])
    assert np.allclose(u9, deck.history("boundary", frd.times)[:, 3 * 8], rtol=1e-5)
    assert u9[-1] == pytest.approx(0.001) and np.any((u9 > 0.0005 + 1e-6) & (u9 < 0.001 - 1e-6))


@needs_ccx
@pytest.mark.calculix
def test_dload_op_new_removes_body_loads_as_in_ccx(tmp_path):
    """*DLOAD, OP=NEW removes gravity (and centrifugal loads) too: ccx's total reaction on the clamp follows the
    weight in step 1 and is 0 in step 2; so is the deck's gravity history."""
    steps = """*STEP
*STATIC
*DLOAD,AMPLITUDE=ONE
EALL,GRAV,9810.,0.,0.,-1.
*NODE PRINT,NSET=FIX,TOTALS=ONLY
RF
*END STEP
*STEP
*STATIC
*DLOAD,OP=NEW
*END STEP
"""
    model = MODEL.replace("*SOLID SECTION", "*DENSITY\n7.8e-9\n*SOLID SECTION").replace(
        "*BOUNDARY\nFIX", "*AMPLITUDE,NAME=ONE,TIME=TOTAL TIME\n0,1,10,1\n*BOUNDARY\nFIX")
    path = _write(tmp_path, model + steps)
    run_ccx(tmp_path, "job", timeout=120)
    dat = read_dat(tmp_path / "job.dat")
    totals = [dat[t]["RF_TOTAL"].values[0, 2] for t in sorted(dat)]
    weight = 2.0 * 7.8e-9 * 9810.0  # (ccx's RF on FIX: the weight less the eighth of element 1's at each FIX node)
    assert totals[0] == pytest.approx(0.75 * weight, rel=1e-5) and abs(totals[-1]) < 1e-6 * weight
    assert read_deck(path).history("gravity", np.array([1.0, 2.0]))[:, 0].tolist() == [9810.0, 0.0]


def test_gravity_on_no_element_set_is_on_the_whole_flat_model(tmp_path):
    """Abaqus's gravity line with a blank element field (the whole model) in a flat deck loads as gravity on an
    explicit set of every element: the same gravity and centrifugal histories, on the made set of all elements."""
    model = MODEL.replace("*SOLID SECTION", "*DENSITY\n7.8e-9\n*SOLID SECTION")
    loads = ("GRAV,9810.,0.,0.,-1.", "CENTRIF,1e4,0.,0.,0.,0.,0.,1.")
    decks = [read_deck(_write(tmp_path, model + STEPS.replace("2,P4,10.", "\n".join(f"{s},{load}" for load in loads)),
                              f"{name}.inp")) for s, name in (("EALL", "explicit"), ("", "blank"))]
    explicit, blank = decks
    times = np.linspace(0.0, 2.5, 11)
    for name in ("gravity", "centrifugal"):
        assert np.array_equal(blank.history(name, times), explicit.history(name, times)), name
    assert np.max(blank.history("gravity", times)) > 0 and blank.gravity_dir == explicit.gravity_dir == (0.0, 0.0, -1.0)
    assert np.array_equal(blank.mesh.element_sets["_WHOLE_MODEL"], np.arange(blank.mesh.n_elements))


def test_material_data_of_other_analyses_is_ignored(tmp_path):
    # material libraries (PrePoMax's, say) give *CONDUCTIVITY, *SPECIFIC HEAT, *DAMPING: no effect on *STATIC steps
    base = read_deck(_write(tmp_path, MODEL + STEPS))
    extra = "*CONDUCTIVITY\n50.\n*SPECIFIC HEAT\n4.6e8\n*DAMPING,STRUCTURAL=0.02\n*SOLID SECTION"
    deck = read_deck(_write(tmp_path, MODEL.replace("*SOLID SECTION", extra) + STEPS))
    assert [m[:2] for m in deck.materials] == [m[:2] for m in base.materials]
    assert [k for k, _, _ in deck.ignored][:3] == ["CONDUCTIVITY", "SPECIFIC HEAT", "DAMPING"]


def test_non_uniform_initial_temperatures_with_constant_expansion_are_named(tmp_path):
    from structrom.rom.adapters.calculix_import import _reference_temperatures

    deck = read_deck(_write(tmp_path, MODEL.replace("*ELASTIC\n200000,0.3,20\n150000,0.3,600", "*ELASTIC\n200000,0.3")
                            + STEPS))
    t0 = np.full(deck.mesh.n_nodes, 20.0)
    assert _reference_temperatures(deck.materials, t0, "job.inp")[0][1]["elastic"]["reference_temperature"] == 20.0
    t0[3] = 50.0
    with pytest.raises(CalculixError, match=r"job.inp: material of EALL: ccx's thermal strain alpha \(T - T0\) is "
                                            r"relative to the initial temperatures T0 .*20..50\), which are not uniform"):
        _reference_temperatures(deck.materials, t0, "job.inp")


def test_included_data_lines_continue_the_card(tmp_path):
    # '*NODE' in the deck, its lines in an included file (as meshers write them): ccx reads the text in place; an
    # error in such a line names the included file and its line
    head, tail = MODEL.split("*ELEMENT")
    nodes = head.split("*NODE, NSET=NALL\n")[1].split("*")[0]
    (tmp_path / "nodes.txt").write_text(nodes)
    text = MODEL.replace(nodes, "*INCLUDE, INPUT=nodes.txt\n") + STEPS
    deck, base = read_deck(_write(tmp_path, text)), read_deck(_write(tmp_path, MODEL + STEPS, "base.inp"))
    assert np.array_equal(deck.mesh.points, base.mesh.points) and np.array_equal(deck.ids.node_ids, base.ids.node_ids)
    assert np.array_equal(deck.mesh.node_sets["NALL"], base.mesh.node_sets["NALL"])
    (tmp_path / "nodes.txt").write_text(nodes.replace("7,1,1,1", "7,1,x,1"))
    with pytest.raises(CalculixError, match=r"nodes.txt:7: \*NODE: numbers 'id, x, y, z' expected, got 'x'"):
        read_deck(tmp_path / "job.inp")


@needs_ccx
@pytest.mark.calculix
def test_deck_times_are_ccx_fixed_increments(tmp_path):
    # a period that is no multiple of the fixed increment: ccx's last increment is the rest (0.3, 0.6, 0.9, 1.0)
    from structrom.rom.adapters.calculix_predict import deck_times

    steps = STEPS.replace("*STATIC\n0.5,1\n", "*STATIC,DIRECT\n0.3,1\n").replace("*STATIC\n0.5,1.5", "*STATIC,DIRECT\n0.4,1.5")
    path = _write(tmp_path, MODEL + steps)
    run_ccx(tmp_path, "job", timeout=120)
    times = deck_times(read_deck(path))
    assert np.allclose(times, [0.0, 0.3, 0.6, 0.9, 1.0, 1.4, 1.8, 2.2, 2.5])
    assert np.allclose(read_frd_file(tmp_path / "job.frd").times, times[1:], rtol=1e-6)


def test_set_names_differing_in_case_are_one_set(tmp_path):
    # ccx upper-cases set names: 'fix' and 'FIX' are one node set (the first spelling is kept)
    text = MODEL.replace("*NSET,NSET=FIX\n1,4,5,8\n", "*NSET,NSET=fix\n1,4\n*NSET,NSET=FIX\n5,8\n")
    deck = read_deck(_write(tmp_path, text + STEPS))
    assert "FIX" not in deck.mesh.node_sets and deck.mesh.node_sets["fix"].tolist() == [0, 3, 4, 7]
    assert sorted(deck.boundary.keys) == sorted(3 * n + c for n in (0, 3, 4, 7) for c in range(3))


def test_nested_include_is_found_as_ccx_opens_it(tmp_path):
    # ccx opens an *INCLUDE relative to the directory it runs in (the deck's), also from an included file
    head, tail = MODEL.split("*ELEMENT")
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "nodes.inp").write_text(head + "*INCLUDE, INPUT=elements.inp\n")
    (tmp_path / "elements.inp").write_text("*ELEMENT" + tail.split("*MATERIAL")[0])
    deck = read_deck(_write(tmp_path, "*INCLUDE, INPUT=mesh/nodes.inp\n*MATERIAL" + tail.split("*MATERIAL")[1] + STEPS))
    assert deck.mesh.n_elements == 2
    # a file name in double quotes (Abaqus's spelling) is the name without them, as ccx opens it
    quoted = read_deck(_write(tmp_path, '*INCLUDE, INPUT="mesh/nodes.inp"\n*MATERIAL' + tail.split("*MATERIAL")[1] + STEPS))
    assert quoted.mesh.n_elements == 2
    (tmp_path / "mesh" / "elements.inp").write_text("*ELEMENT" + tail.split("*MATERIAL")[0].replace("1,1,2", "1,2,1"))
    with pytest.raises(CalculixError, match=r"nodes.inp:\d+: \*INCLUDE, INPUT=elements.inp: two different files .*"
                                            r"ccx, run in the deck's directory, reads this one"):
        read_deck(tmp_path / "job.inp")


def test_frd_binary_and_truncated_files_are_refused(tmp_path):
    binary = tmp_path / "b.frd"
    binary.write_bytes(b"    1C\n    2C   12  \x00\x01\x02")
    with pytest.raises(CalculixError, match=r"binary .frd results are not supported; rerun ccx with ASCII results "
                                            r".*not \*NODE OUTPUT/\*ELEMENT OUTPUT, which write binary"):
        read_frd_file(binary)
    fmt2 = _write(tmp_path, "    1C\n    2C                            12                                     2\n", "f.frd")
    with pytest.raises(CalculixError, match=r"f.frd:2: .frd format 2 \(binary\) is not supported"):
        read_frd_file(fmt2)
    cut = _write(tmp_path, "    1C\n    2C                             1                                     1\n"
                           " -1         1 0.00000E+00 0.00000E+00 0.00000E+00\n", "cut.frd")
    with pytest.raises(CalculixError, match="cut.frd:3: block without ' -3' terminator; the file is truncated"):
        read_frd_file(cut)
    with pytest.raises(CalculixError, match="no node block"):
        read_frd_file(_write(tmp_path, "    1C\n", "empty.frd"))


def test_dat_totals_only_block(tmp_path):
    path = _write(tmp_path, "\n total force (fx,fy,fz) for set LOAD and time  0.5000000E+00\n\n"
                            "        1.199985E+02 -4.052314E-15  5.884182E-15\n\n"
                            " displacements (vx,vy,vz) for set N and time  0.5000000E+00\n\n"
                            "         1  1.000000E+00  0.000000E+00  0.000000E+00\n", "t.dat")
    out = read_dat(path)[0.5]
    assert np.allclose(out["RF_TOTAL"].values, [[119.9985, 0, 0]], atol=1e-12) and out["RF_TOTAL"].ids.size == 0
    assert np.array_equal(out["U"].ids, [1])


def test_dat_whole_element_blocks_and_other_layouts(tmp_path):
    # *EL PRINT of ELSE/EVOL: one value per element, the header names the id column; a block of a layout nothing
    # reads (here two values where the header names one) is passed over, a displacement block that does not parse
    # is an error naming the line
    path = _write(tmp_path, "\n internal energy (element, energy) for set EALL and time  0.1000000E+01\n\n"
                            "         1  5.115265E+00\n         2  4.000000E+00\n\n"
                            " contact something (value) for set C and time  0.1000000E+01\n\n"
                            "         1  1.0  2.0\n\n"
                            " displacements (vx,vy,vz) for set N and time  0.1000000E+01\n\n"
                            "         1  1.000000E+00  0.000000E+00  0.000000E+00\n", "e.dat")
    out = read_dat(path)[1.0]
    assert np.array_equal(out["internal energy"].ids, [1, 2])
    assert np.allclose(out["internal energy"].values, [[5.115265], [4.0]], rtol=0, atol=1e-15)
    assert "contact something" not in out and np.array_equal(out["U"].ids, [1])
    bad = _write(tmp_path, " displacements (vx,vy,vz) for set N and time  0.1000000E+01\n\n         1  1.0  0.0\n",
                 "bad.dat")
    with pytest.raises(CalculixError, match="bad.dat:1: block 'displacements' for set N has lines that are not 4"):
        read_dat(bad)


def test_damaged_result_files_are_named(tmp_path):
    # an element line cut short in the .frd, a time that is not a number and an id that is not one in the .dat
    frd = _write(tmp_path, "    1C\n    2C                             1                                     1\n"
                           " -1         1 0.00000E+00 0.00000E+00 0.00000E+00\n -3\n"
                           "    3C                             1                                     1\n -1\n -3\n", "cut.frd")
    with pytest.raises(CalculixError, match=r"cut.frd:5: malformed .frd block"):
        read_frd_file(frd)
    header = " displacements (vx,vy,vz) for set N and time  {}\n\n"
    dat = _write(tmp_path, header.format("0.1000000E+C1") + "         1  1.0  0.0  0.0\n", "t.dat")
    with pytest.raises(CalculixError, match=r"t.dat:1: .*time '0.1000000E\+C1' is not a number"):
        read_dat(dat)
    dat = _write(tmp_path, header.format("0.1000000E+01") + "         1.5  1.0  0.0  0.0\n", "i.dat")
    with pytest.raises(CalculixError, match=r"i.dat:1: .*ids that are not integers"):
        read_dat(dat)


@needs_ccx
@pytest.mark.calculix
def test_dat_only_runs_and_truncated_dat_blocks(tmp_path):
    """A run whose displacements are only in the .dat (*NODE PRINT on all nodes) gives every increment, as its .frd
    does (6 digits); a .dat cut at a line end (a PEEQ block short at the last time, complete before) is refused
    naming the file, the quantity and the time instead of the field being left out."""
    from structrom.rom.adapters.calculix_import import _read_results

    path = _write(tmp_path, MODEL + STEPS)
    run_ccx(tmp_path, "job", timeout=120)
    deck = read_deck(path)
    from_frd = _read_results("job", deck, [tmp_path / "job.frd"])
    from_dat = _read_results("job", deck, [tmp_path / "job.dat"])
    assert len(from_frd.times) > 2 and np.allclose(from_dat.times, from_frd.times, rtol=1e-6, atol=0)
    np.testing.assert_allclose(from_dat.displacement, from_frd.displacement, rtol=0,
                               atol=1e-5 * np.abs(from_frd.displacement).max())
    assert set(from_dat.points) == {"stress", "cumulated_plastic_strain"}
    lines = (tmp_path / "job.dat").read_text().splitlines(keepends=True)
    assert "equivalent plastic strain" in next(ln for ln in reversed(lines) if "for set" in ln)
    cut = _write(tmp_path, "".join(lines[:-1]), "cut.dat")
    with pytest.raises(CalculixError, match=rf"cut.dat: the PEEQ block\(s\) at time {from_frd.times[-1]:g} cover 15 "
                                            r"of the 16 integration points, those at time .* all of them: the file is "
                                            "truncated"):
        _read_results("job", deck, [tmp_path / "job.frd", cut])
    # two *EL PRINT requests of S on all elements: every point printed twice, with the same values (both read)
    twice = _write(tmp_path, MODEL + STEPS.replace("*EL PRINT,ELSET=EALL\nS,PEEQ\n",
                                                   "*EL PRINT,ELSET=EALL\nS,PEEQ\n*EL PRINT,ELSET=EALL\nS\n"), "twice.inp")
    run_ccx(tmp_path, "twice", timeout=120)
    both = _read_results("twice", read_deck(twice), [tmp_path / "twice.frd", tmp_path / "twice.dat"])
    assert set(both.points) == {"stress", "cumulated_plastic_strain"}
    np.testing.assert_array_equal(both.points["stress"], from_dat.points["stress"])


def test_damaged_frd_and_dat_transfers_are_named(tmp_path):
    # what a damaged transfer does to ccx's result files: a node line lost or doubled (the block's declared count
    # differs), a node block whose ' -3' is lost (element lines read as nodes), a field header whose '100CL' line is
    # lost (the block would be passed over), a time that is not a number, a gzip-compressed or UTF-16 copy
    import gzip

    from structrom.rom.adapters.frd_writer import write_frd

    mesh = box((1.0, 1.0, 1.0), (1, 1, 1), "C3D8")
    good = write_frd(tmp_path / "good.frd", mesh, np.array([0.5, 1.0]), {"DISP": np.ones((2, mesh.n_nodes, 3))})
    lines = good.read_text().splitlines(keepends=True)
    assert len(read_frd_file(good).increments) == 2
    node_block = next(i for i, ln in enumerate(lines) if ln.startswith("    2C"))
    result = next(i for i, ln in enumerate(lines) if ln.startswith("  100CL"))
    first = next(i for i in range(result, len(lines)) if lines[i].startswith(" -1"))
    cases = {
        "lost.frd": (lines[:first + 2] + lines[first + 3:], rf"lost.frd:{result + 1}: the block declares 8 nodes but "
                                                            "holds 7 ' -1' lines"),
        "twice.frd": (lines[:first + 2] + lines[first + 1:], rf"twice.frd:{result + 1}: the block declares 8 nodes but "
                                                             "holds 9"),
        "noend.frd": (lines[:node_block + 9] + lines[node_block + 10:], rf"noend.frd:{node_block + 1}: the block "
                                                                          "declares 8 nodes but holds 9"),
        "nocl.frd": (lines[:result] + lines[result + 1:], rf"nocl.frd:{result + 1}: a field header ' -4' without its"),
        "nan.frd": (lines[:result] + [lines[result][:12] + "         nan" + lines[result][24:]] + lines[result + 1:],
                    rf"nan.frd:{result + 1}: the block's time 'nan' is not a finite number"),
    }
    for name, (text, message) in cases.items():
        with pytest.raises(CalculixError, match=message):
            read_frd_file(_write(tmp_path, "".join(text), name))
    (tmp_path / "z.frd").write_bytes(gzip.compress(good.read_bytes()))
    with pytest.raises(CalculixError, match="z.frd: the file is gzip-compressed; decompress it"):
        read_frd_file(tmp_path / "z.frd")
    dat = " displacements (vx,vy,vz) for set N and time  0.1000000E+01\n\n         1  1.000000E+00  0.0  0.0\n"
    (tmp_path / "z.dat").write_bytes(gzip.compress(dat.encode()))
    (tmp_path / "u16.dat").write_bytes(dat.encode("utf-16"))
    (tmp_path / "latin.dat").write_bytes(b"caf\xe9\n" + dat.encode())
    with pytest.raises(CalculixError, match="z.dat: the file is gzip-compressed"):
        read_dat(tmp_path / "z.dat")
    with pytest.raises(CalculixError, match="u16.dat: not a text file"):
        read_dat(tmp_path / "u16.dat")
    assert np.array_equal(read_dat(tmp_path / "latin.dat")[1.0]["U"].ids, [1])  # (a stray byte outside the blocks)
    with pytest.raises(CalculixError, match="nan.dat:1: block 'displacements' for set N: time 'nan' is not a number"):
        read_dat(_write(tmp_path, dat.replace("0.1000000E+01", "nan"), "nan.dat"))


def test_writer_accepts_user_sets_named_like_the_all_sets(tmp_path):
    mesh = box((1.0, 1.0, 1.0), (2, 1, 1), "C3D8")
    mesh.node_sets["NALL"] = np.arange(mesh.n_nodes)
    mesh.element_sets["EALL"] = np.arange(mesh.n_elements)
    write_mesh_inp(tmp_path / "m.inp", mesh)
    back, _ = read_inp(tmp_path / "m.inp")
    assert len(back.node_set("Nall")) == mesh.n_nodes and "NALL" not in back.node_sets
    mesh.node_sets["NALL"] = np.arange(3)
    with pytest.raises(CalculixError, match="node set 'NALL' is not every node but has the name of the all-nodes"):
        write_mesh_inp(tmp_path / "m.inp", mesh)


# -- deck errors: every refusal names keyword, file and line ----------------------------------------------
def _deck(extra_model="", steps=None):
    return MODEL + extra_model + (STEPS if steps is None else steps)


ERRORS = [
    # a range of 1e15 ids was materialized (a MemoryError, or the server's process killed): refused by its size
    (MODEL.replace("*NSET,NSET=FIX\n1,4,5,8\n", "*NSET,NSET=FIX,GENERATE\n1,999999999999999,1\n") + STEPS,
     r"job.inp:\d+: GENERATE 1, 999999999999999, 1 names 999999999999999 ids, more than the deck defines"),
    (_deck("*CONTACT PAIR, INTERACTION=SI, TYPE=SURFACE TO SURFACE\nA,B\n"),
     r"not supported: \*CONTACT PAIR, .*job.inp:41: contact is not modelled"),
    (_deck("*FOO BAR\n"), r"not supported: \*FOO BAR, .*job.inp:41: not a keyword of the CalculiX 2.20"),
    (_deck("*EQUATION\n2\n1,1,1.,2,1,-1.\n"), r"not supported: \*EQUATION, .*:41: linear constraints"),
    (_deck("*INITIAL CONDITIONS,TYPE=STRESS\n1,1,0,0,0,0,0,0\n"), r"\*INITIAL CONDITIONS, .*:41: TYPE=STRESS"),
    (_deck("*RESTART, READ, STEP=1\n"), r"not supported: \*RESTART, .*job.inp:41: READ: the run continues"),
    (_deck(steps=STEPS.replace("*STEP\n*STATIC\n0.5,1", "*STEP,NLGEOM\n*STATIC\n0.5,1", 1)),
     r"not supported: \*STEP, .*: NLGEOM"),
    (_deck(steps=STEPS.replace("*STATIC\n0.5,1.5", "*STATIC,TIME RESET\n0.5,1.5")), r"\*STATIC, .*: TIME RESET"),
    (_deck(steps=STEPS.replace("*STATIC\n0.5,1.5", "*STATIC,TIMERESET\n0.5,1.5")), r"\*STATIC, .*: TIME RESET"),
    (_deck(steps=STEPS.replace("*STATIC\n0.5,1\n", "*STATIC,TOTAL TIME AT START=5\n0.5,1\n", 1)),
     r"not supported: \*STATIC, .*job.inp:\d+: TOTAL TIME AT START"),
    (MODEL.replace("*AMPLITUDE,NAME=TOT,TIME=TOTAL TIME", "*AMPLITUDE,NAME=TOT,TIME=TOTAL") + STEPS,
     r"job.inp:\d+: \*AMPLITUDE: TIME=TOTAL is unknown; use TIME=STEP TIME or TOTAL TIME"),
    (_deck(steps=STEPS.replace("*CLOAD,AMPLITUDE=A1", "*CLOAD,TIME DELAY=1")), r"\*CLOAD: TIME DELAY needs an AMPLITUDE"),
    (_deck(steps=STEPS.replace("*CLOAD,AMPLITUDE=A1", "*CLOAD,USER")), r"not supported: \*CLOAD, .*: USER: values from a user"),
    (_deck(steps=STEPS.replace("*DLOAD,AMPLITUDE=TOT", "*DLOAD,SUBMODEL,STEP=1")), r"\*DLOAD, .*: SUBMODEL: values interp"),
    (_deck(steps=STEPS.replace("*STATIC\n0.5,1\n", "*FREQUENCY\n2\n", 1)), r"not supported: \*FREQUENCY"),
    (_deck(steps=STEPS.replace("LOAD,1,60", "LOAD,4,60")), r"\*CLOAD, .*: dof 4 at line \d+: only forces"),
    (_deck(steps=STEPS.replace("2,P4,10.", "2,TRVEC4,10.,1,0,0")), r"\*DLOAD, .*: load label TRVEC4 .*no traction labels"),
    (_deck(steps=STEPS.replace("2,P4,10.", "2,GRAV,9.81,0,0,-1")), r"\*DLOAD, .*: GRAV on 1 of 2 elements"),
    (_deck(steps=STEPS.replace("2,P4,10.", "2,NEWTON,1.")), r"load label NEWTON .*only P1-P6, CENTRIF and GRAV"),
    (MODEL.replace("*ELEMENT, TYPE=C3D8, ELSET=EALL\n1,1,2,3,4,5,6,7,8\n2,2,9,10,3,6,11,12,7",
                   "*ELEMENT, TYPE=C3D4, ELSET=EALL\n1,1,2,4,5\n2,2,9,10,6") + STEPS.replace("2,P4,10.", "2,P5,10."),
     r"job.inp:\d+: \*DLOAD: load label P5: face S5 of element 2: a C3D4 element has faces S1-S4"),
    (_deck(steps=STEPS.replace("*CLOAD,AMPLITUDE=A1", "*CLOAD,AMPLITUDE=NOPE")), r"AMPLITUDE=NOPE is not defined"),
    (_deck(steps=STEPS.replace("*TEMPERATURE\n9,20", "*TEMPERATURE,OP=NEW\n9,20")), r"\*TEMPERATURE, .*: OP=NEW"),
    (_deck(steps=STEPS.replace("*TEMPERATURE\n9,20", "*BOUNDARY,OP=NEW\n1,1,3")),
     r"\*BOUNDARY, .*job.inp:\d+: OP=NEW releases 9 constrained dofs \(first: node 4, component x\)"),
    (_deck(steps=STEPS.replace("*TEMPERATURE\n9,20", "*BOUNDARY\nLOAD,2,2")),
     r"\*BOUNDARY, .*constrains dofs first in step 2"),
    (_deck(steps=STEPS.replace("*TEMPERATURE\n9,20", "*BOUNDARY\nLOAD,11,11,30.")), r"dofs 11-11 .*only translations"),
    (_deck(steps=STEPS.replace("*TEMPERATURE\n1,20", "*TEMPERATURE\n77,20")), r"node ids \[77\] are not in the mesh"),
    (_deck(steps=STEPS.replace("*TEMPERATURE\n1,20", "*TEMPERATURE\nNOSET,20")), r"'NOSET' is neither a node id nor"),
    (_deck(steps=STEPS.replace("*END STEP\n*STEP", "*STEP", 1)), r"\*STEP inside a step"),
    (_deck(steps=""), r"no \*STEP: the deck has no analysis"),
    (_deck(steps=STEPS.rsplit("*END STEP", 1)[0]), r"the last \*STEP has no \*END STEP"),
    (MODEL.replace("*ELASTIC\n", "*ELASTIC,TYPE=ORTHO\n") + STEPS, r"\*ELASTIC, .*: TYPE=ORTHO: only isotropic"),
    (MODEL.replace("*EXPANSION,ZERO=20", "*EXPANSION,TYPE=ORTHO") + STEPS, r"\*EXPANSION, .*TYPE=ORTHO"),
    (MODEL.replace("*PLASTIC\n", "*PLASTIC,HARDENING=KINEMATIC\n") + STEPS,
     r"not supported: \*PLASTIC, .*: HARDENING=KINEMATIC: the material registry has no such law yet"),
    (MODEL.replace("*PLASTIC\n", "*PLASTIC,HARDENING=COMBINED\n") + STEPS, r"COMBINED without \*CYCLIC HARDENING"),
    (MODEL.replace("*PLASTIC\n200,0,20", "*PLASTIC\n200,0.01,20") + STEPS, r"material STEEL .*must start at 0"),
    (MODEL.replace("*SOLID SECTION", "*CREEP\n1e-20,5,0.2\n*SOLID SECTION") + STEPS,
     r"\*CREEP, .*: time-hardening exponent m = 0.2"),
    (MODEL.replace("*SOLID SECTION", "*CREEP,LAW=USER\n*SOLID SECTION") + STEPS, r"\*CREEP, .*: LAW=USER"),
    (MODEL.replace("*SOLID SECTION", "*DENSITY\n7.8e-9,20\n7.7e-9,600\n*SOLID SECTION") + STEPS,
     r"\*DENSITY, .*temperature-dependent density"),
    (MODEL.replace("*ELASTIC\n200000,0.3,20\n150000,0.3,600\n", "") + STEPS, r"material STEEL .*no \*ELASTIC card"),
    (MODEL.replace("MATERIAL=STEEL", "MATERIAL=IRON") + STEPS, r"MATERIAL='IRON' is not defined"),
    (MODEL.replace("ELSET=EALL,MATERIAL", "ELSET=NOPE,MATERIAL") + STEPS, r"ELSET='NOPE' is not an element set"),
    (MODEL.replace("*SOLID SECTION,ELSET=EALL,MATERIAL=STEEL", "*ELSET,ELSET=ONE\n1\n*SOLID SECTION,ELSET=ONE,"
                                                               "MATERIAL=STEEL") + STEPS,
     r"elements with ids \[2\] have 0 \*SOLID SECTION assignments"),
    (MODEL.replace("*SOLID SECTION,ELSET=EALL,MATERIAL=STEEL\n", "") + STEPS, r"no \*SOLID SECTION"),
    (MODEL.replace("0,0,1,1,2,0.5", "0,0,1") + STEPS, r"\*AMPLITUDE: needs pairs"),
    (MODEL.replace("*AMPLITUDE,NAME=A1", "*AMPLITUDE,NAME=A1,SHIFTX=1") + STEPS, r"\*AMPLITUDE, .*only tabular"),
    (MODEL.replace("*INITIAL CONDITIONS,TYPE=TEMPERATURE\nNALL,20", "*INITIAL CONDITIONS,TYPE=TEMPERATURE\nNALL,hot")
     + STEPS, r"job.inp:34: \*INITIAL CONDITIONS: temperature must be a number, got 'hot'"),
    (MODEL.replace("*ELEMENT, TYPE=C3D8", "*ELEMENT, TYPE=S8R") + STEPS, r"element TYPE=S8R is not supported"),
    (MODEL.replace("*NSET,NSET=FIX", "*ELEMENT, type=CPS6, ELSET=Surface1\n9,1,2,3,4,5,6\n*NSET,NSET=FIX") + STEPS,
     r"job.inp:\d+: \*ELEMENT: element TYPE=CPS6 is not supported; .*meshers \(gmsh\) export the surface"),
    ("*Part, name=Plate\n" + MODEL + STEPS, r"not supported: \*HEADING, .*job.inp:2: inside \*PART"),
    ("*INCLUDE, INPUT=missing.inp\n", r"\*INCLUDE file .*missing.inp' does not exist"),
    # third-party decks (docs/adapters.md, 'Third-party decks'): what ccx reads otherwise than it looks
    (MODEL.replace("*NSET,NSET=LOAD\n9,10,11,12", "*ELSET,ELSET=TIP\n2\n*NSET,NSET=LOAD,ELSET=TIP") + STEPS,
     r"not supported: \*NSET, .*job.inp:\d+: ELSET=TIP .*ccx 2.20 ignores the parameter"),
    (MODEL.replace("*NODE, NSET=NALL", "*NODE, NSET=NALL, INPUT=nodes.inp") + STEPS,
     r"not supported: \*NODE, .*job.inp:3: INPUT=nodes.inp .*put '\*INCLUDE, INPUT=nodes.inp' on the line after"),
    (_deck(steps=STEPS.replace("2,P4,10.", ",P4,10.")), r"job.inp:\d+: \*DLOAD: the element field is empty "
                                                      r"\(only a body load, GRAV or CENTRIF, on no element set"),
    (MODEL.replace("*EXPANSION,ZERO=20", "*EXPANSION,ZERO=20,USER") + STEPS, r"\*EXPANSION, .*: USER: thermal strains"),
    (MODEL.replace("200000,0.3,20", "200 000,0.3,20") + STEPS, r"job.inp:\d+: \*ELASTIC: young must be a number, got '200 000'"),
    (MODEL.replace("*ELEMENT, TYPE=C3D8,", "*ELEMENT, TYPE=C3D8R,") + STEPS, r"TYPE=C3D8R is not supported \(one integration "
                                                                          r"point .*\): use C3D8 or C3D20R"),
    (MODEL.replace("*ELEMENT, TYPE=C3D8,", "*ELEMENT, TYPE=C3D8I,") + STEPS,
     r"job.inp:\d+: \*ELEMENT: element TYPE=C3D8I is not supported \(incompatible modes.*use C3D20R"),
]


@pytest.mark.parametrize("text,message", ERRORS, ids=[f"error{i}" for i in range(len(ERRORS))])
def test_deck_errors_name_keyword_file_and_line(tmp_path, text, message):
    with pytest.raises(CalculixError, match=message):
        read_deck(_write(tmp_path, text))


def test_keyword_table():
    """Mapped, ignored and refused keywords are disjoint; every mapped keyword has an import rule (a deck
    using each parses); unknown keywords are refused."""
    assert not (set(MAPPED) & set(IGNORED)) and not (set(MAPPED) & set(REFUSED)) and not (set(IGNORED) & set(REFUSED))
    assert classify("CONTACT PAIR")[0] == "refused" and classify("NODE FILE")[0] == "ignored"
    assert classify("XYZ")[0] == "refused"


def test_deck_maps_includes_materials_and_ignores_output_requests(tmp_path):
    (tmp_path / "mesh.inp").write_text(MODEL.split("*MATERIAL")[0])
    text = "*INCLUDE, INPUT=mesh.inp\n*MATERIAL" + MODEL.split("*MATERIAL")[1].replace(
        "*SOLID SECTION", "*DENSITY\n7.8e-9\n*CREEP\n1e-20,5,0,20\n2e-19,5,0,600\n*SOLID SECTION")
    with pytest.raises(CalculixError, match=r"not supported: \*STATIC, .*job.inp:\d+: a \*STATIC step in a model with "
                                         r"\*CREEP and \*PLASTIC"):
        read_deck(_write(tmp_path, text + STEPS))
    deck = read_deck(_write(tmp_path, text + STEPS.replace("*STATIC", "*VISCO,CETOL=1.E-3")))
    law = deck.materials[0][1]
    assert law["type"] == "norton_viscoplasticity" and law["elastic"]["density"] == 7.8e-9
    assert law["elastic"]["young"] == {"temperatures": [20.0, 600.0], "values": [200000.0, 150000.0]}
    assert law["hardening"]["yield_stress"] == [[200.0, 300.0]]
    assert [k for k, _, _ in deck.ignored] == ["NODE FILE", "EL FILE", "NODE PRINT", "NODE PRINT", "EL PRINT"]
    assert [(s.start, s.end, s.ramp) for s in deck.steps] == [(0.0, 1.0, False), (1.0, 2.5, False)]


def test_isotropic_spelled_out_is_the_iso_law(tmp_path):
    # ccx reads TYPE=ISO from the first 8 characters: Abaqus's TYPE=ISOTROPIC is the same law (ORTHO stays refused)
    iso = read_deck(_write(tmp_path, MODEL + STEPS)).materials
    spelled = MODEL.replace("*ELASTIC\n", "*ELASTIC,TYPE=ISOTROPIC\n").replace("*EXPANSION,ZERO=20",
                                                                              "*EXPANSION,TYPE=ISOTROPIC,ZERO=20")
    assert read_deck(_write(tmp_path, spelled + STEPS)).materials == iso


def test_keywords_without_blanks_are_the_keywords(tmp_path):
    # ccx removes a keyword's blanks before comparing: *SOLIDSECTION, *INITIALCONDITIONS, *NODEPRINT are valid decks
    base = read_deck(_write(tmp_path, MODEL + STEPS))
    text = (MODEL + STEPS).replace("*SOLID SECTION", "*SOLIDSECTION").replace("*INITIAL CONDITIONS", "*INITIALCONDITIONS")
    deck = read_deck(_write(tmp_path, text.replace("*NODE PRINT", "*NODEPRINT").replace("*EL FILE", "*Elfile")))
    assert [m[:2] for m in deck.materials] == [m[:2] for m in base.materials]
    assert [k for k, _, _ in deck.ignored] == [k for k, _, _ in base.ignored]
    assert [(s.start, s.end, s.ramp) for s in deck.steps] == [(s.start, s.end, s.ramp) for s in base.steps]


def test_freecad_deck_conventions(tmp_path):
    # what FreeCAD's writer emits: ids with trailing commas, an element set named by another set, *BOUNDARY with one
    # dof per line, *STEP with INC, *STATIC without a data line (ccx: time period 1), *END STEP with a blank after it
    base = read_deck(_write(tmp_path, MODEL + STEPS))
    text = (MODEL.replace("*NSET,NSET=FIX\n1,4,5,8\n", "*NSET,NSET=FIX\n1,\n4,\n5,\n8,\n")
            .replace("*ELEMENT, TYPE=C3D8, ELSET=EALL", "*Element, TYPE=C3D8, ELSET=Evolumes")
            .replace("*NSET,NSET=LOAD", "*ELSET, ELSET=EALL\nEvolumes\n*NSET,NSET=LOAD")
            .replace("*BOUNDARY\nFIX,1,3\n", "*BOUNDARY\nFIX,1\nFIX,2\nFIX,3\n")
            + STEPS.replace("*STEP\n*STATIC\n0.5,1\n", "*STEP, INC=2000\n*STATIC\n\n\n", 1).replace("*END STEP\n", "*END STEP \n"))
    deck = read_deck(_write(tmp_path, text))
    assert np.array_equal(deck.mesh.element_sets["EALL"], base.mesh.element_sets["EALL"])
    assert np.array_equal(deck.mesh.node_sets["FIX"], base.mesh.node_sets["FIX"])
    def fixed(d):  # {(step, dof): value} of the boundary history
        return {(step, int(k)): float(v) for step, _, keys, vals, _ in d.boundary.entries for k, v in zip(keys, vals)}

    assert fixed(deck) == fixed(base) and len(fixed(base)) == 12
    assert [(s.start, s.end) for s in deck.steps] == [(0.0, 1.0), (1.0, 2.5)]
    assert [m[:2] for m in deck.materials] == [m[:2] for m in base.materials]


def test_third_party_deck_conventions(tmp_path):
    """What Windows editors, gmsh and Abaqus users write, read as ccx 2.20 reads it (checked with ccx: same
    displacements): a byte-order mark and CRLF line ends; names with blanks (gmsh's physical group 'Load Set') are
    the names without them, as ccx removes the blanks of every line; a *DLOAD line 'surface, P, value' is the
    *DSLOAD line; a node surface (contact only, in ccx) named like a node set leaves the set alone. Listed as
    ignored: Abaqus's *STATIC parameters that ccx does not read, a load line on an empty set (ccx: no warning)."""
    base = read_deck(_write(tmp_path, MODEL + STEPS, "base.inp"))
    times = np.array([0.0, 0.5, 1.0, 2.0, 2.5])
    text = ("\ufeff" + (MODEL + STEPS).replace("*NSET,NSET=LOAD", "*NSET, NSET = Load Set").replace("LOAD,1,60", "LOADSET, 1, 60")
            .replace("NAME=STEEL", "NAME=Steel S235").replace("MATERIAL=STEEL", "MATERIAL=STEELS235")
            .replace("*DLOAD,AMPLITUDE=TOT\n2,P4,10.", "*DLOAD,AMPLITUDE=TOT\nEnd Face, P, 10.")
            .replace("*BOUNDARY", "*ELSET,ELSET=E2\n2\n*SURFACE, NAME=end face\nE2, S4\n*SURFACE,NAME=LOADSET,TYPE=NODE\n1\n*BOUNDARY", 1).replace("\n", "\r\n"))
    deck = read_deck(_write(tmp_path, text.replace("*STATIC", "*STATIC, RIKS", 1)))
    assert "LoadSet" in deck.mesh.node_sets and "endface" in deck.mesh.surface_sets
    empty = read_deck(_write(tmp_path, (MODEL + STEPS).replace("*NSET,NSET=LOAD", "*NSET,NSET=NONE\n*NSET,NSET=LOAD")
                                       .replace("LOAD,1,60", "LOAD,1,60\nnone,2,5")))
    assert [(kw, where.rsplit(":", 1)[1], why) for kw, where, why in empty.ignored if kw == "CLOAD"] == [
        ("CLOAD", "47", "node set NONE is empty: the line applies nothing (ccx runs it so too, without a warning)")]
    assert [why for kw, _, why in deck.ignored if kw == "STATIC"] == [
        "parameter RIKS: ccx 2.20 does not read it (it warns and runs a plain *STATIC step, as imported); remove it "
        "from the deck"]
    assert [law for _, law, *_ in deck.materials] == [law for _, law, *_ in base.materials]
    for name in ("cload", "pressure", "temperature", "boundary"):
        assert np.array_equal(deck.history(name, times), base.history(name, times)), name
    assert base.history("pressure", times).max() > 0 and base.history("cload", times).max() > 0


def test_norton_conversion():
    """ccx's d eps/dt = A sigma^n  <=>  ours (sigma/K)^n with K = A^(-1/n), at and between table temperatures
    (ccx interpolates A and n linearly; our K table is dense enough to stay within 1e-3)."""
    K, n = norton_from_calculix(np.array([1e-20]), np.array([5.0]), None)
    assert np.isclose((100.0 / K) ** n, 1e-20 * 100.0**5, rtol=1e-12)
    A, nn, T = np.array([1e-20, 1e-19]), np.array([5.0, 4.0]), np.array([20.0, 600.0])
    K, n = norton_from_calculix(A, nn, T)
    t = np.linspace(20, 600, 97)
    a_ccx, n_ccx = np.interp(t, T, A), np.interp(t, T, nn)
    k_ours, n_ours = np.interp(t, K["temperatures"], K["values"]), np.interp(t, n["temperatures"], n["values"])
    rate_ccx, rate_ours = a_ccx * 100.0**n_ccx, (100.0 / k_ours) ** n_ours
    assert np.max(np.abs(rate_ours / rate_ccx - 1)) < 1e-2
    assert np.allclose(n_ours, n_ccx)


# -- C3D8: the laws see CalculiX's point temperatures -----------------------------------------------------
@needs_ccx
@pytest.mark.calculix
def test_c3d8_point_temperatures_match_ccx(tmp_path):
    """ccx evaluates the laws of C3D8 at the element-mean temperature; so does our kernel
    (``interpolate_temperature``): ccx's displacements replayed through the law give ccx's stresses to
    the .dat's 7 digits (measured 7e-7), the shape-function interpolation would differ by O(1)."""
    from structrom.rom.adapters.calculix import write_static_deck
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.hifi.output import element_point_offsets
    from structrom.rom.loading import Amplitude, HotSpotTemperature, ImposedDisplacement, Loading
    from structrom.rom.materials import law_from_config

    mesh = box((4.0, 1.0, 1.0), (4, 2, 2), "C3D8")
    law = law_from_config({"type": "linear_elastic", "young": {"temperatures": [20, 600], "values": [200000, 100000]},
                           "poisson": 0.3, "expansion": 1.2e-5, "reference_temperature": 20.0})
    temp = HotSpotTemperature(center=(0, 0.5, 0.5), radius=1.5, intensity=0.0, reference=20.0,
                              gradient=(100.0, 30.0, 0.0), amplitude=Amplitude.from_config([[0, 0], [1, 1]]))
    loading = Loading(times=np.array([0.0, 1.0]), temperature=temp, displacements=(ImposedDisplacement("xmin", (0, 1, 2)),))
    t_ccx = write_static_deck(tmp_path / "job.inp", mesh, law, loading, outputs=("U", "S"))
    run_ccx(tmp_path, "job", timeout=120)
    dat = read_dat(tmp_path / "job.dat")[t_ccx[0]]
    u = np.zeros((mesh.n_nodes, 3))
    u[dat["U"].ids - 1] = dat["U"].values
    off, b = element_point_offsets(mesh), dat["S"]
    s_ccx = np.zeros((off[-1], 6))
    s_ccx[off[b.ids[:, 0] - 1] + b.ids[:, 1] - 1] = b.values
    disc = Discretization(mesh)
    T = loading.nodal_temperature(1.0, mesh.points)
    eps = disc.strain(u.ravel())
    errs = []
    for Tp in (disc.interpolate_temperature(T), disc.interpolate(T)):
        r = law.integrate(np.zeros_like(eps), eps, np.full(len(eps), 20.0), Tp, 1.0, law.initial_state(len(eps)))
        errs.append(np.linalg.norm(r.stress - s_ccx) / np.linalg.norm(s_ccx))
    assert errs[0] <= 2e-6 and errs[1] > 0.1
    assert np.allclose(disc.temperature_operator() @ T, disc.interpolate_temperature(T), rtol=1e-14)


# -- structrom import calculix ------------------------------------------------------------------------------
@needs_ccx
@pytest.mark.calculix
def test_import_command_end_to_end(tmp_path):
    """Two runs of the example's user-style deck (C3D20R, E(T), hot spot, pressure, two steps) imported by
    the command: snapshots whose replay through the imported law reproduces ccx's integration-point
    stresses (to the .frd's 6 digits of displacement) and PEEQ; family ranges and temperature envelope."""
    import h5py

    sys.path.insert(0, str(ROOT / "examples"))
    import calculix_import as example

    from structrom.rom.adapters.calculix_import import temperature_envelope_violations
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.materials import law_from_config
    from structrom.rom.offline.replay import MaterialRegions, replay
    from structrom.rom.offline.snapshots import read_training_case

    mesh = box((10.0, 2.0, 2.0), (4, 2, 2), "C3D20R")  # two layers: one 2x2x2-integrated layer has a zero-energy mode
    runs = tmp_path / "runs"
    example.run_decks(runs, mesh, [(300.0, 3.5), (450.0, 5.5)], "r")
    (tmp_path / "p.csv").write_text("run,I,P\nr00,300,3.5\nr01,450,5.5\n")
    cmd = [sys.executable, "-m", "structrom.api.cli", "import", "calculix", str(runs / "r00.inp"), "--runs", str(runs),
           "--out", str(tmp_path / "m"), "--parameters", str(tmp_path / "p.csv")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "next: structrom offline" in proc.stdout
    family = __import__("json").loads((tmp_path / "m" / "family.json").read_text())
    assert family["ranges"] == {"I": [300.0, 450.0], "P": [3.5, 5.5]}
    assert family["temperature_envelope"]["min"] == 20.0 and family["temperature_envelope"]["max"] > 450.0
    model_mesh = read_inp(tmp_path / "m" / "mesh.inp")[0]
    assert list(model_mesh.surface_sets) == [*mesh.surface_sets, "PRESSURE_1"]
    assert len(model_mesh.surface_set("PRESSURE_1")) == 8 and len(model_mesh.node_set("FIXED_XYZ")) == len(mesh.node_sets["xmin"])
    for name in ("r00", "r01"):
        case = read_training_case(tmp_path / "m" / "train" / f"{name}.h5", model_mesh)
        assert np.allclose(case.loading.times, [0, *np.arange(1, 9) / 8, 1.5, 2.0])
        disc = Discretization(model_mesh)
        regions = MaterialRegions.build(model_mesh, disc, [(e, law_from_config(law)) for e, law in case.materials])
        r = replay(disc, regions, case.loading, case.displacements(), model_mesh.points)
        with h5py.File(case.path, "r") as f:
            s, p = f["fields/stress"][()], f["fields/cumulated_plastic_strain"][()]
        assert np.linalg.norm(r.stress - s) / np.linalg.norm(s) < 1e-3
        assert np.linalg.norm(r.cumulated_plastic_strain - p) / np.linalg.norm(p) < 1e-3 and p.max() > 1e-3
        temps = case.loading.nodal_temperatures(case.loading.times, model_mesh.points)
        assert temperature_envelope_violations(tmp_path / "m" / "family.npz", temps) == []
    assert temperature_envelope_violations(tmp_path / "m" / "family.npz", temps + 100.0)[0].startswith(
        "temperature above the training envelope")
    # the reduced model built from the import flags temperatures outside the training range
    from structrom.rom.loading import Loading, LoadingError, NodalTemperature
    from structrom.rom.online import ReducedModel

    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "offline", str(tmp_path / "m" / "offline.toml")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    model = ReducedModel.load(tmp_path / "m" / "model.h5")
    hot = Loading(case.loading.times, NodalTemperature(case.loading.times, temps + 200.0), case.loading.pressures)
    with pytest.raises(LoadingError, match=r"temperature \(maximum at the model's temperature nodes\) = .* is outside "
                                           r"the training range"):
        model.solve(hot)
    assert np.linalg.norm(model.solve(case.loading).displacement(increment=None) - case.displacements()) <= \
        1e-2 * np.linalg.norm(case.displacements())
    # a deck of the family -> the loading the model answers, without results: the imported run's loading
    from structrom.rom.adapters.calculix_predict import loading_from_deck

    loading = loading_from_deck(tmp_path / "m", runs / "r01.inp")
    assert np.array_equal(loading.times, case.loading.times)
    assert np.array_equal(loading.pressures["PRESSURE_1"].values, case.loading.pressures["PRESSURE_1"].values)
    assert np.array_equal(loading.nodal_temperatures(loading.times, model_mesh.points), temps)
    lines = (runs / "r01.inp").read_text().split("\n")
    first = next(i for i, ln in enumerate(lines) if ln.startswith("*DLOAD")) + 1
    lines[first] = lines[first].replace(", 5.5", ", 7.0")  # one face loaded differently
    (tmp_path / "odd.inp").write_text("\n".join(lines))
    (tmp_path / "mesh.inp").write_text((runs / "mesh.inp").read_text())
    with pytest.raises(CalculixError, match=r"odd.inp: the pressure differs between the faces of the model's "
                                            r"surface PRESSURE_1"):
        loading_from_deck(tmp_path / "m", tmp_path / "odd.inp")
    # without a CSV, the parameters are the inputs that differ between the runs' decks
    from structrom.rom.adapters.calculix_import import import_calculix

    detected = import_calculix(runs / "r00.inp", runs, tmp_path / "m2").family
    assert detected["ranges"]["pressure.PRESSURE_1"] == [3.5, 5.5]
    assert detected["ranges"]["temperature.max"][1] > detected["ranges"]["temperature.max"][0] > 300.0
    assert "times.end" not in detected["ranges"] and detected["runs"] == ["r00", "r01"]
    # a bad run is refused with the file and line, exit code 2, no traceback
    text = (runs / "r01.inp").read_text().replace("*BOUNDARY", "*TIE, NAME=T\nA, B\n*BOUNDARY")
    (runs / "r01.inp").write_text(text)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "structrom: error: not supported: *TIE, " in proc.stderr and "r01.inp:" in proc.stderr


@needs_ccx
@pytest.mark.calculix
def test_import_maps_concentrated_forces(tmp_path):
    """*CLOAD forces (with an amplitude, two directions) become a node set FORCE_1 loaded by a force vector
    history; the magnitudes and directions that differ between the runs are detected as parameters; the
    in-house HF solver given the imported case (forces, pressure with its total-time amplitude, hot spot,
    E(T), plasticity) reproduces ccx's displacements; a deck of the family gives back the run's loading."""
    import json

    import h5py

    from structrom.rom.adapters.calculix_import import import_calculix
    from structrom.rom.adapters.calculix_predict import loading_from_deck
    from structrom.rom.hifi.config import HifiConfig
    from structrom.rom.hifi.run import run_hifi
    from structrom.rom.offline.snapshots import read_training_case

    runs = tmp_path / "runs"
    runs.mkdir()
    _write(runs, MODEL + STEPS, "a.inp")
    _write(runs, MODEL + STEPS.replace("LOAD,1,60", "LOAD,1,40\nLOAD,2,-25"), "b.inp")
    for name in ("a", "b"):
        run_ccx(runs, name, timeout=120)
    res = import_calculix(runs / "a.inp", runs, tmp_path / "m")
    mesh = read_inp(tmp_path / "m" / "mesh.inp")[0]
    assert sorted(mesh.node_set("FORCE_1").tolist()) == [8, 9, 10, 11]
    ranges = res.family["ranges"]
    assert ranges["force.FORCE_1.x"] == [40.0, 60.0] and ranges["force.FORCE_1.y"] == [-25.0, 0.0]
    assert ranges["force.FORCE_1.magnitude"] == pytest.approx([np.hypot(40, 25), 60.0])
    for name in ("a", "b"):
        case = read_training_case(tmp_path / "m" / "train" / f"{name}.h5", mesh)
        force = case.loading.forces["FORCE_1"]
        assert force(0.5)[0] == pytest.approx((60.0 if name == "a" else 40.0) * 0.5)
        with h5py.File(case.path, "r") as f:
            meta = json.loads(f.attrs["metadata"])
        cfg = HifiConfig.model_validate(dict(meta["config"], output={"file": str(tmp_path / f"hf_{name}.h5"),
                                                                     "xdmf": False},
                                             solver={"linear": {"ksp_type": "preonly", "pc_type": "lu"}}))
        run_hifi(cfg, log=lambda *a, **k: None)
        with h5py.File(tmp_path / f"hf_{name}.h5", "r") as f:
            u_hf = f["fields/displacement"][()]
        u_ccx = case.displacements()
        # ccx stops Newton at its default residual tolerance (0.5 % of the mean force), the .frd has 6 digits:
        # measured 7.6e-5 (a), the bound leaves a factor ~10
        assert np.linalg.norm(u_hf - u_ccx) <= 1e-3 * np.linalg.norm(u_ccx)
        loading = loading_from_deck(tmp_path / "m", runs / f"{name}.inp")
        assert np.array_equal(loading.forces["FORCE_1"].to_config(), force.to_config())
    stray = (MODEL + STEPS).replace("LOAD,1,60", "LOAD,1,60\n1,3,5.")
    with pytest.raises(CalculixError, match=r"\*CLOAD forces on 1 nodes \(first id 1\) that are in none"):
        loading_from_deck(tmp_path / "m", _write(tmp_path, stray, "stray.inp"))
    with pytest.raises(CalculixError, match=r"forces differ between the nodes of the model's node set FORCE_1"):
        loading_from_deck(tmp_path / "m", _write(tmp_path, (MODEL + STEPS).replace("LOAD,1,60", "LOAD,1,60\n9,1,7."),
                                                 "uneven.inp"))
    # a run whose .frd holds a displacement no converged increment has (finite, its square overflows): refused,
    # naming the quantity, time and node
    lines = (runs / "b.frd").read_text().splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.strip().startswith("-4") and "DISP" in ln)
    row = next(i for i in range(at, len(lines)) if lines[i].startswith(" -1"))
    lines[row] = lines[row][:13] + "-1.00000E+99" + lines[row][25:]
    (runs / "b.frd").write_text("\n".join(lines) + "\n")
    with pytest.raises(CalculixError, match=rf"run b: \S*b\.frd: DISP at time \S+ is -1e\+99 at node id "
                                            rf"{int(lines[row][3:13])} \(1 nodes infinite or above 1e\+30"):
        import_calculix(runs / "a.inp", runs, tmp_path / "m3")
    lines[row] = lines[row][:13] + "         NAN" + lines[row][25:]  # (as C's printf writes a NaN)
    (runs / "b.frd").write_text("\n".join(lines) + "\n")
    with pytest.raises(CalculixError, match=rf"run b: \S*b\.frd: DISP at time \S+ is NaN at node id "
                                            rf"{int(lines[row][3:13])} \(1 nodes\): not a result of a converged"):
        import_calculix(runs / "a.inp", runs, tmp_path / "m3")


# -- Ansys stresses, strains, temperatures ---------------------------------------------------------------------
def test_ansys_fields_spot_checked_against_the_reader():
    """``file.rst`` (SOLID186 beam, 6 sets): nodal stress, elastic strain and temperature, and element
    nodal stress on our numbering, equal to ansys-mapdl-reader's own arrays at random nodes/elements;
    plastic strain (absent from an elastic run) is named with the OUTRES item that writes it."""
    pytest.importorskip("ansys.mapdl.reader")
    from ansys.mapdl import reader
    from ansys.mapdl.reader import examples

    from structrom.rom.adapters.ansys import AnsysError
    from structrom.rom.adapters.ansys_results import read_ansys_fields

    fields = read_ansys_fields(examples.rstfile)
    raw = reader.read_binary(examples.rstfile)
    ids = fields.result.node_ids
    assert fields.stress.shape == (6, 321, 6) and fields.elastic_strain.shape == (6, 321, 6)
    assert fields.temperature.shape == (6, 321)
    rng = np.random.default_rng(1)
    for k in range(raw.nsets):
        nnum, s = raw.nodal_stress(k)
        _, e = raw.nodal_elastic_strain(k)
        for node in rng.choice(nnum, 10, replace=False):
            ours, theirs = int(np.flatnonzero(ids == node)[0]), int(np.flatnonzero(nnum == node)[0])
            assert np.array_equal(fields.stress[k, ours], s[theirs], equal_nan=True)
            assert np.array_equal(fields.elastic_strain[k, ours], e[theirs, :6], equal_nan=True)
        enum, es, enode = raw.element_stress(k)
        for el in rng.choice(len(enum), 5, replace=False):
            ours = int(np.flatnonzero(fields.result.element_ids == enum[el])[0])
            assert np.array_equal(fields.element_stress[k, ours], es[el][:, :6], equal_nan=True)
            assert np.array_equal(fields.element_corner_ids[ours], enode[el])
    assert np.nanmax(np.abs(fields.stress[-1])) > 1e6
    with pytest.raises(AnsysError, match=r"file.rst: no plastic_strain in this result file; Ansys writes it with "
                                         r"OUTRES,EPPL"):
        fields.plastic_strain


CREEP_DECK = """*INCLUDE, INPUT=mesh.inp
*MATERIAL, NAME=M
*ELASTIC
200000., 0.3, 20.
150000., 0.3, 600.
{plastic}*CREEP
1.E-15, 5., 0., 20.
1.E-14, 4.5, 0., 600.
*SOLID SECTION, ELSET=EALL, MATERIAL=M
*INITIAL CONDITIONS, TYPE=TEMPERATURE
NALL, 20.
*BOUNDARY
XMIN, 1, 3
*STEP, INC=1000
{first}
0.5, 1.
*DLOAD
{pressure}
*TEMPERATURE
NALL, 300.
*NODE FILE
U
*EL PRINT, ELSET=EALL
S, E, PEEQ
*END STEP
*STEP, INC=1000
*VISCO, DIRECT, CETOL=1.E-3
10., 100.
*NODE FILE
U
*EL PRINT, ELSET=EALL
S, E, PEEQ
*END STEP
"""


@needs_ccx
@pytest.mark.calculix
@pytest.mark.parametrize("element,plastic,first", [("C3D8", False, "*STATIC, DIRECT"), ("C3D20R", False, "*STATIC, DIRECT"),
                                                   ("C3D8", True, "*VISCO, DIRECT, CETOL=1.E-3")])
def test_imported_norton_creep_replays_ccx(tmp_path, element, plastic, first):
    """Norton creep decks (A, n tables in T; with *PLASTIC: creep of the overstress), a load and a temperature
    step then a 100 s creep step: ccx's displacements replayed through the imported law give ccx's
    integration-point stresses and PEEQ (measured 1e-5 to 3e-5; 9e-6 with *PLASTIC): K = A^(-1/n), *VISCO
    applies new values at once, *STATIC steps creep neither in ccx nor (made instantaneous) in the import."""
    import h5py

    from structrom.rom.adapters.calculix_import import import_calculix
    from structrom.rom.fem.kernel import Discretization
    from structrom.rom.materials import law_from_config
    from structrom.rom.offline.replay import MaterialRegions, replay
    from structrom.rom.offline.snapshots import read_training_case

    mesh = box((4.0, 1.0, 1.0), (4, 1, 1), element)
    write_mesh_inp(tmp_path / "mesh.inp", mesh, all_nset="NALL", all_elset="EALL")
    pressure = "\n".join(f"{e + 1}, P{f + 1}, -100." for e, f in mesh.surface_sets["xmax"].tolist())
    text = CREEP_DECK.format(plastic="*PLASTIC\n60., 0.\n80., 0.05\n" if plastic else "", first=first,
                             pressure=pressure)
    deck = _write(tmp_path, text, "run.inp")
    run_ccx(tmp_path, "run", timeout=300)
    res = import_calculix(deck, [("run", deck, [tmp_path / "run.frd", tmp_path / "run.dat"])], tmp_path / "out")
    model_mesh = read_inp(res.mesh_file)[0]
    case = read_training_case(res.snapshots[0], model_mesh)
    assert case.materials[0][1]["type"] == "norton_viscoplasticity"
    disc = Discretization(model_mesh)
    regions = MaterialRegions.build(model_mesh, disc, [(e, law_from_config(law)) for e, law in case.materials])
    r = replay(disc, regions, case.loading, case.displacements(), model_mesh.points)
    with h5py.File(res.snapshots[0], "r") as f:
        s, p = f["fields/stress"][()], f["fields/cumulated_plastic_strain"][()]
    assert np.linalg.norm(r.stress - s) / np.linalg.norm(s) < 1e-4
    assert np.linalg.norm(r.cumulated_plastic_strain - p) / np.linalg.norm(p) < 2e-4 and p.max() > 1e-5
