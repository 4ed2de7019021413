"""What the endpoints compute, free of HTTP: solve a loading and summarize it, write reconstructed fields,
read an uploaded nodal temperature field. Runs in the solver processes (:mod:`structrom.api.worker`), never
in the server process.

Errors are :class:`~structrom.api.registry.RegistryError` with a status, a code and the request field involved.
No MPI or PETSc import here.
"""
from __future__ import annotations

import io
import re
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from structrom.rom.loading import LoadingError, NodalTemperature, TemperatureTimesError
from structrom.rom.online import OnlineError, OnlineSolverError
from structrom.rom.online.errors import ModelDataError

from .errors import DomainError as RegistryError
from .schemas import LoadingSpec, SolveOptions

_FIELD = re.compile(r"^((?:loading|temperature)(?:\.[A-Za-z0-9_]+)*)")


def indicator_kind(model) -> str:
    """What a reduced model's indicator is: ``calibrated_error_bound`` (leave-one-out calibrated bounds of the relative
    errors) or ``gappy_residual`` (the Gappy residual of its indicator quantity, a heuristic)."""
    return "calibrated_error_bound" if getattr(model.data, "calibration", None) is not None else "gappy_residual"


def loading_error(exc: Exception, prefix: str = "") -> RegistryError:
    """A 422 for a :class:`LoadingError`, naming the field its message starts with."""
    msg = str(exc)
    m = _FIELD.match(msg)
    field = m.group(1) if m else "loading"
    if not field.startswith("loading"):
        field = "loading." + field
    code = "outside_training_family" if "outside the model's training family" in msg else "invalid_loading"
    return RegistryError(422, code, msg, prefix + field)


def overflow_error(exc: ArithmeticError, field: str) -> RegistryError:
    """A 422 for a loading whose values overflow floating point while it is evaluated (an ``OverflowError`` /
    ``ZeroDivisionError`` of the loading's formulas): never a 500 for a request's numbers."""
    return RegistryError(422, "invalid_loading", f"{field}: a value of the loading overflows floating point while it "
                         f"is evaluated ({type(exc).__name__}: {exc}); use values of physical magnitude", field)


def _finite_list(a) -> list:
    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, None).tolist()  # JSON has no NaN


def _answer(a, name: str, field: str, where: str = "for this loading", by_increment: bool = True):
    """A quantity of interest ``a`` as JSON (a list, or a number for a scalar); a non-finite value (a model whose
    data overflow ``where``) is an error, never a silent ``null`` in an answer that could be marked trusted. With
    ``by_increment``, the first axis of ``a`` is the increments (named in the message)."""
    a = np.asarray(a, dtype=float)
    bad = ~np.isfinite(a)
    if bad.any():
        inc = f" (increment {int(np.argwhere(bad)[0][0])})" if by_increment and a.ndim else ""
        raise RegistryError(422, "non_finite_answer", f"the model's {name} is not finite{inc}: the model file's data "
                            f"overflow {where}; rebuild or check the model", field)
    return a.tolist()


def cycle_summary(result, bounds) -> dict:
    """Per cycle, the largest value over the reduced points of each cycle quantity
    (:meth:`structrom.rom.online.result.Result.cycles`) and the integration point where it occurs."""
    try:
        q = result.cycles(bounds)
    except OnlineError as exc:
        raise RegistryError(422, "invalid_cycles", str(exc), "cycles") from None
    points = np.asarray(result.model.data.point)
    out = {"bounds": [[float(a), float(b)] for a, b in zip(bounds[:-1], bounds[1:])], "over": "reduced_points"}
    for name in ("strain_range", "stress_amplitude", "mean_stress", "ratcheting"):
        v = q[name]  # (n_cycles, n_rp)
        at = np.argmax(np.where(np.isfinite(v), v, -np.inf), axis=1)
        out[name] = {"max": _finite_list(v[np.arange(len(v)), at]), "point": points[at].astype(int).tolist()}
    return out


