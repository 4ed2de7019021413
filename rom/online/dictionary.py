"""A dictionary of local reduced models chosen by a classifier (ROM-net, Daniel et al.), online.

    model = DictionaryModel.load("dictionary.h5")
    result = model.solve(loading)          # the same interface as ReducedModel.solve
    result.local_model, result.attempts   # which local model answered, what was tried
    result.indicator, result.trusted       # the local model's error indicator

:meth:`DictionaryModel.solve` ranks the local models by the classifier's probabilities for the loading's
features (:mod:`structrom.rom.online.classifier`) and solves with the most probable one; when its error
indicator flags the answer (not trusted at every increment) or its Newton solve fails, the next candidate is
tried (misclassification fallback), up to ``max_candidates``. The first trusted answer is returned; if none
is trusted, the one with the smallest indicator (``trusted`` False).

File (format ``structrom-model-dictionary``, schema version 1, attribute ``kind = "dictionary"``), written by
:mod:`structrom.rom.offline.dictionary`:

=====================================  ======================  ==========================================
path                                   shape, type             content
=====================================  ======================  ==========================================
``/`` attrs ``format``,                str, int, str           identification
``schema_version``, ``kind``
``/`` attrs ``provenance``,            JSON                    clusters, efficiency criterion, classifier
``loading_schema``, ``units``,                                 accuracy; the family of all training
``local_models``                                               loadings; local model names in class order
``/classifier/{coef, intercept}``      (k, n_f), (k,) f8       multinomial logistic regression
``/classifier/{mean, scale}``          (n_f,) f8               feature standardization
``/classifier/sensor_coordinates``,    (n_s, 3) f8, (n_s,) i8  temperature sensors (features)
``sensor_nodes``
``/classifier`` attrs                  JSON / bool / int       ``surfaces``, ``centrifugal``, ``gravity``,
                                                               ``n_mesh_nodes``, ``feature_names``
``/clustering/{distances, labels,      (m, m) f8, (m,), (k,)   Grassmann distances of the training
medoids}``                                                     loadings, their clusters, the medoids
``/local/<name>``                      group                   a complete reduced model file
                                                               (:mod:`structrom.rom.model_file`)
=====================================  ======================  ==========================================

Only numbers are read (no pickle): a dictionary file cannot run code. No MPI or PETSc import.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from structrom.rom.loading import Loading, LoadingError
from structrom.rom.model_file import ModelFileError

from .classifier import LoadingFeatures, LogisticClassifier
from .model import OnlineError, OnlineSolverError, ReducedModel
from .result import Result
from .schema import SchemaError, as_loading, check_family, validate_schema

FORMAT = "structrom-model-dictionary"
SCHEMA_VERSION = 1


def local_name(cluster: int) -> str:
    return f"cluster_{cluster}"


@dataclass(repr=False)
class DictionaryResult(Result):
    """A :class:`~structrom.rom.online.result.Result` of the local model that answered (``model`` is that
    local :class:`ReducedModel`), plus: ``local_model`` its name; ``probabilities`` name -> classifier
    probability; ``attempts``: the candidates tried in order (``model``, ``probability``, and ``indicator`` /
    ``trusted`` or ``error``)."""

    local_model: str = ""
    probabilities: dict = field(default_factory=dict)
    attempts: list = field(default_factory=list)

    @property
    def fallback(self) -> bool:
        """True when the answer is not the classifier's first choice."""
        return bool(self.attempts) and self.attempts[0]["model"] != self.local_model

    def __repr__(self) -> str:
        return f"DictionaryResult({self.local_model}, attempts {len(self.attempts)}: " + super().__repr__() + ")"

    def summary(self) -> dict:
        out = super().summary()
        out.update(local_model=self.local_model, probabilities=self.probabilities, attempts=self.attempts)
        return out


