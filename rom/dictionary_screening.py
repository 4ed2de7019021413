"""Screening of a dictionary file (:mod:`structrom.rom.online.dictionary`) before anything reads it.

:func:`screen_dictionary` walks the whole file once with :data:`DICTIONARY_SCHEMA` (the dictionary's own groups,
datasets and attributes, and under ``/local/<name>`` exactly those of a reduced model file: no links, external
storage, virtual datasets or foreign filters; bounded decompressed sizes), then checks the dictionary's rules
from the screened shapes: the JSON attributes strict and typed, one local model group per name of
``local_models`` (at most :data:`MAX_LOCAL_MODELS`), the classifier's arrays of matching shapes (``k`` classes =
local models, ``n_f`` features = ``feature_names``), sensor nodes and cluster labels / medoids within what they
index, every float finite, each local model passing :func:`structrom.rom.model_screening.screen_model` on the
same mesh (the same points, element blocks and node sets in every local model), the provenance keys the card
reads (``members``, ``classifier``) typed. Failures raise :class:`~structrom.rom.h5_screening.UnsafeFileError`
naming the object.
"""
from __future__ import annotations

import h5py
import numpy as np

from structrom.rom.h5_checks import _blocks
from structrom.rom.h5_screening import NAME, Inventory, Limits, Schema, UnsafeFileError, echo, screen, strict_json
from structrom.rom.model_screening import MODEL_SCHEMA, _finite, _index, _scalar, _string, screen_model, shape_checkers

LOCAL = f"local/{NAME}"
DICTIONARY_SCHEMA = Schema(
    groups=("classifier", "clustering", "local", LOCAL, *(f"{LOCAL}/{g}" for g in MODEL_SCHEMA.groups)),
    datasets=("classifier/(coef|intercept|mean|scale|sensor_coordinates|sensor_nodes)",
              "clustering/(distances|labels|medoids)", *(f"{LOCAL}/{d}" for d in MODEL_SCHEMA.datasets)),
    attributes={"": ("format", "schema_version", "kind", "provenance", "loading_schema", "units", "local_models",
                     "versions"),
                "classifier": ("type", "surfaces", "centrifugal", "gravity", "n_mesh_nodes", "feature_names"),
                **{(f"{LOCAL}/{k}" if k else LOCAL): v for k, v in MODEL_SCHEMA.attributes.items()}},
)
MAX_LOCAL_MODELS = 256


def screen_dictionary(f: h5py.File, limits: Limits = Limits()) -> Inventory:
    """:func:`screen` with :data:`DICTIONARY_SCHEMA`, then the dictionary's rules (module docstring)."""
    inv = screen(f, DICTIONARY_SCHEMA, limits)
    try:
        _dictionary_rules(f, inv, limits)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
        if isinstance(exc, UnsafeFileError):
            raise
        raise UnsafeFileError(f"unreadable data ({exc}); the file is corrupt or truncated") from None
    return inv


def _json(obj, key: str, where: str, kind: type):
    value = strict_json(obj.attrs.get(key, ""), f"{where} attribute {key!r}")
    if not isinstance(value, kind):
        raise UnsafeFileError(f"{where}: attribute {key!r} must be a JSON {kind.__name__}")
    return value


