"""The lifting of prescribed displacements in a reduced model: ``u(t) = sum_j b_j(t) G_j + Phi q(t)``
(offline construction and the choice of the unit fields ``G_j``: :mod:`structrom.rom.offline.lifting`).

Stored in the model file under ``/lifting`` (schema version 3):

======================================  ===========================  =========================================
path                                    shape, type                  content
======================================  ===========================  =========================================
``/lifting`` attr ``fields``            JSON list                    per unit field ``j``: ``name`` (loading key
                                                                     of its prescribed set), ``node_set``,
                                                                     ``components`` (of its specification),
                                                                     ``component`` (0, 1, 2)
``/lifting/full``                       (n_dofs, n_G) f8             the unit fields ``G_j``
``/lifting/reduced``                    (n_rp, 6, n_G) f8            their strains at the reduced points
``/lifting/validation``                 (n_val, 6, n_G) f8           at the validation points (with /validation)
``/lifting/loads/<kind>/...``           (n_G[, 3]) f8                ``G_j^T f`` of the unit loads, as /loads
======================================  ===========================  =========================================

Online: ``b_j(t)`` is the query's prescribed value of the field's set (``loading.displacement``), the
strain at the reduced points ``B q + E b``, and the reaction resultant of field ``j`` (the force the
part exerts on the prescribed set, along the component) ``R_j = sum_k w_k E_kj : sigma_k - G_j^T f_ext``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from structrom.rom.loading import Loading, LoadingError
from structrom.rom.prescribed_overlap import check_named_once

AXES = "xyz"
LOAD_KINDS = ("pressure", "traction", "force")


def load_vector(loading: Loading, t: float, loads: dict, size: int) -> np.ndarray:
    """``sum_l alpha_l(t) F_l`` ``(size,)`` for reduced unit loads ``loads`` (``pressure``: set -> ``(size,)``,
    ``traction`` / ``force``: set -> ``(size, 3)``, ``centrifugal``: ``(size,)`` or None for omega = 1,
    ``gravity``: ``(size, 3)`` or None): pressures x amplitudes, tractions and forces (vector(t) per set),
    omega(t)^2 x centrifugal, gravity."""
    f = np.zeros(size)
    for name, amp in loading.pressures.items():
        f += float(amp(t)) * loads["pressure"][name]
    for kind, given in (("traction", loading.tractions), ("force", loading.forces)):
        for name, vec in given.items():
            f += loads[kind][name] @ vec(t)
    if loading.centrifugal is not None and loads.get("centrifugal") is not None:
        f += float(loading.centrifugal.omega(t)) ** 2 * loads["centrifugal"]
    if loading.gravity is not None and loads.get("gravity") is not None:
        f += loads["gravity"] @ np.asarray(loading.gravity, dtype=float)
    return f


@dataclass
class Lifting:
    """See the module docstring. ``fields``: one dict per unit field; ``full`` may be a lazy h5py dataset."""

    fields: list[dict]
    reduced: np.ndarray  # (n_rp, 6, n_G)
    loads: dict = field(default_factory=dict)  # as load_vector's ``loads``, rows n_G
    validation: np.ndarray | None = None  # (n_val, 6, n_G)
    full: Any = None  # (n_dofs, n_G)

    @property
    def n_fields(self) -> int:
        return len(self.fields)

    @property
    def keys(self) -> list[str]:
        """``<set name>.<axis>`` of each field: the names of the reactions."""
        return [f"{f['name']}.{AXES[int(f['component'])]}" for f in self.fields]

    @property
    def sets(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Prescribed set name -> (node set, components)."""
        return {f["name"]: (f["node_set"], tuple(int(c) for c in f["components"])) for f in self.fields}

    # -- online -----------------------------------------------------------------------------------------
    def match(self, loading: Loading) -> dict[int, str]:
        """Index in ``loading.displacements`` -> prescribed set name, for every imposed displacement of the
        loading that drives one of the model's prescribed sets; raises :class:`LoadingError` naming a node set
        with several prescribed displacements that the loading does not tell apart, or two imposed displacements
        that set one prescribed set with different values."""
        sets, out = self.sets, {}
        for i, d in enumerate(loading.displacements):
            found = [name for name, (node_set, comps) in sets.items()
                     if d.node_set in (name, node_set) and (not d.components or tuple(d.components) == comps)]
            exact = [name for name in found if name == d.node_set]
            if len(found) > 1 and not exact:
                raise LoadingError(f"loading.displacement.{d.node_set}: the model prescribes several displacements on "
                                   f"this node set; name one of {found}")
            if found:
                out[i] = (exact or found)[0]
        first: dict[str, int] = {}
        for i, name in out.items():  # a set given twice: the last value would have replaced the first
            check_named_once(loading.displacements[first.setdefault(name, i)], loading.displacements[i],
                             f"the prescribed set {name!r}")
        return out

    def amplitudes(self, loading: Loading, times: np.ndarray, matched: dict[int, str]) -> np.ndarray:
        """``(len(times), n_G)``: ``b_j(t)``, the prescribed value of each field's set (0 when the loading
        does not give it: the set is then held at zero)."""
        times = np.asarray(times, dtype=float)
        by_name: dict[str, np.ndarray] = {}
        for i, name in matched.items():
            d = loading.displacements[i]
            by_name[name] = d.value * d.amplitude(times)
        out = np.zeros((len(times), self.n_fields))
        for j, f in enumerate(self.fields):
            if f["name"] in by_name:
                out[:, j] = by_name[f["name"]]
        return out

    def reactions(self, stress: np.ndarray, weights: np.ndarray, f_ext: np.ndarray) -> np.ndarray:
        """``(n_inc, n_G)`` reaction resultants from the stresses at the reduced points ``(n_inc, n_rp, 6)``,
        their weights ``(n_rp,)`` and ``G^T f_ext`` ``(n_inc, n_G)``."""
        Ew = (self.reduced * weights[:, None, None]).reshape(-1, self.n_fields)  # (6 n_rp, n_G)
        return stress.reshape(len(stress), -1) @ Ew - f_ext

    def load_terms(self, loading: Loading, times: np.ndarray) -> np.ndarray:
        """``(len(times), n_G)``: ``G_j^T f_ext(t)``."""
        if not self.loads:
            return np.zeros((len(times), self.n_fields))
        loads = {k: self.loads.get(k, {}) for k in LOAD_KINDS} | {k: self.loads.get(k) for k in ("centrifugal", "gravity")}
        return np.array([load_vector(loading, float(t), loads, self.n_fields) for t in times]).reshape(len(times), -1)

    # -- file ----------------------------------------------------------------------------------------------
    def write(self, f) -> None:
        """Write under ``/lifting`` of the open model file ``f``."""
        import json

        g = f.create_group("lifting")
        g.attrs["fields"] = json.dumps(self.fields)
        full = np.asarray(self.full)
        g.create_dataset("full", data=full, chunks=(min(len(full), 65536), full.shape[1]) if full.size else None)
        g.create_dataset("reduced", data=self.reduced)
        if self.validation is not None:
            g.create_dataset("validation", data=self.validation)
        for kind in LOAD_KINDS:
            for name, vec in self.loads.get(kind, {}).items():
                g.create_dataset(f"loads/{kind}/{name}", data=vec)
        for kind in ("centrifugal", "gravity"):
            if self.loads.get(kind) is not None:
                g.create_dataset(f"loads/{kind}", data=self.loads[kind])

    @classmethod
    def read(cls, f, full: bool) -> "Lifting | None":
        """The lifting of an open (screened) model file, or None."""
        import json

        g = f.get("lifting")
        if g is None:
            return None
        loads: dict = {}
        lg = g.get("loads")
        if lg is not None:
            for kind in LOAD_KINDS:
                if kind in lg:
                    loads[kind] = {k: v[()] for k, v in lg[kind].items()}
            for kind in ("centrifugal", "gravity"):
                if kind in lg:
                    loads[kind] = lg[kind][()]
        return cls(fields=json.loads(g.attrs["fields"]), reduced=g["reduced"][()], loads=loads,
                   validation=g["validation"][()] if "validation" in g else None,
                   full=g["full"][()] if full else None)


