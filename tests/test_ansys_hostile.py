"""Hostile Ansys files given to the library readers (``read_ansys_archive``, ``read_ansys_result``,
``read_cdb_pressures``): truncated, empty or foreign files are refused with an AnsysError naming the file and what
to do, never a native crash of the caller's process nor a silent read of a cut file.

The files are ansys-mapdl-reader's examples, cut or renamed here; each case runs the reader in a subprocess of its
own so that a native crash before the fix fails the test instead of ending pytest.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ansys.mapdl.reader")
from ansys.mapdl.reader import examples  # noqa: E402

EXAMPLES = Path(examples.__file__).parent


def _outcome(call: str) -> tuple[int, str]:
    """``(return code, last output line)`` of ``call`` (an expression of the adapters) in a fresh interpreter."""
    code = ("import sys\nfrom structrom.rom.adapters.ansys import AnsysError, read_ansys_archive, read_ansys_result\n"
            "from structrom.rom.adapters.ansys_pressure import read_cdb_pressures\n"
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
