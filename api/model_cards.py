"""Model cards of every model kind (``GET /v1/models/{id}``), built in a solver process after full validation.

Common keys: ``id``, ``kind`` (``hyper_reduced``, ``separated`` or ``dictionary``), ``query`` (what ``POST
/v1/models/{id}/solve`` takes: ``"loading"`` or ``"parameters"``), ``sizes`` (``modes``, ``reduced_points``...),
``surfaces``, ``node_sets``, ``loading_schema``, ``training``, ``indicator`` (``quantity``, ``tolerance``,
``guarantee``: what a ``trusted`` answer promises), ``provenance`` (file names only), ``versions``, and
``features``: which endpoints apply to the kind (the others answer 422 ``unsupported_for_kind``). Kind-specific
keys: ``parameters`` (separated), ``local_models``, ``classifier``, ``efficiency`` (dictionary).

No MPI or PETSc import here.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

#: Endpoints (beyond the card, the page and ``solve``) each kind answers.
FEATURES = {"hyper_reduced": ["solve", "batch", "solve_nodal", "fields", "enrich", "solve_deck"],
            "separated": ["solve", "batch"],
            "dictionary": ["solve", "batch", "solve_nodal", "fields"]}
#: What the answer of a dictionary's indicator promises.
DICTIONARY_GUARANTEE = ("the indicator of the local model that answered (its own quantity, tolerance and guarantee "
                        "in local_models); the classifier's most probable local model answers first, and while its "
                        "indicator flags the answer (or its solve fails) the next most probable one is tried: "
                        "'attempts' lists them, 'fallback' is true when the first choice was not kept; when no "
                        "candidate is trusted the answer is the one of smallest indicator, with trusted false")


def json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def without_server_paths(value):
    """``value`` (JSON) with every absolute path replaced by its file name: a card shows no server paths."""
    if isinstance(value, dict):
        return {k: without_server_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_server_paths(v) for v in value]
    if isinstance(value, str) and (value.startswith("/") or re.match(r"^[A-Za-z]:\\", value)) and "\n" not in value:
        return Path(value.replace("\\", "/")).name
    return value


def _training(prov: dict):
    training = prov.get("training")
    if training is None and isinstance(prov.get("snapshots"), list):
        training = [{"file": Path(str(s.get("file", ""))).name, "increments": s.get("increments"),
                     "sha256": s.get("sha256")} for s in prov["snapshots"] if isinstance(s, dict)]
    return training


def _first_version(prov: dict) -> list[dict]:
    return [{"version": 1, "parent": None, "date": prov.get("created"), "loadings_added": []}]


def _finish(card: dict) -> dict:
    return json.loads(json.dumps(card, default=json_default, allow_nan=False))


def model_card(model_id: str, path: Path) -> dict:
    """Validate a model file of any kind fully and describe it. Raises
    :class:`~structrom.rom.model_file.ModelFileError`."""
    from structrom.rom.online.protocol import file_kind

    kind = file_kind(path)  # root attributes only
    if kind == "separated":
        return separated_card(model_id, path)
    if kind == "dictionary":
        return dictionary_card(model_id, path)
    return hyper_reduced_card(model_id, path)


def prescribed_sets(data, loading_schema: dict | None = None) -> dict:
    """Prescribed set (key of ``loading.displacement``) -> its node set, components and training range (from
    ``loading_schema``, default the model file's)."""
    if data.lifting is None:
        return {}
    ranges = ((loading_schema if loading_schema is not None else data.loading_schema) or {}).get("displacement") or {}
    return {name: {"node_set": node_set, "components": ["xyz"[c] for c in comps],
                   "range": (ranges.get(name) or {}).get("range")}
            for name, (node_set, comps) in data.lifting.sets.items()}


def hyper_reduced_card(model_id: str, path: Path) -> dict:
    import h5py

    from structrom.rom import model_file
    from structrom.rom.online import ReducedModel

    data = model_file.load(path, mesh=True)  # checks format, version, shapes, and the mesh group
    model = ReducedModel(data, path, int(data.mesh.n_nodes))  # checks schema, materials, finiteness
    with h5py.File(path, "r") as f:
        n_dofs = int(f["modes/full"].shape[0])
        duals = {name: {"components": int(g.attrs["components"]), "modes": int(g["reduced_basis"].shape[1]),
                        "n_points": int(g["basis"].shape[0]) // max(int(g.attrs["components"]), 1)}
                 for name, g in f.get("dual", {}).items()}
    mesh = data.mesh
    prov = data.provenance if isinstance(data.provenance, dict) else {"value": data.provenance}
    return _finish({
        "id": model_id,
        "kind": model.kind,
        "query": "loading",
        "features": FEATURES["hyper_reduced"],
        "sizes": {"modes": model.n_modes, "reduced_points": model.n_reduced_points,
                  "mesh_nodes": int(mesh.n_nodes), "mesh_elements": int(mesh.n_elements), "dofs": n_dofs,
                  "temperature_nodes": int(len(data.temperature_nodes)), "duals": duals},
        "surfaces": sorted(data.pressure),
        "node_sets": sorted(mesh.node_sets) if hasattr(mesh, "node_sets") else [],
        "centrifugal": data.centrifugal is not None, "gravity": data.gravity is not None,
        "dirichlet": data.dirichlet,
        "prescribed_displacements": prescribed_sets(data),
        "materials": data.materials,
        "units": data.units,
        "loading_schema": data.loading_schema,
        "training": _training(prov),
        "indicator": {**model.card()["indicator"]},
        "provenance": without_server_paths(prov),
        "versions": data.versions or _first_version(prov),
    })


def separated_card(model_id: str, path: Path) -> dict:
    from structrom.rom.online.separated import SeparatedModel

    model = SeparatedModel.load(path)  # screened, then every shape, index range and finiteness
    d = model.data
    own = model.card()
    mesh = d.mesh
    prov = d.provenance if isinstance(d.provenance, dict) else {"value": d.provenance}
    sizes = {**own["sizes"], "dofs": d.n_rows}
    if mesh is not None:
        sizes.update(mesh_nodes=int(mesh.n_nodes), mesh_elements=int(mesh.n_elements))
    return _finish({
        "id": model_id,
        "kind": model.kind,
        "query": "parameters",
        "features": FEATURES["separated"],
        "sizes": sizes,
        "parameters": own["parameters"],
        "surfaces": [],
        "node_sets": sorted(mesh.node_sets) if mesh is not None else [],
        "entries": own["entries"],
        "units": prov.get("units") if isinstance(prov.get("units"), dict) else {},
        "loading_schema": own["loading_schema"],
        "training": [dict(zip(model.parameter_names, mu)) for mu in np.asarray(d.training_parameters).tolist()],
        "indicator": own["indicator"],
        "provenance": without_server_paths(prov),
        "versions": _first_version(prov),
    })


def dictionary_card(model_id: str, path: Path) -> dict:
    from structrom.rom.online.dictionary import DictionaryModel

    model = DictionaryModel.load(path)  # screened, then every local model validated
    own = model.card()
    prov = model.provenance if isinstance(model.provenance, dict) else {"value": model.provenance}
    first = model.models[0]
    locals_ = [{**entry, "indicator": m.card()["indicator"]} for entry, m in zip(own["local_models"], model.models)]
    with first._h5() as g:
        sets = sorted(g["mesh/node_sets"]) if "mesh/node_sets" in g else []
        n_elements = sum(int(b["connectivity"].shape[0]) for b in g["mesh/blocks"].values())
    return _finish({
        "id": model_id,
        "kind": model.kind,
        "query": "loading",
        "features": FEATURES["dictionary"],
        "sizes": {"modes": max(m.n_modes for m in model.models),
                  "reduced_points": max(m.n_reduced_points for m in model.models),
                  "local_models": model.n_models, "mesh_nodes": int(first.n_mesh_nodes or 0),
                  "mesh_elements": n_elements, "dofs": 3 * int(first.n_mesh_nodes or 0)},
        "surfaces": sorted(set().union(*(m.data.pressure for m in model.models))),
        "node_sets": sets,
        "prescribed_displacements": prescribed_sets(first.data, model.loading_schema),
        "units": first.data.units,
        "loading_schema": model.loading_schema,
        "training": _training(prov),
        "local_models": locals_,
        "classifier": own["classifier"],
        "efficiency": own["efficiency"],
        "indicator": {"quantity": first.indicator_quantity,
                      "tolerance": max(m.indicator_tolerance for m in model.models),
                      "guarantee": DICTIONARY_GUARANTEE},
        "provenance": without_server_paths(prov),
        "versions": _first_version(prov),
    })
