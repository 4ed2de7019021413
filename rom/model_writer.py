"""Writing a reduced model file: :func:`write` puts a :class:`~structrom.rom.model_data.ReducedModelData`
into one HDF5 file, atomically (``<name>.partial`` then ``os.replace``).

Layout in :mod:`structrom.rom.model_file`. The full-size arrays (modes ``(n_dofs, N)``, full dual bases
``(n_points c, m_q)``) are written chunked by rows, from an array or from row blocks (a distributed array
written without holding it). The schema version written is 2, or 3 when the model has a lifting.
"""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from structrom.rom.atomic import atomic_h5
from structrom.rom.model_data import FORMAT, LIFTING_SCHEMA_VERSION, SCHEMA_VERSION, ReducedModelData

def _write_rows(group, name: str, rows) -> None:
    """A ``(n, m)`` float dataset chunked by rows (none for an empty one) from an array or from row blocks
    (an object with ``shape`` and ``blocks()`` yielding ``(start, (b, m) array)``, e.g.
    :class:`structrom.rom.offline.row_blocks.SpilledRows`: a distributed array written without holding it)."""
    n, m = rows.shape
    chunks = (min(n, 65536), m) if n * m else None
    if isinstance(rows, np.ndarray) or not n * m:
        group.create_dataset(name, data=np.asarray(rows) if isinstance(rows, np.ndarray) else np.zeros((n, m)),
                             chunks=chunks)
        return
    d = group.create_dataset(name, shape=(n, m), dtype="f8", chunks=chunks)
    for a, block in rows.blocks():
        d[a:a + len(block)] = block


def write(path: str | Path, data: ReducedModelData, mesh, modes,
          full_duals: dict) -> Path:
    """Write ``data`` (with the full ``modes`` ``(n_dofs, N)`` and full dual bases ``(n_points c, m_q)``,
    arrays or row blocks, see :func:`_write_rows`) atomically to ``path``."""
    from structrom.rom.hifi.output import write_mesh_group

    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION if data.lifting is None else LIFTING_SCHEMA_VERSION
        f.attrs["kind"] = "hyper_reduced"
        for key in ("provenance", "units", "materials", "loading_schema", "dirichlet"):
            f.attrs[key] = json.dumps(getattr(data, key))
        if data.versions:
            f.attrs["versions"] = json.dumps(data.versions)
        write_mesh_group(f.create_group("mesh"), mesh)
        _write_rows(f, "modes/full", modes)
        f.create_dataset("modes/singular_values", data=data.singular_values)
        r = f.create_group("reduced")
        for key in ("element", "point", "weights", "coordinates", "material", "integrator"):
            r.create_dataset(key, data=getattr(data, key))
        t = r.create_group("temperature")
        t.create_dataset("nodes", data=data.temperature_nodes)
        t.create_dataset("coordinates", data=data.temperature_coordinates)
        m = sp.csr_matrix(data.temperature_interpolation)
        for key in ("data", "indices", "indptr"):
            t.create_dataset(key, data=getattr(m, key))
        loads = f.create_group("loads")
        for name, vec in data.pressure.items():
            loads.create_dataset(f"pressure/{name}", data=vec)
        for kind in ("traction", "force"):
            for name, vec in getattr(data, kind).items():
                loads.create_dataset(f"{kind}/{name}", data=vec)
        if data.centrifugal is not None:
            d = loads.create_dataset("centrifugal", data=data.centrifugal)
            d.attrs["axis_point"], d.attrs["axis_direction"] = data.centrifugal_axis
        if data.gravity is not None:
            loads.create_dataset("gravity", data=data.gravity)
        for name, dual in data.duals.items():
            g = f.create_group(f"dual/{name}")
            g.attrs["components"] = dual.components
            g.create_dataset("reduced_basis", data=dual.reduced_basis)
            g.create_dataset("singular_values", data=dual.singular_values)
            _write_rows(g, "basis", full_duals[name])
        ind = f.create_group("indicator")
        ind.attrs["quantity"] = data.indicator_quantity
        ind.attrs["tolerance"] = data.indicator_tolerance
        ind.attrs["reference"] = float(data.indicator_reference)
        _write_indicator_data(f, data)
        if data.lifting is not None:
            data.lifting.write(f)
    return path


def _write_indicator_data(f: h5py.File, data: ReducedModelData) -> None:
    """``/validation`` and ``/indicator/calibration`` (when present)."""
    v = data.validation
    if v is not None:
        g = f.create_group("validation")
        for key in ("point", "integrator", "weights", "material"):
            g.create_dataset(key, data=getattr(v, key))
        m = sp.csr_matrix(v.interpolation)
        for key in ("data", "indices", "indptr"):
            g.create_dataset(f"temperature/{key}", data=getattr(m, key))
        for name, rows in v.duals.items():
            g.create_dataset(f"dual/{name}", data=rows)
    c = data.calibration
    if c is not None:
        g = f["indicator"].create_group("calibration")
        g.create_dataset("factors", data=c.factors)
        for key, value in c.to_attrs().items():
            g.attrs[key] = value