def check_inline_nodal(spec: LoadingSpec, prefix: str = "") -> None:
    """A JSON loading's ``nodal`` temperature carries its ``values``; without them (the form of a
    ``/solve/nodal`` request, whose values are uploaded) it is a 422 naming the field."""
    t = spec.temperature
    if t is not None and t.type == "nodal" and t.values is None:
        raise RegistryError(422, "invalid_loading", f"{prefix}loading.temperature.values: a 'nodal' temperature needs "
                            "its values here, (n_times, n_nodes) (one row per time of loading.temperature.times), or "
                            "upload them to POST /v1/models/{id}/solve/nodal", prefix + "loading.temperature.values")


def solve(model, spec: LoadingSpec, opts: SolveOptions, *, max_increments: int, field_prefix: str = "",
          temperature: NodalTemperature | None = None) -> dict:
    """Solve one loading and return its quantities of interest (JSON-ready)."""
    if temperature is None:
        check_inline_nodal(spec, field_prefix)
    if spec.n_increments > max_increments:
        raise RegistryError(422, "too_many_increments", f"the loading has {spec.n_increments} increments; this "
                            f"server allows at most {max_increments}", field_prefix + "loading.times")
    for i, name in enumerate(opts.node_sets):  # fail before solving
        try:
            model.node_set(name)
        except OnlineError as exc:
            raise RegistryError(422, "unknown_node_set", str(exc), f"node_sets.{i}") from None
    d = spec.to_dict()
    if temperature is not None:
        d.pop("temperature", None)
    t0 = time.perf_counter()
    try:
        from structrom.rom.loading_dict import loading_from_dict

        loading = loading_from_dict(d)
        if temperature is not None:
            import dataclasses

            loading = dataclasses.replace(loading, temperature=temperature)
        result = model.solve(loading, extrapolate=opts.extrapolate)
    except TemperatureTimesError as exc:
        if temperature is None:
            raise loading_error(exc, field_prefix) from None
        raise RegistryError(422, "invalid_loading", f"temperature_times (the times of the uploaded rows): {exc}",
                            "temperature_times") from None
    except LoadingError as exc:
        raise loading_error(exc, field_prefix) from None
    except OnlineSolverError as exc:
        raise RegistryError(422, "solver_diverged", str(exc), field_prefix + "loading") from None
    except ModelDataError as exc:
        raise RegistryError(422, "non_finite_answer", str(exc), field_prefix + "loading") from None
    except OnlineError as exc:
        raise RegistryError(422, "invalid_request", str(exc), field_prefix + "loading") from None
    except ArithmeticError as exc:
        raise overflow_error(exc, field_prefix + "loading") from None
    t_solve = time.perf_counter() - t0
    out = {
        "times": result.times.tolist(),
        "indicator": _finite_list(result.indicator),
        "trusted": result.trusted.tolist(),
        "trusted_all": bool(result.trusted.all()),
        "indicator_quantity": result.model.indicator_quantity,  # a dictionary's: the local model's
        "indicator_kind": indicator_kind(result.model),
        "indicator_tolerance": result.model.indicator_tolerance,
        "extrapolated": result.extrapolated,
        "warnings": list(result.warnings),
        "newton_iterations": result.newton_iterations.tolist(),
        "cutbacks": result.cutbacks.tolist(),
    }
    try:
        recon_vm = opts.reconstruct and "stress" in result.dual_reduced
        out["max_von_mises"] = _answer(result.max_von_mises(reconstruct=recon_vm), "largest von Mises stress",
                                       field_prefix + "loading")
        out["max_von_mises_over"] = "reconstructed_field" if recon_vm else "reduced_points"
        if "cumulated_plastic_strain" in result.dual_reduced:
            if opts.reconstruct:
                p = result.dual_field("cumulated_plastic_strain", None).max(axis=1)
            else:
                p = result.dual_reduced["cumulated_plastic_strain"].max(axis=1)
            out["max_cumulated_plastic_strain"] = _answer(p, "largest cumulated plastic strain", field_prefix + "loading")
            out["max_cumulated_plastic_strain_over"] = "reconstructed_field" if opts.reconstruct else "reduced_points"
        disp = {}
        for i, name in enumerate(opts.node_sets):
            try:
                u = result.displacement(nodes=name, increment=None)  # (n_inc, n, 3)
            except OnlineError as exc:
                raise RegistryError(422, "unknown_node_set", str(exc), f"node_sets.{i}") from None
            mag = np.linalg.norm(u, axis=2)
            what = f"displacement of node set {name!r}"
            disp[name] = {"nodes": int(u.shape[1]), "mean": _answer(u.mean(axis=1), what, f"node_sets.{i}"),
                          "max_magnitude": _answer(mag.max(axis=1) if u.shape[1] else np.zeros(len(u)), what,
                                                   f"node_sets.{i}")}
        out["displacement"] = disp
        if result.reactions:
            out["reactions"] = {k: _answer(v, f"reaction on {k!r}", field_prefix + "loading")
                                for k, v in result.reactions.items()}
        if opts.cycles is not None:
            out["cycles"] = cycle_summary(result, opts.cycles)
    except OnlineError as exc:
        raise RegistryError(422, "invalid_request", str(exc), field_prefix + "loading") from None
    except ArithmeticError as exc:
        raise overflow_error(exc, field_prefix + "loading") from None
    if hasattr(result, "local_model"):  # a dictionary: which local model answered, what was tried
        out.update(local_model=result.local_model, fallback=result.fallback, probabilities=result.probabilities,
                   attempts=[{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in a.items()}
                             for a in result.attempts])
    out["timings_ms"] = {"solve": 1e3 * t_solve, "total": 1e3 * (time.perf_counter() - t0)}
    return out


