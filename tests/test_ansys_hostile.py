"""Hostile Ansys files given to the library readers (``read_ansys_archive``, ``read_ansys_result``,
``read_cdb_pressures``, ``read_ansys_fields``, ``import_ansys``): truncated, empty, foreign or damaged files are refused
with an AnsysError naming the file, the record and what to do, never a native crash of the caller's process, a hang
or a silent read of a cut file. Element types the import does not convert are named as Ansys names them.

The files are ansys-mapdl-reader's examples, cut, renamed or damaged here; each case runs the reader in a subprocess
of its own so that a native crash before the fix fails the test instead of ending pytest.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ansys.mapdl.reader")
from ansys.mapdl.reader import examples  # noqa: E402

EXAMPLES = Path(examples.__file__).parent


def _outcome(call: str) -> tuple[int, str]:
    """``(return code, last output line)`` of ``call`` (an expression of the adapters) in a fresh interpreter."""
    code = ("import sys\nfrom structrom.rom.adapters.ansys import AnsysError, read_ansys_archive, read_ansys_result\n"
            "from structrom.rom.adapters.ansys_pressure import read_cdb_pressures\n"
            "from structrom.rom.adapters.ansys_import import import_ansys\n"
            "from structrom.rom.adapters.ansys_results import read_ansys_fields\n"
            f"try:\n    {call}\n    print('read')\nexcept AnsysError as exc:\n    print('AnsysError:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, lines[-1] if lines else proc.stderr.strip()[-300:]


def _cut_inside_eblock(tmp_path: Path) -> Path:
    lines = (EXAMPLES / "HexBeam.cdb").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.upper().startswith("EBLOCK"))
    cut = tmp_path / "cut_eblock.cdb"
    cut.write_text("\n".join(lines[:start + 20]) + "\n")
    return cut


def test_archive_cut_inside_its_element_block_is_refused(tmp_path):
    """The reader ended the process by SIGSEGV on an archive cut in the middle of its EBLOCK."""
    cut = _cut_inside_eblock(tmp_path)
    rc, out = _outcome(f"read_ansys_archive({str(cut)!r})")
    assert rc == 0 and out.startswith("AnsysError:") and "cut_eblock.cdb" in out and "write it again" in out, out
    # read_cdb_pressures without SFE loads never needs the mesh: it reads nothing; with one it reads the archive
    loaded = tmp_path / "cut_sfe.cdb"
    loaded.write_text(cut.read_text() + "SFE,1,1,PRES,0,5.0\n")
    rc, out = _outcome(f"read_cdb_pressures({str(loaded)!r}, None, None, None)")
    assert rc == 0 and out.startswith("AnsysError:") and "cut_sfe.cdb" in out, out


@pytest.mark.parametrize("fraction", [0.3, 0.9])
def test_truncated_result_file_is_refused(tmp_path, fraction):
    """Cut at 30 %: std::bad_alloc aborted the process; cut at 90 %: the displacements were read as if whole."""
    data = (EXAMPLES / "file.rst").read_bytes()
    cut = tmp_path / "cut.rst"
    cut.write_bytes(data[:int(len(data) * fraction)])
    rc, out = _outcome(f"read_ansys_result({str(cut)!r})")
    assert rc == 0, out
    assert out.startswith("AnsysError:") and "cut.rst" in out and ("truncated" in out), out


@pytest.mark.parametrize("content, message", [
    (b"", r"empty \(0 bytes\)"),
    ("file.full", r"an assembled matrix file \(\.full\) was given where an Ansys result file \(\.rst\) is expected"),
    ("HexBeam.cdb", r"not an Ansys binary file .*give an Ansys result file \(\.rst\)"),
])
def test_empty_or_foreign_result_file_is_named(tmp_path, content, message):
    import re

    path = tmp_path / "run.rst"
    path.write_bytes(content if isinstance(content, bytes) else (EXAMPLES / content).read_bytes())
    rc, out = _outcome(f"read_ansys_result({str(path)!r})")
    assert rc == 0 and out.startswith("AnsysError:") and "run.rst" in out and re.search(message, out), out


# -- files damaged in one record: read in the reader's process, refused naming the record ------------------------
def _damaged_in(tmp_path: Path, record: str, size_word: int) -> Path:
    """``file.rst`` (a modal run, made static by its header's ``kan`` word) whose ``record`` of result set 1 declares
    ``size_word`` words: ``BC`` the boundary-condition header (the D and F records), ``EPT``/``ENS`` the temperature
    and stress records of the first element. Nothing else is touched: its mesh and displacements read as before."""
    from ansys.mapdl import reader
    from ansys.mapdl.reader._rst_keys import result_header_keys
    from ansys.mapdl.reader.rst import ELEMENT_INDEX_TABLE_KEYS

    res = reader.read_binary(str(EXAMPLES / "file.rst"))  # (the intact file, read in this process)
    if record == "BC":
        word = res._bc_header(0)[0]
    else:
        table, _, offset = res._element_solution_header(0)
        index = res.read_record(offset + table[0])  # the first element's pointers to its records
        word = offset + table[0] + index[ELEMENT_INDEX_TABLE_KEYS.index(record)]
    data = bytearray((EXAMPLES / "file.rst").read_bytes())
    kan = 103 + 2 + result_header_keys.index("kan")  # (the result header: record at word 103, 2 words before data)
    assert int.from_bytes(data[4 * kan:4 * kan + 4], "little") == 2  # modal
    data[4 * kan:4 * kan + 4] = (0).to_bytes(4, "little")
    data[4 * word:4 * word + 4] = size_word.to_bytes(4, "little")  # a record's first word: its length in words
    path = tmp_path / f"damaged_{record.lower()}.rst"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("record, size_word, call, named", [
    ("BC", 0x7FFFFFFF, "import_ansys([{p!r}], {out!r})", r"result set 1: the constraint \(D\) records"),
    ("EPT", 1 << 24, "import_ansys([{p!r}], {out!r})",
     r"result set 1: the nodal temperatures \(EPT/BF records\)"),
    ("ENS", 0x7FFFFFFF, "read_ansys_fields({p!r})", r"result set 1: the nodal stress records \(S\)"),
])
def test_file_damaged_in_one_record_is_refused_naming_it(tmp_path, record, size_word, call, named):
    """Read in the caller's process, these records ended it: std::bad_alloc (SIGABRT) on the D/F header and the
    stresses, SIGSEGV on the temperatures; the mesh and displacements of the same file read fine. Now the caller
    gets an AnsysError naming the file, the set and the record, and lives on."""
    import re

    path = _damaged_in(tmp_path, record, size_word)
    rc, out = _outcome("read_ansys_result({p!r}).displacement.shape".format(p=str(path)))
    assert rc == 0 and out == "read", out  # (the damage is in that record only)
    rc, out = _outcome(call.format(p=str(path), out=str(tmp_path / "out")))
    assert rc == 0 and out.startswith("AnsysError:") and str(path) in out, out
    assert re.search(rf"stopped abnormally \(ended by signal SIG(ABRT|SEGV): a native crash\) reading {named}: the "
                     "file is truncated, damaged in that record", out), out


def test_import_command_names_the_damaged_record(tmp_path):
    """`structrom import ansys` on a file damaged in its D/F records: exit 2, one error line naming the file and
    the record, no traceback."""
    path = _damaged_in(tmp_path, "BC", 0x7FFFFFFF)
    proc = subprocess.run([sys.executable, "-m", "structrom.api.cli", "import", "ansys", str(path), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"structrom: error: {path}: ansys-mapdl-reader stopped abnormally" in proc.stderr
    assert "reading result set 1: the constraint (D) records" in proc.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/proc/self/stat").exists(), reason="POSIX FIFO, /proc")
def test_a_read_that_hangs_is_stopped_without_an_orphan(tmp_path):
    """An archive that never ends (a FIFO no one writes to, as a file on a stalled mount): the reader's process is
    stopped at the time limit (STRUCTROM_READER_TIMEOUT) and waited for; the error names the file and the fix, and
    the caller has no child process left."""
    fifo = tmp_path / "stalled.cdb"
    os.mkfifo(fifo)
    code = ("import os\nfrom structrom.rom.adapters.ansys import AnsysError, read_ansys_archive\n"
            f"try:\n    read_ansys_archive({str(fifo)!r})\nexcept AnsysError as exc:\n    print('AnsysError:', exc)\n"
            "print('children', [d for d in os.listdir('/proc') if d.isdigit() and "
            "open(f'/proc/{d}/stat').read().rsplit(')', 1)[1].split()[1] == str(os.getpid())])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "STRUCTROM_READER_TIMEOUT": "2"})
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines[-1] == "children []", proc.stdout + proc.stderr[-300:]
    assert lines[-2].startswith(f"AnsysError: {fifo}: ansys-mapdl-reader did not finish reading its blocks (one pass "
                                "of the reader's parser over NBLOCK nodes, EBLOCK elements, CMBLOCK components) "
                                "within 2 s and was stopped"), lines
    assert "STRUCTROM_READER_TIMEOUT=<seconds>" in lines[-2]


@pytest.mark.skipif(not Path("/proc/self/fdinfo").exists(), reason="/proc fdinfo (Linux)")
def test_a_stalled_archive_read_names_the_block(tmp_path, monkeypatch):
    """A read stopped at its time limit inside HexBeam.cdb's EBLOCK is named by the block its reads had got to
    (the offset of the reader's open file when it was stopped), its line and the stage announced."""
    from stalling_reader import read_to_then_stall
    from structrom.rom.adapters.ansys import AnsysError, archive_block_at, read_isolated

    path = EXAMPLES / "HexBeam.cdb"
    lines = path.read_bytes().splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith(b"EBLOCK"))
    offset = sum(len(ln) for ln in lines[:start + 5])  # (inside the block's rows)
    assert archive_block_at(path, offset) == (f"the EBLOCK (elements) at line {start + 1}, the last command before "
                                              f"byte {offset}")
    monkeypatch.setenv("STRUCTROM_READER_TIMEOUT", "3")
    with pytest.raises(AnsysError, match=rf"did not finish reading its blocks, in the EBLOCK \(elements\) at line "
                                         rf"{start + 1}, the last command before byte {offset} within 3 s"):
        read_isolated(read_to_then_stall, path, "an Ansys archive (.cdb, CDWRITE)", offset, locate=archive_block_at)


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "0", "1e400", "ten", "-inf"])
def test_a_time_limit_that_is_no_number_of_seconds_is_named(monkeypatch, tmp_path, value):
    """STRUCTROM_READER_TIMEOUT of NaN or inf broke the wait on the reader's process (ValueError / OverflowError,
    reported as a damaged file), and 0 or a negative number stopped every read at once ("the file is damaged"): each
    is refused naming the variable and the fix, before any process starts; a number of seconds is read as it is."""
    from structrom.rom.adapters.ansys import AnsysError, reader_timeout

    path = tmp_path / "x.rst"
    path.write_bytes(b"\0" * 10)
    monkeypatch.setenv("STRUCTROM_READER_TIMEOUT", value)
    with pytest.raises(AnsysError, match=rf"STRUCTROM_READER_TIMEOUT='{value}' is not a positive number of seconds: "
                                         "set it to the seconds a read may take"):
        reader_timeout(path)
    monkeypatch.setenv("STRUCTROM_READER_TIMEOUT", " 2.5 ")
    assert reader_timeout(path) == 2.5