def check_fields(fields: Any) -> list[dict]:
    """Validate the ``fields`` attribute (a JSON list of unit-field descriptions); returns it or raises
    ``ValueError`` naming the entry."""
    if not isinstance(fields, list) or not fields:
        raise ValueError("attribute 'fields' must be a non-empty JSON list")
    for i, f in enumerate(fields):
        ok = (isinstance(f, dict) and set(f) == {"name", "node_set", "components", "component"}
              and isinstance(f["name"], str) and isinstance(f["node_set"], str)
              and isinstance(f["components"], list) and all(c in (0, 1, 2) for c in f["components"])
              and f["component"] in f["components"])
        if not ok:
            raise ValueError(f"attribute 'fields'[{i}] must be {{name, node_set, components: [0-2...], "
                             f"component: one of components}}, got {f!r}")
    return fields


def unknown_displacement_error(loading: Loading, matched: dict[int, str], lifting: "Lifting | None",
                               homogeneous: set) -> None:
    """Raise :class:`LoadingError` for an imposed displacement of ``loading`` that the model cannot take: a
    nonzero one not matched to a prescribed set, or a zero one on a set that is neither prescribed nor
    one of the model's homogeneous Dirichlet conditions ``homogeneous`` (set of (node_set, component))."""
    prescribed = sorted(lifting.sets) if lifting is not None else []
    for i, d in enumerate(loading.displacements):
        if i in matched:
            continue
        nonzero = d.value != 0 and np.any(d.amplitude.values != 0)
        if nonzero or not d.components or any((d.node_set, int(c)) not in homogeneous for c in d.components):
            comps = "" if not d.components else f", components {[AXES[int(c)] for c in d.components]}"
            raise LoadingError(
                f"loading.displacement.{d.node_set}{comps}: this model prescribes no displacement there; its "
                f"prescribed sets are {prescribed or 'none'} (with the components they were trained on) and its "
                f"fixed Dirichlet conditions {sorted({s for s, _ in homogeneous})}")