def _dictionary_rules(f: h5py.File, inv: Inventory, limits: Limits) -> None:
    ds = inv.datasets
    sc = shape_checkers(ds, "a structrom model dictionary")
    shape, expect, length = sc.shape, sc.expect, sc.length
    _string(f, "format", "/")
    _scalar(f, "schema_version", "/", lo=0, hi=2**31, integer=True)
    if _string(f, "kind", "/") != "dictionary":
        raise UnsafeFileError(f"/: model kind {echo(_string(f, 'kind', '/'))} is not the dictionary layout")
    provenance = _json(f, "provenance", "/", dict)
    _json(f, "loading_schema", "/", dict)
    _json(f, "units", "/", dict)
    names = _json(f, "local_models", "/", list)
    if not 1 <= len(names) <= MAX_LOCAL_MODELS or not all(isinstance(n, str) for n in names) or \
            len(set(names)) != len(names):
        raise UnsafeFileError(f"/: attribute 'local_models' must list 1 to {MAX_LOCAL_MODELS} distinct names")
    _provenance(provenance, len(names))
    for n in names:
        if f"local/{n}" not in inv.groups:
            raise UnsafeFileError(f"/local/{n}: missing (a local model listed in the attribute 'local_models'); "
                                  "the file is truncated or not written by structrom")
    extra = sorted(g for g in inv.groups if g.count("/") == 1 and g.startswith("local/") and g[6:] not in names)
    if extra:
        raise UnsafeFileError(f"/{extra[0]}: a local model not listed in the attribute 'local_models'")
    for g in ("classifier", "clustering"):
        if g not in inv.groups:
            raise UnsafeFileError(f"/{g}: missing; the file is truncated or not a structrom model dictionary")
    c = f["classifier"]
    if _string(c, "type", "/classifier") != "logistic":
        raise UnsafeFileError(f"/classifier: type {echo(_string(c, 'type', '/classifier'))} is not supported "
                              "(known: 'logistic')")
    features = _json(c, "feature_names", "/classifier", list)
    surfaces = _json(c, "surfaces", "/classifier", list)
    for key, values in (("feature_names", features), ("surfaces", surfaces)):
        if not all(isinstance(v, str) and 0 < len(v) <= 256 for v in values) or \
                (key == "surfaces" and len(set(values)) != len(values)):
            raise UnsafeFileError(f"/classifier: attribute {key!r} must be a JSON list of "
                                  f"{'distinct ' if key == 'surfaces' else ''}non-empty strings, got {echo(values)}")
    for key in ("centrifugal", "gravity"):
        if key not in c.attrs:
            raise UnsafeFileError(f"/classifier: missing attribute {key!r}")
        v = np.asarray(c.attrs[key])
        if v.size != 1 or v.dtype.kind not in "biu" or int(v.reshape(())) not in (0, 1):
            raise UnsafeFileError(f"/classifier: attribute {key!r} must be a boolean")
    n_nodes = int(_scalar(c, "n_mesh_nodes", "/classifier", lo=1, hi=2**40, integer=True))
    k, n_f = len(names), len(features)
    expect("classifier/coef", (k, n_f))
    expect("classifier/intercept", (k,))
    expect("classifier/mean", (n_f,))
    expect("classifier/scale", (n_f,))
    n_s = length("classifier/sensor_nodes", n_nodes, "the mesh's nodes (classifier attribute 'n_mesh_nodes')")
    expect("classifier/sensor_nodes", (n_s,))
    expect("classifier/sensor_coordinates", (n_s, 3))
    _index(f, "classifier/sensor_nodes", n_nodes, "mesh nodes (classifier attribute 'n_mesh_nodes')", limits=limits)
    m = length("clustering/labels")
    expect("clustering/labels", (m,))
    expect("clustering/distances", (m, m))
    expect("clustering/medoids", (k,))
    _index(f, "clustering/labels", k, "local models", limits=limits)
    _index(f, "clustering/medoids", m, "training loadings", limits=limits)
    for path in sorted(p for p in ds if not p.startswith("local/")):
        _finite(f, path, limits)
    for name in names:
        try:
            screen_model(f[f"local/{name}"], limits)
        except UnsafeFileError as exc:
            raise UnsafeFileError(f"/local/{name}: {exc}") from None
        points = length(f"local/{name}/mesh/points")
        if points != n_nodes:
            raise UnsafeFileError(f"/local/{name}/mesh/points: {points} nodes; the classifier reads a mesh of "
                                  f"{n_nodes}")
    _one_mesh(f, inv, names, limits)


def _provenance(provenance: dict, k: int) -> None:
    """What the card reads of ``provenance``: ``members`` (when present) ``k`` lists of training loading indices,
    ``classifier`` (when present) an object."""
    members = provenance.get("members")
    if members is not None and not (isinstance(members, list) and len(members) == k and all(
            isinstance(m, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in m) for m in members)):
        raise UnsafeFileError(f"/: attribute 'provenance' key 'members' must list, for each of the {k} local models, "
                              f"the indices of its training loadings; got {echo(members)}")
    if not isinstance(provenance.get("classifier", {}), dict):
        raise UnsafeFileError(f"/: attribute 'provenance' key 'classifier' must be a JSON object, got "
                              f"{echo(provenance['classifier'])}")


def _one_mesh(f: h5py.File, inv: Inventory, names: list, limits: Limits) -> None:
    """Every local model holds the first one's mesh: the same node sets, points and element blocks (the
    dictionary answers node sets and node counts from the first; a local model solves on its own), compared by
    blocks of ``limits.block_bytes``."""
    first = f"local/{names[0]}/mesh"

    def parts(name: str) -> list[str]:
        root = f"local/{name}/mesh/"
        return sorted(p[len(root):] for p in inv.datasets if p.startswith(root) and "/surface_sets/" not in p
                      and "/element_sets/" not in p)

    ref = parts(names[0])
    for name in names[1:]:
        mine = parts(name)
        if mine != ref:
            diff = sorted(set(mine) ^ set(ref))
            raise UnsafeFileError(f"/local/{name}/mesh: its datasets differ from /{first}'s ({echo(diff)}); the "
                                  "local models of a dictionary share one mesh")
        for p in ref:
            a, b = f[f"{first}/{p}"], f[f"local/{name}/mesh/{p}"]
            same = a.shape == b.shape and a.dtype == b.dtype and all(
                np.array_equal(block, b[sel]) for sel, block in _blocks(a, limits.block_bytes))
            if not same:
                raise UnsafeFileError(f"/local/{name}/mesh/{p}: differs from /{first}/{p}; the local models of a "
                                      "dictionary share one mesh")