# -- element types the conversion does not keep: named as Ansys names them ---------------------------------------
def _hexbeam_with(tmp_path: Path, name: str, extra: list[tuple[int, int, int, list[int]]]) -> Path:
    """HexBeam.cdb (40 SOLID186, ETYPE 1) with the elements ``extra`` ``(ETYPE reference, element type, element
    number, nodes)`` added to its EBLOCK, on the bottom face of element 1, as a deck with surface or contact
    elements exports them."""
    lines = (EXAMPLES / "HexBeam.cdb").read_text().splitlines()
    et = next(i for i, ln in enumerate(lines) if ln.startswith("ET,"))
    for ref, kind in sorted({(ref, kind) for ref, kind, _, _ in extra}, reverse=True):
        lines.insert(et + 1, f"ET,{ref:9d},{kind}")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("EBLOCK"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "-1")
    lines[start] = f"EBLOCK,19,SOLID,{40 + len(extra):10d},{40 + len(extra):10d}"
    lines[end:end] = ["".join(f"{v:10d}" for v in [1, ref, 1, 1, 0, 0, 0, 0, len(nodes), 0, number, *nodes])
                      for ref, _, number, nodes in extra]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


_FACE = [1, 4, 19, 15, 3, 18, 17, 16]  # bottom face of element 1 (corners I J K L, then its midside nodes)