def _npy_declared_bytes(data: bytes) -> int:
    """Bytes of the array an ``.npy`` file's header declares (shape x item size), read without the array;
    raises ``ValueError`` for a header that is not format 1.0 / 2.0."""
    from numpy.lib import format as npy

    fp = io.BytesIO(data)
    version = npy.read_magic(fp)
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"format version {version[0]}.{version[1]}; save it with numpy.save (format 1.0 or 2.0)")
    shape, _, dtype = readers[version](fp)
    if dtype.kind not in "fiu":
        raise ValueError(f"its values are of type {dtype}; save real numbers (float64)")
    n = 1
    for d in shape:
        n *= max(int(d), 0)
    return n * dtype.itemsize


def read_nodal_upload(data: bytes, filename: str, times: np.ndarray, max_nodes: int,
                      times_field: str | None = None) -> NodalTemperature:
    """A nodal temperature field from an uploaded ``.npy`` (``(n_times, n_nodes)`` float array; no pickles)
    or HDF5 file (dataset ``temperature`` or the only dataset; optional dataset ``times``, the rows' times in
    place of the loading's: when the request gives them too, in its field ``times_field``, they must agree, as
    one of the two would be ignored). HDF5 files are
    screened first (:func:`structrom.rom.h5_screening.screen_array_upload`: plain arrays of at most
    ``max_nodes`` x (n_times + 1) values, no links or external data) so that nothing outside the upload is
    read and no compressed array expands past that bound."""
    arr = None
    max_bytes = 8 * max_nodes * (len(times) + 1)
    if data[:6] == b"\x93NUMPY":
        try:
            declared = _npy_declared_bytes(data)
            if declared > max_bytes:  # np.load allocates the declared array before reading it
                raise ValueError(f"its header declares {declared} bytes, more than the model's nodes x times allow "
                                 f"({max_bytes} bytes)")
            arr = np.load(io.BytesIO(data), allow_pickle=False, mmap_mode=None)
            if arr.nbytes > max_bytes:
                raise ValueError(f"{arr.nbytes} bytes is more than the model's nodes x times allow")
        except (ValueError, OSError, EOFError) as exc:
            raise RegistryError(422, "invalid_upload", f"unreadable .npy file: {exc}", "temperature") from None
    elif data[:8] == b"\x89HDF\r\n\x1a\n":
        import h5py

        try:
            from structrom.rom.h5_screening import UnsafeFileError, screen_array_upload

            with h5py.File(io.BytesIO(data), "r") as f:
                try:
                    screen_array_upload(f, max_bytes)
                except UnsafeFileError as exc:
                    raise RegistryError(422, "unsafe_upload", f"HDF5 upload refused: {exc}", "temperature") from None
                names = [k for k in f if isinstance(f[k], h5py.Dataset)]
                key = "temperature" if "temperature" in names else (names[0] if len(names) == 1 else None)
                if key is None:
                    raise RegistryError(422, "invalid_upload", "HDF5 upload: put the field in a dataset named "
                                        f"'temperature' (found {sorted(names)})", "temperature")
                arr = f[key][()]
                if "times" in names and key != "times":
                    if f["times"].size > 100_000:
                        raise RegistryError(422, "invalid_upload", "HDF5 upload: 'times' has more than 100000 "
                                            "values", "temperature")
                    in_file = np.asarray(f["times"][()], dtype=float).ravel()
                    if times_field is not None and not np.array_equal(in_file, times):
                        raise RegistryError(422, "invalid_upload", f"HDF5 upload: its 'times' dataset "
                                            f"{np.array2string(in_file, threshold=6)} differs from {times_field} "
                                            f"{np.array2string(np.asarray(times), threshold=6)}: give the rows' "
                                            "times once, in the file or in the request", times_field)
                    times = in_file
        except RegistryError:
            raise
        except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
            raise RegistryError(422, "invalid_upload", f"unreadable HDF5 file: {exc}", "temperature") from None
    else:
        raise RegistryError(422, "invalid_upload", f"{filename or 'upload'}: not a .npy or HDF5 file", "temperature")
    if not (isinstance(arr, (np.ndarray, np.generic)) and arr.dtype.kind in "fiu"):
        raise RegistryError(422, "invalid_upload", "the temperature array must be numeric", "temperature")
    given = np.shape(arr)  # (a 0-d dataset reads as a numpy scalar)
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != len(times) or arr.shape[1] < 1 or arr.shape[1] > max_nodes:
        raise RegistryError(422, "invalid_shape", f"temperature array has shape {given}; expected "
                            f"(n_times={len(times)}, n_nodes) with n_nodes the mesh's node count", "temperature")
    if not np.all(np.isfinite(arr)):
        raise RegistryError(422, "non_finite", f"temperature has {int((~np.isfinite(arr)).sum())} non-finite "
                            "values", "temperature")
    if not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0)):
        raise RegistryError(422, "invalid_loading", "temperature times must be finite and increasing",
                            "temperature_times")
    return NodalTemperature(np.asarray(times, float), arr)


