"""REST answer of a separated model to a parameter-style query (free of HTTP, like :mod:`structrom.api.service`).

Request body (``POST /v1/models/{id}/solve`` when the model's card says ``"kind": "separated"``)::

    {"parameters": {"intensity": 512.0, "x_center": 41.0},     # or a list in the card's parameter order
     "extrapolate": false}                                     # accept values outside the training ranges

Answer: ``kind``, ``parameters``, ``error_estimate`` (absolute, energy norm of the estimator), ``indicator``
(relative), ``trusted``, ``indicator_tolerance``, ``max_displacement`` (largest nodal displacement magnitude
of the reduced solution, model units), ``coordinates`` (reduced), ``warnings``, ``timings``. Bad parameters
give :class:`~structrom.api.registry.RegistryError` 422 with ``field = "parameters"`` (code
``outside_training_family`` or ``invalid_parameters``). No MPI or PETSc import here.
"""
from __future__ import annotations

import time

import numpy as np

from structrom.rom.online import OnlineError

from .registry import RegistryError


def solve_parameters(model, body: dict, *, field_prefix: str = "") -> dict:
    """Solve one parameter query on a :class:`~structrom.rom.online.SeparatedModel` (see the module docstring)."""
    if not isinstance(body, dict) or "parameters" not in body:
        raise RegistryError(422, "invalid_parameters", "the request needs 'parameters': {name: value} or a list "
                            f"in the order {getattr(model, 'parameter_names', [])}", field_prefix + "parameters")
    extrapolate = body.get("extrapolate", False)
    if not isinstance(extrapolate, bool):
        raise RegistryError(422, "invalid_parameters", "'extrapolate' must be true or false", field_prefix + "extrapolate")
    t0 = time.perf_counter()
    try:
        res = model.solve(body["parameters"], extrapolate=extrapolate)
    except OnlineError as exc:
        msg = str(exc)
        code = "outside_training_family" if "outside the training range" in msg else "invalid_parameters"
        raise RegistryError(422, code, msg, field_prefix + "parameters") from None
    u = res.vector()
    max_u = float(np.sqrt((u.reshape(-1, 3) ** 2).sum(axis=1)).max()) if u.size % 3 == 0 and u.size else \
        float(np.abs(u).max(initial=0.0))
    out = res.summary()
    out.update(parameters=out.pop("mu"), max_displacement=max_u)
    out["timings"] = {**out["timings"], "request": time.perf_counter() - t0}
    return out