def test_surface_and_meshing_elements_are_skipped_with_a_warning(tmp_path):
    """SURF154 and MESH200 (the reader makes no cell of a MESH200 without KEYOPT(1)) beside the solid: skipped with
    an AnsysWarning naming their ETYPE, name and element numbers; the solid mesh is HexBeam's; a pressure the archive
    puts on the SURF154 element is refused, naming it and the fix."""
    from structrom.rom.adapters.ansys import AnsysError, AnsysWarning, read_ansys_archive
    from structrom.rom.adapters.ansys_pressure import read_cdb_pressures

    path = _hexbeam_with(tmp_path, "aux.cdb", [(2, 154, 41, _FACE), (3, 200, 42, _FACE[:4])])
    with pytest.warns(AnsysWarning, match=r"aux\.cdb: skipped .*ETYPE 2 = SURF154: 1 element \(first 41\); ETYPE 3 = "
                                          r"MESH200: 1 element \(first 42\)"):
        mesh, node_ids, element_ids = read_ansys_archive(path)
    plain, plain_nodes, plain_elements = read_ansys_archive(EXAMPLES / "HexBeam.cdb")
    assert [b.element for b in mesh.blocks] == ["C3D20"] and np.array_equal(element_ids, plain_elements)
    assert np.array_equal(node_ids, plain_nodes) and np.array_equal(mesh.points, plain.points)
    loaded = tmp_path / "aux_loaded.cdb"
    loaded.write_text(path.read_text() + "SFE,41,1,PRES,0,5.0\n")
    with pytest.raises(AnsysError, match=r"aux_loaded\.cdb:\d+: pressure on element 41, which is not a solid element "
                                         r".*SURF154 is skipped.*on the face of the solid element beneath"):
        read_cdb_pressures(loaded, mesh, node_ids, element_ids)