def _check_fields_size(model, mesh, n_increments: int, quantities: list[str] | None, max_bytes: int) -> None:
    """413 when the fields of ``n_increments`` increments (displacement ``(n_nodes, 3)`` and the dual quantities at
    the integration points, with their components; 6 for a name the model does not have) exceed ``max_bytes`` in
    doubles."""
    from structrom.rom.hifi.output import points_per_element

    gappy = (model.models[0] if hasattr(model, "models") else model).gappy
    names = list(gappy) if quantities is None else quantities
    components = sum(gappy[q].components if q in gappy else 6 for q in names)
    n_points = int(points_per_element(mesh).sum())
    size = 8 * n_increments * (3 * mesh.n_nodes + components * n_points)
    if size > max_bytes:
        raise RegistryError(413, "response_too_large", f"the fields of {n_increments} increment(s) on this mesh "
                            f"({mesh.n_nodes} nodes, {n_points} integration points) would be about {size / 2**20:.0f} "
                            f"MiB; this server answers at most {max_bytes / 2**20:.0f} MiB: ask for fewer increments "
                            "or quantities, or use format 'vtu' for one increment", "loading.times")


def fields(model, spec: LoadingSpec, *, extrapolate: bool, fmt: str, increment: int, quantities: list[str] | None,
           max_increments: int, name: str | None = None, max_bytes: int | None = None) -> tuple[bytes, str, str]:
    """Solve and write the reconstructed fields; returns ``(content, media type, file name)`` (files named
    after ``name``, default the model file's stem). ``max_bytes``: the largest answer's arrays (the fields of every
    increment for HDF5, of one for VTU/XDMF), estimated from the mesh before the solve: 413 above."""
    from structrom.rom import model_file
    from structrom.rom.fem.io import write_mesh
    from structrom.rom.loading_dict import loading_from_dict

    if spec.n_increments > max_increments:
        raise RegistryError(422, "too_many_increments", f"at most {max_increments} increments", "loading.times")
    check_inline_nodal(spec)
    mesh = model.__dict__.get("_api_mesh")
    if mesh is None:
        src = model.models[0] if hasattr(model, "models") else model  # a dictionary: its local models share one mesh
        mesh = model_file.load(src.path, mesh=True, group=getattr(src, "group", "/")).mesh
        model._api_mesh = mesh
    if max_bytes is not None:
        _check_fields_size(model, mesh, spec.n_increments if fmt == "hdf5" else 1, quantities, max_bytes)
    try:
        result = model.solve(loading_from_dict(spec.to_dict()), extrapolate=extrapolate)
    except LoadingError as exc:
        raise loading_error(exc) from None
    except (OnlineSolverError, OnlineError) as exc:
        raise RegistryError(422, "solver_diverged", str(exc), "loading") from None
    except ArithmeticError as exc:
        raise overflow_error(exc, "loading") from None
    names = sorted(result.dual_reduced) if quantities is None else list(quantities)
    for i, q in enumerate(names):
        if q not in result.dual_reduced:
            raise RegistryError(422, "unknown_quantity", f"no dual quantity {q!r}; this model has "
                                f"{sorted(result.dual_reduced)}", f"quantities.{i}")
    n = result.n_increments
    if not -n <= increment < n:
        raise RegistryError(422, "invalid_increment", f"increment {increment} out of range (0..{n - 1} or "
                            "negative from the end)", "increment")
    stem = name or Path(model.path).stem
    if fmt == "hdf5":
        import h5py

        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.attrs["model"] = stem
            f.attrs["model_sha256"] = getattr(model, "api_sha256", None) or ""  # the version that answered
            f.create_dataset("times", data=result.times)
            f.create_dataset("indicator", data=result.indicator)
            f.create_dataset("trusted", data=result.trusted)
            f.create_dataset("mesh/points", data=mesh.points)
            for b, block in enumerate(mesh.blocks):
                f.create_dataset(f"mesh/blocks/{b}/connectivity", data=block.connectivity)
                f[f"mesh/blocks/{b}"].attrs["element"] = block.element
            f.create_dataset("displacement", data=result.displacement(increment=None), compression="gzip")
            for q in names:
                f.create_dataset(f"dual/{q}", data=result.dual_field(q, None), compression="gzip")
        return buf.getvalue(), "application/x-hdf5", f"{stem}_fields.h5"
    point_data = {"displacement": result.displacement(increment=increment)}
    cell_data = {}
    if names:
        from structrom.rom.fem.kernel import Discretization

        elems = model.__dict__.get("_api_point_elements")
        if elems is None:
            elems = model._api_point_elements = Discretization(mesh).point_elements
        counts = np.bincount(elems, minlength=mesh.n_elements).astype(float)
        for q in names:
            v = result.dual_field(q, increment)  # (n_points,) or (n_points, 6)
            sums = np.zeros((mesh.n_elements,) + v.shape[1:])
            np.add.at(sums, elems, v)
            cell_data[f"{q}_element_mean"] = sums / np.maximum(counts, 1).reshape((-1,) + (1,) * (v.ndim - 1))
    tmp = Path(tempfile.mkdtemp(prefix="structrom-fields-"))
    try:
        if fmt == "vtu":
            p = write_mesh(tmp / f"{stem}.vtu", mesh, point_data, cell_data)
            return p.read_bytes(), "application/vnd.vtk.vtu+xml", p.name
        write_mesh(tmp / f"{stem}.xdmf", mesh, point_data, cell_data)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(tmp.iterdir()):
                z.write(f, f.name)
        return buf.getvalue(), "application/zip", f"{stem}_xdmf.zip"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
