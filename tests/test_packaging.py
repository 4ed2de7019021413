"""The distribution installs one import package, ``structrom``, whose layers are the repository's top-level
folders (``mpi/``, ``eim/``, ``rom/``, ``api/``), mapped in ``pyproject.toml``."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("mpi", "eim", "rom", "api")


def _layer_packages() -> set[str]:
    """Every folder of the four layers that holds an ``__init__.py``, as its ``structrom.*`` name."""
    names = set()
    for layer in LAYERS:
        for init in (REPO / layer).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO)
            names.add("structrom." + ".".join(rel.parts))
    return names


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> list[str]:
    # Built from a copy, so that setuptools' build/ and egg-info never land in the work tree.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for layer in LAYERS:
        shutil.copytree(REPO / layer, src / layer, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", "-q", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = out.glob("structrom-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_wheel_holds_only_the_structrom_package(wheel_files):
    tops = {name.split("/")[0] for name in wheel_files}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"structrom"}, tops


def test_wheel_holds_every_layer_package(wheel_files):
    in_wheel = {"structrom." + ".".join(Path(n).parent.parts[1:]) for n in wheel_files
                if n.endswith("/__init__.py")}
    missing = _layer_packages() - in_wheel
    assert not missing, f"packages missing from pyproject.toml [tool.setuptools] packages: {sorted(missing)}"


def test_no_top_level_layer_import():
    """Importing every layer through ``structrom`` never imports a bare ``rom``/``api``/... module."""
    code = ("import sys, structrom.api.server, structrom.api.cli, structrom.rom.online, structrom.eim, "
            "structrom.rom.offline.pipeline\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {LAYERS!r})\n"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]


def test_serial_eim_starts_no_mpi():
    """``import structrom.eim`` and a serial greedy (``comm=None``) import neither mpi4py nor petsc4py."""
    code = ("import sys, numpy as np, structrom.eim as e\n"
            "r = e.eim_greedy(np.random.default_rng(0).standard_normal((50, 8)), tol=1e-12)\n"
            "q = e.qdeim(np.linalg.qr(np.random.default_rng(1).standard_normal((50, 5)))[0])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mpi4py', 'petsc4py'))\n"
            "print(bad, len(r.point_ids) if hasattr(r, 'point_ids') else r, q.point_ids)\n"
            "sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
