"""Offline stage of a dictionary of local reduced models (ROM-net, Daniel et al.), under mpirun:

    mpirun -n P structrom dictionary dictionary.toml     # or structrom offline with kind = "dictionary",
                                                         # or python -m structrom.rom.offline.dictionary

1. read the training cases and partition the mesh as :func:`structrom.rom.offline.pipeline.run_offline` does;
2. per training loading, the subspace of its first ``subspace_dim`` POD modes; Grassmann distances between
   them; k-medoids clusters (:mod:`structrom.rom.offline.clustering`);
3. the a priori efficiency criterion (local vs global POD sizes at the POD tolerance);
4. the classifier: loading features (:class:`structrom.rom.online.classifier.LoadingFeatures`, temperatures
   at sensor nodes chosen by farthest-point sampling, pressure peaks...), standardized, multinomial logistic
   regression (scikit-learn) with the cluster labels; its leave-one-out accuracy on the training loadings;
5. one local hyper-reduced model per cluster: :func:`~structrom.rom.offline.pipeline.run_offline` on the
   cluster's snapshot files with the same ``[pod] [dual] [ecm] [indicator]`` settings;
6. rank 0 writes the dictionary file (format in :mod:`structrom.rom.online.dictionary`) atomically: the local
   model files copied into ``/local/<name>``, the classifier as plain arrays (no pickle).

Configuration: the offline configuration (:mod:`structrom.rom.offline.config`) plus::

    [dictionary]
    clusters = 2            # number of local models
    subspace_dim = 3        # POD modes per training loading for the Grassmann distance
    sensors = 32            # temperature sensors of the classifier's features
    regularization = 1.0    # inverse L2 penalty C of the logistic regression
    overlap = 0.0           # local models also train on loadings within (1 + overlap) x their own medoid's
                            # distance of the cluster's medoid (overlapping clusters)
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from mpi4py import MPI
from pydantic import Field

from structrom.mpi.collectives import on_root
from structrom.rom.config import ConfigError, load_toml
from structrom.rom.offline.clustering import (case_subspaces, efficiency_criterion, grassmann_distances, k_medoids,
                                              overlapping_members)
from structrom.rom.offline.config import OfflineConfig, OutputConfig, SnapshotsConfig, Strict
from structrom.rom.offline.pipeline import CODE_VERSION, _read_cases, loading_schema, partition, run_offline
from structrom.rom.offline.unread_keywords import check_offline_keywords
from structrom.rom.online.classifier import LoadingFeatures, LogisticClassifier
from structrom.rom.atomic import atomic_h5
from structrom.rom.online.dictionary import FORMAT, SCHEMA_VERSION, local_name


class DictionarySettings(Strict):
    clusters: int = Field(2, ge=1)
    subspace_dim: int = Field(3, ge=1)
    sensors: int = Field(32, ge=1)
    regularization: float = Field(1.0, gt=0)
    #: Local model c also trains on the loadings i with d(i, medoid_c) <= (1 + overlap) d(i, own medoid).
    overlap: float = Field(0.0, ge=0)


class DictionaryConfig(OfflineConfig):
    kind: Literal["hyper_reduced", "dictionary"] = "dictionary"  # "structrom offline" dispatches on "dictionary"
    dictionary: DictionarySettings = DictionarySettings()


def load_dictionary_config(path: str | Path) -> DictionaryConfig:
    cfg = load_toml(path, DictionaryConfig)
    check_offline_keywords(cfg, str(path))
    cfg.base_dir = str(Path(path).resolve().parent)
    if cfg.indicator.quantity not in cfg.dual.quantities:
        raise ConfigError(f"{path}: indicator.quantity {cfg.indicator.quantity!r} must be one of "
                          f"dual.quantities {cfg.dual.quantities}")
    return cfg


def sensor_nodes(points: np.ndarray, n: int) -> np.ndarray:
    """``(min(n, n_nodes),)`` nodes spread over the part by farthest-point sampling, starting at the node
    nearest the centroid (deterministic)."""
    n = min(n, len(points))
    first = int(np.argmin(np.linalg.norm(points - points.mean(axis=0), axis=1)))
    chosen = [first]
    dist = np.linalg.norm(points - points[first], axis=1)
    for _ in range(n - 1):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(points - points[i], axis=1))
    return np.array(chosen, dtype=np.int64)


def fit_classifier(X: np.ndarray, labels: np.ndarray, n_classes: int, regularization: float) -> tuple[LogisticClassifier, dict]:
    """Standardization and multinomial logistic regression (scikit-learn) of the features ``X`` ``(m, n_f)``;
    returns the classifier as arrays and its training / leave-one-out accuracies."""
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError as exc:
        raise ImportError(f"the dictionary's classifier needs scikit-learn ({exc}): pip install 'structrom[offline]'") \
            from None

    scaler = StandardScaler().fit(X)
    if n_classes == 1:
        return LogisticClassifier(np.zeros((1, X.shape[1])), np.zeros(1), scaler.mean_, scaler.scale_), \
            {"training_accuracy": 1.0, "leave_one_out_accuracy": 1.0}
    clf = LogisticRegression(C=regularization, max_iter=10000).fit(scaler.transform(X), labels)
    coef, intercept = clf.coef_, clf.intercept_
    if n_classes == 2:  # scikit-learn's binary model: p_1 = sigmoid(w z + b) = softmax([0, w z + b])_1
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    out = LogisticClassifier(coef, intercept, scaler.mean_, scaler.scale_)
    train_acc = float(np.mean(np.argmax(out.probabilities(X), axis=1) == labels))
    loo = None
    if len(X) > 2:
        hits = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # folds that leave out a class's only member
            for i in range(len(X)):
                keep = np.arange(len(X)) != i
                if len(np.unique(labels[keep])) == 1:  # i was its class's only member: one class left
                    hits.append(labels[keep][0] == labels[i])
                    continue
                pipe = make_pipeline(StandardScaler(), LogisticRegression(C=regularization, max_iter=10000))
                hits.append(pipe.fit(X[keep], labels[keep]).predict(X[i:i + 1])[0] == labels[i])
        loo = float(np.mean(hits))
    return out, {"training_accuracy": train_acc, "leave_one_out_accuracy": loo}


def run_dictionary(cfg: DictionaryConfig, comm: MPI.Comm | None = None, log=print) -> Path:
    """Build the dictionary described by ``cfg``; rank 0 writes ``cfg.output.file``. Collective."""
    comm = comm or MPI.COMM_WORLD
    rank = comm.Get_rank()
    say = log if rank == 0 else (lambda *a, **k: None)
    t_all = time.perf_counter()
    settings = cfg.dictionary
    mesh, cases = _read_cases(cfg, comm)
    if settings.clusters > len(cases):
        raise ConfigError(f"dictionary.clusters = {settings.clusters} exceeds the {len(cases)} training loadings")
    disc, my_nodes, rows = partition(mesh, comm)
    mass = disc.mass_matrix(1.0).tocsr()[rows][:, rows]
    snapshots = [c.displacements(my_nodes).reshape(len(c.times), -1).T for c in cases]

    t0 = time.perf_counter()
    bases = case_subspaces(comm, snapshots, mass, rows, settings.subspace_dim)
    D = grassmann_distances(comm, bases, None, mass)
    del bases
    medoids, labels = on_root(comm, lambda: k_medoids(D, settings.clusters))
    members = overlapping_members(D, medoids, labels, settings.overlap)
    crit = efficiency_criterion(comm, snapshots, members, mass, rows, cfg.pod.tolerance)
    del snapshots
    say(f"dictionary: {len(cases)} loadings -> {settings.clusters} clusters (sizes "
        f"{np.bincount(labels, minlength=settings.clusters).tolist()}, with overlap {[len(m) for m in members]}, "
        f"medoids {medoids.tolist()}) in "
        f"{time.perf_counter() - t0:.1f} s; a priori: {crit.global_modes} global modes vs local "
        f"{crit.local_modes} at tolerance {cfg.pod.tolerance:g} -> "
        f"{'dictionary' if crit.beneficial else 'global model'} predicted better (ratio {crit.ratio:.2f})")

    surfaces = sorted({s for c in cases for s in c.loading.pressures})
    sensors = sensor_nodes(mesh.points, settings.sensors)
    features = LoadingFeatures(mesh.points[sensors], sensors, mesh.n_nodes, surfaces,
                               centrifugal=any(c.loading.centrifugal is not None for c in cases),
                               gravity=any(c.loading.gravity is not None for c in cases))
    X = np.array([features(c.loading) for c in cases])
    classifier, accuracy = on_root(comm, lambda: fit_classifier(X, labels, settings.clusters,
                                                                  settings.regularization))
    say(f"dictionary: classifier on {X.shape[1]} features: training accuracy {accuracy['training_accuracy']:.2f}, "
        f"leave-one-out {accuracy['leave_one_out_accuracy']}")

    out = cfg.path(cfg.output.file)
    def workdir() -> str:
        out.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent)

    work = Path(on_root(comm, workdir))
    try:
        local_files = []
        for c in range(settings.clusters):
            files = [str(Path(cases[i].path).resolve()) for i in members[c]]
            say(f"dictionary: local model {local_name(c)} from {len(files)} loadings")
            local_cfg = OfflineConfig(snapshots=SnapshotsConfig(files=files), pod=cfg.pod, dual=cfg.dual, ecm=cfg.ecm,
                                      indicator=cfg.indicator, output=OutputConfig(file=str(work / f"{local_name(c)}.h5")),
                                      base_dir=cfg.base_dir)
            local_files.append(run_offline(local_cfg, comm, log))
        provenance = {"code_version": CODE_VERSION, "config": cfg.model_dump(mode="json"), "n_ranks": comm.Get_size(),
                      "snapshots": [{"file": str(c.path), "sha256": c.sha256, "cluster": int(l)}
                                    for c, l in zip(cases, labels)],
                      "medoids": medoids.tolist(), "members": [m.tolist() for m in members],
                      "efficiency": crit.as_dict(), "classifier": accuracy,
                      "seconds": time.perf_counter() - t_all, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        on_root(comm, lambda: write_dictionary(out, local_files, features, classifier, D, labels, medoids,
                                                loading_schema(cases), cases[0].units, provenance))
    finally:
        if rank == 0:
            shutil.rmtree(work, ignore_errors=True)
    say(f"dictionary: written {out} in {time.perf_counter() - t_all:.1f} s")
    return out


def write_dictionary(path: Path, local_files: list[Path], features: LoadingFeatures, classifier: LogisticClassifier,
                     distances: np.ndarray, labels: np.ndarray, medoids: np.ndarray, schema: dict, units: dict,
                     provenance: dict) -> Path:
    """Write the dictionary file atomically (:func:`structrom.rom.atomic.atomic_h5`)."""
    import h5py

    path = Path(path)
    with atomic_h5(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["kind"] = "dictionary"
        f.attrs["provenance"] = json.dumps(provenance)
        f.attrs["loading_schema"] = json.dumps(schema)
        f.attrs["units"] = json.dumps(units)
        names = [local_name(c) for c in range(len(local_files))]
        f.attrs["local_models"] = json.dumps(names)
        g = f.create_group("classifier")
        g.attrs["type"] = "logistic"
        g.attrs["surfaces"] = json.dumps(features.surfaces)
        g.attrs["centrifugal"] = bool(features.centrifugal)
        g.attrs["gravity"] = bool(features.gravity)
        g.attrs["n_mesh_nodes"] = int(features.n_mesh_nodes)
        g.attrs["feature_names"] = json.dumps(features.names)
        g.create_dataset("sensor_coordinates", data=features.sensor_coordinates)
        g.create_dataset("sensor_nodes", data=features.sensor_nodes)
        for key in ("coef", "intercept", "mean", "scale"):
            g.create_dataset(key, data=getattr(classifier, key))
        c = f.create_group("clustering")
        c.create_dataset("distances", data=distances)
        c.create_dataset("labels", data=np.asarray(labels, np.int64))
        c.create_dataset("medoids", data=np.asarray(medoids, np.int64))
        local = f.create_group("local")
        for name, src in zip(names, local_files):
            dst = local.create_group(name)
            with h5py.File(src, "r") as s:
                for key, value in s.attrs.items():
                    dst.attrs[key] = value
                for key in s:
                    s.copy(s[key], dst, name=key)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: [mpirun -n P] structrom dictionary dictionary.toml (or structrom offline with kind = "
              "\"dictionary\"; or python -m structrom.rom.offline.dictionary dictionary.toml)", file=sys.stderr)
        return 2
    try:
        cfg = load_dictionary_config(argv[0])
        run_dictionary(cfg, MPI.COMM_WORLD)
    except (ConfigError, ValueError, ImportError) as exc:
        if MPI.COMM_WORLD.Get_rank() == 0:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