class DictionaryModel:
    """Local reduced models and the classifier that picks one per loading (module docstring)."""

    kind = "dictionary"

    def __init__(self, models: list[ReducedModel], names: list[str], features: LoadingFeatures,
                 classifier: LogisticClassifier, loading_schema: dict, provenance: dict | None = None,
                 path: str | Path | None = None) -> None:
        self.models, self.names = models, names
        self.features, self.classifier = features, classifier
        self._schema = loading_schema
        self.provenance = provenance or {}
        self.path = Path(path) if path is not None else None
        where = str(self.path) if self.path else "dictionary"
        if classifier.n_classes != len(models) or len(names) != len(models):
            raise ModelFileError(f"{where}: the classifier has {classifier.n_classes} classes for {len(models)} "
                                 "local models")
        if classifier.coef.shape[1] != len(features.names):
            raise ModelFileError(f"{where}: the classifier expects {classifier.coef.shape[1]} features, the feature "
                                 f"description gives {len(features.names)}")
        try:
            validate_schema(loading_schema)
        except SchemaError as exc:
            raise ModelFileError(f"{where}: {exc}") from None

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, keep_full: bool = False) -> "DictionaryModel":
        """Read and validate a dictionary file; raises :class:`~structrom.rom.model_file.ModelFileError`."""
        from structrom.rom import h5_screening
        from structrom.rom.dictionary_screening import screen_dictionary
        from structrom.rom.model_file import open_h5
        from structrom.rom.model_screening import header

        path = Path(path)
        with open_h5(path, "dictionary file") as f:
            try:  # root attributes bounded and typed before anything else is read
                fmt, version, _ = header(f)
            except h5_screening.UnsafeFileError as exc:
                raise ModelFileError(f"{path}: {exc}") from None
            if fmt != FORMAT:
                raise ModelFileError(f"{path}: not a structrom model dictionary (format {h5_screening.echo(fmt)})")
            version = -1 if version is None else version
            if version != SCHEMA_VERSION:
                raise ModelFileError(f"{path}: dictionary schema version {version} is not supported (this code "
                                     f"reads {SCHEMA_VERSION}): rebuild it with structrom.rom.offline.dictionary")
            try:  # before anything reads data: no external files or links, bounded sizes, indices in range
                screen_dictionary(f, h5_screening.DEFAULT_LIMITS)
            except h5_screening.UnsafeFileError as exc:
                raise ModelFileError(f"{path}: {exc}") from None
            try:
                names = json.loads(f.attrs["local_models"])
                schema = json.loads(f.attrs["loading_schema"])
                provenance = json.loads(f.attrs.get("provenance", "{}"))
                g = f["classifier"]
                if g.attrs.get("type") != "logistic":
                    raise ModelFileError(f"{path}: classifier type {g.attrs.get('type')!r} is not supported "
                                         "(known: 'logistic')")
                features = LoadingFeatures(g["sensor_coordinates"][()], g["sensor_nodes"][()].astype(np.int64),
                                           int(g.attrs["n_mesh_nodes"]), list(json.loads(g.attrs["surfaces"])),
                                           bool(g.attrs["centrifugal"]), bool(g.attrs["gravity"]))
                arrays = {k: g[k][()] for k in ("coef", "intercept", "mean", "scale")}
                missing = [n for n in names if f"local/{n}" not in f]
            except (KeyError, TypeError, json.JSONDecodeError) as exc:
                raise ModelFileError(f"{path}: unreadable dictionary metadata or classifier ({exc}); the file is "
                                     "truncated or not written by structrom") from None
            if missing:
                raise ModelFileError(f"{path}: local models {missing} are missing under /local")
        try:
            classifier = LogisticClassifier(**arrays)
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        if features.sensor_nodes.size and (features.sensor_nodes.min() < 0
                                           or features.sensor_nodes.max() >= features.n_mesh_nodes):
            raise ModelFileError(f"{path}: classifier/sensor_nodes outside 0..{features.n_mesh_nodes - 1}")
        models = [ReducedModel.load(path, keep_full=keep_full, group=f"local/{n}") for n in names]
        return cls(models, names, features, classifier, schema, provenance, path)

    # -- properties -----------------------------------------------------------------------------------------
    @property
    def loading_schema(self) -> dict:
        """The family of all training loadings (each local model's own schema covers its cluster only)."""
        return self._schema

    @property
    def parameters(self) -> dict[str, tuple[float, float]]:
        """Training ranges of the dictionary's loading family, ``loading_schema`` flattened (as
        :attr:`ReducedModel.parameters`; the classifier's features are ``features.names``)."""
        from .protocol import schema_parameters

        return schema_parameters(self.loading_schema)

    def estimate_error(self, loading: Loading | dict, *, extrapolate: bool = False) -> np.ndarray:
        """``(n_inc,)`` indicator of the answering local model (one solve: the indicator is a by-product)."""
        return self.solve(loading, extrapolate=extrapolate).indicator

    @property
    def n_models(self) -> int:
        return len(self.models)

    @property
    def n_mesh_nodes(self) -> int | None:
        """Nodes of the mesh the local models share."""
        return self.models[0].n_mesh_nodes

    def node_set(self, name: str) -> np.ndarray:
        """Node indices of a node set of the shared mesh (raises :class:`OnlineError` for an unknown name)."""
        return self.models[0].node_set(name)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}: {m.n_modes} modes / {m.n_reduced_points} points" for n, m in zip(self.names, self.models))
        return f"DictionaryModel({str(self.path) if self.path else '<memory>'}: {sizes})"

    def card(self) -> dict:
        """A JSON-serializable description: local models, classifier, efficiency criterion, family."""
        members = self.provenance.get("members") or [[] for _ in self.models]
        return {"kind": self.kind, "path": str(self.path) if self.path else None,
                "local_models": [{"name": n, "modes": m.n_modes, "reduced_points": m.n_reduced_points,
                                  "training_loadings": len(members[i]), "indicator_quantity": m.indicator_quantity,
                                  "indicator_tolerance": m.indicator_tolerance}
                                 for i, (n, m) in enumerate(zip(self.names, self.models))],
                "classifier": {"type": "logistic", "features": self.features.names,
                               **self.provenance.get("classifier", {})},
                "efficiency": self.provenance.get("efficiency"), "loading_schema": self.loading_schema}

    # -- loadings -------------------------------------------------------------------------------------------
    def probabilities(self, loading: Loading | dict) -> np.ndarray:
        """``(k,)`` classifier probabilities of the local models for ``loading``."""
        return self.classifier.probabilities(self.features(as_loading(loading)))

    def check_loading(self, loading: Loading | dict, *, extrapolate: bool = False) -> tuple[Loading, list[str]]:
        """Validate ``loading``: structure (by the local models) and the dictionary's family; returns the loading
        and the family violations (non-empty only with ``extrapolate=True``). Raises
        :class:`~structrom.rom.loading.LoadingError`."""
        loading = as_loading(loading)
        for m in self.models:
            m.check_loading(loading, extrapolate=True)
        violations = check_family(loading, self.loading_schema)
        if violations and not extrapolate:
            raise LoadingError("; ".join(violations) + ". This loading is outside the dictionary's training family: "
                               "pass extrapolate=True (REST: \"extrapolate\": true) to solve it anyway "
                               "(check result.indicator)")
        return loading, violations

    check = check_loading

    def solve(self, loading: Loading | dict, *, extrapolate: bool = False, max_candidates: int | None = None,
              **options) -> DictionaryResult:
        """Solve ``loading`` with the most probable local model, falling back on the next ones while the error
        indicator flags the answer (module docstring). ``options``: those of :meth:`ReducedModel.solve`."""
        start = time.perf_counter()
        loading, violations = self.check_loading(loading, extrapolate=extrapolate)
        probs = self.classifier.probabilities(self.features(loading))
        k = self.n_models if max_candidates is None else int(max_candidates)
        if not 1 <= k <= self.n_models:
            raise OnlineError(f"max_candidates must be in 1..{self.n_models}, got {max_candidates}")
        order = np.argsort(-probs, kind="stable")[:k]
        attempts: list[dict] = []
        best: tuple[int, Result] | None = None
        for i in order:
            entry = {"model": self.names[i], "probability": float(probs[i])}
            try:
                res = self.models[i].solve(loading, extrapolate=True, **options)
            except OnlineSolverError as exc:
                attempts.append({**entry, "error": str(exc)})
                continue
            attempts.append({**entry, "indicator": float(res.indicator.max(initial=0.0)),
                             "trusted": bool(res.trusted.all())})
            if best is None or res.indicator.max(initial=0.0) < best[1].indicator.max(initial=0.0):
                best = (int(i), res)
            if res.trusted.all():
                break
        if best is None:
            raise OnlineSolverError("every candidate local model failed: " +
                                    "; ".join(f"{a['model']}: {a['error']}" for a in attempts))
        i, res = best
        fields = {f.name: getattr(res, f.name) for f in dataclasses.fields(Result)}
        fields["warnings"] = list(violations)
        fields["timings"] = {**res.timings, "dictionary_total": time.perf_counter() - start}
        return DictionaryResult(**fields, local_model=self.names[i],
                                probabilities={n: float(p) for n, p in zip(self.names, probs)}, attempts=attempts)
