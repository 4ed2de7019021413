"""One exception base: every error class of structrom derives from ``StructromError`` (directly or through
another project error), so that the command line and the service report every one of them the same way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from structrom.mpi.errors import StructromError
from structrom.rom.errors import KNOWN_ERRORS

ROOT = Path(__file__).resolve().parents[1]


def _error_classes():
    for layer in ("mpi", "eim", "rom", "api"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ClassDef) and node.name.endswith("Error"):
                    bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "?") for b in node.bases]
                    yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", bases


def test_every_error_class_derives_from_the_project_base():
    classes = list(_error_classes())
    project = {name.split()[-1] for name, _ in classes} | {"StructromError"}
    assert len(classes) > 20
    bad = [(name, bases) for name, bases in classes
           if name.split()[-1] != "StructromError" and not any(b in project for b in bases)]
    assert not bad, f"error classes outside the StructromError hierarchy: {bad}"


def test_the_command_line_reports_every_project_error():
    from structrom.rom.adapters.calculix import CalculixError
    from structrom.rom.online.model import OnlineSolverError

    for exc in (CalculixError("x"), OnlineSolverError("x"), FileNotFoundError("x")):
        assert isinstance(exc, KNOWN_ERRORS)
    assert issubclass(CalculixError, ValueError) and issubclass(OnlineSolverError, RuntimeError)
    assert issubclass(CalculixError, StructromError)


def test_temperature_tables_of_a_configuration_name_the_bad_field(tmp_path):
    """A hand-written [loading.temperature] table: a value of the wrong kind, a missing or unreadable nodal file
    ends in LoadingError naming the field (not a TypeError or FileNotFoundError from deep inside)."""
    from structrom.rom.loading import LoadingError
    from structrom.rom.loading_dict import temperature_from_config

    for cfg, message in (({"type": "hot_spot", "center": [0, 0, 0], "radius": [1.0], "intensity": 1.0},
                          r"temperature\.radius must be a number, got \[1\.0\]"),
                         ({"type": "hot_spot", "center": [0, 0], "radius": 1.0, "intensity": 1.0},
                          r"temperature\.center must be 3 numbers"),
                         ({"type": "hot_spot", "center": [0, 0, 0], "radius": 1.0}, r"hot_spot needs 'intensity'"),
                         ({"type": "uniform", "reference": "../../etc/passwd"}, r"temperature\.reference must be a number"),
                         ({"type": "nodal", "times": [0.0, 1.0]}, r"nodal needs 'file'"),
                         ({"type": "nodal", "file": "missing.npy", "times": [0.0, 1.0]}, r"temperature\.file .*missing\.npy")):
        with pytest.raises(LoadingError, match=message):
            temperature_from_config(cfg, str(tmp_path))


def test_a_misspelt_configuration_key_names_the_allowed_one(tmp_path):
    """A typo in a TOML key (a nested table, a table of an array, the top level, the server's file) is refused
    naming the file, the field, the closest allowed key and the keys allowed in that table; a missing table is
    named as one."""
    from structrom.api.config import ConfigError as ServerConfigError
    from structrom.api.config import load_config as load_server_config
    from structrom.rom.config import ConfigError
    from structrom.rom.hifi.config import load_config

    text = (ROOT / "examples" / "plate.toml").read_text()
    for old, new, message in (("newton_rtol =", "newton_rtoll =", r"solver\.newton_rtoll: unknown key; did you mean "
                                                                    r"'newton_rtol'\? \(allowed keys here: linear, "),
                              ("[solver]", "[solvr]", r"solvr: unknown key; did you mean 'solver'\?"),
                              ('components = ["x", "y", "z"]', 'component = ["x", "y", "z"]',
                               r"boundary\.0\.component: unknown key; did you mean 'components'\?")):
        path = tmp_path / "typo.toml"
        path.write_text(text.replace(old, new, 1))
        with pytest.raises(ConfigError, match=rf"typo\.toml: {message}"):
            load_config(path)
    path.write_text(text.replace("[mesh]", "").replace('file = "../out/demo/plate.msh"', ""))
    with pytest.raises(ConfigError, match=r"typo\.toml: mesh: required table \[mesh\] is missing: add it"):
        load_config(path)
    server = tmp_path / "server.toml"
    server.write_text('prot = 8001\n')
    with pytest.raises(ServerConfigError, match=r"server\.toml: prot: unknown key; did you mean 'port'\?"):
        load_server_config(server)
    with pytest.raises(ServerConfigError, match=r"missing\.toml: server configuration file not found"):
        load_server_config(tmp_path / "missing.toml")


def test_nodal_temperature_rows_short_of_the_loading_are_refused_but_amplitudes_are_held():
    """Rows up to t = 0.5 (or from t = 0.5) for a loading from 0 to 1 were held at the last (first) row without a
    word; now every path that builds a Loading (a query dict, a replaced temperature) refuses them naming the
    field. One row is a constant field. An amplitude table that stops early is held at its last value, as CalculiX
    holds an *AMPLITUDE beyond its last point: not refused."""
    import dataclasses

    import numpy as np

    from structrom.rom.loading import LoadingError, NodalTemperature, TemperatureTimesError
    from structrom.rom.loading_dict import loading_from_dict

    values = [[1.0, 2.0], [3.0, 4.0]]
    for rows, shown in (([0.0, 0.5], r"\[0, 0\.5\]"), ([0.5, 1.0], r"\[0\.5, 1\]")):
        with pytest.raises(LoadingError, match=rf"^loading\.temperature\.times {shown} do not cover the loading "
                                               r"times \[0, 1\].*give rows from t=0 up to t=1"):
            loading_from_dict({"times": [0.0, 0.5, 1.0], "temperature": {"type": "nodal", "times": rows,
                                                                         "values": values}})
    ok = loading_from_dict({"times": [0.0, 1.0], "temperature": {"type": "nodal", "times": [-1.0, 2.0],
                                                                 "values": values}})
    assert np.allclose(ok.nodal_temperature(1.0, np.zeros((2, 3))), [3.0 - 2.0 / 3.0, 4.0 - 2.0 / 3.0])
    loading_from_dict({"times": [0.0, 1.0], "temperature": {"type": "nodal", "times": [5.0], "values": values[:1]}})
    with pytest.raises(TemperatureTimesError):
        dataclasses.replace(ok, times=np.array([0.0, 3.0]))
    with pytest.raises(TemperatureTimesError):
        dataclasses.replace(ok, temperature=NodalTemperature(np.array([0.0, 0.5]), np.array(values)))
    held = loading_from_dict({"times": [0.0, 1.0, 2.0], "pressure": {"s": [[0.0, 0.0], [1.0, 7.0]]}})
    assert held.pressures["s"](2.0) == 7.0
