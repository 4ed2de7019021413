"""REST answer of a separated model to a parameter query (free of HTTP, like :mod:`structrom.api.service`).

Request body (``POST /v1/models/{id}/solve`` when the model's card says ``"kind": "separated"``)::

    {"parameters": {"intensity": 512.0, "x_center": 41.0},     # or a list in the card's parameter order
     "extrapolate": false,                                     # accept values outside the training ranges
     "node_sets": ["tip"]}                                     # displacements of mesh node sets (FE-kernel models)

Answer: ``kind``, ``parameters``, ``error_estimate`` (absolute, energy norm of the estimator), ``indicator``
(relative), ``trusted``, ``indicator_tolerance``, ``max_displacement`` (largest nodal displacement magnitude
of the reduced solution when the rows map to mesh dofs, else the largest row value; model units), ``coordinates`` (reduced), ``displacement`` per node set (one row, as
the loading answers' per-increment rows), ``warnings``, ``timings_ms``. Bad parameters give
:class:`~structrom.api.registry.RegistryError` 422 naming the field (code ``outside_training_family`` or
``invalid_parameters``). No MPI or PETSc import here.
"""
from __future__ import annotations

import time

import numpy as np

from structrom.rom.online import OnlineError
from structrom.rom.online.errors import ModelDataError

from .errors import DomainError as RegistryError


def _finite(x, what: str, field: str):
    """``x`` as JSON when finite, else a 422 ``non_finite_answer`` (:func:`structrom.api.service._answer`)."""
    from .service import _answer

    return _answer(x, what, field, where="at these parameter values (basis/V, reduced/*, estimator/*)",
                   by_increment=False)


def _node_sets(model, names) -> dict:
    mesh = model.data.mesh
    out = {}
    if names and np.any(model.dof_map < 0):
        raise RegistryError(422, "unknown_node_set", "this model does not know the mesh numbering of its rows: it "
                            "answers no node-set displacements", "node_sets.0")
    for i, name in enumerate(names):
        if mesh is None or name not in getattr(mesh, "node_sets", {}):
            known = sorted(mesh.node_sets) if mesh is not None else []
            raise RegistryError(422, "unknown_node_set", f"node set {name!r} is not in the model's mesh; known: "
                                f"{known}" + ("" if mesh is not None else " (this model has no mesh)"), f"node_sets.{i}")
        out[name] = np.asarray(mesh.node_set(name), dtype=np.int64)
    return out


def solve_parameters(model, body: dict, *, field_prefix: str = "", field: str | None = None,
                     node_sets=()) -> dict:
    """Solve one parameter query on a :class:`~structrom.rom.online.SeparatedModel` (see the module docstring).
    ``field``: the request field of the values (default ``field_prefix + "parameters"``)."""
    field = field or field_prefix + "parameters"
    if not isinstance(body, dict) or "parameters" not in body:
        raise RegistryError(422, "invalid_parameters", "the request needs 'parameters': {name: value} or a list "
                            f"in the order {getattr(model, 'parameter_names', [])}", field)
    extrapolate = body.get("extrapolate", False)
    if not isinstance(extrapolate, bool):
        raise RegistryError(422, "invalid_parameters", "'extrapolate' must be true or false", field_prefix + "extrapolate")
    sets = _node_sets(model, node_sets)  # fail before solving
    t0 = time.perf_counter()
    try:
        res = model.solve(body["parameters"], extrapolate=extrapolate)
    except ModelDataError as exc:
        raise RegistryError(422, "non_finite_answer", str(exc), field) from None
    except OnlineError as exc:
        msg = str(exc)
        code = "outside_training_family" if "outside the training range" in msg else "invalid_parameters"
        raise RegistryError(422, code, msg, field) from None
    t_solve = time.perf_counter() - t0
    mapped = bool(np.all(model.dof_map >= 0))
    with np.errstate(over="ignore", invalid="ignore"):
        full = res.displacement() if mapped else None  # (n_nodes, 3) in the mesh numbering
        max_u = _finite(float(np.linalg.norm(full, axis=1).max(initial=0.0)) if mapped else
                        float(np.abs(res.vector()).max(initial=0.0)), "largest displacement", field)
        disp = {}
        for i, (name, nodes) in enumerate(sets.items()):
            v = full[nodes]
            what, at = f"displacement of node set {name!r}", f"node_sets.{i}"
            disp[name] = {"nodes": int(len(nodes)),
                          "mean": [_finite(v.mean(axis=0) if len(v) else np.zeros(3), what, at)],
                          "max_magnitude": [_finite(float(np.linalg.norm(v, axis=1).max(initial=0.0)), what, at)]}
    out = res.summary()
    _finite(out["error_estimate"], "error estimate", field)
    # JSON has no infinity: the relative indicator of a zero solution with a nonzero residual is null (not trusted)
    out["indicator"] = out["indicator"] if np.isfinite(out["indicator"]) else None
    if not np.all(np.isfinite(out["coordinates"])):
        raise RegistryError(422, "invalid_parameters", "the reduced solution is not finite at these parameter "
                            "values (far outside the training set?)", field)
    timings = out.pop("timings")
    out.update(parameters=out.pop("mu"), max_displacement=max_u, displacement=disp)
    out["timings_ms"] = {**{k: 1e3 * v for k, v in timings.items()}, "solve": 1e3 * t_solve,
                         "total": 1e3 * (time.perf_counter() - t0)}
    return out