@pytest.mark.parametrize("extra, message", [
    ([(2, 174, 43, _FACE), (3, 170, 44, _FACE)],
     r"2 elements cannot be converted: ETYPE 2 = CONTA174: 1 element \(first 43\); ETYPE 3 = TARGE170: 1 element "
     r"\(first 44\): contact/target elements: bonded contact ties the parts together .*mesh the parts with shared "
     "nodes"),
    ([(2, 181, 45, _FACE[:4]), (3, 184, 46, _FACE[:2])],
     r"ETYPE 2 = SHELL181: 1 element \(first 45\); ETYPE 3 = MPC184: 1 element \(first 46\): shells, beams, .* "
     "carry stiffness or mass the reduced solid model does not have"),
])
def test_contact_shell_and_mpc_elements_are_refused_by_ansys_name(tmp_path, extra, message):
    """Contact pairs, shells and MPC184 (no cell in the reader's grid) carry stiffness or loads: refused, the message
    naming ETYPE, element name, element numbers and the fix, not a VTK cell type."""
    from structrom.rom.adapters.ansys import AnsysError, read_ansys_archive

    with pytest.raises(AnsysError, match=r"deck\.cdb: (2 elements cannot be converted: )?" + message) as info:
        read_ansys_archive(_hexbeam_with(tmp_path, "deck.cdb", extra))
    assert "VTK" not in str(info.value)
